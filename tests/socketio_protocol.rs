//! Socket.IO v5 against the in-process reference server (`/socket.io/`) and against
//! test namespaces that exercise what the reference cannot: refusals, server-side and
//! scheduled disconnects, slow consumers and the reasons handlers are given.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use mensajero::protocol::conformance::ConformanceOptions;
use mensajero::protocol::engineio::{EngineServer, WireFrame};
use mensajero::protocol::socketio::{
    AckSender, ConnectRefusal, DisconnectReason, Frame, Handshake, Namespace, Payload, SendError,
    Socket, SocketHandler, SocketIoServer,
};
use serde_json::json;

const PATH: &str = "/socket.io/";

fn options() -> ConformanceOptions {
    ConformanceOptions::default()
}

/// Connects `/` over WebSocket and reads the CONNECT answer and the `auth` event.
async fn connected(addr: std::net::SocketAddr) -> Ws {
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    assert!(recv_data(&mut ws).await.starts_with("40{\"sid\":"));
    assert_eq!(recv_data(&mut ws).await, r#"42["auth",{}]"#);
    ws
}

#[actix_rt::test]
async fn connect_main_and_custom_namespaces_with_auth() {
    let (addr, _) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, r#"40{"token":"123"}"#).await;
    let answer = recv_data(&mut ws).await;
    let sid: serde_json::Value = serde_json::from_str(&answer[2..]).unwrap();
    assert_eq!(sid.as_object().unwrap().len(), 1);
    assert!(sid["sid"].is_string());
    assert_eq!(recv_data(&mut ws).await, r#"42["auth",{"token":"123"}]"#);

    send(&mut ws, r#"40/custom,{"token":"abc"}"#).await;
    let answer = recv_data(&mut ws).await;
    assert!(answer.starts_with("40/custom,{\"sid\":"), "{answer}");
    assert_eq!(
        recv_data(&mut ws).await,
        r#"42/custom,["auth",{"token":"abc"}]"#
    );

    // Without the trailing comma, as the suite sends it.
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40/custom").await;
    assert!(recv_data(&mut ws).await.starts_with("40/custom,"));
    assert_eq!(recv_data(&mut ws).await, r#"42/custom,["auth",{}]"#);
}

#[actix_rt::test]
async fn unknown_namespace_gets_invalid_namespace() {
    let (addr, _) = conformance(options());
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40/random").await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    // The session survives and can still connect elsewhere.
    send(&mut ws, "40").await;
    assert!(recv_data(&mut ws).await.starts_with("40{"));
}

#[actix_rt::test]
async fn events_and_acks_round_trip() {
    let (addr, _) = conformance(options());
    let mut ws = connected(addr).await;
    send(&mut ws, r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"42["message-back",1,"2",{"3":[true]}]"#
    );
    send(&mut ws, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#).await;
    assert_eq!(recv_data(&mut ws).await, r#"43456[1,"2",{"3":[false]}]"#);
}

#[actix_rt::test]
async fn binary_event_and_binary_ack_keep_placeholders_and_attachments() {
    let (addr, _) = conformance(options());
    let mut ws = connected(addr).await;
    send(
        &mut ws,
        r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    )
    .await;
    send_binary(&mut ws, &[1, 2, 3]).await;
    send_binary(&mut ws, &[4, 5, 6]).await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(recv_binary(&mut ws).await, vec![1, 2, 3]);
    assert_eq!(recv_binary(&mut ws).await, vec![4, 5, 6]);

    send(&mut ws, r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).await;
    send_binary(&mut ws, &[7]).await;
    send_binary(&mut ws, &[8]).await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(recv_binary(&mut ws).await, vec![7]);
    assert_eq!(recv_binary(&mut ws).await, vec![8]);
}

#[actix_rt::test]
async fn binary_event_over_polling_uses_base64() {
    let (addr, _) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &session, "40").await.0, 200);
    let (_, body) = get(&client, &session).await;
    assert!(body.starts_with("40{\"sid\":"), "{body}");
    assert!(body.ends_with("\x1e42[\"auth\",{}]"), "{body}");
    let packet = "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID";
    assert_eq!(post(&client, &session, packet).await.0, 200);
    let (_, body) = get(&client, &session).await;
    assert_eq!(
        body,
        "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
    );
}

#[actix_rt::test]
async fn malformed_packets_close_only_their_session() {
    let (addr, _) = conformance(options());
    let mut bystander = connected(addr).await;
    for bad in [
        "4abc",
        "42{}",
        r#"42abc["message-with-ack",1]"#,
        r#"42[1]"#,
        r#"4299999999999999999999["message"]"#,
        r#"45999-["message"]"#,
        r#"42["message""#,
        "41{}",
    ] {
        let mut ws = connected(addr).await;
        send(&mut ws, bad).await;
        expect_closed(&mut ws, Duration::from_secs(1)).await;
    }
    // A stray attachment, and text where an attachment was due.
    let mut ws = connected(addr).await;
    send_binary(&mut ws, &[1]).await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    let mut ws = connected(addr).await;
    send(&mut ws, r#"451-["message",{"_placeholder":true,"num":0}]"#).await;
    send(&mut ws, r#"42["message"]"#).await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;

    send(&mut bystander, r#"42["message","still here"]"#).await;
    assert_eq!(
        recv_data(&mut bystander).await,
        r#"42["message-back","still here"]"#
    );
}

#[actix_rt::test]
async fn connect_timeout_closes_a_session_without_namespace() {
    let (addr, _) = conformance(ConformanceOptions {
        ping_interval: Duration::from_secs(10),
        connect_timeout: Duration::from_millis(300),
        ..options()
    });
    let (mut ws, _) = ws_session(addr, PATH).await;
    let opened = Instant::now();
    expect_closed(&mut ws, Duration::from_secs(2)).await;
    assert!(
        opened.elapsed() >= Duration::from_millis(250),
        "{:?}",
        opened.elapsed()
    );
    // A connected session is not affected.
    let mut ws = connected(addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&mut ws, r#"42["message",1]"#).await;
    assert_eq!(recv_data(&mut ws).await, r#"42["message-back",1]"#);
}

#[actix_rt::test]
async fn client_namespace_disconnect_keeps_the_session() {
    let (addr, _) = conformance(options());
    let mut ws = connected(addr).await;
    send(&mut ws, "40/custom").await;
    recv_data(&mut ws).await;
    recv_data(&mut ws).await;
    send(&mut ws, "41/custom").await;
    send(&mut ws, r#"42["message","main"]"#).await;
    assert_eq!(recv_data(&mut ws).await, r#"42["message-back","main"]"#);
    send(&mut ws, "41").await;
    assert_eq!(recv_text(&mut ws).await, "2");
}

// ---- test namespaces --------------------------------------------------------------

type Log = Arc<Mutex<Vec<(String, DisconnectReason)>>>;

/// Refuses `auth.deny`, disconnects on `bye`, schedules a disconnect on `expire`, floods
/// on `flood`, and records every disconnect with its reason.
struct Probe {
    log: Log,
    sockets: Arc<Mutex<Vec<Socket>>>,
}

impl Namespace for Probe {
    fn connect(
        &self,
        socket: Socket,
        handshake: &Handshake,
    ) -> Result<Box<dyn SocketHandler>, ConnectRefusal> {
        if handshake
            .auth
            .as_ref()
            .is_some_and(|auth| auth.get("deny").is_some())
        {
            return Err(ConnectRefusal {
                message: "Token inválido".into(),
            });
        }
        self.sockets.lock().unwrap().push(socket.clone());
        Ok(Box::new(ProbeHandler {
            socket,
            log: self.log.clone(),
        }))
    }
}

struct ProbeHandler {
    socket: Socket,
    log: Log,
}

impl SocketHandler for ProbeHandler {
    fn on_event(&mut self, event: &str, payload: Payload, ack: Option<AckSender>) {
        match event {
            "bye" => self.socket.disconnect(),
            "panic" => panic!("a handler bug"),
            "stream" => {
                // Keeps emitting 16 KB frames until the socket refuses them.
                let socket = self.socket.clone();
                actix_rt::spawn(async move {
                    let frame =
                        Frame::event(socket.namespace(), "chunk", &[json!("y".repeat(16 * 1024))]);
                    let mut tick = tokio::time::interval(Duration::from_millis(1));
                    while socket.send(&frame).is_ok() {
                        tick.tick().await;
                    }
                });
            }
            "expire" => self
                .socket
                .disconnect_at(Instant::now() + Duration::from_millis(200)),
            "flood" => {
                let frame =
                    Frame::event(self.socket.namespace(), "flood", &[json!("x".repeat(100))]);
                let mut outcome = Ok(());
                for _ in 0..10_000 {
                    outcome = self.socket.send(&frame);
                    if outcome.is_err() {
                        break;
                    }
                }
                assert!(matches!(
                    outcome,
                    Err(SendError::Full) | Err(SendError::Closed)
                ));
            }
            _ => {
                if let Some(ack) = ack {
                    let _ = ack.send(payload);
                }
            }
        }
    }

    fn on_disconnect(&mut self, reason: DisconnectReason) {
        self.log
            .lock()
            .unwrap()
            .push((self.socket.namespace().to_string(), reason));
    }
}

fn probe_server(
    outbound_queue: usize,
) -> (
    std::net::SocketAddr,
    EngineServer,
    Log,
    Arc<Mutex<Vec<Socket>>>,
) {
    let log: Log = Arc::default();
    let sockets: Arc<Mutex<Vec<Socket>>> = Arc::default();
    let probe = Arc::new(Probe {
        log: log.clone(),
        sockets: sockets.clone(),
    });
    let sio = SocketIoServer::builder()
        .namespace("/", probe.clone())
        .namespace("/desk", probe)
        .connect_timeout(Duration::from_secs(5))
        .build();
    let mut config = ConformanceOptions {
        outbound_queue,
        ..options()
    }
    .engine_config(PATH);
    config.ping_interval = Duration::from_secs(10);
    config.ping_timeout = Duration::from_secs(5);
    let engine = EngineServer::socketio(config, sio);
    let addr = serve_engines(vec![engine.clone()]);
    (addr, engine, log, sockets)
}

async fn wait_for_log(log: &Log, count: usize) -> Vec<(String, DisconnectReason)> {
    for _ in 0..100 {
        if log.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.lock().unwrap().clone()
}

#[actix_rt::test]
async fn refused_connect_sends_connect_error_with_the_message() {
    let (addr, _, _, _) = probe_server(64);
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, r#"40{"deny":true}"#).await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"44{"message":"Token inválido"}"#
    );
    send(&mut ws, r#"40/desk,{"deny":true}"#).await;
    assert_eq!(
        recv_data(&mut ws).await,
        r#"44/desk,{"message":"Token inválido"}"#
    );
    send(&mut ws, "40/desk,").await;
    assert!(recv_data(&mut ws).await.starts_with("40/desk,{\"sid\":"));
}

#[actix_rt::test]
async fn server_disconnect_and_scheduled_disconnect() {
    let (addr, _, log, sockets) = probe_server(64);
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, "40/desk,").await;
    recv_data(&mut ws).await;
    send(&mut ws, r#"42/desk,["bye"]"#).await;
    assert_eq!(recv_data(&mut ws).await, "41/desk,");
    let desk = sockets.lock().unwrap()[1].clone();
    assert_eq!(
        desk.emit("late", Payload::default()),
        Err(SendError::Closed)
    );

    let asked = Instant::now();
    send(&mut ws, r#"42["expire"]"#).await;
    assert_eq!(recv_data(&mut ws).await, "41");
    assert!(
        asked.elapsed() >= Duration::from_millis(180),
        "{:?}",
        asked.elapsed()
    );
    let log = wait_for_log(&log, 2).await;
    assert_eq!(
        log,
        vec![
            (
                "/desk".to_string(),
                DisconnectReason::ServerNamespaceDisconnect
            ),
            ("/".to_string(), DisconnectReason::ServerNamespaceDisconnect),
        ]
    );
}

#[actix_rt::test]
async fn handlers_learn_why_their_socket_ended() {
    let (addr, _, log, _) = probe_server(64);
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40/desk,").await;
    recv_data(&mut ws).await;
    send(&mut ws, "41/desk,").await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, "4abc").await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    drop(ws);
    assert_eq!(
        wait_for_log(&log, 3).await,
        vec![
            (
                "/desk".to_string(),
                DisconnectReason::ClientNamespaceDisconnect
            ),
            ("/".to_string(), DisconnectReason::ParseError),
            ("/".to_string(), DisconnectReason::TransportClose),
        ]
    );
}

#[actix_rt::test]
async fn a_full_outbound_queue_disconnects_the_slow_consumer() {
    let (addr, engine, log, _) = probe_server(16);
    let mut bystander = {
        let (mut ws, _) = ws_session(addr, PATH).await;
        send(&mut ws, "40").await;
        recv_data(&mut ws).await;
        ws
    };
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, r#"42["flood"]"#).await;
    expect_closed(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(
        wait_for_log(&log, 1).await,
        vec![("/".to_string(), DisconnectReason::SlowConsumer)]
    );
    assert_eq!(engine.metrics().slow_consumer_closes(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.metrics().outbound_queued(), 0);
    // Others are unaffected.
    send(&mut bystander, r#"421["echo","ok"]"#).await;
    assert_eq!(recv_data(&mut bystander).await, r#"431["ok"]"#);
}

#[actix_rt::test]
async fn a_client_that_stops_reading_is_disconnected_as_slow_consumer() {
    let (addr, engine, log, _) = probe_server(16);
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, r#"42["stream"]"#).await;
    // Read nothing: socket buffers fill, then the writer blocks, then the queue.
    let mut reasons = Vec::new();
    for _ in 0..200 {
        reasons = log.lock().unwrap().clone();
        if !reasons.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        reasons,
        vec![("/".to_string(), DisconnectReason::SlowConsumer)]
    );
    assert_eq!(engine.metrics().slow_consumer_closes(), 1);
    assert_eq!(engine.metrics().sessions_open(), 0);
    // What was in flight drains, then the connection ends.
    expect_closed(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(engine.metrics().outbound_queued(), 0);
}

#[actix_rt::test]
async fn shutdown_sends_disconnect_to_every_namespace() {
    let (addr, engine, log, _) = probe_server(64);
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, "40/desk,").await;
    recv_data(&mut ws).await;
    engine.shutdown(Duration::from_secs(2)).await;
    let mut got = vec![recv_data(&mut ws).await, recv_data(&mut ws).await];
    got.sort();
    assert_eq!(got, vec!["41".to_string(), "41/desk,".to_string()]);
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    let reasons: Vec<_> = wait_for_log(&log, 2)
        .await
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    assert_eq!(reasons, vec![DisconnectReason::ServerShutdown; 2]);
}

#[test]
fn a_frame_is_encoded_once_and_shared_by_its_clones() {
    let frame = Frame::event(
        "/",
        "mensaje_recibido",
        &[json!({"de": "ana", "mensaje": "hola"})],
    );
    let copy = frame.clone();
    match (frame.wire(), copy.wire()) {
        (WireFrame::Text(a), WireFrame::Text(b)) => {
            assert_eq!(
                &**a,
                r#"42["mensaje_recibido",{"de":"ana","mensaje":"hola"}]"#
            );
            assert_eq!(a.as_ptr(), b.as_ptr());
        }
        other => panic!("unexpected frames {other:?}"),
    }
    let custom = Frame::event("/desk", "x", &[]);
    assert!(matches!(custom.wire(), WireFrame::Text(t) if &**t == r#"42/desk,["x"]"#));
}

#[actix_rt::test]
async fn a_polling_client_collects_the_shutdown_disconnect_on_its_next_get() {
    let (addr, engine, log, _) = probe_server(64);
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &session, "40").await.0, 200);
    assert!(get(&client, &session).await.1.starts_with("40{"));
    // No GET is pending while the server shuts down.
    let shutdown = {
        let engine = engine.clone();
        actix_rt::spawn(async move { engine.shutdown(Duration::from_secs(3)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(&client, &session).await, (200, "41\x1e1".to_string()));
    shutdown.await.unwrap();
    assert_eq!(engine.metrics().sessions_open(), 0);
    assert_eq!(get(&client, &session).await.0, 400);
    assert_eq!(
        wait_for_log(&log, 1).await[0].1,
        DisconnectReason::ServerShutdown
    );
}

#[actix_rt::test]
async fn a_polling_client_without_connect_is_told_to_close() {
    let (addr, _) = conformance(ConformanceOptions {
        ping_interval: Duration::from_secs(10),
        ping_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(200),
        ..options()
    });
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let session = url(addr, PATH, &format!("EIO=4&transport=polling&sid={sid}"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(&client, &session).await, (200, "1".to_string()));
    assert_eq!(get(&client, &session).await.0, 400);
}

#[test]
fn handles_can_be_held_by_other_actors_on_other_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Socket>();
    send_sync::<Frame>();
    send_sync::<EngineServer>();
    send::<AckSender>();
    send::<Payload>();
}

#[actix_rt::test]
async fn one_frame_fans_out_to_many_sockets_from_another_thread() {
    let (addr, engine, _, sockets) = probe_server(64);
    let mut clients = Vec::new();
    for _ in 0..200 {
        let (mut ws, _) = ws_session(addr, PATH).await;
        send(&mut ws, "40").await;
        recv_data(&mut ws).await;
        clients.push(ws);
    }
    let frame = Frame::event("/", "anuncio", &[json!({"texto": "hola a todos"})]);
    let handles = sockets.lock().unwrap().clone();
    assert_eq!(handles.len(), 200);
    // The test's thread is not the server worker's: handles are used across threads.
    std::thread::spawn(move || {
        for socket in &handles {
            socket.send(&frame).unwrap();
        }
    })
    .join()
    .unwrap();
    for ws in &mut clients {
        assert_eq!(
            recv_data(ws).await,
            r#"42["anuncio",{"texto":"hola a todos"}]"#
        );
    }
    assert_eq!(engine.metrics().sessions_websocket(), 200);
}

#[actix_rt::test]
async fn a_panicking_handler_closes_its_session_only() {
    let (addr, _, log, _) = probe_server(64);
    let (mut bystander, _) = ws_session(addr, PATH).await;
    send(&mut bystander, "40").await;
    recv_data(&mut bystander).await;
    let (mut ws, _) = ws_session(addr, PATH).await;
    send(&mut ws, "40").await;
    recv_data(&mut ws).await;
    send(&mut ws, r#"42["panic"]"#).await;
    expect_closed(&mut ws, Duration::from_secs(1)).await;
    assert_eq!(
        wait_for_log(&log, 1).await,
        vec![("/".to_string(), DisconnectReason::ParseError)]
    );
    send(&mut bystander, r#"427["echo","vivo"]"#).await;
    assert_eq!(recv_data(&mut bystander).await, r#"437["vivo"]"#);
}
