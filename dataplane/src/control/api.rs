//! The HTTP API: routes, handlers, the bearer-token check, body limit and request timeout.
//!
//! ```text
//! PUT    /v1/rules[?generation=N]   a complete rule set (YAML or JSON)      -> 200 Applied | 409 | 422 | 429
//! POST   /v1/rules[?generation=N]   upsert rules by name                     -> same
//! DELETE /v1/rules/{name}[?generation=N]                                     -> same, 404 for an unknown name
//! GET    /v1/rules                  {"generation","digest","rules":[...]}
//! GET    /v1/status                 per worker, per port, uptime
//! GET    /metrics                   Prometheus text
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::apply::{Applier, ApplyError, Change};
use super::auth::Token;
use super::canonical;
use super::metrics::Metrics;
use crate::dpdk::{Link, PortStats};
use crate::policy::RuleError;
use crate::worker::counter;

/// What the main thread last saw of the ports (refreshed about once a second).
#[derive(Clone, Debug, Default)]
pub struct PortsView {
    /// (port id, device name), in config order.
    pub ports: Vec<(u16, String)>,
    pub links: Vec<Option<Link>>,
    pub stats: Vec<Option<PortStats>>,
    /// The software distributor's counters.
    pub distributor: Option<[u64; counter::COUNT]>,
}

/// Everything a handler needs.
pub struct ApiState {
    pub applier: Arc<Applier>,
    pub metrics: Arc<Metrics>,
    pub token: Option<Token>,
    pub ports: Arc<Mutex<PortsView>>,
    /// When the workers started.
    pub started: Instant,
}

/// The router with its limits: bodies over `max_body` get 413, requests over `timeout` 408.
pub fn router(state: Arc<ApiState>, max_body: usize, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/rules", get(get_rules).put(put_rules).post(post_rules))
        .route("/v1/rules/{name}", axum::routing::delete(delete_rule))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .with_state(state)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn authorize(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        if !token.accepts(given) {
            state.metrics.record_unauthorized();
            let mut r = error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token".into());
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

/// `?generation=N` (the only parameter).
fn generation_param(query: Option<&str>) -> Result<Option<u64>, String> {
    let mut generation = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "generation" => match value.parse::<u64>() {
                Ok(g) => generation = Some(g),
                Err(_) => return Err(format!("generation: {value:?} is not a non-negative integer")),
            },
            _ => return Err(format!("unknown query parameter {key:?}")),
        }
    }
    Ok(generation)
}

fn body_text(body: Bytes) -> Result<String, String> {
    String::from_utf8(body.to_vec()).map_err(|e| format!("the body is not UTF-8: {e}"))
}

async fn run_apply(state: &ApiState, change: Change, query: Option<String>) -> Response {
    let generation = match generation_param(query.as_deref()) {
        Ok(g) => g,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.applier.apply(change, generation).await {
        Ok(applied) => (StatusCode::OK, Json(applied)).into_response(),
        Err(e) => apply_error(e),
    }
}

fn apply_error(e: ApplyError) -> Response {
    match e {
        ApplyError::Invalid(errors) => {
            #[derive(Serialize)]
            struct Errors {
                errors: Vec<RuleError>,
            }
            (StatusCode::UNPROCESSABLE_ENTITY, Json(Errors { errors })).into_response()
        }
        ApplyError::NotFound(name) => error(StatusCode::NOT_FOUND, format!("no rule named {name:?}")),
        ApplyError::Conflict { active, requested } => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("generation {requested} is not above the active generation {active}"),
                "generation": active,
            })),
        )
            .into_response(),
        ApplyError::Busy => error(StatusCode::TOO_MANY_REQUESTS, "another apply is in progress".into()),
        ApplyError::NotAdopted { generation, adopted } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": format!("generation {generation} was published but not every worker runs it yet"),
                "generation": generation,
                "adopted": adopted,
            })),
        )
            .into_response(),
        ApplyError::Internal(message) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

async fn put_rules(State(state): State<Arc<ApiState>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    match body_text(body) {
        Ok(text) => run_apply(&state, Change::Replace(text), query).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn post_rules(State(state): State<Arc<ApiState>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    match body_text(body) {
        Ok(text) => run_apply(&state, Change::Upsert(text), query).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn delete_rule(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    run_apply(&state, Change::Delete(name), query).await
}

async fn get_rules(State(state): State<Arc<ApiState>>) -> Response {
    let active = state.applier.active();
    #[derive(Serialize)]
    struct Out<'a> {
        generation: u64,
        digest: &'a str,
        rules: Vec<canonical::Document<'a>>,
    }
    let out = Out { generation: active.generation, digest: &active.digest, rules: canonical::documents(&active.rules) };
    (StatusCode::OK, Json(out)).into_response()
}

async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let active = state.applier.active();
    let workers = state.applier.workers();
    let adopted = workers.adopted();
    let get = |c: &[u64; counter::COUNT], i: usize| c.get(i).copied().unwrap_or(0);
    let worker_list: Vec<serde_json::Value> = workers
        .counters()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            json!({
                "worker": k,
                "lcore": workers.lcores().get(k),
                "generation": adopted.get(k),
                "rx": get(c, counter::RX),
                "tx": get(c, counter::TX),
                "drops": {
                    "policy": get(c, counter::DROP_POLICY),
                    "malformed": get(c, counter::DROP_MALFORMED),
                    "tx_full": get(c, counter::DROP_TX_FULL),
                },
                "flows": get(c, counter::FLOWS),
            })
        })
        .collect();
    let view = state.ports.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ports: Vec<serde_json::Value> = view
        .ports
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            let link = view.links.get(i).copied().flatten().map(
                |l| json!({"up": l.up, "speed_mbps": l.speed_mbps, "full_duplex": l.full_duplex, "autoneg": l.autoneg}),
            );
            let stats = view.stats.get(i).copied().flatten().map(|s| {
                json!({
                    "rx": s.ipackets, "tx": s.opackets, "rx_bytes": s.ibytes, "tx_bytes": s.obytes,
                    "rx_missed": s.imissed, "rx_errors": s.ierrors, "tx_errors": s.oerrors, "rx_nombuf": s.rx_nombuf,
                })
            });
            json!({"port": id, "name": name, "link": link, "stats": stats})
        })
        .collect();
    let distributor = view
        .distributor
        .map(|d| json!({"rx": get(&d, counter::RX), "drops_ring_full": get(&d, counter::DROP_RING_FULL)}));
    let uptime = (state.started.elapsed().as_secs_f64() * 1e3).round() / 1e3;
    let body = json!({
        "generation": active.generation,
        "digest": active.digest,
        "rules": active.rules.len(),
        "uptime_s": uptime,
        "workers": worker_list,
        "ports": ports,
        "distributor": distributor,
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text)
        .into_response()
}
