//! The broker driven by a Rust client at the wire level: Origin policy, malformed input,
//! and the ack contract, where the official clients cannot misbehave on purpose.

mod support;

use mensajero::broker::Role;
use serde_json::json;
use support::{Broker, token, wire};

fn cookie(user: &str, role: Role) -> String {
    format!("token={}", token(user, role))
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_any_session_exists() {
    let broker = Broker::start();
    let http = reqwest::Client::new();
    let url = format!("{}/socket.io/?EIO=4&transport=polling", broker.url());
    let refused = http
        .get(&url)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let same = http
        .get(&url)
        .header("Origin", broker.url())
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    let native = http.get(&url).send().await.unwrap();
    assert_eq!(native.status(), 200);

    let ana = cookie("ana", Role::User);
    let ws = wire::open(
        &broker.addr,
        &[("cookie", &ana), ("origin", "http://evil.example")],
    )
    .await;
    match ws {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        Err(other) => panic!("expected HTTP 403, got {other}"),
        Ok(_) => panic!("a foreign origin opened a WebSocket session"),
    }
    let own_origin = broker.url();
    let mut ok = wire::open(&broker.addr, &[("cookie", &ana), ("origin", &own_origin)])
        .await
        .unwrap();
    assert!(ok.connect().await.starts_with("40{"));
}

#[tokio::test]
async fn the_handshake_carries_exactly_the_five_fields() {
    let broker = Broker::start();
    let client = wire::open(&broker.addr, &[]).await.unwrap();
    let mut keys: Vec<_> = client
        .handshake
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
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
    assert_eq!(client.handshake["pingInterval"], 25000);
    assert_eq!(client.handshake["pingTimeout"], 20000);
    assert_eq!(client.handshake["maxPayload"], 1000000);
}

#[tokio::test]
async fn refusals_arrive_as_connect_error() {
    let broker = Broker::start();
    let mut none = wire::open(&broker.addr, &[]).await.unwrap();
    assert_eq!(none.connect().await, r#"44{"message":"No autenticado"}"#);
    let mut xtoken = wire::open(&broker.addr, &[("cookie", "xtoken=abc")])
        .await
        .unwrap();
    assert_eq!(
        xtoken.connect().await,
        r#"44{"message":"Token no proporcionado"}"#
    );
    let mut bad = wire::open(&broker.addr, &[("cookie", "token=abc")])
        .await
        .unwrap();
    assert_eq!(bad.connect().await, "44{\"message\":\"Token inválido\"}");
}

#[tokio::test]
async fn a_malformed_packet_closes_that_session_only() {
    let broker = Broker::start();
    let ana = cookie("ana", Role::User);
    let admin = cookie("admin", Role::Admin);
    let mut desk = wire::open(&broker.addr, &[("cookie", &admin)])
        .await
        .unwrap();
    assert!(desk.connect().await.starts_with("40{"));
    for garbage in [
        "42[\"mensaje_privado\",{\"para\":",
        "4Z",
        "42999999999999999999999[\"x\"]",
        "\u{0}\u{1}",
    ] {
        let mut victim = wire::open(&broker.addr, &[("cookie", &ana)]).await.unwrap();
        assert!(victim.connect().await.starts_with("40{"));
        victim.send_text(garbage).await;
        assert!(
            victim.is_closed_by_server().await,
            "{garbage:?} should close the session"
        );
    }
    let mut ana_client = wire::open(&broker.addr, &[("cookie", &ana)]).await.unwrap();
    assert!(ana_client.connect().await.starts_with("40{"));
    let ack = ana_client
        .call(
            1,
            "mensaje_privado",
            json!({"para": "admin", "mensaje": "sigo"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let delivered = desk.next_text().await.unwrap();
    assert!(
        delivered.starts_with("42[\"mensaje_recibido\""),
        "{delivered}"
    );
}

#[tokio::test]
async fn the_ack_names_the_stored_row() {
    let broker = Broker::start();
    let ana = cookie("ana", Role::User);
    let mut client = wire::open(&broker.addr, &[("cookie", &ana)]).await.unwrap();
    assert!(client.connect().await.starts_with("40{"));
    let ack = client
        .call(
            7,
            "mensaje_privado",
            json!({"para": "admin", "mensaje": "<img src=x onerror=alert(1)>", "de": "root"}),
        )
        .await;
    assert_eq!(ack["ok"], true);
    let fecha = ack["fecha"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(fecha).is_ok()
            && fecha.ends_with('Z')
            && fecha.len() == 24,
        "{fecha}"
    );
    let rows = support::sqlite_rows(&broker.database_url);
    assert_eq!(
        rows,
        vec![
            json!({"id": ack["id"], "de": "ana", "para": "admin", "mensaje": "<img src=x onerror=alert(1)>"})
        ]
    );
    // The history API shows the same row, with the very `fecha` the ack carried.
    let admin = cookie("admin", Role::Admin);
    let history: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/mensajes?con=ana", broker.url()))
        .header("cookie", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history,
        json!([{"id": ack["id"], "de_usuario": "ana", "para_usuario": "admin",
                "mensaje": "<img src=x onerror=alert(1)>", "fecha": fecha}])
    );
    let no_payload = client
        .call(8, "mensaje_privado", serde_json::Value::Null)
        .await;
    assert_eq!(no_payload["ok"], false);
    assert_eq!(support::sqlite_rows(&broker.database_url).len(), 1);
}

#[tokio::test]
async fn messages_beyond_the_in_flight_limit_are_refused_until_acks_return() {
    let broker = Broker::start_with(support::BrokerOptions {
        env: vec![(
            "MENSAJERO_CHAT__MAX_IN_FLIGHT_PER_SOCKET".into(),
            "2".into(),
        )],
        ..Default::default()
    });
    let ana = cookie("ana", Role::User);
    let mut client = wire::open(&broker.addr, &[("cookie", &ana)]).await.unwrap();
    assert!(client.connect().await.starts_with("40{"));
    let messages: Vec<_> = (1..=5)
        .map(|i| json!({"para": "admin", "mensaje": format!("r{i}")}))
        .collect();
    client
        .emit_all_at_once(1, "mensaje_privado", &messages)
        .await;
    let mut acks = std::collections::BTreeMap::new();
    while acks.len() < 5 {
        let (id, ack) = client.next_ack().await.expect("ack");
        acks.insert(id, ack);
    }
    for id in 1..=2 {
        assert_eq!(acks[&id]["ok"], true, "ack {id}: {}", acks[&id]);
    }
    for id in 3..=5 {
        assert_eq!(acks[&id]["ok"], false, "ack {id}: {}", acks[&id]);
        assert_eq!(
            acks[&id]["error"],
            "Demasiados mensajes pendientes; espera las confirmaciones"
        );
    }
    // Only the two accepted are stored; with their acks back, the socket may send again.
    let stored: Vec<_> = support::sqlite_rows(&broker.database_url)
        .into_iter()
        .map(|row| row["mensaje"].clone())
        .collect();
    assert_eq!(stored, [json!("r1"), json!("r2")]);
    let again = client
        .call(
            6,
            "mensaje_privado",
            json!({"para": "admin", "mensaje": "r6"}),
        )
        .await;
    assert_eq!(again["ok"], true);
}
