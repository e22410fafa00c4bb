//! The control thread: a tokio current-thread runtime serving the API over HTTP/1.1 (or
//! HTTPS with rustls), plus the SIGHUP reload.
//!
//! The thread is spawned from the main thread, so it inherits the main lcore's CPU affinity
//! and never runs on a worker core (nor do the blocking threads it spawns for applies).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{Notify, Semaphore};

use super::apply::{Applier, Change};

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// A bound listening socket and its TLS settings, made before anything starts so that a bad
/// address, port in use or bad certificate is a configuration error.
pub struct Bound {
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    pub addr: SocketAddr,
}

impl Bound {
    pub fn new(addr: SocketAddr, tls: Option<(&Path, &Path)>) -> Result<Bound, (&'static str, String)> {
        let tls = match tls {
            Some((cert, key)) => Some(Arc::new(tls_config(cert, key)?)),
            None => None,
        };
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| ("control.listen", format!("binding {addr}: {e}")))?;
        listener.set_nonblocking(true).map_err(|e| ("control.listen", e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| ("control.listen", e.to_string()))?;
        Ok(Bound { listener, tls, addr })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, (&'static str, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ("control.tls_cert", format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(("control.tls_cert", format!("{}: no certificate in the file", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ("control.tls_key", format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("control.tls_cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ("control.tls_key", format!("the key does not fit the certificate: {e}")))
}

/// What the control thread runs.
pub struct Serve {
    pub bound: Bound,
    pub router: axum::Router,
    pub applier: Arc<Applier>,
    /// Per-request limit, also bounding request headers and the TLS handshake.
    pub timeout: Duration,
    /// Set by SIGHUP: reload these rule files through the apply path.
    pub sighup: Arc<AtomicBool>,
    pub rule_paths: Vec<PathBuf>,
    pub shutdown: Arc<Notify>,
}

/// Spawns the control thread.
pub fn spawn(serve: Serve) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("control".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("control: starting the runtime: {e}");
                return;
            }
        };
        rt.block_on(run(serve));
        // An apply still running on a blocking thread finishes (it is bounded by the adopt
        // timeout) or is abandoned after this.
        rt.shutdown_timeout(Duration::from_secs(5));
    })
}

async fn run(serve: Serve) {
    let Serve { bound, router, applier, timeout, sighup, rule_paths, shutdown } = serve;
    let listener = match tokio::net::TcpListener::from_std(bound.listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("control: {e}");
            return;
        }
    };
    let acceptor = bound.tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut hup = tokio::time::interval(Duration::from_millis(100));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.notified() => return,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("control: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.notified() => return,
            _ = hup.tick() => {
                if sighup.swap(false, Ordering::Relaxed) {
                    reload(&applier, &rule_paths).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(timeout);
            match acceptor {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    if let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        let _ = http.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
            }
        });
    }
}

/// SIGHUP: the config's rule files, through the same validation and apply path.
async fn reload(applier: &Arc<Applier>, paths: &[PathBuf]) {
    match applier.apply(Change::ReloadFiles(paths.to_vec()), None).await {
        Ok(a) if a.unchanged => crate::out!("control: SIGHUP: rule files unchanged (generation {})", a.generation),
        Ok(a) => crate::out!(
            "control: SIGHUP: reloaded {} rules as generation {} ({}), compile {} ms, activate {} ms",
            a.rules,
            a.generation,
            a.digest,
            a.compile_ms,
            a.activate_ms
        ),
        Err(super::apply::ApplyError::Invalid(errors)) => {
            eprintln!("control: SIGHUP: the rule files were rejected; the active set stays in force:");
            for e in errors {
                eprintln!("  {e}");
            }
        }
        Err(e) => eprintln!("control: SIGHUP: reload failed: {e:?}"),
    }
}
