//! Static files compiled into the binary: the official Socket.IO client bundle (SPEC 1.6,
//! from the npm package `socket.io-client`, copied into `OUT_DIR` by `build.rs`) and the
//! desk page's own script, style sheet and icon (`web/src/`).
//!
//! Every file has a content-hash ETag. The page links its own assets with `?v=<etag>`,
//! so those URLs can be cached for good; unversioned requests revalidate.

use std::sync::LazyLock;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, guard, web};

pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Strong ETag, quotes included.
    pub etag: String,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            body,
            content_type,
            etag: format!("\"{:016x}\"", fnv1a(body)),
        }
    }

    /// The quoted ETag's inner value, used as the `?v=` cache buster.
    pub fn version(&self) -> &str {
        self.etag.trim_matches('"')
    }
}

const JS: &str = "application/javascript; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// The version of `socket.io-client` the bundle came from.
pub const CLIENT_VERSION: &str = env!("MENSAJERO_SOCKET_IO_CLIENT_VERSION");

pub static CLIENT_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/socket.io.js")),
        JS,
    )
});
pub static CLIENT_JS_MAP: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/socket.io.js.map")),
        JSON,
    )
});
pub static CLIENT_MIN_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/socket.io.min.js")),
        JS,
    )
});
pub static CLIENT_MIN_JS_MAP: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!(concat!(env!("OUT_DIR"), "/socket.io.min.js.map")),
        JSON,
    )
});
pub static DESK_JS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../../web/src/desk.js").as_bytes(), JS));
pub static DESK_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../web/src/desk.css").as_bytes(),
        "text/css; charset=utf-8",
    )
});
pub static ICON_SVG: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../../web/src/icon.svg").as_bytes(),
        "image/svg+xml",
    )
});

/// Register the bundle under the engine path and the page's assets under `/assets/`.
pub fn configure(cfg: &mut web::ServiceConfig, engine_path: &str) {
    let bundle: [(&str, &'static LazyLock<Asset>); 4] = [
        ("socket.io.js", &CLIENT_JS),
        ("socket.io.js.map", &CLIENT_JS_MAP),
        ("socket.io.min.js", &CLIENT_MIN_JS),
        ("socket.io.min.js.map", &CLIENT_MIN_JS_MAP),
    ];
    for (name, asset) in bundle {
        cfg.route(
            &format!("{engine_path}{name}"),
            get_or_head().to(move |req: HttpRequest| async move {
                serve(&req, asset, "public, max-age=86400")
            }),
        );
    }
    let own: [(&str, &'static LazyLock<Asset>); 3] = [
        ("/assets/desk.js", &DESK_JS),
        ("/assets/desk.css", &DESK_CSS),
        ("/assets/icon.svg", &ICON_SVG),
    ];
    for (path, asset) in own {
        cfg.route(
            path,
            get_or_head().to(move |req: HttpRequest| async move {
                let versioned = req
                    .query_string()
                    .split('&')
                    .any(|kv| kv.strip_prefix("v=") == Some(asset.version()));
                let cache = if versioned {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                serve(&req, asset, cache)
            }),
        );
    }
    cfg.route(
        "/favicon.ico",
        web::get()
            .to(|req: HttpRequest| async move { serve(&req, &ICON_SVG, "public, max-age=86400") }),
    );
}

/// Static files answer HEAD too (caches and `curl -I` use it); actix strips the body.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn serve(req: &HttpRequest, asset: &Asset, cache: &'static str) -> HttpResponse {
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((ETAG, asset.etag.as_str()))
        .insert_header((CACHE_CONTROL, cache))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if matches {
        return response.finish();
    }
    response
        .insert_header((CONTENT_TYPE, asset.content_type))
        .body(asset.body)
}

/// FNV-1a, 64 bits: a cheap, stable content hash for ETags (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use actix_web::App;
    use actix_web::test as atest;

    use super::*;

    #[test]
    fn bundle_is_the_official_client() {
        let text = std::str::from_utf8(CLIENT_MIN_JS.body).unwrap();
        assert!(
            text.contains("Socket.IO"),
            "not the socket.io-client bundle"
        );
        assert!(CLIENT_VERSION.starts_with("4.8."), "{CLIENT_VERSION}");
        assert!(!CLIENT_JS.body.is_empty());
    }

    #[actix_rt::test]
    async fn served_under_the_engine_path_with_etags() {
        let app =
            atest::init_service(App::new().configure(|cfg| configure(cfg, "/socket.io/"))).await;
        for path in ["/socket.io/socket.io.js", "/socket.io/socket.io.min.js"] {
            let res =
                atest::call_service(&app, atest::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(res.status(), 200, "{path}");
            let ctype = res.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap();
            assert!(ctype.starts_with("application/javascript"));
            assert!(res.headers().get(CACHE_CONTROL).is_some());
            let etag = res.headers().get(ETAG).unwrap().clone();
            let again = atest::TestRequest::get()
                .uri(path)
                .insert_header((IF_NONE_MATCH, etag))
                .to_request();
            assert_eq!(atest::call_service(&app, again).await.status(), 304);
            let head = atest::TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(path)
                .to_request();
            assert_eq!(atest::call_service(&app, head).await.status(), 200);
        }
        let req = atest::TestRequest::get()
            .uri(&format!("/assets/desk.js?v={}", DESK_JS.version()))
            .to_request();
        let res = atest::call_service(&app, req).await;
        assert!(
            res.headers()
                .get(CACHE_CONTROL)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
}
