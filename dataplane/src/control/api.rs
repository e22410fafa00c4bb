//! The HTTP control API (see the README's "Control API"): rule updates with atomic
//! generations, the active set, status, Prometheus metrics, packet capture (`capture.rs`).
//! Bodies are rule documents in the formats rule files use (YAML or JSON); answers are JSON.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::apply::{ApplyError, Store};
use super::metrics;
use super::plane::ApiState;
use super::top::{self, TopQuery};
use crate::counters::Owner;
use crate::policy::{parse_rules, rule_set_from_str, RuleError, RuleSet};

pub fn router(api: Arc<ApiState>) -> Router {
    let (max_body, timeout) = (api.max_body, api.request_timeout);
    Router::new()
        .route("/v1/rules", get(get_rules).put(put_rules).post(post_rules))
        .route("/v1/rules/{name}", delete(delete_rule))
        .route("/v1/status", get(status))
        .route("/v1/top", get(top))
        .route("/metrics", get(prometheus))
        .route("/v1/capture", get(super::capture::start))
        .route("/v1/capture/last", get(super::capture::last))
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .with_state(api)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// With a token configured, every request must carry it (401 otherwise).
async fn authorize(State(api): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let given = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        if !token.accepts(given) {
            let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyQuery {
    /// The generation to activate as (monotonic): not above the active one is 409.
    generation: Option<u64>,
}

fn invalid(errors: Vec<RuleError>) -> Response {
    let errors: Vec<_> =
        errors.into_iter().map(|e| json!({"rule": e.rule, "field": e.field, "message": e.message})).collect();
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": errors }))).into_response()
}

/// Waits for the one apply in progress (at most `apply_wait`), then runs `f` on the store on
/// a blocking thread: compiling and waiting for the workers never stall the runtime, which
/// keeps answering `/metrics` and `/v1/status` meanwhile.
async fn with_store<F>(api: &Arc<ApiState>, f: F) -> Response
where
    F: FnOnce(&mut Store, &ApiState) -> Result<Response, ApplyError> + Send + 'static,
{
    let Ok(mut store) = tokio::time::timeout(api.apply_wait, api.store.clone().lock_owned()).await else {
        metrics::applied(429);
        return error(StatusCode::TOO_MANY_REQUESTS, "another rule update is in progress; try again");
    };
    let sh = api.clone();
    let response = match tokio::task::spawn_blocking(move || f(&mut store, &sh)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => apply_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("apply task: {e}")),
    };
    metrics::applied(response.status().as_u16());
    response
}

/// Parses a request body on a blocking thread (a 100k-rule body takes tens of ms). Returns
/// what it parsed and how long parsing took.
async fn parse_off_runtime<T: Send + 'static>(
    body: Bytes,
    parse: impl FnOnce(&str) -> Result<T, crate::policy::RuleErrors> + Send + 'static,
) -> Result<(T, Duration), Response> {
    let parsed = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        match std::str::from_utf8(&body) {
            Ok(text) => Ok(parse(text).map(|v| (v, started.elapsed()))),
            Err(e) => Err(format!("the body is not UTF-8: {e}")),
        }
    })
    .await;
    match parsed {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => {
            metrics::applied(422);
            Err(invalid(e.0))
        }
        Ok(Err(message)) => Err(error(StatusCode::BAD_REQUEST, message)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("parse task: {e}"))),
    }
}

fn apply_error(e: ApplyError) -> Response {
    match e {
        ApplyError::Invalid(errors) => invalid(errors),
        ApplyError::Conflict { requested, active } => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("generation {requested} is not above the active generation {active}"),
                "generation": active,
            })),
        )
            .into_response(),
        ApplyError::NotFound(name) => error(StatusCode::NOT_FOUND, format!("no rule named {name:?}")),
        ApplyError::NotAdopted { generation, adopted } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": format!("generation {generation} is published but not every worker runs it yet"),
                "generation": generation,
                "adopted": adopted,
            })),
        )
            .into_response(),
    }
}

/// Applies `rules`; `parsed` is the time spent turning the request into them (reported).
fn apply(
    store: &mut Store,
    api: &ApiState,
    rules: RuleSet,
    generation: Option<u64>,
    parsed: Duration,
) -> Result<Response, ApplyError> {
    let mut applied = store.apply(&api.workers, rules, generation)?;
    applied.parse_ms = parsed.as_secs_f64() * 1e3;
    Ok(Json(applied).into_response())
}

/// `PUT /v1/rules[?generation=N]`: the complete rule set.
async fn put_rules(State(api): State<Arc<ApiState>>, Query(q): Query<ApplyQuery>, body: Bytes) -> Response {
    let (rules, parsed) = match parse_off_runtime(body, |t| rule_set_from_str(t, "")).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    with_store(&api, move |store, api| apply(store, api, rules, q.generation, parsed)).await
}

/// `POST /v1/rules[?generation=N]`: rules added, or replacing those of the same name.
async fn post_rules(State(api): State<Arc<ApiState>>, Query(q): Query<ApplyQuery>, body: Bytes) -> Response {
    let (new, parsed) = match parse_off_runtime(body, |t| parse_rules(t, "")).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    with_store(&api, move |store, api| {
        let started = Instant::now();
        let rules = store.upserted(new)?;
        apply(store, api, rules, q.generation, parsed + started.elapsed())
    })
    .await
}

/// `DELETE /v1/rules/{name}[?generation=N]`.
async fn delete_rule(
    State(api): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Query(q): Query<ApplyQuery>,
) -> Response {
    with_store(&api, move |store, api| {
        let started = Instant::now();
        let rules = store.without(&name)?;
        apply(store, api, rules, q.generation, started.elapsed())
    })
    .await
}

/// `GET /v1/rules`: the active set (canonical documents), its generation and digest.
async fn get_rules(State(api): State<Arc<ApiState>>) -> Response {
    let store = api.store.lock().await;
    let a = &store.active;
    let body = format!(
        "{{\"generation\":{},\"digest\":{},\"rules\":{}}}",
        a.generation,
        serde_json::Value::String(a.digest.clone()),
        a.json()
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /v1/status`: per worker the generation it runs and its counters; ports and links.
async fn status(State(api): State<Arc<ApiState>>) -> Response {
    let adopted = api.workers.adopted();
    let workers: Vec<_> = api
        .workers
        .counters()
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let mut worker = json!({
                "worker": k,
                "lcore": api.workers.lcores().get(k),
                "generation": adopted.get(k),
            });
            for (c, value) in w.iter().filter(|(c, _)| c.def().owner != Owner::Distributor) {
                insert_at(&mut worker, c.def().json, value);
            }
            worker
        })
        .collect();
    let ports: Vec<_> = match api.view.lock() {
        Ok(v) => v
            .ports
            .iter()
            .enumerate()
            .map(|(i, (id, name))| {
                let st = v.snapshot.as_ref().and_then(|s| s.ports.get(i).copied().flatten());
                let link = v.links.get(i).copied().flatten();
                json!({
                    "port": id,
                    "name": name,
                    "link_up": link.map(|l| l.up),
                    "speed_mbps": link.map(|l| l.speed_mbps),
                    "rx_packets": st.map(|s| s.ipackets),
                    "tx_packets": st.map(|s| s.opackets),
                    "rx_missed": st.map(|s| s.imissed),
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let (generation, digest, rules) = {
        let store = api.store.lock().await;
        (store.active.generation, store.active.digest.clone(), store.active.rules.len())
    };
    // Per rule with `spec.limit`: new connections it limited since start.
    let limited: serde_json::Map<String, serde_json::Value> =
        api.workers.rule_limited().into_iter().map(|(name, n)| (name, n.into())).collect();
    Json(json!({
        "uptime_s": api.started.elapsed().as_secs_f64(),
        "generation": generation,
        "digest": digest,
        "rules": rules,
        "rule_connections_limited": limited,
        "workers": workers,
        "ports": ports,
    }))
    .into_response()
}

/// Sets `value` at a dotted `path` (`drops.policy`) of a JSON object.
fn insert_at(object: &mut serde_json::Value, path: &str, value: u64) {
    let mut at = object;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        let Some(map) = at.as_object_mut() else { return };
        if keys.peek().is_none() {
            map.insert(key.to_owned(), value.into());
            return;
        }
        at = map.entry(key).or_insert_with(|| json!({}));
    }
}

/// `GET /v1/top?by=connections|hellos|drops&limit=N`: the heaviest sources, merged over the
/// workers (`control::top`); 400 naming the query field at fault.
async fn top(State(api): State<Arc<ApiState>>, Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let q = match TopQuery::from_pairs(&pairs) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match api.top.lock() {
        Ok(board) => Json(top::to_json(board.top(q.by, q.limit), q.by)).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "top: a merge panicked"),
    }
}

/// `GET /metrics`: Prometheus text.
async fn prometheus(State(api): State<Arc<ApiState>>) -> Response {
    // The generation as of this request (the counters are copied a few times a second).
    ::metrics::gauge!("dataplane_policy_generation").set(api.workers.generation() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], api.metrics.render()).into_response()
}
