//! TLS for the kit's listeners: test certificate authorities made in the process (their
//! keys never leave it), the server and client certificates they issue, and a listener that
//! serves the kit over TLS, optionally requiring a client certificate (mutual TLS).
//!
//! Every test authority is trusted by the kit's own HTTP clients (the headless browser),
//! never by the daemon: a test gives the daemon the authority it should trust.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// Roots of every test authority made in this process, for the kit's own clients.
static TEST_ROOTS: Mutex<Vec<CertificateDer<'static>>> = Mutex::new(Vec::new());

/// The test authorities' roots, as reqwest certificates.
pub(crate) fn test_roots() -> Vec<reqwest::Certificate> {
    crate::faults::lock(&TEST_ROOTS)
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect()
}

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

/// A certificate (with its issuer's after it) and its private key, in PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate then the authority's: what a server or client presents.
    pub chain_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
    /// SHA-256 of the certificate's DER (RFC 8705 `x5t#S256`, unencoded).
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new authority named `name` (its subject's common name).
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("generating a CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key).context("self-signing a CA")?;
        crate::faults::lock(&TEST_ROOTS).push(issuer.der().clone());
        Ok(Self { issuer })
    }

    /// The authority's certificate in PEM: what a client must trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses), valid from a day ago
    /// for a year.
    pub fn server(&self, names: &[&str]) -> anyhow::Result<IssuedCert> {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    /// [`TestCa::server`], but expired yesterday.
    pub fn expired_server(&self, names: &[&str]) -> anyhow::Result<IssuedCert> {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, true)
    }

    /// A client certificate whose subject's common name is `name`.
    pub fn client(&self, name: &str) -> anyhow::Result<IssuedCert> {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    /// A self-signed client certificate whose subject's common name is `name`, issued by
    /// no authority (RFC 8705 `self_signed_tls_client_auth`); `chain_pem` is that
    /// certificate alone. No kit client trusts it as a root.
    pub fn self_signed_client(name: &str) -> anyhow::Result<IssuedCert> {
        let key = KeyPair::generate().context("generating a key")?;
        let mut params = leaf_params(&[name], ExtendedKeyUsagePurpose::ClientAuth, false)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .self_signed(&key)
            .context("self-signing a certificate")?;
        Ok(IssuedCert {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            sha256: Sha256::digest(cert.der()).into(),
        })
    }

    fn issue(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> anyhow::Result<IssuedCert> {
        let key = KeyPair::generate().context("generating a key")?;
        let cert = leaf_params(names, usage, expired)?
            .signed_by(&key, &self.issuer)
            .context("signing a certificate")?;
        Ok(IssuedCert {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            sha256: Sha256::digest(cert.der()).into(),
        })
    }
}

/// A leaf certificate's parameters: `names` as subject alternative names, the first also
/// as the subject's common name; valid from a day ago for a year, or expired yesterday.
fn leaf_params(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> anyhow::Result<CertificateParams> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params.extended_key_usages = vec![usage];
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    (params.not_before, params.not_after) = if expired {
        (now - day * 30, now - day)
    } else {
        (now - day, now + day * 365)
    };
    Ok(params)
}

/// Which client certificates a listener asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientCerts {
    /// None.
    NotAsked,
    /// One issued by [`KitTls::client_ca_pem`], required (nothing asked without a CA).
    FromClientCa,
    /// Any certificate, optional: only the handshake signature is checked.
    AnyOptional,
    /// Any certificate, required: only the handshake signature is checked.
    AnyRequired,
}

/// How a kit serves TLS: its certificate, and the authority whose client certificates the
/// MCP server's listener requires (none: no client certificate asked for). The
/// authorization server's own listener never asks, so that a browser reaches it, unless
/// [`crate::KitConfig::mtls`] has it ask for an optional one.
#[derive(Clone, Debug)]
pub struct KitTls {
    pub server: IssuedCert,
    pub client_ca_pem: Option<String>,
}

impl KitTls {
    /// A server certificate for 127.0.0.1 and localhost from `ca`, no client certificate.
    pub fn from_ca(ca: &TestCa) -> anyhow::Result<Self> {
        Ok(Self {
            server: ca.server(&["127.0.0.1", "localhost"])?,
            client_ca_pem: None,
        })
    }

    /// The acceptor of a listener asking for `clients`.
    pub(crate) fn acceptor(
        &self,
        clients: ClientCerts,
    ) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = CertificateDer::pem_slice_iter(self.server.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("the kit's certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(self.server.key_pem.as_bytes())
            .context("the kit's key")?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let client_ca = self
            .client_ca_pem
            .as_deref()
            .filter(|_| clients == ClientCerts::FromClientCa);
        let builder = match (clients, client_ca) {
            (ClientCerts::AnyOptional | ClientCerts::AnyRequired, _) => {
                let mandatory = clients == ClientCerts::AnyRequired;
                builder.with_client_cert_verifier(Arc::new(crate::mtls::AnyClientCertificate::new(
                    &provider, mandatory,
                )))
            }
            (_, Some(pem)) => builder.with_client_cert_verifier(client_ca_verifier(pem)?),
            (_, None) => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// A verifier of certificates issued by the authority (or authorities) in `pem`.
pub(crate) fn client_ca_verifier(
    pem: &str,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.context("the client CA")?)?;
    }
    Ok(
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()?,
    )
}

/// Who is on the other end of a kit connection: its address and, over mutual TLS, the
/// certificates it presented.
#[derive(Clone, Debug)]
pub struct TlsPeer {
    pub addr: SocketAddr,
    /// SHA-256 of the DER of the client's own (leaf) certificate.
    pub client_certificate_sha256: Option<[u8; 32]>,
    /// DER of every certificate the client presented, its own first (empty: none).
    pub client_certificate_chain: Vec<Vec<u8>>,
}

/// Handshakes that may be under way at once, and completed ones waiting for the server.
const PENDING: usize = 64;
/// Time a client gets to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections are served once their TLS handshake succeeded.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into());
        let (tx, ready) = mpsc::channel(PENDING);
        let slots = Arc::new(tokio::sync::Semaphore::new(PENDING));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Ok((tcp, addr)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let Ok(Ok(tls)) = handshake.await else {
                        return;
                    };
                    let client_certificate_chain: Vec<Vec<u8>> = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .unwrap_or_default()
                        .iter()
                        .map(|cert| cert.to_vec())
                        .collect();
                    let peer = TlsPeer {
                        addr,
                        client_certificate_sha256: client_certificate_chain
                            .first()
                            .map(|leaf| Sha256::digest(leaf).into()),
                        client_certificate_chain,
                    };
                    let _ = tx.send((tls, peer)).await;
                });
            }
        });
        Self {
            ready,
            local,
            accepting,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            addr: self.local,
            client_certificate_sha256: None,
            client_certificate_chain: Vec::new(),
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}
