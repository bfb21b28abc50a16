//! Who is asking: the session cookie of a request, checked by the [`TokenService`].
//!
//! The same token and the same refusals as the Socket.IO handshake, so that the page and
//! its socket agree on whether a session is still valid.

use actix_web::HttpRequest;
use actix_web::http::header::COOKIE;

use super::error::HttpError;
use crate::broker::Identity;
use crate::broker::auth::{AuthError, TokenService};
use crate::broker::cookie::join_cookie_fields;

/// The request's `Cookie` header fields as one string.
pub fn cookie_header(req: &HttpRequest) -> Option<String> {
    join_cookie_fields(
        req.headers()
            .get_all(COOKIE)
            .filter_map(|v| v.to_str().ok()),
    )
}

pub fn identify(req: &HttpRequest, tokens: &TokenService) -> Result<Identity, AuthError> {
    tokens.authenticate(cookie_header(req).as_deref())
}

/// Any signed-in user (the seed's session guard).
pub fn require_user(req: &HttpRequest, tokens: &TokenService) -> Result<Identity, HttpError> {
    identify(req, tokens).map_err(|e| match e {
        AuthError::NoCookieHeader | AuthError::NoTokenCookie => HttpError::NotSignedIn,
        AuthError::InvalidToken => HttpError::InvalidToken,
    })
}

/// Admins only (the seed's admin guard, which answered a missing token with 403).
pub fn require_admin(req: &HttpRequest, tokens: &TokenService) -> Result<Identity, HttpError> {
    let identity = identify(req, tokens).map_err(|e| match e {
        AuthError::NoCookieHeader | AuthError::NoTokenCookie => HttpError::AccessDenied,
        AuthError::InvalidToken => HttpError::InvalidToken,
    })?;
    if identity.is_admin() {
        Ok(identity)
    } else {
        Err(HttpError::AdminOnly)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::test::TestRequest;

    use super::*;
    use crate::broker::Role;
    use crate::config::Settings;

    fn tokens() -> TokenService {
        TokenService::new("k", &Settings::defaults().auth).unwrap()
    }

    #[test]
    fn guards_map_the_seed_refusals() {
        let tokens = tokens();
        let user = tokens.issue("ana", "Ana", Role::User, Duration::from_secs(60));
        let admin = tokens.issue("admin", "Soporte", Role::Admin, Duration::from_secs(60));

        let none = TestRequest::default().to_http_request();
        assert!(matches!(
            require_user(&none, &tokens),
            Err(HttpError::NotSignedIn)
        ));
        assert!(matches!(
            require_admin(&none, &tokens),
            Err(HttpError::AccessDenied)
        ));

        let other = TestRequest::default()
            .insert_header((COOKIE, "xtoken=abc"))
            .to_http_request();
        assert!(matches!(
            require_user(&other, &tokens),
            Err(HttpError::NotSignedIn)
        ));
        assert!(matches!(
            require_admin(&other, &tokens),
            Err(HttpError::AccessDenied)
        ));

        let bad = TestRequest::default()
            .insert_header((COOKIE, "token=nope"))
            .to_http_request();
        assert!(matches!(
            require_user(&bad, &tokens),
            Err(HttpError::InvalidToken)
        ));
        assert!(matches!(
            require_admin(&bad, &tokens),
            Err(HttpError::InvalidToken)
        ));

        let as_user = TestRequest::default()
            .insert_header((COOKIE, format!("a=1; token={user}")))
            .to_http_request();
        assert_eq!(&*require_user(&as_user, &tokens).unwrap().user, "ana");
        assert!(matches!(
            require_admin(&as_user, &tokens),
            Err(HttpError::AdminOnly)
        ));

        let as_admin = TestRequest::default()
            .insert_header((COOKIE, format!("token={admin}")))
            .to_http_request();
        assert!(require_admin(&as_admin, &tokens).unwrap().is_admin());
    }

    #[test]
    fn split_cookie_headers_are_joined() {
        let req = TestRequest::default()
            .append_header((COOKIE, "a=1"))
            .append_header((COOKIE, "token=t"))
            .to_http_request();
        assert_eq!(cookie_header(&req).as_deref(), Some("a=1; token=t"));
    }
}
