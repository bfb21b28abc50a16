//! Liveness and readiness for orchestrators and load balancers.
//!
//! `/healthz` says the process serves HTTP at all; `/readyz` says it can do its job, which
//! for a broker whose acks mean "stored" is: the database answers and the writer is not
//! in an outage.

use actix_web::{HttpResponse, web};

use super::HttpCore;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body("ok")
}

async fn readyz(core: web::Data<HttpCore>) -> HttpResponse {
    let (mut response, body) = if core.storage.ready().await {
        (HttpResponse::Ok(), "ready")
    } else {
        (HttpResponse::ServiceUnavailable(), "database unavailable")
    };
    response
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}
