//! How the daemon reaches the network for a server: the `proxy` key (global and per
//! server). A proxy URL may carry a user name and password: they are never shown, neither
//! in `Debug` nor in `Display`. The TLS keys: `ca_certificates` (global and per server),
//! `client_certificate` and `client_key` (per server); see [`PemFile`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use url::Url;

/// Which proxy the requests of a server go through.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum ProxySetting {
    /// No `proxy` key: the environment decides (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    /// `NO_PROXY`, upper or lower case).
    #[default]
    System,
    /// `proxy = "none"`: every request goes straight to its destination, whatever the
    /// environment says.
    Direct,
    /// `proxy = "http://[user:password@]host:port"`: every request goes through this proxy,
    /// except to the hosts `NO_PROXY` lists.
    Url(ProxyUrl),
}

impl ProxySetting {
    /// Reads a `proxy` value: `"none"`, or an `http` or `https` URL with a host.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.trim().eq_ignore_ascii_case("none") {
            return Ok(ProxySetting::Direct);
        }
        // The parser's message never repeats the input, so no password leaks through it.
        let url = Url::parse(value.trim()).map_err(|e| {
            format!("not a URL ({e}); write \"http://host:port\", or \"none\" for no proxy")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "the proxy scheme `{}` is not supported; use http or https",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the proxy URL has no host".to_string());
        }
        if url.path() != "/" && !url.path().is_empty() || url.query().is_some() {
            return Err("a proxy URL has no path or query: write \"http://host:port\"".to_string());
        }
        Ok(ProxySetting::Url(ProxyUrl(url)))
    }
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::System => f.write_str("System"),
            ProxySetting::Direct => f.write_str("Direct"),
            ProxySetting::Url(url) => write!(f, "Url({url})"),
        }
    }
}

impl fmt::Display for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::System => f.write_str("from the environment"),
            ProxySetting::Direct => f.write_str("none"),
            ProxySetting::Url(url) => write!(f, "{url}"),
        }
    }
}

/// A proxy URL whose password (and user name) only [`ProxyUrl::expose`] gives out.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyUrl(Url);

impl ProxyUrl {
    /// The URL with its credentials, for the HTTP client only.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The URL without user name and password.
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        let had_credentials = !shown.username().is_empty() || shown.password().is_some();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let mut text = shown.as_str().trim_end_matches('/').to_string();
        if had_credentials {
            text.push_str(" (with credentials)");
        }
        text
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A PEM file a TLS key names, read when config.toml loads: its path (for messages), its
/// bytes and their SHA-256 (which two loads compare, so a changed file is a changed
/// setting). The bytes of a private key never show in `Debug`.
#[derive(Clone)]
pub struct PemFile {
    path: PathBuf,
    pem: Arc<[u8]>,
    digest: [u8; 32],
}

/// The largest PEM file a TLS key may name (a system's whole CA bundle is about 200 KiB).
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

impl PemFile {
    /// Reads `path`, which must hold at least one PEM block labelled `label` (`CERTIFICATE`,
    /// or `PRIVATE KEY` for any of the private key labels).
    pub fn read(path: &Path, label: &str) -> Result<Self, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > MAX_PEM_BYTES {
            return Err(format!(
                "{} is {size} bytes, more than a PEM file of certificates or a key holds (limit {MAX_PEM_BYTES})",
                path.display()
            ));
        }
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_bytes(path, pem, label)
    }

    /// [`PemFile::read`] on bytes already read.
    pub fn from_bytes(path: &Path, pem: Vec<u8>, label: &str) -> Result<Self, String> {
        let text = String::from_utf8_lossy(&pem);
        let found = text.lines().any(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
                .is_some_and(|l| l.ends_with(label))
        });
        if !found {
            return Err(format!(
                "{} holds no PEM `-----BEGIN {label}-----` block",
                path.display()
            ));
        }
        let digest = Sha256::digest(&pem).into();
        Ok(Self {
            path: path.to_path_buf(),
            pem: pem.into(),
            digest,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes, for the TLS configuration only.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

impl PartialEq for PemFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.digest == other.digest
    }
}

impl Eq for PemFile {}

impl std::hash::Hash for PemFile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
        self.digest.hash(state);
    }
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

/// `client_certificate` and `client_key`: the certificate (chain) the daemon presents to a
/// server that asks for one (mutual TLS, RFC 8705), and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    pub certificate: PemFile,
    pub key: PemFile,
    /// What the certificate says: its thumbprint, subject and public key (RFC 8705).
    pub facts: super::client_certificate::CertificateFacts,
}

/// The network keys a table may hold (the top level, or `[mcp_servers.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    pub proxy: Option<ProxySetting>,
    /// `ca_certificates`: certificate authorities trusted besides the system's.
    pub ca_certificates: Option<PemFile>,
    /// `client_certificate` + `client_key` (a server's table only).
    pub client_identity: Option<ClientIdentity>,
}

impl NetworkConfig {
    /// This server's keys over the global ones.
    pub fn over(&self, global: &NetworkConfig) -> ServerNetwork {
        ServerNetwork {
            proxy: self
                .proxy
                .clone()
                .or_else(|| global.proxy.clone())
                .unwrap_or_default(),
            ca_certificates: self
                .ca_certificates
                .clone()
                .or_else(|| global.ca_certificates.clone()),
            client_identity: self.client_identity.clone(),
        }
    }
}

/// The network settings in force for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServerNetwork {
    pub proxy: ProxySetting,
    /// Certificate authorities trusted besides the system's.
    pub ca_certificates: Option<PemFile>,
    /// The client certificate presented when a server asks for one.
    pub client_identity: Option<ClientIdentity>,
}

impl ServerNetwork {
    /// The TLS part of these settings: what the TLS client configuration depends on.
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            ca_certificates: self.ca_certificates.clone(),
            client_identity: self.client_identity.clone(),
        }
    }
}

/// What a TLS client configuration is built from besides the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    pub ca_certificates: Option<PemFile>,
    pub client_identity: Option<ClientIdentity>,
}

impl TlsSettings {
    /// True when the system's roots alone, with no client certificate, are in force.
    pub fn is_default(&self) -> bool {
        self.ca_certificates.is_none() && self.client_identity.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let p = ProxySetting::parse("http://alice:s3cr%40t@proxy.corp:3128").unwrap();
        for text in [format!("{p:?}"), p.to_string()] {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(!text.contains("alice"), "{text}");
            assert!(text.contains("http://proxy.corp:3128"), "{text}");
            assert!(text.contains("with credentials"), "{text}");
        }
        let ProxySetting::Url(url) = &p else {
            panic!("{p:?}")
        };
        assert_eq!(url.expose().password(), Some("s3cr%40t"));
        // A URL that does not parse: the message does not repeat it.
        let e = ProxySetting::parse("http://alice:s3cret@[bad").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn values() {
        assert_eq!(ProxySetting::parse("none").unwrap(), ProxySetting::Direct);
        assert_eq!(ProxySetting::parse("NONE").unwrap(), ProxySetting::Direct);
        assert!(
            ProxySetting::parse("ftp://p:21")
                .unwrap_err()
                .contains("ftp")
        );
        assert!(ProxySetting::parse("proxy:3128").is_err());
        assert!(ProxySetting::parse("http://p:3128/x").is_err());
        assert!(ProxySetting::parse("socks5h://p:1080").is_err());
        assert!(ProxySetting::parse("https://p:443").is_ok());
        let global = NetworkConfig {
            proxy: Some(ProxySetting::parse("http://g:1").unwrap()),
            ..Default::default()
        };
        let own = NetworkConfig {
            proxy: Some(ProxySetting::Direct),
            ..Default::default()
        };
        assert_eq!(own.over(&global).proxy, ProxySetting::Direct);
        assert_eq!(
            NetworkConfig::default().over(&global).proxy,
            global.proxy.unwrap()
        );
        assert_eq!(
            NetworkConfig::default()
                .over(&NetworkConfig::default())
                .proxy,
            ProxySetting::System
        );
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn pem_files_need_their_block_and_compare_by_content() {
        let path = Path::new("/etc/corp/ca.pem");
        let a = PemFile::from_bytes(path, CERT.as_bytes().to_vec(), "CERTIFICATE").unwrap();
        let b =
            PemFile::from_bytes(path, format!("{CERT}{CERT}").into_bytes(), "CERTIFICATE").unwrap();
        assert_ne!(a, b, "the same path with other content is another setting");
        assert_eq!(a.clone(), a);
        let e = PemFile::from_bytes(path, b"not pem".to_vec(), "CERTIFICATE").unwrap_err();
        assert!(
            e.contains("/etc/corp/ca.pem") && e.contains("BEGIN CERTIFICATE"),
            "{e}"
        );
        // Any private key label: PKCS#8, SEC1, PKCS#1.
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            let pem = format!("-----BEGIN {label}-----\nMIIB\n-----END {label}-----\n");
            let key = PemFile::from_bytes(path, pem.into_bytes(), "PRIVATE KEY").unwrap();
            let shown = format!("{key:?}");
            assert!(!shown.contains("MIIB"), "{shown}");
        }
        let e = PemFile::read(Path::new("/nonexistent/ca.pem"), "CERTIFICATE").unwrap_err();
        assert!(e.contains("cannot read /nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_server_ca_bundle_wins_and_the_client_certificate_is_per_server() {
        let ca = |name: &str| {
            PemFile::from_bytes(Path::new(name), CERT.as_bytes().to_vec(), "CERTIFICATE").unwrap()
        };
        let global = NetworkConfig {
            ca_certificates: Some(ca("/global.pem")),
            ..Default::default()
        };
        let own = NetworkConfig {
            ca_certificates: Some(ca("/own.pem")),
            ..Default::default()
        };
        assert_eq!(
            own.over(&global).ca_certificates.unwrap().path(),
            Path::new("/own.pem")
        );
        let inherited = NetworkConfig::default().over(&global);
        assert_eq!(
            inherited.ca_certificates.as_ref().unwrap().path(),
            Path::new("/global.pem")
        );
        assert!(!inherited.tls().is_default());
        assert!(
            NetworkConfig::default()
                .over(&NetworkConfig::default())
                .tls()
                .is_default()
        );
    }
}
