//! SPEC 5: the seed's history API, its refusals, paging, and `/api/yo`.

mod http_support;

use http_support::{header, json, start, start_with};
use mensajero::broker::Role;
use serde_json::json;

/// The seed's refusals on an admin route: no session, a cookie that is not exactly
/// `token`, a bad token, and a signed-in non-admin.
async fn assert_admin_route_refusals(s: &http_support::TestServer, path: &str) {
    let res = s.get(path, None).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await, json!({"error": "Acceso denegado"}));

    // A Cookie header without a cookie named exactly `token` is no session either.
    let res = s.get(path, Some("xtoken=abc; csrftoken=def")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await, json!({"error": "Acceso denegado"}));

    let res = s.get(path, Some("token=not-a-jwt")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await, json!({"error": "Token inválido"}));

    let res = s.get_as(path, "ana", Role::User).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        json(res).await,
        json!({"error": "Acceso solo para administradores"})
    );
}

#[actix_rt::test]
async fn mensajes_con_refusals_are_the_seeds() {
    let s = start().await;
    assert_admin_route_refusals(&s, "/api/mensajes?con=ana").await;

    for missing in ["/api/mensajes", "/api/mensajes?con="] {
        let res = s.get_as(missing, "admin", Role::Admin).await;
        assert_eq!(res.status(), 400, "{missing}");
        assert_eq!(
            json(res).await,
            json!({"error": "Falta el parámetro ?con=usuario"})
        );
    }
    s.stop().await;
}

#[actix_rt::test]
async fn mensajes_con_returns_the_conversation_oldest_first() {
    let s = start().await;
    let m1 = s.store("ana", "admin", "hola").await;
    let _other = s.store("luis", "admin", "no es de ana").await;
    let m2 = s.store("admin", "ana", "¿en qué te ayudo?").await;
    let m3 = s
        .store("ana", "admin", "<img src=x onerror=alert(1)>")
        .await;

    let res = s
        .get_as("/api/mensajes?con=ana", "admin", Role::Admin)
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        header(&res, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(header(&res, "x-mas-antiguos"), None);
    let rows = json(res).await;
    let rows = rows.as_array().expect("a plain JSON array");
    assert_eq!(rows.len(), 3);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![m1.id, m2.id, m3.id]);
    // Exactly the seed's row shape.
    let row = rows[1].as_object().unwrap();
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["de_usuario", "fecha", "id", "mensaje", "para_usuario"]
    );
    assert_eq!(row["de_usuario"], "admin");
    assert_eq!(row["para_usuario"], "ana");
    assert_eq!(row["mensaje"], "¿en qué te ayudo?");
    let fecha = row["fecha"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(fecha).is_ok(),
        "{fecha}"
    );
    assert_eq!(rows[2]["mensaje"], "<img src=x onerror=alert(1)>");
    s.stop().await;
}

#[actix_rt::test]
async fn con_is_percent_decoded() {
    let s = start().await;
    let m = s.store("josé luis", "admin", "hola").await;
    let res = s
        .get_as("/api/mensajes?con=jos%C3%A9%20luis", "admin", Role::Admin)
        .await;
    assert_eq!(res.status(), 200);
    let rows = json(res).await;
    assert_eq!(rows[0]["id"].as_i64(), Some(m.id));
    assert_eq!(rows[0]["de_usuario"], "josé luis");
    s.stop().await;
}

#[actix_rt::test]
async fn mios_refusals_and_own_messages() {
    let s = start().await;
    let res = s.get("/api/mensajes/mios", None).await;
    assert_eq!(res.status(), 401);
    assert!(
        header(&res, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.unwrap(), "No autenticado");

    let res = s.get("/api/mensajes/mios", Some("other=1")).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.text().await.unwrap(), "No autenticado");

    let res = s.get("/api/mensajes/mios", Some("token=garbage")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await, json!({"error": "Token inválido"}));

    let a1 = s.store("ana", "admin", "uno").await;
    s.store("luis", "admin", "de luis").await;
    let a2 = s.store("admin", "ana", "dos").await;
    let res = s.get_as("/api/mensajes/mios", "ana", Role::User).await;
    assert_eq!(res.status(), 200);
    let rows = json(res).await;
    let ids: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a1.id, a2.id]);

    // Admins have a history of their own too.
    let res = s.get_as("/api/mensajes/mios", "admin", Role::Admin).await;
    assert_eq!(res.status(), 200);
    s.stop().await;
}

#[actix_rt::test]
async fn usuarios_conversaciones() {
    let s = start().await;
    let path = "/api/usuarios-conversaciones";
    assert_admin_route_refusals(&s, path).await;
    let res = s.get(path, Some("token=x.y.z")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await, json!({"error": "Token inválido"}));

    s.add_user("admin", Role::Admin, "x").await;
    s.add_user("ana", Role::User, "x").await;
    s.add_user("luis", Role::User, "x").await;
    s.store("ana", "admin", "hola").await;
    s.store("admin", "ana", "hola ana").await;
    s.store("luis", "admin", "buenas").await;

    let res = s.get_as(path, "admin", Role::Admin).await;
    assert_eq!(res.status(), 200);
    let names = json(res).await;
    let mut names: Vec<String> = names
        .as_array()
        .expect("a JSON array of names")
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["ana", "luis"]);
    s.stop().await;
}

#[actix_rt::test]
async fn history_pages_from_the_newest_end() {
    let s = start_with(|st| {
        st.storage.history_page_default = 4;
        st.storage.history_page_max = 5;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(s.store("ana", "admin", &format!("m{i}")).await.id);
    }
    let page_ids = |rows: serde_json::Value| -> Vec<i64> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };

    // Default: the newest `history_page_default` rows, ascending, and a pointer to more.
    let res = s
        .get_as("/api/mensajes?con=ana", "admin", Role::Admin)
        .await;
    assert_eq!(res.status(), 200);
    let older = header(&res, "x-mas-antiguos").expect("older rows exist");
    assert_eq!(older, ids[7].to_string());
    let link = header(&res, "link").unwrap();
    assert!(link.contains(&format!("antes={}", ids[7])), "{link}");
    assert!(link.contains("rel=\"next\""));
    assert_eq!(page_ids(json(res).await), ids[7..].to_vec());

    // `limite` above the cap is capped.
    let res = s
        .get_as("/api/mensajes?con=ana&limite=100", "admin", Role::Admin)
        .await;
    assert_eq!(page_ids(json(res).await), ids[6..].to_vec());

    // Walk back with `antes` (and its alias `before`/`limit`).
    let res = s
        .get_as(
            &format!("/api/mensajes?con=ana&antes={}&limite=3", ids[7]),
            "admin",
            Role::Admin,
        )
        .await;
    assert_eq!(header(&res, "x-mas-antiguos"), Some(ids[4].to_string()));
    assert_eq!(page_ids(json(res).await), ids[4..7].to_vec());
    let res = s
        .get_as(
            &format!("/api/mensajes/mios?before={}&limit=5", ids[4]),
            "ana",
            Role::User,
        )
        .await;
    assert_eq!(
        header(&res, "x-mas-antiguos"),
        None,
        "the oldest page says no more"
    );
    assert_eq!(page_ids(json(res).await), ids[..4].to_vec());

    // Bad numbers get the API's JSON error.
    for bad in ["antes=abc", "antes=-3", "limite=0", "limite=x"] {
        let res = s
            .get_as(
                &format!("/api/mensajes?con=ana&{bad}"),
                "admin",
                Role::Admin,
            )
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        assert!(json(res).await["error"].is_string());
    }
    s.stop().await;
}

#[actix_rt::test]
async fn short_conversations_come_back_whole_by_default() {
    let s = start().await;
    for i in 0..30 {
        s.store("ana", "admin", &format!("m{i}")).await;
    }
    let res = s.get_as("/api/mensajes/mios", "ana", Role::User).await;
    assert_eq!(header(&res, "x-mas-antiguos"), None);
    assert_eq!(json(res).await.as_array().unwrap().len(), 30);
    s.stop().await;
}

#[actix_rt::test]
async fn yo_tells_the_page_who_is_signed_in() {
    let s = start().await;
    let res = s.get("/api/yo", None).await;
    assert_eq!(res.status(), 401);
    let res = s.get_as("/api/yo", "ana", Role::User).await;
    assert_eq!(res.status(), 200);
    let me = json(res).await;
    assert_eq!(me["user"], "ana");
    assert_eq!(me["rol"], "user");
    assert_eq!(me["desk"], "admin");
    assert!(me["exp"].as_u64().unwrap() > 0);
    s.stop().await;
}
