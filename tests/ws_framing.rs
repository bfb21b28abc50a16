//! RFC 6455 framing of the Engine.IO WebSocket transport, byte for byte: masking,
//! fragmentation, limits, UTF-8, control frames and the closing handshake, against the
//! conformance echo server behind the front door.

mod common;

use std::time::Duration;

use common::raw_ws::*;
use common::*;
use mensajero::protocol::conformance::ConformanceOptions;

const PATH: &str = "/engine.io/";
const TARGET: &str = "/engine.io/?EIO=4&transport=websocket";

fn options() -> ConformanceOptions {
    ConformanceOptions {
        ping_interval: Duration::from_millis(5_000),
        ping_timeout: Duration::from_millis(5_000),
        max_payload: 1000,
        ..ConformanceOptions::default()
    }
}

async fn open(addr: std::net::SocketAddr) -> RawWs {
    let mut ws = connect(addr, TARGET).await;
    let handshake = ws.read_text().await;
    assert!(handshake.starts_with("0{"), "handshake: {handshake}");
    ws
}

/// Far more packets in one read than the session's mailbox holds: reading waits for the
/// session to catch up (nothing is dropped, nothing overtakes) and every echo comes back
/// in order.
#[actix_rt::test]
async fn thousands_of_frames_in_one_write_are_all_echoed_in_order() {
    const PACKETS: usize = 3000;
    let (addr, _servers) = conformance(options());
    let mut ws = open(addr).await;
    let burst: Vec<u8> = (0..PACKETS)
        .flat_map(|i| frame(true, TEXT, format!("4m{i}").as_bytes(), true))
        .collect();
    ws.send_raw(&burst).await;
    for i in 0..PACKETS {
        // read_text skips the server's PINGs.
        assert_eq!(
            ws.read_text().await,
            format!("4m{i}"),
            "echo {i} of {PACKETS}"
        );
    }
}

#[actix_rt::test]
async fn masked_text_and_binary_are_echoed() {
    let (addr, servers) = conformance(options());
    let mut ws = open(addr).await;
    ws.send(TEXT, "4héllo".as_bytes()).await;
    assert_eq!(ws.read_text().await, "4héllo");
    ws.send(BINARY, &[0, 1, 2, 255]).await;
    assert_eq!(
        ws.read().await,
        Read::Frame {
            fin: true,
            opcode: BINARY,
            payload: vec![0, 1, 2, 255]
        }
    );
    // A 16-bit length on both sides.
    let long = format!("4{}", "y".repeat(300));
    ws.send(TEXT, long.as_bytes()).await;
    assert_eq!(ws.read_text().await, long);
    assert_eq!(servers.engine.metrics().sessions_websocket(), 1);
    assert_eq!(frames_out_reaching(servers.engine.metrics(), 4).await, 4);
}

#[actix_rt::test]
async fn many_frames_in_one_segment_and_one_frame_in_many() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    let mut burst = Vec::new();
    for i in 0..50 {
        burst.extend(frame(true, TEXT, format!("4m{i}").as_bytes(), true));
    }
    ws.send_raw(&burst).await;
    for i in 0..50 {
        assert_eq!(ws.read_text().await, format!("4m{i}"));
    }
    let one = frame(true, TEXT, b"4split across writes", true);
    for piece in one.chunks(3) {
        ws.send_raw(piece).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ws.read_text().await, "4split across writes");
}

#[actix_rt::test]
async fn unmasked_client_frame_is_a_protocol_error() {
    let (addr, servers) = conformance(options());
    let mut ws = open(addr).await;
    ws.send_raw(&frame(true, TEXT, b"4plain", false)).await;
    ws.expect_close(1002).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(servers.engine.metrics().sessions_open(), 0);
}

#[actix_rt::test]
async fn reserved_bits_are_a_protocol_error() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    let mut bad = frame(true, TEXT, b"4x", true);
    bad[0] |= 0x40;
    ws.send_raw(&bad).await;
    ws.expect_close(1002).await;
}

#[actix_rt::test]
async fn fragments_are_aggregated_around_control_frames() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    let mut input = frame(false, TEXT, b"4hel", true);
    input.extend(frame(true, PING, b"mid", true));
    input.extend(frame(false, CONTINUATION, b"lo ", true));
    input.extend(frame(true, CONTINUATION, "wörld".as_bytes(), true));
    ws.send_raw(&input).await;
    assert_eq!(
        ws.read().await,
        Read::Frame {
            fin: true,
            opcode: PONG,
            payload: b"mid".to_vec()
        }
    );
    assert_eq!(ws.read_text().await, "4hello wörld");
    // A UTF-8 sequence split between fragments is fine.
    let bytes = "4ñ".as_bytes();
    ws.send_raw(&frame(false, TEXT, &bytes[..2], true)).await;
    ws.send_raw(&frame(true, CONTINUATION, &bytes[2..], true))
        .await;
    assert_eq!(ws.read_text().await, "4ñ");
}

#[actix_rt::test]
async fn oversized_frame_and_oversized_message_close_with_1009() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    ws.send(TEXT, format!("4{}", "x".repeat(1000)).as_bytes())
        .await;
    ws.expect_close(1009).await;

    let mut ws = open(addr).await;
    ws.send_raw(&frame(false, TEXT, &[b'4'; 600], true)).await;
    ws.send_raw(&frame(true, CONTINUATION, &[b'x'; 600], true))
        .await;
    ws.expect_close(1009).await;
}

#[actix_rt::test]
async fn invalid_utf8_closes_with_1007() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    ws.send(TEXT, &[b'4', 0xC3, 0x28]).await;
    ws.expect_close(1007).await;
}

#[actix_rt::test]
async fn ping_is_answered_with_its_payload() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    ws.send(PING, b"are you there").await;
    assert_eq!(
        ws.read().await,
        Read::Frame {
            fin: true,
            opcode: PONG,
            payload: b"are you there".to_vec()
        }
    );
    // A fragmented or long control frame is not allowed.
    ws.send_raw(&frame(false, PING, b"", true)).await;
    ws.expect_close(1002).await;
}

#[actix_rt::test]
async fn client_close_is_echoed_and_ends_the_session() {
    let (addr, servers) = conformance(options());
    let mut ws = open(addr).await;
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    ws.send(CLOSE, &close).await;
    ws.expect_close(1001).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(servers.engine.metrics().sessions_open(), 0);
    assert_eq!(servers.engine.metrics().sessions_websocket(), 0);
}

#[actix_rt::test]
async fn engine_close_ends_with_a_normal_close_frame() {
    let (addr, _) = conformance(options());
    let mut ws = open(addr).await;
    ws.send(TEXT, b"1").await;
    ws.expect_close(1000).await;
}

#[actix_rt::test]
async fn upgrade_from_polling_over_raw_frames() {
    let (addr, servers) = conformance(options());
    let client = http();
    let (sid, _) = polling_handshake(&client, addr, PATH).await;
    let mut ws = connect(addr, &format!("{TARGET}&sid={sid}")).await;
    ws.send(TEXT, b"2probe").await;
    assert_eq!(ws.read_text().await, "3probe");
    ws.send(TEXT, b"5").await;
    ws.send(TEXT, b"4after upgrade").await;
    assert_eq!(ws.read_text().await, "4after upgrade");
    assert_eq!(servers.engine.metrics().sessions_websocket(), 1);
    assert_eq!(servers.engine.metrics().sessions_polling(), 0);
    // A second WebSocket for the same session is accepted and closed at once.
    let mut second = connect(addr, &format!("{TARGET}&sid={sid}")).await;
    second.expect_close(1000).await;
    ws.send(TEXT, b"4still here").await;
    assert_eq!(ws.read_text().await, "4still here");
}
