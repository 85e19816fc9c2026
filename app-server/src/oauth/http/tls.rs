//! The TLS client configuration every HTTP client of the process shares, where the
//! certificate check is WebPKI over the system's root certificates (Linux and the other
//! Unix systems but Apple's and Android). Reading the roots and building the trust store
//! from them costs a few milliseconds; it is done once per process, on a blocking thread
//! at start, so that building a client later is cheap enough for the async workers (a
//! cold login builds two) and does not wait for the files. macOS, Windows and Android
//! keep the platform verifier and never come here.
//!
//! A server whose settings name `ca_certificates` or a client certificate has a
//! configuration of its own: the system's roots plus that bundle, presenting that
//! certificate. Each is built once per distinct setting (on a blocking thread too) and kept.
//!
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, replace the system's roots (as OpenSSL
//! reads them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::HttpError;
use crate::config::network::{ClientIdentity, PemFile, TlsSettings};

/// The built configuration, or why there is none (no usable root certificate).
static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();

/// The system's root certificates, read once.
static SYSTEM_ROOTS: OnceLock<Result<rustls::RootCertStore, String>> = OnceLock::new();

/// At most this many configurations of servers' own TLS settings are kept (one per distinct
/// setting: a handful in practice). Past it the table starts over.
const MAX_CONFIGS: usize = 32;

/// The configurations of servers' own TLS settings, or why one cannot be built.
type Built = Result<Arc<rustls::ClientConfig>, String>;
static CUSTOM: OnceLock<Mutex<HashMap<TlsSettings, Built>>> = OnceLock::new();

fn custom() -> std::sync::MutexGuard<'static, HashMap<TlsSettings, Built>> {
    CUSTOM
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The configuration for `settings` if it is built already: never blocks.
pub(super) fn ready_for(settings: &TlsSettings) -> Option<Result<rustls::ClientConfig, HttpError>> {
    if settings.is_default() {
        return ready().map(|r| r.cloned());
    }
    custom().get(settings).map(as_owned)
}

/// The configuration for `settings`, building it first if need be: reads files, so only
/// on a blocking thread.
pub(super) fn config_for(settings: &TlsSettings) -> Result<rustls::ClientConfig, HttpError> {
    if settings.is_default() {
        return config().cloned();
    }
    if let Some(built) = custom().get(settings) {
        return as_owned(built);
    }
    // Built outside the lock: two first uses at once build twice, and agree.
    let built = build_for(settings).map(Arc::new);
    let mut table = custom();
    if table.len() >= MAX_CONFIGS {
        table.clear();
    }
    as_owned(table.entry(settings.clone()).or_insert(built))
}

fn as_owned(built: &Built) -> Result<rustls::ClientConfig, HttpError> {
    built
        .as_ref()
        .map(|c| (**c).clone())
        .map_err(|e| HttpError::Setup(e.clone()))
}

/// The system's roots plus `ca_certificates`, presenting the client certificate.
fn build_for(settings: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = match (
        SYSTEM_ROOTS.get_or_init(system_roots),
        &settings.ca_certificates,
    ) {
        (Ok(roots), _) => roots.clone(),
        // No system roots: the bundle alone.
        (Err(_), Some(_)) => rustls::RootCertStore::empty(),
        (Err(e), None) => return Err(e.clone()),
    };
    if let Some(bundle) = &settings.ca_certificates {
        let certs = certificates(bundle, "ca_certificates")?;
        let (added, skipped) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "`ca_certificates` {}: none of its {skipped} certificates can be used as a \
                 certificate authority",
                bundle.path().display()
            ));
        }
        tracing::debug!(added, skipped, bundle = %bundle.path().display(), "extra root certificates loaded");
    }
    let builder = builder(roots)?;
    let mut config = match &settings.client_identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let (chain, key) = client_identity(identity)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "`client_certificate` {} with `client_key` {}: {e}; give the key that \
                     belongs to the certificate",
                    identity.certificate.path().display(),
                    identity.key.path().display()
                )
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file; `key` names the setting in messages.
fn certificates(file: &PemFile, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(file.pem())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{key}` {}: not valid PEM ({e})", file.path().display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{key}` {}: holds no certificate",
            file.path().display()
        ));
    }
    Ok(certs)
}

/// The certificate chain and private key of `client_certificate` and `client_key`. The
/// key's parse error never repeats its bytes.
fn client_identity(
    identity: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = certificates(&identity.certificate, "client_certificate")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key.pem()).map_err(|_| {
        format!(
            "`client_key` {}: no PKCS#8, SEC1 or PKCS#1 private key could be read from it",
            identity.key.path().display()
        )
    })?;
    Ok((chain, key))
}

/// Starts building the shared configuration on a blocking thread, so that the first
/// request (a login's probe) does not wait for it. Outside a runtime it does nothing; the
/// first client build then does the work.
pub(super) fn preload() {
    if CONFIG.get().is_some() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(|| {
            let _ = config();
        });
    }
}

/// The shared configuration if it is built already: never blocks.
pub(super) fn ready() -> Option<Result<&'static rustls::ClientConfig, HttpError>> {
    CONFIG.get().map(as_result)
}

/// The shared configuration, building it first if need be: reads files, so only on a
/// blocking thread.
pub(super) fn config() -> Result<&'static rustls::ClientConfig, HttpError> {
    as_result(CONFIG.get_or_init(build))
}

fn as_result(
    built: &'static Result<rustls::ClientConfig, String>,
) -> Result<&'static rustls::ClientConfig, HttpError> {
    built.as_ref().map_err(|e| HttpError::Setup(e.clone()))
}

fn build() -> Result<rustls::ClientConfig, String> {
    with_roots(SYSTEM_ROOTS.get_or_init(system_roots).clone()?)
}

/// The system's root certificates, or why there are none.
fn system_roots() -> Result<rustls::RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    for e in &loaded.errors {
        tracing::debug!(error = %e, "a system root certificate could not be read");
    }
    let mut roots = rustls::RootCertStore::empty();
    // One that rustls cannot use is skipped, not fatal.
    let (added, skipped) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(
            "no CA certificates were found on this system; install the system's CA \
                    bundle (ca-certificates) or point SSL_CERT_FILE at one"
                .to_string(),
        );
    }
    tracing::debug!(added, skipped, "system root certificates loaded");
    Ok(roots)
}

/// The builder of a client configuration trusting exactly `roots`.
fn builder(
    roots: rustls::RootCertStore,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, String> {
    // A provider the embedding program installed wins, as it would in reqwest's own setup.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("the TLS provider supports no protocol version: {e}"))?
        .with_root_certificates(roots))
}

/// The client configuration trusting exactly `roots`.
fn with_roots(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let mut config = builder(roots)?.with_no_client_auth();
    // HTTP/1.1 is the only version the clients speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

mod refusal;
pub(super) use refusal::refused_certificate;

#[cfg(test)]
mod tests;
