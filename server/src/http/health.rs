//! Probes: `/livez` says the process serves; `/readyz` that the database answers and every
//! migration is applied.

use super::AppState;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

#[get("/livez")]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ready().await {
        Ok(()) => {
            HttpResponse::Ok().json(json!({"status": "ok", "database": state.store.backend()}))
        }
        Err(e) => {
            // The cause goes to the log only: this endpoint needs no token.
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
