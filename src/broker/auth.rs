//! Session tokens: issuing and verifying the JWT carried in the `token` cookie.
//!
//! The algorithm is pinned by configuration (the token's own `alg` header never chooses,
//! so `alg: none` and algorithm-confusion tokens fail), `exp` is required, and the
//! claims must name a non-empty `user` and a `rol` of `admin` or `user`. The three
//! refusals keep the seed's exact wording, which its clients display.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::cookie::find_cookie;
use super::identity::{Identity, Role};
use crate::config::AuthSettings;

/// Why a request carries no usable identity; `Display` is what the client is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("No autenticado")]
    NoCookieHeader,
    #[error("Token no proporcionado")]
    NoTokenCookie,
    #[error("Token inválido")]
    InvalidToken,
}

/// Why a [`TokenService`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenSetupError {
    #[error("JWT_SECRET is empty")]
    EmptySecret,
    #[error("unsupported JWT algorithm {0} (use HS256, HS384 or HS512)")]
    Algorithm(String),
    #[error("jwt: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    user: String,
    #[serde(default)]
    name: String,
    rol: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Issues and verifies session tokens with one secret and one pinned algorithm.
pub struct TokenService {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    cookie_name: String,
}

impl TokenService {
    pub fn new(secret: &str, settings: &AuthSettings) -> Result<Self, TokenSetupError> {
        if secret.is_empty() {
            return Err(TokenSetupError::EmptySecret);
        }
        let algorithm = match settings.algorithm.as_str() {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            other => return Err(TokenSetupError::Algorithm(other.to_string())),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.leeway_secs;
        validation.set_required_spec_claims(&["exp"]);
        Ok(TokenService {
            algorithm,
            encoding: EncodingKey::from_secret(secret.as_bytes())?,
            decoding: DecodingKey::from_secret(secret.as_bytes())?,
            validation,
            cookie_name: settings.cookie_name.clone(),
        })
    }

    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A token for `user` valid for `ttl`.
    pub fn issue(&self, user: &str, name: &str, role: Role, ttl: Duration) -> String {
        let now = unix_now();
        let claims = Claims {
            user: user.to_string(),
            name: name.to_string(),
            rol: role.as_str().to_string(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .expect("HMAC signing of plain claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::InvalidToken)?;
        let claims = data.claims;
        let role = Role::parse(&claims.rol).ok_or(AuthError::InvalidToken)?;
        if claims.user.is_empty() {
            return Err(AuthError::InvalidToken);
        }
        let name = if claims.name.is_empty() {
            claims.user.clone()
        } else {
            claims.name
        };
        Ok(Identity {
            user: claims.user.into(),
            name: name.into(),
            role,
            expires_at: claims.exp,
        })
    }

    /// The identity in a request's `Cookie` header, with the seed's three refusals.
    pub fn authenticate(&self, cookie_header: Option<&str>) -> Result<Identity, AuthError> {
        let header = cookie_header.ok_or(AuthError::NoCookieHeader)?;
        let token = find_cookie(header, &self.cookie_name)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::NoTokenCookie)?;
        self.verify(&token)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn service() -> TokenService {
        TokenService::new("s3cret", &Settings::defaults().auth).unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let tokens = service();
        let t = tokens.issue("ana", "Ana", Role::User, Duration::from_secs(60));
        let id = tokens
            .authenticate(Some(&format!("a=b; token={t}")))
            .unwrap();
        assert_eq!(&*id.user, "ana");
        assert_eq!(id.role, Role::User);
        assert_eq!(tokens.authenticate(None), Err(AuthError::NoCookieHeader));
        let xtoken = format!("xtoken={t}");
        assert_eq!(
            tokens.authenticate(Some(&xtoken)),
            Err(AuthError::NoTokenCookie)
        );
        assert_eq!(
            tokens.authenticate(Some("token=abc")),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn other_algorithms_and_missing_exp_are_refused() {
        let tokens = service();
        let key = EncodingKey::from_secret(b"s3cret").unwrap();
        let claims = serde_json::json!({"user":"ana","rol":"user","exp": unix_now() + 60});
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert_eq!(tokens.verify(&hs512), Err(AuthError::InvalidToken));
        let no_exp = serde_json::json!({"user":"ana","rol":"user"});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &no_exp, &key).unwrap();
        assert_eq!(tokens.verify(&t), Err(AuthError::InvalidToken));
        let bad_role = serde_json::json!({"user":"ana","rol":"root","exp": unix_now() + 60});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &bad_role, &key).unwrap();
        assert_eq!(tokens.verify(&t), Err(AuthError::InvalidToken));
    }
}
