//! SPEC 5: sign-in, sign-out, the session cookie, throttling, and the redirects of `/`
//! and `/soporte`.

mod http_support;

use std::time::Duration;

use http_support::{TestServer, header, start, start_with};
use mensajero::broker::Role;

async fn post_login(s: &TestServer, user: &str, pass: &str) -> reqwest::Response {
    s.client
        .post(s.url("/auth"))
        .form(&[("user", user), ("pass", pass)])
        .send()
        .await
        .unwrap()
}

fn set_cookie(res: &reqwest::Response) -> String {
    header(res, "set-cookie").expect("a Set-Cookie header")
}

/// The `token=...` pair of a Set-Cookie header, ready for a Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

#[actix_rt::test]
async fn login_form_is_served_with_a_csp() {
    let s = start().await;
    let res = s.get("/login", None).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-security-policy").is_some());
    let body = res.text().await.unwrap();
    assert!(body.contains(r#"action="/auth""#));
    assert!(body.contains(r#"name="user""#) && body.contains(r#"name="pass""#));
    s.stop().await;
}

#[actix_rt::test]
async fn sign_in_sets_the_session_cookie_and_redirects() {
    let s = start().await;
    s.add_user("ana", Role::User, "secreto").await;
    let res = post_login(&s, "ana", "secreto").await;
    assert_eq!(res.status(), 303);
    assert_eq!(header(&res, "location").as_deref(), Some("/soporte"));
    let cookie = set_cookie(&res);
    let attrs: Vec<String> = cookie.split(';').map(|a| a.trim().to_lowercase()).collect();
    assert!(cookie.starts_with("token="), "{cookie}");
    assert!(attrs.contains(&"httponly".to_string()), "{cookie}");
    assert!(attrs.contains(&"samesite=lax".to_string()), "{cookie}");
    assert!(attrs.contains(&"path=/".to_string()), "{cookie}");
    assert!(attrs.contains(&"max-age=3600".to_string()), "{cookie}");
    assert!(!attrs.contains(&"secure".to_string()), "{cookie}");

    let pair = cookie_pair(&cookie);
    let id = s
        .tokens
        .authenticate(Some(&pair))
        .expect("the cookie holds a valid token");
    assert_eq!(&*id.user, "ana");
    assert_eq!(id.role, Role::User);
    assert_eq!(&*id.name, "ana (nombre)");

    let res = s.get("/soporte", Some(&pair)).await;
    assert_eq!(res.status(), 200);
    let res = s.get("/", Some(&pair)).await;
    assert_eq!(header(&res, "location").as_deref(), Some("/soporte"));
    let res = s.get("/login", Some(&pair)).await;
    assert_eq!(header(&res, "location").as_deref(), Some("/soporte"));
    s.stop().await;
}

#[actix_rt::test]
async fn bcryptjs_hashes_sign_in() {
    let s = start().await;
    // npm bcryptjs 2.4.3 and 3.0.3, hashSync("secreto", 4).
    s.add_user_with_hash(
        "viejo",
        Role::Admin,
        "$2a$04$7S9S/8.MPW/42grEWU8JP.g8tbQe/.RJDtRgl0ZIStNko8SoAQn36",
    )
    .await;
    s.add_user_with_hash(
        "nuevo",
        Role::User,
        "$2b$04$PElnHEmSfeHNrmQXU5iGQuxgXr25W9DpVfWfw7yXNHjQxliiQY.r.",
    )
    .await;
    for user in ["viejo", "nuevo"] {
        let res = post_login(&s, user, "secreto").await;
        assert_eq!(res.status(), 303, "{user}");
    }
    let res = post_login(&s, "viejo", "secreto").await;
    let id = s
        .tokens
        .authenticate(Some(&cookie_pair(&set_cookie(&res))))
        .unwrap();
    assert_eq!(id.role, Role::Admin);
    s.stop().await;
}

#[actix_rt::test]
async fn wrong_credentials_go_back_to_the_form() {
    let s = start().await;
    s.add_user("ana", Role::User, "secreto").await;
    for (user, pass) in [("ana", "otra"), ("nadie", "secreto")] {
        let res = post_login(&s, user, pass).await;
        assert_eq!(res.status(), 401, "{user}");
        assert!(header(&res, "set-cookie").is_none());
        let body = res.text().await.unwrap();
        assert!(body.contains("Usuario o contraseña incorrectos"));
        assert!(body.contains(r#"action="/auth""#));
    }
    let res = post_login(&s, "", "").await;
    assert_eq!(res.status(), 400);
    s.stop().await;
}

#[actix_rt::test]
async fn secure_cookie_when_configured() {
    let s = start_with(|st| {
        st.auth.secure_cookie = true;
        st.auth.session_ttl_secs = 120;
    })
    .await;
    s.add_user("ana", Role::User, "secreto").await;
    let res = post_login(&s, "ana", "secreto").await;
    let cookie = set_cookie(&res).to_lowercase();
    assert!(cookie.split(';').any(|a| a.trim() == "secure"), "{cookie}");
    assert!(cookie.contains("max-age=120"), "{cookie}");
    s.stop().await;
}

#[actix_rt::test]
async fn attempts_are_throttled_per_user_name() {
    let s = start_with(|st| st.auth.login_attempts = 3).await;
    s.add_user("ana", Role::User, "secreto").await;
    for _ in 0..3 {
        assert_eq!(post_login(&s, "ana", "mal").await.status(), 401);
    }
    // Even the right password waits now.
    let res = post_login(&s, "ana", "secreto").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(res.text().await.unwrap().contains("Demasiados intentos"));
    s.stop().await;
}

#[actix_rt::test]
async fn attempts_are_throttled_per_address() {
    let s = start_with(|st| st.auth.login_attempts = 3).await;
    for user in ["u1", "u2", "u3"] {
        assert_eq!(post_login(&s, user, "x").await.status(), 401);
    }
    assert_eq!(post_login(&s, "u4", "x").await.status(), 429);
    s.stop().await;
}

#[actix_rt::test]
async fn successful_sign_ins_do_not_use_up_attempts() {
    let s = start_with(|st| st.auth.login_attempts = 2).await;
    s.add_user("ana", Role::User, "secreto").await;
    for _ in 0..5 {
        assert_eq!(post_login(&s, "ana", "secreto").await.status(), 303);
    }
    s.stop().await;
}

#[actix_rt::test]
async fn cross_site_posts_are_refused() {
    let s = start().await;
    s.add_user("ana", Role::User, "secreto").await;
    let res = s
        .client
        .post(s.url("/auth"))
        .header("Origin", "http://evil.example")
        .form(&[("user", "ana"), ("pass", "secreto")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(header(&res, "set-cookie").is_none());
    let res = s
        .client
        .post(s.url("/auth"))
        .header("Origin", s.base.clone())
        .form(&[("user", "ana"), ("pass", "secreto")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    s.stop().await;
}

#[actix_rt::test]
async fn logout_clears_the_cookie() {
    let s = start().await;
    let res = s.get_as("/logout", "ana", Role::User).await;
    assert_eq!(res.status(), 303);
    assert_eq!(header(&res, "location").as_deref(), Some("/login"));
    let cookie = set_cookie(&res).to_lowercase();
    assert!(
        cookie.starts_with("token=;") || cookie.starts_with("token=\"\""),
        "{cookie}"
    );
    assert!(cookie.contains("max-age=0"), "{cookie}");
    assert!(cookie.contains("path=/"), "{cookie}");
    s.stop().await;
}

#[actix_rt::test]
async fn front_door_and_desk_redirect_without_a_session() {
    let s = start().await;
    let res = s.get("/", None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(header(&res, "location").as_deref(), Some("/login"));
    let res = s.get("/soporte", None).await;
    assert_eq!(header(&res, "location").as_deref(), Some("/login"));
    // An expired token is sent to the form with a note that the session ended.
    let expired = s.tokens.issue("ana", "Ana", Role::User, Duration::ZERO);
    actix_rt::time::sleep(Duration::from_millis(1100)).await;
    let res = s.get("/soporte", Some(&format!("token={expired}"))).await;
    assert_eq!(
        header(&res, "location").as_deref(),
        Some("/login?expirada=1")
    );
    let res = s.get("/login?expirada=1", None).await;
    assert!(res.text().await.unwrap().contains("sesión ha caducado"));
    s.stop().await;
}
