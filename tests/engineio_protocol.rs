//! Engine.IO v4 against the in-process reference echo server (`/engine.io/`), driven
//! with raw HTTP and WebSocket as a client would: the ground the official v4 suite
//! covers, plus the limits (maxPayload, allow_request, shutdown, metrics).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::*;
use mensajero::protocol::conformance::{ConformanceOptions, Echo};
use mensajero::protocol::engineio::{EngineServer, RequestRefusal};

const PATH: &str = "/engine.io/";

fn options() -> ConformanceOptions {
    ConformanceOptions::default()
}

#[actix_rt::test]
async fn polling_handshake_has_exactly_the_five_fields() {
    let (addr, _) = conformance(options());
    let client = http();
    let (_, open) = polling_handshake(&client, addr, PATH).await;
    let mut keys: Vec<_> = open.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
}

#[actix_rt::test]
async fn websocket_handshake_offers_no_upgrade() {
    let (addr, _) = conformance(options());
    let (_ws, open) = ws_session(addr, PATH).await;
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open.as_object().unwrap().len(), 5);
}

#[actix_rt::test]
async fn first_ping_comes_one_interval_after_the_handshake() {
    let (addr, _) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    let opened = Instant::now();
    assert_eq!(recv_text(&mut ws).await, "2");
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "ping after {waited:?}"
    );
    assert!(waited < Duration::from_millis(450), "ping after {waited:?}");
    // Answering keeps the session: the next ping comes one interval later.
    send(&mut ws, "3").await;
    assert_eq!(recv_text(&mut ws).await, "2");
}

#[actix_rt::test]
async fn polling_carries_several_text_and_binary_packets_each_way() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    let response = client
        .post(&session)
        .body("4hello\x1e4wörld\x1ebAQIDBA==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(
        get(&client, &session).await,
        (200, "4hello\x1e4wörld\x1ebAQIDBA==".to_string())
    );
}

#[actix_rt::test]
async fn bad_requests_get_400_with_the_engine_io_error_body() {
    let (addr, _) = conformance(options());
    let client = http();
    for (query, code) in [
        ("transport=polling", 5),
        ("EIO=abc&transport=polling", 5),
        ("EIO=3&transport=polling", 5),
        ("EIO=4", 0),
        ("EIO=4&transport=abc", 0),
        ("EIO=4&transport=polling&sid=nope", 1),
    ] {
        let (status, body) = get(&client, &url(addr, PATH, query)).await;
        assert_eq!(status, 400, "{query}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], code, "{query}");
        assert!(body["message"].is_string());
    }
    let handshake = url(addr, PATH, "EIO=4&transport=polling");
    assert_eq!(post(&client, &handshake, "").await.0, 400);
    let put = client.put(&handshake).send().await.unwrap();
    assert_eq!(put.status(), 400);
    // A WebSocket upgrade with a bad query is refused before the upgrade.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{addr}{PATH}?EIO=5&transport=websocket"))
            .await;
    assert!(refused.is_err());
}

#[actix_rt::test]
async fn the_path_alone_is_routed() {
    let (addr, _) = conformance(options());
    let (status, _) = get(&http(), &format!("http://{addr}/socket.io/socket.io.js")).await;
    assert_eq!(status, 404, "socket.io.js must be left to other handlers");
}

#[actix_rt::test]
async fn a_second_concurrent_get_closes_the_session() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    let first = get(&client, &session);
    let second = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        get(&client, &session).await
    };
    let (first, second) = futures_util::join!(first, second);
    assert_eq!(first, (200, "1".to_string()));
    assert_eq!(second.0, 400);
    assert_eq!(get(&client, &session).await.0, 400);
}

#[actix_rt::test]
async fn a_cancelled_get_closes_the_session() {
    let (addr, servers) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(short.get(&session).send().await.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Closed by the cancellation itself (the server runs without half-closed
    // connections), not by a later request.
    assert_eq!(servers.engine.metrics().sessions_open(), 0);
    assert_eq!(get(&client, &session).await.0, 400);
}

#[actix_rt::test]
async fn a_malformed_post_closes_the_session() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &session, "abc").await.0, 400);
    assert_eq!(get(&client, &session).await.0, 400);
    // Invalid UTF-8 and bad base64 too, each on its own session.
    for body in [&b"4\xff\xfe"[..], b"b!!!", b"4a\x1e"] {
        let (sid, _) = polling_handshake(&client, addr, PATH).await;
        let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
        assert_eq!(post(&client, &session, body.to_vec()).await.0, 400);
        assert_eq!(get(&client, &session).await.0, 400);
    }
}

#[actix_rt::test]
async fn a_malformed_websocket_packet_closes_the_session() {
    let (addr, _) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "abc").await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
}

/// Engine.IO v4's heartbeat goes one way (the server pings); like Node, a client PING
/// ends the session rather than queueing a PONG for it.
#[actix_rt::test]
async fn a_client_ping_ends_the_session_on_both_transports() {
    let (addr, servers) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "4still open").await;
    assert_eq!(recv_data(&mut ws).await, "4still open");
    send(&mut ws, "2").await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;

    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &session, "2").await.0, 200);
    // The session is gone: its next GET is refused as an unknown session.
    assert_eq!(get(&client, &session).await.0, 400);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(servers.engine.metrics().sessions_open(), 0);
}

#[actix_rt::test]
async fn websocket_echoes_text_and_binary() {
    let (addr, _) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "4hello").await;
    assert_eq!(recv_data(&mut ws).await, "4hello");
    send_binary(&mut ws, &[1, 2, 3, 4]).await;
    assert_eq!(recv_binary(&mut ws).await, vec![1, 2, 3, 4]);
}

#[actix_rt::test]
async fn polling_ping_pong_and_ping_timeout() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    for _ in 0..2 {
        assert_eq!(get(&client, &session).await, (200, "2".to_string()));
        assert_eq!(post(&client, &session, "3").await, (200, "ok".to_string()));
    }
    // No PONG now: closed after pingInterval + pingTimeout.
    tokio::time::sleep(Duration::from_millis(300 + 200 + 100)).await;
    assert_eq!(get(&client, &session).await.0, 400);
}

#[actix_rt::test]
async fn websocket_ping_timeout_closes() {
    let (addr, servers) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    let opened = Instant::now();
    expect_closed(&mut ws, Duration::from_secs(2)).await;
    assert!(opened.elapsed() >= Duration::from_millis(450));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(servers.engine.metrics().sessions_open(), 0);
}

#[actix_rt::test]
async fn close_packet_both_transports() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    let pending = get(&client, &session);
    let close = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        post(&client, &session, "1").await
    };
    let (pending, close) = futures_util::join!(pending, close);
    assert_eq!(pending, (200, "6".to_string()));
    assert_eq!(close.0, 200);
    assert_eq!(get(&client, &session).await.0, 400);

    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "1").await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn upgrade_delivers_packets_queued_meanwhile_complete_and_in_order() {
    let (addr, servers) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    // A GET is pending when the probe comes: it is released with a NOOP.
    let pending = tokio::spawn({
        let client = client.clone();
        let session = session.clone();
        async move { get(&client, &session).await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut ws = ws_connect(addr, PATH, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    send(&mut ws, "2probe").await;
    assert_eq!(recv_text(&mut ws).await, "3probe");
    assert_eq!(pending.await.unwrap(), (200, "6".to_string()));
    // Echoes of these are queued while the client switches; none may be lost or reordered.
    let burst: Vec<String> = (0..50).map(|i| format!("4m{i}")).collect();
    assert_eq!(post(&client, &session, burst.join("\x1e")).await.0, 200);
    assert_eq!(post(&client, &session, "bAQID").await.0, 200);
    send(&mut ws, "5").await;
    send(&mut ws, "4after").await;
    for expected in &burst {
        assert_eq!(&recv_data(&mut ws).await, expected);
    }
    assert_eq!(recv_binary(&mut ws).await, vec![1, 2, 3]);
    assert_eq!(recv_data(&mut ws).await, "4after");
    assert_eq!(servers.engine.metrics().sessions_websocket(), 1);
    assert_eq!(servers.engine.metrics().sessions_polling(), 0);

    // Polling and a second WebSocket are refused from now on; the session goes on.
    assert_eq!(get(&client, &session).await.0, 400);
    assert_eq!(post(&client, &session, "4x").await.0, 400);
    let mut second = ws_connect(addr, PATH, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    expect_closed(&mut second, Duration::from_secs(1)).await;
    send(&mut ws, "4still").await;
    assert_eq!(recv_data(&mut ws).await, "4still");
}

#[actix_rt::test]
async fn websocket_with_unknown_sid_is_refused() {
    let (addr, _) = conformance(options());
    let refused = tokio_tungstenite::connect_async(format!(
        "ws://{addr}{PATH}?EIO=4&transport=websocket&sid=nope"
    ))
    .await;
    assert!(refused.is_err());
}

#[actix_rt::test]
async fn max_payload_is_enforced() {
    let (addr, _) = conformance(ConformanceOptions {
        max_payload: 100,
        ..options()
    });
    let client = http();
    let (sid, open) = polling_handshake(&client, addr, PATH).await;
    assert_eq!(open["maxPayload"], 100);
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    let big = format!("4{}", "x".repeat(200));
    assert_eq!(post(&client, &session, big.clone()).await.0, 413);
    assert_eq!(get(&client, &session).await.0, 400);

    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, &big).await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn allow_request_refuses_handshakes_before_any_session() {
    let mut config = options().engine_config(PATH);
    config.allow_request = Some(Arc::new(|req| {
        if req.headers.contains_key("x-forbidden") {
            Err(RequestRefusal {
                status: StatusCode::FORBIDDEN,
                message: "Origin not allowed",
            })
        } else {
            Ok(())
        }
    }));
    let engine = EngineServer::engine_only(config, Echo);
    let addr = serve_engines(vec![engine.clone()]);
    let client = http();
    let response = client
        .get(url(addr, PATH, "EIO=4&transport=polling"))
        .header("x-forbidden", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": 4, "message": "Origin not allowed"})
    );
    assert_eq!(engine.metrics().handshakes_total(), 0);

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}{PATH}?EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-forbidden", "1".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert_eq!(engine.metrics().sessions_open(), 0);
    // Without the header the same server works.
    polling_handshake(&client, addr, PATH).await;
}

#[actix_rt::test]
async fn metrics_count_sessions_and_frames() {
    let (addr, servers) = conformance(options());
    let metrics = servers.engine.metrics();
    let (mut ws, _) = ws_session(addr, PATH).await;
    let client = http();
    let (_sid, _) = polling_handshake(&client, addr, PATH).await;
    assert_eq!(metrics.sessions_open(), 2);
    assert_eq!(metrics.sessions_websocket(), 1);
    assert_eq!(metrics.sessions_polling(), 1);
    assert_eq!(metrics.handshakes_total(), 2);
    send(&mut ws, "4a").await;
    assert_eq!(recv_data(&mut ws).await, "4a");
    assert!(metrics.frames_in_total() >= 1);
    assert!(frames_out_reaching(metrics, 2).await >= 2);
    send(&mut ws, "1").await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metrics.sessions_websocket(), 0);
    assert_eq!(metrics.outbound_queued(), 0);
}

#[actix_rt::test]
async fn shutdown_closes_everything_and_refuses_new_sessions() {
    let (addr, servers) = conformance(ConformanceOptions {
        ping_interval: Duration::from_secs(10),
        ..options()
    });
    let (mut ws, _) = ws_session(addr, PATH).await;
    let started = Instant::now();
    servers.engine.shutdown(Duration::from_secs(2)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    let (status, _) = get(&http(), &url(addr, PATH, "EIO=4&transport=polling")).await;
    assert_eq!(status, 503);
}

#[actix_rt::test]
async fn handshakes_beyond_max_sessions_get_503() {
    let mut config = options().engine_config(PATH);
    config.max_sessions = 1;
    let engine = EngineServer::engine_only(config, Echo);
    let addr = serve_engines(vec![engine.clone()]);
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let (status, body) = get(&client, &url(addr, PATH, "EIO=4&transport=polling")).await;
    assert_eq!(status, 503, "{body}");
    // Existing sessions keep working.
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &session, "4x").await.0, 200);
    assert_eq!(get(&client, &session).await, (200, "4x".to_string()));
}

#[actix_rt::test]
async fn overlapping_posts_close_the_session() {
    use tokio::io::AsyncWriteExt;
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    // A POST whose body is still arriving...
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 10\r\n\r\n4abc"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...and a second one meanwhile.
    assert_eq!(post(&client, &session, "4second").await.0, 400);
    assert_eq!(get(&client, &session).await.0, 400);
}
