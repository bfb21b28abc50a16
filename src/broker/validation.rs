//! The shape of `mensaje_privado`: what a client must send before anything is routed.
//!
//! The seed trusted its payload and crashed on `emit("mensaje_privado")` with none. Here
//! every defect has its own error, worded for the person at the keyboard, and nothing that
//! fails reaches the rooms or the table.

use serde_json::Value;

use crate::config::ChatSettings;

/// A well-formed request to send `mensaje` to `para`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRequest {
    pub para: String,
    pub mensaje: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("Falta el mensaje: se esperaba {{para, mensaje}}")]
    MissingPayload,
    #[error("El mensaje debe ser un objeto {{para, mensaje}}")]
    NotAnObject,
    #[error("Falta el campo «{0}»")]
    MissingField(&'static str),
    #[error("El campo «{0}» debe ser texto")]
    NotAString(&'static str),
    #[error("El campo «{0}» está vacío")]
    Empty(&'static str),
    #[error("El destinatario supera {0} caracteres")]
    RecipientTooLong(usize),
    #[error("El mensaje supera {0} bytes")]
    MessageTooLong(usize),
}

/// Check the first argument of a `mensaje_privado` event, taking its strings over.
pub fn parse_post(
    payload: Option<Value>,
    limits: &ChatSettings,
) -> Result<PostRequest, ValidationError> {
    let mut object = match payload {
        None | Some(Value::Null) => return Err(ValidationError::MissingPayload),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ValidationError::NotAnObject),
    };
    let mut text_field = |field: &'static str| -> Result<String, ValidationError> {
        match object.remove(field) {
            None | Some(Value::Null) => Err(ValidationError::MissingField(field)),
            Some(Value::String(s)) if s.trim().is_empty() => Err(ValidationError::Empty(field)),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ValidationError::NotAString(field)),
        }
    };
    let para = text_field("para")?;
    let mensaje = text_field("mensaje")?;
    if para.chars().count() > limits.max_recipient_chars {
        return Err(ValidationError::RecipientTooLong(
            limits.max_recipient_chars,
        ));
    }
    if mensaje.len() > limits.max_message_bytes {
        return Err(ValidationError::MessageTooLong(limits.max_message_bytes));
    }
    Ok(PostRequest { para, mensaje })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Settings;

    #[test]
    fn every_defect_is_named() {
        let limits = Settings::defaults().chat;
        let check = |v: Option<Value>| parse_post(v, &limits);
        assert_eq!(check(None), Err(ValidationError::MissingPayload));
        assert_eq!(
            check(Some(json!("hola"))),
            Err(ValidationError::NotAnObject)
        );
        assert_eq!(check(Some(json!([1]))), Err(ValidationError::NotAnObject));
        assert_eq!(
            check(Some(json!({"mensaje":"x"}))),
            Err(ValidationError::MissingField("para"))
        );
        assert_eq!(
            check(Some(json!({"para":"a"}))),
            Err(ValidationError::MissingField("mensaje"))
        );
        assert_eq!(
            check(Some(json!({"para":1,"mensaje":"x"}))),
            Err(ValidationError::NotAString("para"))
        );
        assert_eq!(
            check(Some(json!({"para":"a","mensaje":"  "}))),
            Err(ValidationError::Empty("mensaje"))
        );
        let long = "n".repeat(65);
        assert_eq!(
            check(Some(json!({"para":long,"mensaje":"x"}))),
            Err(ValidationError::RecipientTooLong(64))
        );
        let big = "m".repeat(4097);
        assert_eq!(
            check(Some(json!({"para":"a","mensaje":big}))),
            Err(ValidationError::MessageTooLong(4096))
        );
        let ok = check(Some(json!({"para":"admin","mensaje":"hola","de":"spoof"}))).unwrap();
        assert_eq!(
            ok,
            PostRequest {
                para: "admin".into(),
                mensaje: "hola".into()
            }
        );
    }
}
