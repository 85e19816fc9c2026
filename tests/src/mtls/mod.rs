//! Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705): what a
//! connection presented, the checks of the two client authentication methods, the token
//! bindings, and the endpoint alias listener.

mod dn;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::KitConfig;
use crate::counters::bump;
use crate::faults::lock;
use crate::kit::Shared;
use crate::store::{AuthMethod, Client, IssuedTokens};
use crate::tls::TlsPeer;

pub(crate) use dn::subject_dn;

/// Accepts any client certificate whose owner proves it holds the key (the handshake
/// signature); which certificate is acceptable is for the endpoints to judge.
#[derive(Debug)]
pub(crate) struct AnyClientCertificate {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCertificate {
    pub(crate) fn new(provider: &CryptoProvider, mandatory: bool) -> Self {
        Self {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Marks the requests of the endpoint alias listener.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AtAlias;

/// What the connection of a request presented: its TLS peer (none on a plain HTTP kit) and
/// whether it reached the endpoint alias listener.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connection {
    pub peer: Option<TlsPeer>,
    pub at_alias: bool,
}

impl Connection {
    /// SHA-256 of the client certificate the connection presented.
    pub(crate) fn certificate_sha256(&self) -> Option<[u8; 32]> {
        self.peer.as_ref()?.client_certificate_sha256
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self {
            peer: parts
                .extensions
                .get::<ConnectInfo<TlsPeer>>()
                .map(|info| info.0.clone()),
            at_alias: parts.extensions.get::<AtAlias>().is_some(),
        })
    }
}

/// Logs every request of the alias listener and marks it as such.
pub(crate) async fn alias_request(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let line = format!("{} {}", request.method(), request.uri().path());
    lock(&shared.records).mtls_alias_requests.push(line);
    request.extensions_mut().insert(AtAlias);
    next.run(request).await
}

/// `token_endpoint_auth_methods_supported`: the configured methods and the RFC 8705 ones
/// the kit offers.
pub(crate) fn auth_methods(config: &KitConfig) -> Vec<String> {
    let mut methods = config.token_endpoint_auth_methods.clone();
    if let Some(mtls) = &config.mtls {
        for (on, name) in [
            (mtls.tls_client_auth, "tls_client_auth"),
            (
                mtls.self_signed_tls_client_auth,
                "self_signed_tls_client_auth",
            ),
        ] {
            if on && !methods.iter().any(|m| m == name) {
                methods.push(name.to_owned());
            }
        }
    }
    methods
}

const NO_CERTIFICATE: &str = "the client authenticates with a TLS client certificate (RFC 8705) \
     but the connection presented none: connect with the client's certificate";

/// RFC 8705 2: the client certificate of the connection authenticates `client` (a
/// `tls_client_auth` or `self_signed_tls_client_auth` client); otherwise why not, and the
/// failure is counted.
pub(crate) fn check_client_certificate(
    s: &Shared,
    client: &Client,
    conn: &Connection,
) -> Result<(), String> {
    let checked = match client.auth_method {
        AuthMethod::SelfSignedTlsClientAuth => check_self_signed(client, conn),
        AuthMethod::TlsClientAuth => check_pki(s, client, conn),
        _ => Ok(()),
    };
    if checked.is_err() {
        bump(&s.counters.mtls_client_auth_failures);
    }
    checked
}

fn check_self_signed(client: &Client, conn: &Connection) -> Result<(), String> {
    let presented = conn.certificate_sha256().ok_or(NO_CERTIFICATE)?;
    match client.tls_client_certificate_sha256 {
        Some(registered) if registered == presented => Ok(()),
        _ => Err(
            "the client certificate is not the one registered for this client \
             (self_signed_tls_client_auth compares its SHA-256)"
                .to_owned(),
        ),
    }
}

fn check_pki(s: &Shared, client: &Client, conn: &Connection) -> Result<(), String> {
    let chain = conn
        .peer
        .as_ref()
        .map(|p| p.client_certificate_chain.as_slice())
        .unwrap_or_default();
    let (leaf, intermediates) = chain.split_first().ok_or(NO_CERTIFICATE)?;
    let pem = s
        .config
        .tls
        .as_ref()
        .and_then(|tls| tls.client_ca_pem.as_deref())
        .ok_or("this server has no client CA to verify tls_client_auth certificates with")?;
    let verifier = crate::tls::client_ca_verifier(pem)
        .map_err(|error| format!("the server's client CA is unusable: {error:#}"))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    verifier
        .verify_client_cert(
            &CertificateDer::from(leaf.as_slice()),
            &intermediates,
            UnixTime::now(),
        )
        .map_err(|error| {
            format!(
                "the client certificate does not verify against this server's client CA: {error}"
            )
        })?;
    let subject = subject_dn(leaf).ok_or("the client certificate's subject cannot be read")?;
    let registered = client.tls_client_auth_subject_dn.as_deref().unwrap_or("");
    if dn::normalize(&subject) != dn::normalize(registered) {
        return Err(format!(
            "the client certificate's subject {subject:?} is not the registered \
             tls_client_auth_subject_dn {registered:?}"
        ));
    }
    Ok(())
}

/// Tokens bound to the SHA-256 of a client certificate (RFC 8705 3), access and refresh.
pub(crate) type Bindings = HashMap<String, [u8; 32]>;

/// Binds what a token request issued to the certificate its connection presented, when the
/// kit binds tokens.
pub(crate) fn bind_issued(s: &Shared, conn: &Connection, issued: &IssuedTokens) {
    let binds = s.config.mtls.as_ref().is_some_and(|m| m.bound_tokens);
    let Some(sha256) = conn.certificate_sha256().filter(|_| binds) else {
        return;
    };
    let mut bound = lock(&s.certificate_bindings);
    bound.insert(issued.access_token.clone(), sha256);
    if let Some(refresh) = &issued.refresh_token {
        bound.insert(refresh.clone(), sha256);
    }
}

/// Why a bound token cannot be used on this connection (it did not present the token's
/// certificate); `Ok` for unbound tokens.
pub(crate) fn check_binding(
    s: &Shared,
    token: &str,
    conn: &Connection,
) -> Result<(), &'static str> {
    let Some(bound) = lock(&s.certificate_bindings).get(token).copied() else {
        return Ok(());
    };
    match conn.certificate_sha256() {
        None => Err(
            "the token is bound to a client certificate (RFC 8705) and the connection presented none",
        ),
        Some(presented) if presented != bound => {
            Err("the token is bound to another client certificate (RFC 8705)")
        }
        Some(_) => Ok(()),
    }
}

impl crate::Kit {
    /// `https://127.0.0.1:P` of the listener serving the RFC 8705 endpoint aliases
    /// ([`crate::KitMtls::aliases`]).
    pub fn mtls_origin(&self) -> Option<String> {
        self.shared.urls.mtls_origin.clone()
    }

    /// `METHOD /path` of every request the alias listener received, in order.
    pub fn mtls_alias_requests(&self) -> Vec<String> {
        lock(&self.shared.records).mtls_alias_requests.clone()
    }

    /// SHA-256 of the client certificate an access (or refresh) token is bound to, if it is.
    pub fn certificate_binding(&self, access_token: &str) -> Option<[u8; 32]> {
        lock(&self.shared.certificate_bindings)
            .get(access_token)
            .copied()
    }
}

/// The TLS acceptors of a kit's listeners: the MCP server's (also the authorization
/// server's when they share it), the authorization server's, and the endpoint alias
/// listener's (`None` without aliases). All `None` without TLS.
pub(crate) struct Acceptors {
    pub rs: Option<tokio_rustls::TlsAcceptor>,
    pub authorization: Option<tokio_rustls::TlsAcceptor>,
    pub alias: Option<tokio_rustls::TlsAcceptor>,
}

pub(crate) fn acceptors(config: &KitConfig) -> anyhow::Result<Acceptors> {
    use crate::tls::ClientCerts;
    let Some(tls) = &config.tls else {
        return Ok(Acceptors {
            rs: None,
            authorization: None,
            alias: None,
        });
    };
    let mtls = config.mtls.as_ref();
    let rs = match mtls {
        Some(_) if tls.client_ca_pem.is_none() => ClientCerts::AnyOptional,
        _ => ClientCerts::FromClientCa,
    };
    let aliases = mtls.is_some_and(|m| m.aliases);
    let authorization = match mtls {
        Some(_) if !aliases => ClientCerts::AnyOptional,
        _ => ClientCerts::NotAsked,
    };
    Ok(Acceptors {
        rs: Some(tls.acceptor(rs)?),
        authorization: Some(tls.acceptor(authorization)?),
        alias: aliases
            .then(|| tls.acceptor(ClientCerts::AnyRequired))
            .transpose()?,
    })
}
