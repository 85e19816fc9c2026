//! The TLS client configuration every HTTP client of the process shares, where the
//! certificate check is WebPKI over the system's root certificates (Linux and the other
//! Unix systems but Apple's and Android). Reading the roots and building the trust store
//! from them costs a few milliseconds; it is done once per process, on a blocking thread
//! at start, so that building a client later is cheap enough for the async workers (a
//! cold login builds two) and does not wait for the files. macOS, Windows and Android
//! keep the platform verifier and never come here.

use std::sync::{Arc, OnceLock};

use super::error::HttpError;

/// The built configuration, or why there is none (no usable root certificate).
static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();

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
    with_roots(system_roots()?)
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

/// The client configuration trusting exactly `roots`.
fn with_roots(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    // A provider the embedding program installed wins, as it would in reqwest's own setup.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("the TLS provider supports no protocol version: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 is the only version the clients speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
