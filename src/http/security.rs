//! Browser-facing hardening shared by the HTML routes: the Content-Security-Policy, the
//! companion headers, HTML escaping for the few server-rendered strings, and the
//! same-origin check of the sign-in form.
//!
//! The desk page runs only its own script and the Socket.IO bundle, both served from this
//! origin, so the policy can forbid every inline script and style: an injected message
//! could not run even if a rendering bug let markup through.

use actix_web::HttpRequest;
use actix_web::HttpResponseBuilder;
use actix_web::http::header::{HOST, ORIGIN};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
     font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// Headers every HTML response carries.
pub fn html_headers(response: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    response
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/html; charset=utf-8")
}

/// Escape text for an HTML text node or a double-quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a state-changing form post comes from a page of ours.
///
/// SameSite=Lax keeps the session cookie off cross-site posts, but a cross-site post to
/// the sign-in form itself could still sign a victim into an attacker's account. Browsers
/// send `Origin` on every POST; it must name this host (any scheme, as TLS may end at a
/// proxy) or one of the configured origins. A request without `Origin` is a non-browser
/// client and is let through.
pub fn same_origin_post(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let Some(host) = req.headers().get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host.is_some_and(|h| h.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="a('1')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn origin_check() {
        let req = |origin: Option<&str>| {
            let mut r = TestRequest::post().insert_header((HOST, "127.0.0.1:3000"));
            if let Some(o) = origin {
                r = r.insert_header((ORIGIN, o));
            }
            r.to_http_request()
        };
        assert!(same_origin_post(&req(None), &[]));
        assert!(same_origin_post(&req(Some("http://127.0.0.1:3000")), &[]));
        assert!(!same_origin_post(&req(Some("http://evil.example")), &[]));
        assert!(!same_origin_post(&req(Some("null")), &[]));
        assert!(same_origin_post(
            &req(Some("https://desk.example")),
            &["https://desk.example".to_string()]
        ));
    }

    #[test]
    fn policy_forbids_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
    }
}
