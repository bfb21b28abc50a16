//! Request-level errors of the Engine.IO endpoint and their HTTP form: the status and
//! the `{"code":N,"message":"..."}` body the Node server sends, which clients parse.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("Transport unknown")]
    UnknownTransport,
    #[error("Session ID unknown")]
    UnknownSid,
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    #[error("Bad request")]
    BadRequest,
    #[error("Unsupported protocol version")]
    UnsupportedVersion,
    #[error("Payload too large")]
    PayloadTooLarge,
    #[error("{message}")]
    Refused {
        status: StatusCode,
        message: &'static str,
    },
    #[error("Server is shutting down")]
    ShuttingDown,
    #[error("Too many sessions")]
    TooManySessions,
}

impl EngineError {
    /// The numeric code of Node's engine.io (`Server.errors`), extended for our refusals.
    pub fn code(&self) -> u8 {
        match self {
            EngineError::UnknownTransport => 0,
            EngineError::UnknownSid => 1,
            EngineError::BadHandshakeMethod => 2,
            EngineError::BadRequest | EngineError::PayloadTooLarge => 3,
            EngineError::Refused { .. } => 4,
            EngineError::UnsupportedVersion => 5,
            EngineError::ShuttingDown | EngineError::TooManySessions => 3,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            EngineError::Refused { status, .. } => *status,
            EngineError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EngineError::ShuttingDown | EngineError::TooManySessions => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn to_response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .content_type("application/json")
            .body(serde_json::json!({"code": self.code(), "message": self.to_string()}).to_string())
    }
}
