//! placeholder until the web branch lands
use crate::broker::Role;
use crate::storage::{Storage, StoreError};
pub fn hash_password(password: &str) -> String {
    bcrypt::hash(password, 10).expect("bcrypt")
}
pub async fn seed_demo_accounts(
    _storage: &Storage,
) -> Result<Vec<(String, String, Role)>, StoreError> {
    Ok(Vec::new())
}
