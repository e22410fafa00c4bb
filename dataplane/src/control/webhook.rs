//! `dataplane webhook`: the Kubernetes validating admission webhook for `NetworkPolicyRule`,
//! over HTTPS (`POST /validate`, `GET /healthz`). The decision itself is
//! [`super::admission::review`]; this module is the server around it: TLS (certificate files
//! re-read when they change, as cert-manager rotates them), a body limit, timeouts, and the
//! optional `--rules DIR` (the desired set, re-read when a file in it changes).
//!
//! No side effects: a review reads the request and the rule files, nothing else.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::admission::{review, BadReview};
use crate::policy::{load_rule_set, RuleSet};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The API server sends at most 3 MiB objects (etcd's request limit); a review wraps one or two.
pub const MAX_BODY_BYTES: usize = 7 << 20;
/// A whole request (body read and review) must finish in this; the API server's own webhook
/// timeout is at most 30 s (10 s in our ValidatingWebhookConfiguration).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 256;

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
    let certs = Arc::new(CertFiles::load(&args.tls_cert, &args.tls_key).map_err(WebhookError::Tls)?);
    let others = Arc::new(OtherRules::load(&args.rules).map_err(WebhookError::Rules)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(WebhookError::Runtime)?;
    runtime.block_on(serve(args.listen, acceptor, router(others)))
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

async fn serve(addr: SocketAddr, acceptor: tokio_rustls::TlsAcceptor, app: Router) -> Result<(), WebhookError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| WebhookError::Listen { addr, error })?;
    let bound = listener.local_addr().map_err(|error| WebhookError::Listen { addr, error })?;
    crate::out!("listening on https://{bound}");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return Ok(()) };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                eprintln!("webhook: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                _ => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
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
type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    let mut out = Vec::new();
    for path in paths {
        let mut files = vec![path.clone()];
        if path.is_dir() {
            files = std::fs::read_dir(path)
                .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.sort();
        }
        for file in files {
            let meta = std::fs::metadata(&file).ok();
            out.push((
                file,
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map(|m| m.len()).unwrap_or(u64::MAX),
            ));
        }
    }
    out
}

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

/// The serving certificate, re-read at the next handshake after either file changes.
#[derive(Debug)]
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl CertFiles {
    fn load(cert: &Path, key: &Path) -> Result<CertFiles, String> {
        let paths = [cert.to_path_buf(), key.to_path_buf()];
        let stamp = stamp(&paths);
        let certified = read_certified_key(cert, key)?;
        Ok(CertFiles { cert: cert.to_path_buf(), key: key.to_path_buf(), state: Mutex::new((stamp, certified)) })
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = stamp(&[self.cert.clone(), self.key.clone()]);
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.0 != now {
            match read_certified_key(&self.cert, &self.key) {
                Ok(k) => {
                    state.1 = k;
                    state.0 = now;
                }
                // Mid-rotation (certificate written, key not yet): try again next time.
                Err(e) => eprintln!("webhook: keeping the previous certificate: {e}"),
            }
        }
        Some(state.1.clone())
    }
}

fn read_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| format!("{}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| format!("{} does not match {}: {e}", key.display(), cert.display()))?;
    Ok(Arc::new(certified))
}
