//! The seed's JSON API: message history and the admin's conversation list, plus `/api/yo`,
//! which tells the desk page who is signed in.
//!
//! History comes back as a plain array of rows, oldest first, as the seed sent it. Long
//! conversations are paged from the newest end; whether older rows exist is said in
//! headers (`X-Mas-Antiguos: <id>` and a `Link: <...>; rel="next"`), so seed clients that
//! only read the body keep working, and a short conversation still comes back whole.

use actix_web::http::header::{CACHE_CONTROL, LINK};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::HttpCore;
use super::error::{HttpError, query_config};
use super::session::{require_admin, require_user};
use crate::storage::Page;

/// Header carrying the `antes` value that fetches the next older page.
pub const OLDER_HEADER: &str = "x-mas-antiguos";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The JSON error shape for bad query strings is set per resource: an app-wide
    // QueryConfig would also change the answers of the Engine.IO endpoint.
    cfg.service(
        web::resource("/api/mensajes")
            .app_data(query_config())
            .route(web::get().to(conversation)),
    )
    .service(
        web::resource("/api/mensajes/mios")
            .app_data(query_config())
            .route(web::get().to(mine)),
    )
    .route(
        "/api/usuarios-conversaciones",
        web::get().to(conversation_users),
    )
    .route("/api/yo", web::get().to(me));
}

/// Query of the history routes. Numbers arrive as text so that a bad one gets the API's
/// JSON error rather than the extractor's; `antes`/`limite` have English aliases.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    pub con: Option<String>,
    pub antes: Option<String>,
    pub before: Option<String>,
    pub limite: Option<String>,
    pub limit: Option<String>,
}

/// Turn the query into a page: `limite` defaults to `default` and is capped at `max`.
pub fn page_of(query: &HistoryQuery, default: i64, max: i64) -> Result<Page, HttpError> {
    let max = max.max(1);
    let before_id = match query.antes.as_deref().or(query.before.as_deref()) {
        None | Some("") => None,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return Err(HttpError::BadRequest(
                    "El parámetro antes debe ser un id de mensaje (entero positivo)".into(),
                ));
            }
        },
    };
    let limit = match query.limite.as_deref().or(query.limit.as_deref()) {
        None | Some("") => default.clamp(1, max),
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if n > 0 => n.min(max),
            _ => {
                return Err(HttpError::BadRequest(
                    "El parámetro limite debe ser un entero positivo".into(),
                ));
            }
        },
    };
    Ok(Page { before_id, limit })
}

async fn conversation(
    req: HttpRequest,
    core: web::Data<HttpCore>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, HttpError> {
    require_admin(&req, &core.tokens)?;
    let con = match query.con.as_deref() {
        Some(con) if !con.is_empty() => con.to_string(),
        _ => return Err(HttpError::MissingConversation),
    };
    let page = page_of(
        &query,
        core.settings.storage.history_page_default,
        core.settings.storage.history_page_max,
    )?;
    let link_base = format!("/api/mensajes?con={}&", encode_component(&con));
    history(&core, &con, page, &link_base).await
}

async fn mine(
    req: HttpRequest,
    core: web::Data<HttpCore>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, HttpError> {
    let identity = require_user(&req, &core.tokens)?;
    let page = page_of(
        &query,
        core.settings.storage.history_page_default,
        core.settings.storage.history_page_max,
    )?;
    history(&core, &identity.user, page, "/api/mensajes/mios?").await
}

/// One page of `user`'s history. One row more than the page is asked for: its presence
/// is how we know that older rows exist, without a second query.
async fn history(
    core: &HttpCore,
    user: &str,
    page: Page,
    link_base: &str,
) -> Result<HttpResponse, HttpError> {
    let probe = Page {
        before_id: page.before_id,
        limit: page.limit + 1,
    };
    let mut rows = core.storage.conversation(user, probe).await?;
    // Rows are oldest first: the surplus ones are at the front.
    let surplus = rows.len().saturating_sub(page.limit as usize);
    rows.drain(..surplus);
    let mut response = HttpResponse::Ok();
    response.insert_header((CACHE_CONTROL, "no-store"));
    if surplus > 0
        && let Some(oldest) = rows.first()
    {
        response.insert_header((OLDER_HEADER, oldest.id.to_string()));
        response.insert_header((
            LINK,
            format!(
                "<{link_base}antes={}&limite={}>; rel=\"next\"",
                oldest.id, page.limit
            ),
        ));
    }
    Ok(response.json(rows))
}

async fn conversation_users(
    req: HttpRequest,
    core: web::Data<HttpCore>,
) -> Result<HttpResponse, HttpError> {
    require_admin(&req, &core.tokens)?;
    let users = core
        .storage
        .conversation_users_excluding(&core.settings.chat.desk_name)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(users))
}

/// Who the page's user is, and the desk name a non-admin writes to.
async fn me(req: HttpRequest, core: web::Data<HttpCore>) -> Result<HttpResponse, HttpError> {
    let identity = require_user(&req, &core.tokens)?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "user": &*identity.user,
            "name": &*identity.name,
            "rol": identity.role.as_str(),
            "desk": core.settings.chat.desk_name,
            "exp": identity.expires_at,
        })))
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(antes: Option<&str>, limite: Option<&str>) -> HistoryQuery {
        HistoryQuery {
            antes: antes.map(String::from),
            limite: limite.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn pages_default_cap_and_refuse() {
        let p = page_of(&q(None, None), 200, 1000).unwrap();
        assert_eq!((p.before_id, p.limit), (None, 200));
        let p = page_of(&q(Some("42"), Some("5000")), 200, 1000).unwrap();
        assert_eq!((p.before_id, p.limit), (Some(42), 1000));
        let p = page_of(
            &HistoryQuery {
                before: Some("7".into()),
                limit: Some("3".into()),
                ..Default::default()
            },
            200,
            1000,
        )
        .unwrap();
        assert_eq!((p.before_id, p.limit), (Some(7), 3));
        assert!(page_of(&q(Some("abc"), None), 200, 1000).is_err());
        assert!(page_of(&q(Some("-1"), None), 200, 1000).is_err());
        assert!(page_of(&q(None, Some("0")), 200, 1000).is_err());
        // A default larger than the cap is capped too.
        assert_eq!(page_of(&q(None, None), 5000, 1000).unwrap().limit, 1000);
    }

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("ana"), "ana");
        assert_eq!(encode_component("a b&c=ñ"), "a%20b%26c%3D%C3%B1");
    }
}
