//! Sign-in accounts for the CLI: password hashing (`mensajero users add`) and the demo
//! accounts of `mensajero serve --demo`.
//!
//! Hashes are bcrypt at cost 10, the cost `bcryptjs` used in the seed, so accounts made
//! here and there verify on both.

use crate::broker::Role;
use crate::storage::{Storage, StoreError, UserRecord};

pub const BCRYPT_COST: u32 = 10;

/// Environment variable that fixes the demo passwords (tests and screenshots need to know
/// them); unset, each start draws fresh random ones.
pub const DEMO_PASSWORD_ENV: &str = "MENSAJERO_DEMO_PASSWORD";

/// The demo accounts: (user, display name, role).
pub const DEMO_ACCOUNTS: &[(&str, &str, Role)] = &[
    ("admin", "Equipo de soporte", Role::Admin),
    ("ana", "Ana García", Role::User),
    ("luis", "Luis Pérez", Role::User),
];

/// A bcrypt hash of `password` (longer than 72 bytes: truncated, as bcryptjs does).
pub fn hash_password(password: &str) -> String {
    // Only an out-of-range cost makes bcrypt fail, and the cost is a constant.
    bcrypt::hash(password, BCRYPT_COST).expect("bcrypt cost 10 is valid")
}

/// Create (or reset) the demo accounts and return them with their clear passwords, for
/// the CLI to print. Safe to run on every start: existing demo users are replaced.
pub async fn seed_demo_accounts(
    storage: &Storage,
) -> Result<Vec<(String, String, Role)>, StoreError> {
    let fixed = std::env::var(DEMO_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty());
    let mut seeded = Vec::with_capacity(DEMO_ACCOUNTS.len());
    for &(user, nombre, role) in DEMO_ACCOUNTS {
        let password = fixed.clone().unwrap_or_else(random_password);
        let hashed = {
            let password = password.clone();
            // bcrypt is CPU work; keep it off the async thread.
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|_| StoreError::Unavailable)?
        };
        storage
            .upsert_user(UserRecord {
                usuario: user.to_string(),
                nombre: nombre.to_string(),
                rol: role.as_str().to_string(),
                pass: hashed,
                imagen: None,
            })
            .await?;
        seeded.push((user.to_string(), password, role));
    }
    Ok(seeded)
}

/// Twelve characters from an alphabet without look-alikes (no 0/O, 1/l/I), easy to type.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Bytes at or past the last whole multiple of the alphabet would bias the draw.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(12);
    while out.len() < 12 {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        for b in bytes.into_iter().filter(|b| *b < limit) {
            if out.len() < 12 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_use_cost_10() {
        let hash = hash_password("clave");
        assert!(hash.starts_with("$2b$10$"));
        assert!(bcrypt::verify("clave", &hash).unwrap());
    }

    #[test]
    fn random_passwords_differ() {
        let a = random_password();
        assert_eq!(a.len(), 12);
        assert_ne!(a, random_password());
    }

    #[test]
    fn demo_has_an_admin_named_like_the_desk() {
        let desk = crate::config::Settings::defaults().chat.desk_name;
        assert!(
            DEMO_ACCOUNTS
                .iter()
                .any(|(u, _, r)| *u == desk && *r == Role::Admin)
        );
        assert_eq!(
            DEMO_ACCOUNTS
                .iter()
                .filter(|(_, _, r)| *r == Role::User)
                .count(),
            2
        );
    }
}
