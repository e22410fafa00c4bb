//! `dataplane webhook`: the Kubernetes validating admission webhook for `NetworkPolicyRule`,
//! over HTTPS (`POST /validate`, `GET /healthz`). The decision itself is
//! [`super::admission::review`]; this module is the server around it: TLS (certificate files
//! re-read when they change, as cert-manager rotates them), a body limit, timeouts, and the
//! optional `--rules DIR` (the desired set, re-read when a file in it changes).
//!
//! No side effects: a review reads the request and the rule files, nothing else.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::admission::{review, BadReview};
use super::http::{self, stamp, Stamp};
use crate::policy::{load_rule_set, RuleSet};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The API server sends at most 3 MiB objects (etcd's request limit); a review wraps one or two.
pub const MAX_BODY_BYTES: usize = 7 << 20;
/// A whole request (body read and review) must finish in this; the API server's own webhook
/// timeout is at most 30 s (10 s in our ValidatingWebhookConfiguration).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Address to listen on (HTTPS), e.g. 0.0.0.0:8443. Port 0 picks a free port; the address
    /// bound is printed as `listening on https://ADDR`.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Certificate chain (PEM), re-read when the file changes.
    #[arg(long)]
    pub tls_cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1), re-read when the file changes.
    #[arg(long)]
    pub tls_key: PathBuf,
    /// The rest of the desired rule set (files or directories, e.g. the GitOps checkout):
    /// each admitted rule must compile together with them, and warnings name rules it shadows
    /// or is shadowed by, or overlaps with the opposite action. Re-read when a file changes.
    #[arg(long, num_args = 1..)]
    pub rules: Vec<PathBuf>,
}

/// Errors that stop the webhook before it serves (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(String),
    #[error("--rules: {0}")]
    Rules(String),
    #[error("--listen {addr}: {error}")]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// Run the webhook until the process is killed.
pub fn run(args: &WebhookArgs) -> Result<(), WebhookError> {
    let acceptor = http::tls_acceptor(&args.tls_cert, &args.tls_key).map_err(WebhookError::Tls)?;
    let others = Arc::new(OtherRules::load(&args.rules).map_err(WebhookError::Rules)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(WebhookError::Runtime)?;
    let addr = args.listen;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|error| WebhookError::Listen { addr, error })?;
        let bound = listener.local_addr().map_err(|error| WebhookError::Listen { addr, error })?;
        crate::out!("listening on https://{bound}");
        http::serve(listener, Some(acceptor), router(others), "webhook").await;
        Ok(())
    })
}

fn router(others: Arc<OtherRules>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        // Refuses an announced length over the limit at once, and stops a chunked body there.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .with_state(others)
}

async fn validate(State(others): State<Arc<OtherRules>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" {
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json\n").into_response();
        }
    }
    // Parsing and compiling against a large --rules set is CPU work: off the I/O thread.
    let decided = tokio::task::spawn_blocking(move || {
        let set = others.current();
        review(&body, set.as_deref())
    })
    .await;
    match decided {
        Ok(Ok(out)) => axum::Json(out).into_response(),
        Ok(Err(BadReview(reason))) => (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("review failed: {e}\n")).into_response(),
    }
}

/// Modification time and length of every file that makes up a source, to notice changes.
/// The `--rules` set, re-loaded when its files change. A set that no longer loads is reported
/// on stderr and the last good one stays in use.
struct OtherRules {
    paths: Vec<PathBuf>,
    state: Mutex<(Stamp, Option<Arc<RuleSet>>)>,
}

impl OtherRules {
    fn load(paths: &[PathBuf]) -> Result<OtherRules, String> {
        let stamp = stamp(paths);
        let set =
            if paths.is_empty() { None } else { Some(Arc::new(load_rule_set(paths).map_err(|e| e.to_string())?)) };
        Ok(OtherRules { paths: paths.to_vec(), state: Mutex::new((stamp, set)) })
    }

    fn current(&self) -> Option<Arc<RuleSet>> {
        if self.paths.is_empty() {
            return None;
        }
        let now = stamp(&self.paths);
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.0 != now {
            match load_rule_set(&self.paths) {
                Ok(set) => state.1 = Some(Arc::new(set)),
                Err(e) => eprintln!("webhook: --rules no longer loads, keeping the previous set:\n{e}"),
            }
            state.0 = now;
        }
        state.1.clone()
    }
}
