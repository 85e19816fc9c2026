//! The RFC 8707 `resource` value (rule 15) and the RFC 9728 check that a Protected Resource
//! Metadata document really describes the server we asked about (rule 3).

use url::Url;

/// The canonical server URL used as `resource` when the server publishes no protected
/// resource metadata: lowercase scheme and host (the `url` crate already normalises both,
/// and drops default ports), no fragment, and no trailing `/` (a pathless server is
/// `https://host`, never `https://host/`). The query is kept: it is part of the resource's
/// identity.
pub fn canonical_resource(server_url: &Url) -> String {
    let mut url = server_url.clone();
    url.set_fragment(None);
    let trimmed = url.path().trim_end_matches('/').to_string();
    if trimmed.is_empty() {
        // `Url` always serialises a root path as `/`; cut it out by hand.
        return format!(
            "{}{}",
            &url[..url::Position::BeforePath],
            &url[url::Position::AfterPath..]
        );
    }
    url.set_path(&trimmed);
    url.to_string()
}

/// Rule 15: the `resource` sent in the authorization request, the token request and every
/// refresh. The configured `oauth_resource` wins; else the protected resource metadata's
/// `resource` exactly as published (not re-serialised: a URL parser would add a `/` to a
/// pathless identifier, and servers compare the string); else the canonical server URL.
pub fn resource_indicator(
    configured: Option<&str>,
    prm_resource: Option<&str>,
    server_url: &Url,
) -> String {
    configured
        .or(prm_resource)
        .map(str::to_string)
        .unwrap_or_else(|| canonical_resource(server_url))
}

/// Why a PRM `resource` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceMismatch {
    #[error("protected resource metadata names resource {resource:?}, which is not a URL")]
    NotAUrl { resource: String },
    #[error(
        "protected resource metadata names resource {resource}, which is not on the origin of {server_url}"
    )]
    OtherOrigin {
        resource: String,
        server_url: String,
    },
    #[error(
        "protected resource metadata names resource {resource}, whose path is not a prefix of {server_url}"
    )]
    NotAPrefix {
        resource: String,
        server_url: String,
    },
}

/// Rule 3: the PRM `resource` must be on the server's origin and its path a prefix of the
/// server URL's path (segment-wise: `/mcp` covers `/mcp/x` but not `/mcp2`). Anything else
/// could be another resource pointing us at its authorization server.
pub fn check_prm_resource(prm_resource: &str, server_url: &Url) -> Result<(), ResourceMismatch> {
    let resource = Url::parse(prm_resource).map_err(|_| ResourceMismatch::NotAUrl {
        resource: prm_resource.to_string(),
    })?;
    if resource.origin() != server_url.origin() {
        return Err(ResourceMismatch::OtherOrigin {
            resource: prm_resource.to_string(),
            server_url: server_url.to_string(),
        });
    }
    let prefix = resource.path().trim_end_matches('/');
    let path = server_url.path();
    let covered = prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    if covered {
        Ok(())
    } else {
        Err(ResourceMismatch::NotAPrefix {
            resource: prm_resource.to_string(),
            server_url: server_url.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_resource_table() {
        let cases = [
            ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
            (
                "https://mcp.example.com/mcp/",
                "https://mcp.example.com/mcp",
            ),
            ("HTTPS://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"),
            (
                "https://mcp.example.com/mcp#frag",
                "https://mcp.example.com/mcp",
            ),
            ("https://mcp.example.com", "https://mcp.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            (
                "https://mcp.example.com:8443/",
                "https://mcp.example.com:8443",
            ),
            (
                "https://mcp.example.com/?t=1",
                "https://mcp.example.com?t=1",
            ),
            (
                "https://mcp.example.com:443/mcp",
                "https://mcp.example.com/mcp",
            ),
            (
                "https://mcp.example.com:8443/mcp",
                "https://mcp.example.com:8443/mcp",
            ),
            (
                "https://mcp.example.com/mcp/?tenant=one",
                "https://mcp.example.com/mcp?tenant=one",
            ),
            ("http://127.0.0.1:3000/mcp", "http://127.0.0.1:3000/mcp"),
            (
                "https://mcp.example.com/Case/Path",
                "https://mcp.example.com/Case/Path",
            ),
            ("https://mcp.example.com/a//", "https://mcp.example.com/a"),
        ];
        for (input, expected) in cases {
            let url = Url::parse(input).unwrap();
            assert_eq!(canonical_resource(&url), expected, "input: {input}");
        }
    }

    #[test]
    fn resource_indicator_prefers_config_then_prm_verbatim() {
        let server = Url::parse("http://127.0.0.1:3000/mcp").unwrap();
        // The PRM's pathless identifier is sent as published: no `/` appended.
        assert_eq!(
            resource_indicator(None, Some("http://127.0.0.1:3000"), &server),
            "http://127.0.0.1:3000"
        );
        // Published with a trailing slash: kept too, the string is the identity.
        assert_eq!(
            resource_indicator(None, Some("http://127.0.0.1:3000/mcp/"), &server),
            "http://127.0.0.1:3000/mcp/"
        );
        assert_eq!(
            resource_indicator(
                Some("https://configured.example/mcp"),
                Some("http://127.0.0.1:3000"),
                &server
            ),
            "https://configured.example/mcp"
        );
        assert_eq!(
            resource_indicator(None, None, &server),
            "http://127.0.0.1:3000/mcp"
        );
    }

    #[test]
    fn prm_resource_check_table() {
        let server = Url::parse("https://mcp.example.com/api/mcp").unwrap();
        let ok = [
            "https://mcp.example.com/api/mcp",
            "https://mcp.example.com/api/mcp/",
            "https://mcp.example.com/api",
            "https://mcp.example.com/",
            "https://mcp.example.com",
            "https://MCP.example.com:443/api",
        ];
        for resource in ok {
            assert_eq!(check_prm_resource(resource, &server), Ok(()), "{resource}");
        }
        let bad = [
            ("https://evil.example.com/api/mcp", "origin"),
            ("http://mcp.example.com/api/mcp", "origin"),
            ("https://mcp.example.com:8443/api/mcp", "origin"),
            ("https://mcp.example.com/api/mc", "prefix"),
            ("https://mcp.example.com/other", "prefix"),
            ("https://mcp.example.com/api/mcp/deeper", "prefix"),
            ("not a url", "url"),
        ];
        for (resource, kind) in bad {
            let err = check_prm_resource(resource, &server).unwrap_err();
            let matches = match kind {
                "origin" => matches!(err, ResourceMismatch::OtherOrigin { .. }),
                "prefix" => matches!(err, ResourceMismatch::NotAPrefix { .. }),
                _ => matches!(err, ResourceMismatch::NotAUrl { .. }),
            };
            assert!(matches, "{resource}: {err:?}");
        }
    }
}
