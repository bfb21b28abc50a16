//! The broker driven by the official clients: the npm `socket.io-client` (default options,
//! polling only, WebSocket only) and PyPI `python-socketio` (polling, WebSocket, default).
//! Each scenario's acks are checked against the rows in the table.

mod support;

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mensajero::broker::Role;
use serde_json::{Value, json};
use support::{Broker, BrokerOptions, node_scenario, python_scenario, sqlite_rows, token};

fn user_tokens() -> Vec<(&'static str, String)> {
    vec![
        ("TOKEN_ANA", token("ana", Role::User)),
        ("TOKEN_LUIS", token("luis", Role::User)),
        ("TOKEN_ADMIN", token("admin", Role::Admin)),
        ("TOKEN_SONIA", token("sonia", Role::Admin)),
    ]
}

fn env_for(broker: &Broker, transports: &str) -> Vec<(&'static str, String)> {
    let mut env = user_tokens();
    env.push(("BROKER_URL", broker.url()));
    env.push(("TRANSPORTS", transports.to_string()));
    env
}

/// Every acked message is in the table exactly as acked, and nothing else is.
fn assert_acks_stored(broker: &Broker, acks: &[Value]) {
    let rows = sqlite_rows(&broker.database_url);
    let expected: Vec<Value> = acks
        .iter()
        .map(|a| json!({"id": a["id"], "de": a["de"], "para": a["para"], "mensaje": a["mensaje"]}))
        .collect();
    assert_eq!(
        rows, expected,
        "rows in mensajes must be exactly the acked messages"
    );
}

fn claims(exp_offset: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"user": "ana", "name": "Ana", "rol": "user", "exp": now + exp_offset})
}

fn sign(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

fn unsigned_token(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

#[test]
fn refusals_reach_the_client_with_the_seeds_messages() {
    let broker = Broker::start();
    let secret = support::SECRET.as_bytes();
    let bad = json!({
        "expired": sign(Algorithm::HS256, secret, &claims(-120)),
        "wrongSecret": sign(Algorithm::HS256, b"not-the-secret", &claims(600)),
        "algNone": unsigned_token(&claims(600)),
        "hs512": sign(Algorithm::HS512, secret, &claims(600)),
        "noExp": sign(Algorithm::HS256, secret, &json!({"user":"ana","rol":"user"})),
        "emptyUser": sign(Algorithm::HS256, secret, &json!({"user":"","rol":"user","exp": claims(600)["exp"]})),
        "garbage": "not.a.jwt",
    });
    for transports in ["default", "websocket"] {
        let mut env = env_for(&broker, transports);
        env.push(("BAD_TOKENS", bad.to_string()));
        let seen = node_scenario("refusals.mjs", &env);
        assert_eq!(seen["noCookie"], "No autenticado");
        assert_eq!(seen["xtoken"], "Token no proporcionado");
    }
}

#[test]
fn routing_with_socket_io_client_on_every_transport() {
    for transports in ["default", "polling", "websocket"] {
        let broker = Broker::start();
        let summary = node_scenario("routing.mjs", &env_for(&broker, transports));
        assert_acks_stored(&broker, summary["acks"].as_array().unwrap());
    }
}

#[test]
fn bad_input_is_refused_and_the_server_keeps_serving() {
    let broker = Broker::start();
    let summary = node_scenario("bad_input.mjs", &env_for(&broker, "websocket"));
    assert_eq!(summary["errors"].as_object().unwrap().len(), 13);
    assert_acks_stored(&broker, summary["acks"].as_array().unwrap());
    let summary = node_scenario("bad_input.mjs", &env_for(&broker, "polling"));
    assert_eq!(
        summary["errors"]["longMensaje"],
        "El mensaje supera 4096 bytes"
    );
}

#[test]
fn a_burst_during_the_upgrade_arrives_complete_and_in_order() {
    let broker = Broker::start_with(burst_options(Vec::new()));
    let summary = node_scenario("burst.mjs", &env_for(&broker, "default"));
    assert_eq!(summary["transportAtStart"], "polling");
    assert_eq!(summary["transportAtEnd"], "websocket");
    assert_acks_stored(&broker, summary["acks"].as_array().unwrap());
}

#[test]
fn a_socket_is_disconnected_when_its_token_expires() {
    let broker = Broker::start();
    let short = support::tokens().issue("ana", "Ana", Role::User, Duration::from_secs(2));
    let mut env = env_for(&broker, "websocket");
    env.push(("TOKEN_SHORT", short));
    let summary = node_scenario("expiry.mjs", &env);
    let after = summary["after"].as_u64().unwrap();
    assert!(
        (500..=4000).contains(&after),
        "disconnected {after} ms after connect"
    );
}

#[test]
fn python_socketio_on_polling_websocket_and_defaults() {
    for transports in ["polling", "websocket", "default"] {
        let broker = Broker::start();
        let summary = python_scenario("routing.py", &env_for(&broker, transports));
        assert_eq!(
            summary["transport"],
            if transports == "polling" {
                "polling"
            } else {
                "websocket"
            }
        );
        assert_acks_stored(&broker, summary["acks"].as_array().unwrap());
    }
}

#[test]
fn the_broker_on_a_thread_of_its_own_behind_two_workers_routes_the_same() {
    // The default places the broker on the only HTTP worker; this is the other placement.
    let broker = Broker::start_with(burst_options(vec![
        ("MENSAJERO_SERVER__BROKER_THREAD".into(), "own".into()),
        ("MENSAJERO_SERVER__WORKERS".into(), "2".into()),
    ]));
    let summary = node_scenario("routing.mjs", &env_for(&broker, "default"));
    assert_acks_stored(&broker, summary["acks"].as_array().unwrap());
    let burst = node_scenario("burst.mjs", &env_for(&broker, "default"));
    let mut acks = summary["acks"].as_array().unwrap().clone();
    acks.extend(burst["acks"].as_array().unwrap().iter().cloned());
    assert_acks_stored(&broker, &acks);
}

/// The burst scenario sends 400 messages without waiting for acks; on a loaded machine
/// more than the default 256 can be unanswered at once, and the per-socket limit (tested
/// in broker_wire.rs) would refuse some. These tests are about order across the upgrade.
fn burst_options(mut env: Vec<(String, String)>) -> BrokerOptions {
    env.push((
        "MENSAJERO_CHAT__MAX_IN_FLIGHT_PER_SOCKET".into(),
        "1000".into(),
    ));
    BrokerOptions {
        env,
        ..Default::default()
    }
}
