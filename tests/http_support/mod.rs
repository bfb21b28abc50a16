//! In-process server for the HTTP tests: real storage on a temporary SQLite file, the
//! HTTP routes mounted on an actix `HttpServer` bound to `127.0.0.1:0`, and a reqwest
//! client that does not follow redirects (the tests look at them).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use chrono::Utc;
use mensajero::broker::Role;
use mensajero::broker::auth::TokenService;
use mensajero::config::Settings;
use mensajero::http::{HttpCore, accounts, configure_core};
use mensajero::storage::{NewMessage, Persist, Storage, StoredMessage, UserRecord};

pub struct TestServer {
    pub base: String,
    pub storage: Storage,
    pub tokens: Arc<TokenService>,
    pub settings: Arc<Settings>,
    pub client: reqwest::Client,
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::defaults();
    settings.storage.database_url = dir.path().join("http.db").to_string_lossy().into_owned();
    settings.jwt_secret = "http-test-secret".to_string();
    tweak(&mut settings);
    let settings = Arc::new(settings);
    let storage = Storage::start(&settings.storage).expect("storage starts");
    let tokens = Arc::new(TokenService::new(&settings.jwt_secret, &settings.auth).unwrap());
    let core = HttpCore::new(settings.clone(), tokens.clone(), storage.clone());
    let server = HttpServer::new(move || {
        let core = core.clone();
        App::new().configure(move |cfg| configure_core(cfg, core))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestServer {
        base: format!("http://{addr}"),
        storage,
        tokens,
        settings,
        client,
        handle,
        _dir: dir,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.tokens
            .issue(user, user, role, Duration::from_secs(600))
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send().await.expect("request")
    }

    /// GET with the session cookie of `user`.
    pub async fn get_as(&self, path: &str, user: &str, role: Role) -> reqwest::Response {
        let cookie = format!("token={}", self.token(user, role));
        self.get(path, Some(&cookie)).await
    }

    pub async fn store(&self, de: &str, para: &str, mensaje: &str) -> StoredMessage {
        self.storage
            .writer()
            .send(Persist(NewMessage {
                de_usuario: de.to_string(),
                para_usuario: para.to_string(),
                mensaje: mensaje.to_string(),
                fecha: Utc::now(),
            }))
            .await
            .expect("writer reachable")
            .expect("stored")
    }

    pub async fn add_user(&self, user: &str, role: Role, password: &str) {
        let pass = accounts::hash_password(password);
        self.add_user_with_hash(user, role, &pass).await;
    }

    pub async fn add_user_with_hash(&self, user: &str, role: Role, hash: &str) {
        self.storage
            .upsert_user(UserRecord {
                usuario: user.to_string(),
                nombre: format!("{user} (nombre)"),
                rol: role.as_str().to_string(),
                pass: hash.to_string(),
                imagen: None,
            })
            .await
            .expect("user stored");
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

pub async fn json(res: reqwest::Response) -> serde_json::Value {
    res.json().await.expect("JSON body")
}

pub fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}
