//! Authorization per message: who may address whom (SPEC 3.4).
//!
//! Admins may write to anyone. Everyone else may write only to the desk: the configured
//! desk name, or a user known to be an admin. Admin names come from `usuarios` at start-up
//! and from every admin token the broker sees, so an admin who signs in elsewhere is
//! addressable without a restart.

use std::collections::HashSet;
use std::sync::Arc;

use super::identity::Identity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Solo puedes escribir al soporte")]
    RecipientNotAllowed,
}

/// The desk's name and the admins the broker knows of.
#[derive(Debug, Default)]
pub struct Policy {
    desk_name: String,
    admins: HashSet<Arc<str>>,
}

impl Policy {
    pub fn new(desk_name: impl Into<String>, admins: impl IntoIterator<Item = String>) -> Self {
        Policy {
            desk_name: desk_name.into(),
            admins: admins.into_iter().map(Arc::from).collect(),
        }
    }

    pub fn learn_admin(&mut self, user: &Arc<str>) {
        if !self.admins.contains(user) {
            self.admins.insert(user.clone());
        }
    }

    pub fn may_address(&self, sender: &Identity, para: &str) -> Result<(), PolicyError> {
        if sender.is_admin() || para == self.desk_name || self.admins.contains(para) {
            Ok(())
        } else {
            Err(PolicyError::RecipientNotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Role;

    fn who(user: &str, role: Role) -> Identity {
        Identity {
            user: user.into(),
            name: user.into(),
            role,
            expires_at: 0,
        }
    }

    #[test]
    fn users_reach_only_the_desk() {
        let mut policy = Policy::new("admin", vec!["soporte1".to_string()]);
        let ana = who("ana", Role::User);
        assert!(policy.may_address(&ana, "admin").is_ok());
        assert!(policy.may_address(&ana, "soporte1").is_ok());
        assert_eq!(
            policy.may_address(&ana, "luis"),
            Err(PolicyError::RecipientNotAllowed)
        );
        policy.learn_admin(&Arc::from("sonia"));
        assert!(policy.may_address(&ana, "sonia").is_ok());
        assert!(
            policy
                .may_address(&who("sonia", Role::Admin), "luis")
                .is_ok()
        );
    }
}
