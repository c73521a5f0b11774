//! HTTPS for `serve` when the configuration names a certificate and key (otherwise the service speaks
//! plain HTTP behind a TLS-terminating proxy or load balancer).

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::BackendError;

/// Serves `app` over HTTPS/1.1 on `listener` until `shutdown` completes.
pub(crate) async fn serve_https(
    listener: TcpListener,
    app: axum::Router,
    files: &TlsFiles,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BackendError> {
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        BackendError::Config(format!("{}: {e}", what.display()))
    };
    let chain = CertificateDer::pem_file_iter(&files.certificate_chain)
        .map_err(|e| bad(&files.certificate_chain, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&files.certificate_chain, &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| bad(&files.private_key, &e))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BackendError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| BackendError::Config(format!("TLS certificate: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return Ok(()),
        };
        let Ok((tcp, _peer)) = accepted else {
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .http1_only()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// An HTTPS client (rustls with ring) trusting the public web roots and the CA certificates in
/// `extra_ca_file`, with `timeout` per request.
pub(crate) fn http_client(
    extra_ca_file: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, BackendError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| BackendError::Config(format!("{}: {e}", path.display())))?;
        for c in certificates {
            let c = c.map_err(|e| BackendError::Config(format!("{}: {e}", path.display())))?;
            roots
                .add(c)
                .map_err(|e| BackendError::Config(format!("{}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BackendError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BackendError::Config(format!("HTTP client: {e}")))
}

/// Whether `url` may be fetched: HTTPS anywhere, plain HTTP only on the loopback interface.
pub(crate) fn acceptable_url(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}
