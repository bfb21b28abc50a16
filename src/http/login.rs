//! Sign-in and sign-out: `GET /login` (the form), `POST /auth` (checks the password
//! against `usuarios` and sets the session cookie), `GET /logout`.
//!
//! Passwords are bcrypt hashes, as the seed's `bcryptjs` wrote them (`$2a$`/`$2b$`).
//! Checking one costs tens of milliseconds of CPU, so it runs on the blocking pool
//! (`web::block`), never on an async worker; an unknown user name is checked against a
//! dummy hash so that the answer takes as long as for a known one. Attempts are throttled
//! by [`LoginLimiter`](super::LoginLimiter) before any of that work is done.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::HttpCore;
use super::error::form_config;
use super::security::{escape_html, html_headers, same_origin_post};
use super::session::identify;
use crate::broker::Role;

/// Sign-in outcomes, for `/metrics`.
pub static LOGIN_OK: AtomicU64 = AtomicU64::new(0);
pub static LOGIN_FAILED: AtomicU64 = AtomicU64::new(0);
pub static LOGIN_THROTTLED: AtomicU64 = AtomicU64::new(0);

/// Longest user name or password accepted; longer ones cannot be real accounts.
const MAX_USER_CHARS: usize = 64;
const MAX_PASS_BYTES: usize = 1024;

/// Verified in place of a missing user's hash, so timing does not reveal which names exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    bcrypt::hash("mensajero: no such user", bcrypt::DEFAULT_COST)
        .expect("bcrypt of a constant cannot fail")
});

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_form))
        .service(
            web::resource("/auth")
                .app_data(form_config())
                .route(web::post().to(authenticate)),
        )
        .route("/logout", web::get().to(logout));
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    expirada: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    user: Option<String>,
    pass: Option<String>,
}

/// What the form says above its fields.
enum Notice {
    Info(&'static str),
    Error(String),
}

async fn login_form(
    req: HttpRequest,
    core: web::Data<HttpCore>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    if identify(&req, &core.tokens).is_ok() {
        return redirect("/soporte");
    }
    let notice = query
        .expirada
        .as_ref()
        .map(|_| Notice::Info("Tu sesión ha caducado. Vuelve a iniciar sesión."));
    login_page(StatusCode::OK, notice.as_ref(), "")
}

async fn authenticate(
    req: HttpRequest,
    core: web::Data<HttpCore>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let user = form.user.unwrap_or_default().trim().to_string();
    let pass = form.pass.unwrap_or_default();

    if !same_origin_post(&req, &core.settings.server.allowed_origins) {
        let notice =
            Notice::Error("Formulario enviado desde otro sitio: recarga la página.".into());
        return login_page(StatusCode::FORBIDDEN, Some(&notice), "");
    }
    if user.is_empty() || pass.is_empty() {
        let notice = Notice::Error("Escribe tu usuario y tu contraseña.".into());
        return login_page(StatusCode::BAD_REQUEST, Some(&notice), &user);
    }
    let user_shown = if user.chars().count() > MAX_USER_CHARS {
        ""
    } else {
        user.as_str()
    };

    let addr: Option<IpAddr> = req.peer_addr().map(|a| a.ip());
    if let Err(limited) = core.limiter.try_acquire(&user, addr, Instant::now()) {
        LOGIN_THROTTLED.fetch_add(1, Ordering::Relaxed);
        let secs = limited.retry_after.as_secs().max(1);
        log::warn!("sign-in throttled for user {user_shown:?} from {addr:?}");
        let notice = Notice::Error(format!(
            "Demasiados intentos de inicio de sesión. Espera {secs} s y vuelve a intentarlo."
        ));
        let mut response = login_page(StatusCode::TOO_MANY_REQUESTS, Some(&notice), user_shown);
        response
            .headers_mut()
            .insert(RETRY_AFTER, secs.to_string().parse().expect("digits"));
        return response;
    }

    let record = if user.chars().count() > MAX_USER_CHARS || pass.len() > MAX_PASS_BYTES {
        None
    } else {
        match core.storage.find_user(&user).await {
            Ok(record) => record,
            Err(err) => {
                log::error!("sign-in: cannot read usuarios: {err}");
                core.limiter.succeeded(&user, addr);
                let notice = Notice::Error(
                    "El servicio no está disponible ahora mismo. Inténtalo de nuevo en unos segundos."
                        .into(),
                );
                return login_page(StatusCode::SERVICE_UNAVAILABLE, Some(&notice), user_shown);
            }
        }
    };

    let hash = record.as_ref().map(|r| r.pass.clone());
    let verified = web::block(move || {
        let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
        // A malformed stored hash is a failed sign-in, not a server error.
        bcrypt::verify(pass.as_bytes(), hash).unwrap_or(false)
    })
    .await
    .unwrap_or(false);

    let signed_in = record.filter(|_| verified).and_then(|r| {
        let role = Role::parse(&r.rol);
        if role.is_none() {
            log::warn!(
                "user {:?} has unknown role {:?}; sign-in refused",
                r.usuario,
                r.rol
            );
        }
        role.map(|role| (r, role))
    });
    let Some((record, role)) = signed_in else {
        LOGIN_FAILED.fetch_add(1, Ordering::Relaxed);
        log::info!("sign-in failed for user {user_shown:?} from {addr:?}");
        let notice = Notice::Error("Usuario o contraseña incorrectos.".into());
        return login_page(StatusCode::UNAUTHORIZED, Some(&notice), user_shown);
    };

    core.limiter.succeeded(&user, addr);
    LOGIN_OK.fetch_add(1, Ordering::Relaxed);
    log::info!("user {:?} ({}) signed in", record.usuario, role.as_str());
    let ttl = Duration::from_secs(core.settings.auth.session_ttl_secs);
    let name = if record.nombre.is_empty() {
        record.usuario.as_str()
    } else {
        record.nombre.as_str()
    };
    let token = core.tokens.issue(&record.usuario, name, role, ttl);
    let cookie = session_cookie(&core, token, ttl);
    let mut response = redirect("/soporte");
    response
        .add_cookie(&cookie)
        .expect("a JWT is a valid cookie value");
    response
}

async fn logout(core: web::Data<HttpCore>) -> HttpResponse {
    let mut cookie = session_cookie(&core, String::new(), Duration::ZERO);
    cookie.make_removal();
    let mut response = redirect("/login");
    response
        .add_cookie(&cookie)
        .expect("an empty cookie is valid");
    response
}

fn session_cookie(core: &HttpCore, token: String, ttl: Duration) -> Cookie<'static> {
    Cookie::build(core.settings.auth.cookie_name.clone(), token)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(core.settings.auth.secure_cookie)
        .path("/")
        .max_age(time::Duration::seconds(ttl.as_secs() as i64))
        .finish()
}

/// 303: the browser follows with a GET whatever the method was.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn login_page(status: StatusCode, notice: Option<&Notice>, user: &str) -> HttpResponse {
    let notice = match notice {
        None => String::new(),
        Some(Notice::Info(text)) => {
            format!(
                r#"<p class="notice notice-info" role="status">{}</p>"#,
                escape_html(text)
            )
        }
        Some(Notice::Error(text)) => {
            format!(
                r#"<p class="notice notice-error" role="alert">{}</p>"#,
                escape_html(text)
            )
        }
    };
    let focus_user = if user.is_empty() { " autofocus" } else { "" };
    let focus_pass = if user.is_empty() { "" } else { " autofocus" };
    let body = format!(
        r#"<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Iniciar sesión · Soporte</title>
<link rel="stylesheet" href="/assets/desk.css">
</head>
<body class="login-body">
<main class="login-card">
  <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span><span>Soporte</span></div>
  <h1>Iniciar sesión</h1>
  {notice}
  <form method="post" action="/auth" class="login-form" id="login-form">
    <label for="user">Usuario</label>
    <input id="user" name="user" type="text" autocomplete="username" required maxlength="64" value="{user}"{focus_user}>
    <label for="pass">Contraseña</label>
    <input id="pass" name="pass" type="password" autocomplete="current-password" required{focus_pass}>
    <button type="submit" class="btn btn-primary">Entrar</button>
  </form>
</main>
</body>
</html>
"#,
        user = escape_html(user),
    );
    let mut response = HttpResponse::build(status);
    html_headers(&mut response);
    response.body(body)
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    #[actix_rt::test]
    async fn login_page_escapes_the_user_name() {
        let notice = Notice::Error("<b>x</b>".into());
        let response = login_page(StatusCode::UNAUTHORIZED, Some(&notice), "\"><script>");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get("content-security-policy").is_some());
        let body = to_bytes(response.into_body()).await.unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        assert!(!body.contains("<script>"));
        assert!(!body.contains("<b>"));
        assert!(body.contains("&quot;&gt;&lt;script&gt;"));
    }

    #[test]
    fn bcryptjs_hashes_verify() {
        // Made by npm bcryptjs 2.4.3 (`$2a$`) and 3.0.3 (`$2b$`): hashSync("secreto", 4).
        let v2 = "$2a$04$7S9S/8.MPW/42grEWU8JP.g8tbQe/.RJDtRgl0ZIStNko8SoAQn36";
        let v3 = "$2b$04$PElnHEmSfeHNrmQXU5iGQuxgXr25W9DpVfWfw7yXNHjQxliiQY.r.";
        for hash in [v2, v3] {
            assert!(bcrypt::verify("secreto", hash).unwrap());
            assert!(!bcrypt::verify("otro", hash).unwrap());
        }
    }
}
