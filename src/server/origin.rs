//! Cross-site WebSocket hijacking defence (SPEC 2.4): which `Origin`s may open a session.
//!
//! A browser always sends `Origin` on a WebSocket upgrade and on cross-origin requests; a
//! native client usually sends none. So: no `Origin` is allowed, the Host's own origin is
//! allowed, and so is any origin on the configured list; everything else is refused before
//! a session exists.

use actix_web::http::header;

use crate::protocol::engineio::RequestInfo;

pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(allowed: &[String]) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let origin = origin.to_ascii_lowercase();
        if self.allowed.contains(&origin) {
            return true;
        }
        let Some(host) = host else { return false };
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        authority.is_some_and(|authority| authority == host.to_ascii_lowercase())
    }

    pub fn allows_request(&self, request: &RequestInfo) -> bool {
        let text = |name| {
            request
                .headers
                .get(name)
                .and_then(|v: &header::HeaderValue| v.to_str().ok())
        };
        // A header that is present but not text is not a valid origin.
        if request.headers.contains_key(header::ORIGIN) && text(header::ORIGIN).is_none() {
            return false;
        }
        self.allows(text(header::ORIGIN), text(header::HOST))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::OriginPolicy;
    use crate::protocol::engineio::RequestInfo;

    fn request(headers: &[(&'static str, &[u8])]) -> RequestInfo {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        RequestInfo {
            headers: map,
            query: "EIO=4&transport=websocket".to_string(),
            remote_addr: None,
        }
    }

    #[test]
    fn request_headers() {
        let policy = OriginPolicy::new(&[]);
        let host = ("host", b"127.0.0.1:3000".as_slice());
        assert!(policy.allows_request(&request(&[host])));
        assert!(policy.allows_request(&request(&[host, ("origin", b"http://127.0.0.1:3000")])));
        assert!(!policy.allows_request(&request(&[host, ("origin", b"http://evil.example")])));
        // Present but not text: not a valid origin.
        assert!(!policy.allows_request(&request(&[host, ("origin", b"http://\xff")])));
    }

    #[test]
    fn same_origin_listed_or_absent() {
        let policy = OriginPolicy::new(&["https://desk.example.com".to_string()]);
        assert!(policy.allows(None, Some("127.0.0.1:3000")));
        assert!(policy.allows(Some("http://127.0.0.1:3000"), Some("127.0.0.1:3000")));
        assert!(policy.allows(Some("https://desk.example.com"), Some("10.0.0.1")));
        assert!(!policy.allows(Some("http://evil.example"), Some("127.0.0.1:3000")));
        assert!(!policy.allows(Some("http://127.0.0.1:3000.evil"), Some("127.0.0.1:3000")));
        assert!(!policy.allows(Some("null"), Some("127.0.0.1:3000")));
        assert!(!policy.allows(Some("http://127.0.0.1:3000"), None));
    }
}
