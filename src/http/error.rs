//! The HTTP layer's refusals, mapped once to responses.
//!
//! The wording and the shapes are the seed's, because its clients show them: a missing
//! session on a user route is plain text, everything else is `{"error": "..."}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No session on a route open to any signed-in user (401, plain text).
    #[error("No autenticado")]
    NotSignedIn,
    /// No session on an admin route (the seed's admin guard said 403 here).
    #[error("Acceso denegado")]
    AccessDenied,
    #[error("Acceso solo para administradores")]
    AdminOnly,
    #[error("Token inválido")]
    InvalidToken,
    #[error("Falta el parámetro ?con=usuario")]
    MissingConversation,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Storage(#[from] StoreError),
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            HttpError::NotSignedIn => StatusCode::UNAUTHORIZED,
            HttpError::AccessDenied | HttpError::AdminOnly | HttpError::InvalidToken => {
                StatusCode::FORBIDDEN
            }
            HttpError::MissingConversation | HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            HttpError::NotSignedIn => response
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body(self.to_string()),
            _ => response.json(serde_json::json!({ "error": self.to_string() })),
        }
    }
}

/// Malformed query strings answer in the API's JSON shape, not actix's plain text.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        HttpError::BadRequest(format!("Parámetros no válidos: {err}")).into()
    })
}

/// Sign-in forms are tiny; anything bigger is refused before it is buffered.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(8 * 1024)
        .error_handler(|err, _req| {
            HttpError::BadRequest(format!("Formulario no válido: {err}")).into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn render(err: HttpError) -> (StatusCode, String, String) {
        let response = err.error_response();
        let status = response.status();
        let ctype = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    #[actix_rt::test]
    async fn seed_shapes() {
        let (s, t, b) = render(HttpError::NotSignedIn).await;
        assert_eq!((s.as_u16(), b.as_str()), (401, "No autenticado"));
        assert!(t.starts_with("text/plain"));

        let (s, t, b) = render(HttpError::AccessDenied).await;
        assert_eq!(
            (s.as_u16(), b.as_str()),
            (403, r#"{"error":"Acceso denegado"}"#)
        );
        assert!(t.starts_with("application/json"));

        let (s, _, b) = render(HttpError::AdminOnly).await;
        assert_eq!(
            (s.as_u16(), b.as_str()),
            (403, r#"{"error":"Acceso solo para administradores"}"#)
        );
        let (s, _, b) = render(HttpError::InvalidToken).await;
        assert_eq!(
            (s.as_u16(), b.as_str()),
            (403, r#"{"error":"Token inválido"}"#)
        );
        let (s, _, b) = render(HttpError::MissingConversation).await;
        assert_eq!(
            (s.as_u16(), b.as_str()),
            (400, r#"{"error":"Falta el parámetro ?con=usuario"}"#)
        );
        let (s, _, _) = render(HttpError::Storage(StoreError::Unavailable)).await;
        assert_eq!(s.as_u16(), 503);
    }
}
