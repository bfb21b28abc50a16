//! The front door on the listener: it takes Engine.IO WebSocket upgrades and nothing
//! else. Other paths (WebSocket upgrades included) reach actix-web untouched, admission
//! runs before any session exists, and a head that arrives in pieces is still recognised.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use common::raw_ws::*;
use common::*;
use mensajero::protocol::conformance::{ConformanceOptions, Echo};
use mensajero::protocol::engineio::{EngineServer, FrontDoor, RequestRefusal};
use mensajero::server::OriginPolicy;

const PATH: &str = "/engine.io/";
const TARGET: &str = "/engine.io/?EIO=4&transport=websocket";

/// An echo engine whose Origin policy is the broker's, next to two plain routes.
fn server() -> (std::net::SocketAddr, EngineServer) {
    let mut config = ConformanceOptions::default().engine_config(PATH);
    let origins = Arc::new(OriginPolicy::new(&["https://desk.example".to_string()]));
    config.allow_request = Some(Arc::new(move |request| {
        if origins.allows_request(request) {
            Ok(())
        } else {
            Err(RequestRefusal {
                status: StatusCode::FORBIDDEN,
                message: "Origin not allowed",
            })
        }
    }));
    let engine = EngineServer::engine_only(config, Echo);
    let mounted = engine.clone();
    let addr = serve(FrontDoor::new([engine.clone()]), move |cfg| {
        cfg.route("/hello", web::get().to(|| async { "hello from actix-web" }));
        cfg.route(
            "/other-ws",
            web::get().to(|req: HttpRequest| async move {
                let upgrade = req
                    .headers()
                    .get("upgrade")
                    .map(|v| v.to_str().unwrap().to_string());
                HttpResponse::Ok().body(format!("actix-web saw upgrade {upgrade:?}"))
            }),
        );
        cfg.route("/engine.io/client.js", web::get().to(|| async { "bundle" }));
        mounted.configure(cfg);
    });
    (addr, engine)
}

#[actix_rt::test]
async fn other_paths_are_served_by_actix_web() {
    let (addr, engine) = server();
    let client = http();
    assert_eq!(
        get(&client, &format!("http://{addr}/hello")).await,
        (200, "hello from actix-web".to_string())
    );
    assert_eq!(
        get(&client, &format!("http://{addr}/engine.io/client.js")).await,
        (200, "bundle".to_string())
    );
    // Polling on the engine's own path is actix-web's too.
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    assert_eq!(sid.len(), 20);
    assert_eq!(engine.metrics().sessions_polling(), 1);
}

#[actix_rt::test]
async fn websocket_upgrades_to_other_paths_are_not_taken() {
    let (addr, engine) = server();
    for target in ["/other-ws", "/engine.io/client.js"] {
        let (head, mut conn) = request_head(addr, &upgrade_request(addr, target, "")).await;
        let body = conn.read_to_end().await;
        if target == "/other-ws" {
            assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
            assert_eq!(body, r#"actix-web saw upgrade Some("websocket")"#);
        } else {
            assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
            assert_eq!(body, "bundle");
        }
    }
    // An older Engine.IO version is answered by the endpoint's HTTP route.
    let request = upgrade_request(addr, "/engine.io/?EIO=3&transport=websocket", "");
    let (head, _) = request_head(addr, &request).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(engine.metrics().handshakes_total(), 0);
}

#[actix_rt::test]
async fn origin_refusal_is_a_403_before_any_session() {
    let (addr, engine) = server();
    let request = upgrade_request(addr, TARGET, "Origin: http://evil.example\r\n");
    let (head, mut conn) = request_head(addr, &request).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&conn.read_to_end().await).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": 4, "message": "Origin not allowed"})
    );
    assert_eq!(engine.metrics().handshakes_total(), 0);
    assert_eq!(engine.metrics().sessions_open(), 0);

    // Refused for an upgrade of an existing session as well, which stays on polling.
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let request = upgrade_request(
        addr,
        &format!("{TARGET}&sid={sid}"),
        "Origin: http://evil.example\r\n",
    );
    let (head, _) = request_head(addr, &request).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert_eq!(engine.metrics().sessions_polling(), 1);

    // The listed origin and the Host's own are let in.
    for origin in ["https://desk.example".to_string(), format!("http://{addr}")] {
        let request = upgrade_request(addr, TARGET, &format!("Origin: {origin}\r\n"));
        let (head, _) = request_head(addr, &request).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{origin}: {head}");
    }
}

#[actix_rt::test]
async fn invalid_handshakes_are_refused() {
    let (addr, engine) = server();
    let bad_version = upgrade_request(addr, TARGET, "")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let (head, _) = request_head(addr, &bad_version).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let bad_key = upgrade_request(addr, TARGET, "").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
    let (head, _) = request_head(addr, &bad_key).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let unknown = upgrade_request(addr, &format!("{TARGET}&sid=nope"), "");
    let (head, mut conn) = request_head(addr, &unknown).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&conn.read_to_end().await).unwrap();
    assert_eq!(body["code"], 1);
    assert_eq!(engine.metrics().handshakes_total(), 0);
}

#[actix_rt::test]
async fn a_head_in_pieces_is_still_an_upgrade() {
    let (addr, engine) = server();
    let request = upgrade_request(addr, TARGET, "");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    for piece in request.as_bytes().chunks(20) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut reply = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), async {
        use tokio::io::AsyncReadExt;
        stream.read(&mut reply).await.unwrap()
    })
    .await
    .unwrap();
    assert!(
        reply[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.metrics().sessions_websocket(), 1);
}
