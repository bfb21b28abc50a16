//! The support desk page (`GET /soporte`, SPEC 6) and the front door (`GET /`).
//!
//! The HTML is a static shell rendered once per server: it carries no user data at all
//! (the script asks `/api/yo` who is signed in), which keeps every message and name out of
//! server-side templating and lets the CSP forbid inline code outright.

use actix_web::{HttpRequest, HttpResponse, web};

use super::HttpCore;
use super::assets::{DESK_CSS, DESK_JS, ICON_SVG};
use super::login::redirect;
use super::security::{escape_html, html_headers};
use super::session::identify;
use crate::broker::auth::AuthError;
use crate::config::Settings;

pub struct Pages {
    desk: String,
}

impl Pages {
    pub fn new(settings: &Settings) -> Pages {
        Pages {
            desk: desk_html(&settings.engine.path),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(front_door))
        .route("/soporte", web::get().to(desk));
}

async fn front_door(req: HttpRequest, core: web::Data<HttpCore>) -> HttpResponse {
    match identify(&req, &core.tokens) {
        Ok(_) => redirect("/soporte"),
        Err(_) => redirect("/login"),
    }
}

async fn desk(
    req: HttpRequest,
    core: web::Data<HttpCore>,
    pages: web::Data<Pages>,
) -> HttpResponse {
    match identify(&req, &core.tokens) {
        Ok(_) => {
            let mut response = HttpResponse::Ok();
            html_headers(&mut response);
            response.body(pages.desk.clone())
        }
        // A token that no longer verifies is almost always an expired session: say so.
        Err(AuthError::InvalidToken) => redirect("/login?expirada=1"),
        Err(_) => redirect("/login"),
    }
}

fn desk_html(engine_path: &str) -> String {
    let path = escape_html(engine_path);
    format!(
        r#"<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Soporte</title>
<link rel="icon" href="/assets/icon.svg?v={icon}" type="image/svg+xml">
<link rel="stylesheet" href="/assets/desk.css?v={css}">
<script src="{path}socket.io.min.js" defer></script>
<script src="/assets/desk.js?v={js}" defer></script>
</head>
<body data-engine-path="{path}">
<div class="shell" id="shell" data-vista="cargando" data-panel="lista">
  <header class="topbar">
    <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span>Soporte</span></div>
    <div class="estado" id="estado" data-estado="conectando" role="status" aria-live="polite">Conectando…</div>
    <div class="who">
      <span class="avatar" id="yo-avatar" aria-hidden="true"></span>
      <span class="who-text"><span class="who-name" id="yo-nombre"></span><span class="who-role" id="yo-rol"></span></span>
      <a class="btn btn-ghost" href="/logout">Salir</a>
    </div>
  </header>
  <div class="layout">
    <aside class="sidebar" id="sidebar" aria-label="Conversaciones">
      <div class="sidebar-head">
        <h2>Conversaciones</h2>
        <span class="count" id="total-sin-leer" hidden></span>
      </div>
      <ul class="conv-list" id="conversaciones"></ul>
      <p class="empty" id="sin-conversaciones">Todavía no hay conversaciones. Aparecerán aquí en cuanto alguien escriba.</p>
    </aside>
    <section class="chat" id="chat" aria-label="Conversación">
      <header class="chat-head">
        <button type="button" class="btn btn-ghost back" id="volver" aria-label="Volver a la lista">←</button>
        <div class="chat-title">
          <h2 id="titulo">Selecciona una conversación</h2>
          <p class="chat-sub" id="subtitulo"></p>
        </div>
      </header>
      <div class="messages" id="mensajes-scroll">
        <button type="button" class="btn btn-ghost older" id="anteriores" hidden>Cargar mensajes anteriores</button>
        <p class="placeholder" id="marcador">Elige una conversación de la lista para ver sus mensajes.</p>
        <ol class="message-list" id="mensajes"></ol>
      </div>
      <p class="notice notice-error" id="aviso" role="alert" hidden></p>
      <form class="composer" id="composer" autocomplete="off">
        <label class="sr-only" for="texto">Mensaje</label>
        <textarea id="texto" name="mensaje" rows="1" placeholder="Escribe un mensaje…" disabled></textarea>
        <button type="submit" class="btn btn-primary" id="enviar" disabled>Enviar</button>
      </form>
    </section>
  </div>
</div>
</body>
</html>
"#,
        icon = ICON_SVG.version(),
        css = DESK_CSS.version(),
        js = DESK_JS.version(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_has_no_inline_code() {
        let html = desk_html("/socket.io/");
        assert!(html.contains(r#"<script src="/socket.io/socket.io.min.js" defer></script>"#));
        // Every script has a src; no style attributes or blocks.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=").count()
        );
        assert!(!html.contains("style="));
        assert!(!html.contains("<style"));
        assert!(!html.contains(" on"), "no inline event handlers");
    }
}
