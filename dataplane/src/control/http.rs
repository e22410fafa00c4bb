//! The HTTP(S) server under the control API and the admission webhook: one accept loop on
//! a tokio current-thread runtime, a bounded number of connections, header and TLS handshake
//! timeouts, optional TLS (rustls) whose certificate files are re-read when they change.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 256;

/// A TLS acceptor serving the PEM certificate chain `cert` with the private key `key`.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certs = Arc::new(CertFiles::load(cert, key)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until the runtime stops.
/// `name` prefixes the rare accept errors.
pub async fn serve(listener: tokio::net::TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, app: Router, name: &str) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => {
                // Answers are small and written at once: no Nagle delay before the last segment.
                let _ = tcp.set_nodelay(true);
                tcp
            }
            Err(e) => {
                eprintln!("{name}: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper_util::service::TowerToHyperService::new(app);
            let http = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .clone();
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                        return;
                    };
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                }
                None => {
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

/// Modification stamps of files (and of the files in directories), to notice changes.
pub type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

pub fn stamp(paths: &[PathBuf]) -> Stamp {
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
                Err(e) => eprintln!("control: keeping the previous TLS certificate: {e}"),
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
