//! SPEC 1.6, 5, 6: health, readiness, metrics, the client bundle, the desk page's headers.

mod http_support;

use http_support::{header, start, start_with};
use mensajero::broker::Role;

#[actix_rt::test]
async fn health_and_readiness() {
    let s = start().await;
    let res = s.get("/healthz", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let res = s.get("/readyz", None).await;
    assert_eq!(res.status(), 200);
    s.stop().await;
}

#[actix_rt::test]
async fn metrics_are_prometheus_text() {
    let s = start().await;
    s.store("ana", "admin", "uno").await;
    s.store("ana", "admin", "dos").await;
    let res = s.get("/metrics", None).await;
    assert_eq!(res.status(), 200);
    assert!(
        header(&res, "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = res.text().await.unwrap();
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in\n{body}"))
            .parse()
            .unwrap()
    };
    assert!(value("mensajero_messages_stored_total") >= 2.0);
    assert!(value("mensajero_storage_batches_total") >= 1.0);
    assert_eq!(value("mensajero_storage_spool_depth"), 0.0);
    assert!(value("mensajero_storage_store_latency_seconds_count") >= 2.0);
    assert!(body.contains("# TYPE mensajero_messages_refused_total counter"));
    s.stop().await;
}

#[actix_rt::test]
async fn client_bundle_is_served_under_the_engine_path() {
    let s = start().await;
    for path in ["/socket.io/socket.io.js", "/socket.io/socket.io.min.js"] {
        let res = s.get(path, None).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            header(&res, "content-type")
                .unwrap()
                .starts_with("application/javascript")
        );
        assert!(header(&res, "cache-control").unwrap().contains("max-age"));
        assert!(header(&res, "etag").is_some());
        let body = res.text().await.unwrap();
        assert!(
            body.contains("Socket.IO"),
            "{path} is not the official client"
        );
    }
    s.stop().await;

    let s = start_with(|st| st.engine.path = "/rt/".to_string()).await;
    assert_eq!(s.get("/rt/socket.io.min.js", None).await.status(), 200);
    let page = s
        .get_as("/soporte", "ana", Role::User)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"src="/rt/socket.io.min.js""#));
    assert!(page.contains(r#"data-engine-path="/rt/""#));
    s.stop().await;
}

#[actix_rt::test]
async fn desk_page_is_locked_down() {
    let s = start().await;
    let res = s.get_as("/soporte", "admin", Role::Admin).await;
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy").unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(
        header(&res, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(header(&res, "referrer-policy").is_some());
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"src="/socket.io/socket.io.min.js""#));
    assert!(!html.contains("<style") && !html.contains("style="));

    for (path, ctype) in [
        ("/assets/desk.js", "application/javascript"),
        ("/assets/desk.css", "text/css"),
    ] {
        let res = s.get(path, None).await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, "content-type").unwrap().starts_with(ctype));
    }
    s.stop().await;
}
