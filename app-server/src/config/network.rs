//! How the daemon reaches the network for a server: the `proxy` key (global and per
//! server). A proxy URL may carry a user name and password: they are never shown, neither
//! in `Debug` nor in `Display`.

use std::fmt;

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

/// The network keys a table may hold (the top level, or `[mcp_servers.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    pub proxy: Option<ProxySetting>,
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
        }
    }
}

/// The network settings in force for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServerNetwork {
    pub proxy: ProxySetting,
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
        };
        let own = NetworkConfig {
            proxy: Some(ProxySetting::Direct),
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
}
