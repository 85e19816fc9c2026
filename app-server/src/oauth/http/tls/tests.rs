//! The shared TLS configuration against a real TLS server on loopback: a certificate the
//! system's roots do not vouch for is refused before any request goes out, and the same
//! configuration with that certificate trusted speaks HTTP/1.1 through reqwest.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::super::{HttpClient, HttpError};

/// A test root no system trusts, and a server certificate it issued for 127.0.0.1 and
/// localhost (both valid until 2126) with its key.
const ROOT: &[u8] = include_bytes!("../testdata/untrusted-root.der");
const LEAF: &[u8] = include_bytes!("../testdata/untrusted-leaf.der");
const KEY: &[u8] = include_bytes!("../testdata/untrusted-leaf-key.der");

/// Serves one TLS connection with the test certificate chain; answers whether the handshake
/// completed and, when it did, writes a 200 after the request head.
async fn serve_once() -> (u16, tokio::task::JoinHandle<bool>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(LEAF.to_vec()),
                CertificateDer::from(ROOT.to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return false;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        let _ = tls.shutdown().await;
        true
    });
    (port, served)
}

#[tokio::test]
async fn a_certificate_the_system_roots_do_not_vouch_for_is_refused() {
    let (port, served) = serve_once().await;
    let url = Url::parse(&format!(
        "https://127.0.0.1:{port}/.well-known/oauth-authorization-server"
    ))
    .unwrap();
    let err = HttpClient::for_tests()
        .get(&url, &HeaderMap::new())
        .await
        .unwrap_err();
    let HttpError::Certificate { host, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(host, "127.0.0.1");
    assert!(reason.contains("unknown issuer"), "{err}");
    assert!(err.to_string().contains("ca_certificates"), "{err}");
    assert!(!err.is_transient());
    assert!(!served.await.unwrap(), "the handshake must not complete");
}

#[tokio::test]
async fn the_configuration_with_the_certificate_trusted_completes_a_request() {
    let (port, served) = serve_once().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ROOT.to_vec())).unwrap();
    let config = super::with_roots(roots).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    let r = client
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(served.await.unwrap());
}

#[test]
fn the_process_configuration_is_built_once_and_trusts_the_system_roots() {
    let first = super::config().unwrap() as *const rustls::ClientConfig;
    let again = super::config().unwrap() as *const rustls::ClientConfig;
    assert_eq!(first, again);
    assert!(super::ready().is_some());
    assert!(!super::system_roots().unwrap().is_empty());
}

/// `der` as a PEM `CERTIFICATE` block.
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str("-----END CERTIFICATE-----\n");
    text.into_bytes()
}

#[tokio::test]
async fn a_server_with_ca_certificates_trusts_that_authority_besides_the_system_roots() {
    use crate::config::network::{PemFile, ServerNetwork};
    let bundle = PemFile::from_bytes(
        std::path::Path::new("/corp/ca.pem"),
        pem(ROOT),
        "CERTIFICATE",
    )
    .unwrap();
    let network = ServerNetwork {
        ca_certificates: Some(bundle),
        ..Default::default()
    };
    let (port, served) = serve_once().await;
    let url = Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let r = HttpClient::for_tests()
        .with_network(&network)
        .get(&url, &HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(served.await.unwrap());
    // Built once, kept: the next client for these settings does not read anything.
    assert!(super::ready_for(&network.tls()).is_some_and(|c| c.is_ok()));
    // The system's roots are still there.
    let config = super::config_for(&network.tls()).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

    // A bundle without a usable certificate: the error names the key and the file.
    let broken = ServerNetwork {
        ca_certificates: Some(
            PemFile::from_bytes(
                std::path::Path::new("/corp/broken.pem"),
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
                "CERTIFICATE",
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    let err = super::config_for(&broken.tls()).unwrap_err().to_string();
    assert!(
        err.contains("ca_certificates") && err.contains("/corp/broken.pem"),
        "{err}"
    );
}
