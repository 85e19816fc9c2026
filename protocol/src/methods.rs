//! The method table: every request and notification, listed once.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::types::*;

/// Why a request could not be turned into a [`ClientRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum RequestParseError {
    /// No such method.
    UnknownMethod(String),
    /// The params did not fit the method; the message names the field.
    InvalidParams(String),
}

/// What a generator needs to know about one method or notification.
pub trait ProtocolVisitor {
    /// A client-to-server request.
    fn request<P, R>(&mut self, method: &'static str, doc: &'static str)
    where
        P: schemars::JsonSchema + ts_rs::TS + 'static,
        R: schemars::JsonSchema + ts_rs::TS + 'static;
    /// A server-to-client notification.
    fn notification<P>(&mut self, method: &'static str, doc: &'static str)
    where
        P: schemars::JsonSchema + ts_rs::TS + 'static;
}

fn parse_params<P: DeserializeOwned>(params: Option<Value>) -> Result<P, RequestParseError> {
    let value = match params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(RequestParseError::InvalidParams(
                "params must be an object".to_string(),
            ));
        }
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            RequestParseError::InvalidParams(format!("invalid params: {inner}"))
        } else {
            RequestParseError::InvalidParams(format!("invalid params at `{path}`: {inner}"))
        }
    })
}

macro_rules! protocol_table {
    (
        requests {
            $( $(#[doc = $rdoc:literal])* $rvariant:ident => $rname:literal ($params:ty) -> $result:ty, )*
        }
        notifications {
            $( $(#[doc = $ndoc:literal])* $nvariant:ident => $nname:literal ($nparams:ty), )*
        }
    ) => {
        /// A parsed client request.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ClientRequest {
            $( $(#[doc = $rdoc])* $rvariant($params), )*
        }

        impl ClientRequest {
            /// Every request method, in table order.
            pub const METHODS: &'static [&'static str] = &[$($rname),*];

            /// The wire name of this request's method.
            pub fn method(&self) -> &'static str {
                match self { $(ClientRequest::$rvariant(_) => $rname,)* }
            }

            /// Parse `method` and `params`; absent params read as `{}`.
            pub fn parse(method: &str, params: Option<Value>) -> Result<Self, RequestParseError> {
                match method {
                    $($rname => Ok(ClientRequest::$rvariant(parse_params::<$params>(params)?)),)*
                    other => Err(RequestParseError::UnknownMethod(other.to_string())),
                }
            }

            /// The params as JSON.
            pub fn params_value(&self) -> Value {
                match self {
                    $(ClientRequest::$rvariant(p) => serde_json::to_value(p).unwrap_or(Value::Null),)*
                }
            }
        }

        /// A notification the daemon sends.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ServerNotification {
            $( $(#[doc = $ndoc])* $nvariant($nparams), )*
        }

        impl ServerNotification {
            /// Every notification method, in table order.
            pub const METHODS: &'static [&'static str] = &[$($nname),*];

            /// The wire name of this notification's method.
            pub fn method(&self) -> &'static str {
                match self { $(ServerNotification::$nvariant(_) => $nname,)* }
            }

            /// The params as JSON.
            pub fn params_value(&self) -> Value {
                match self {
                    $(ServerNotification::$nvariant(p) => serde_json::to_value(p).unwrap_or(Value::Null),)*
                }
            }

            /// Parse a notification received from the daemon (for clients and tests).
            pub fn parse(method: &str, params: Value) -> Result<Self, RequestParseError> {
                match method {
                    $($nname => Ok(ServerNotification::$nvariant(parse_params::<$nparams>(Some(params))?)),)*
                    other => Err(RequestParseError::UnknownMethod(other.to_string())),
                }
            }
        }

        /// Walk the table, for the schema, TypeScript and docs generators.
        pub fn visit_protocol<V: ProtocolVisitor>(visitor: &mut V) {
            $( visitor.request::<$params, $result>($rname, concat!($($rdoc, "\n",)* "").trim_ascii()); )*
            $( visitor.notification::<$nparams>($nname, concat!($($ndoc, "\n",)* "").trim_ascii()); )*
        }
    };
}

protocol_table! {
    requests {
        /// First request on a connection: says who the client is and which notifications
        /// it does not want. Every other request before it is refused.
        Initialize => "initialize" (InitializeParams) -> InitializeResponse,
        /// Lists the configured MCP servers with their credential state, sorted by name.
        McpServerStatusList => "mcpServerStatus/list" (ListMcpServerStatusParams) -> ListMcpServerStatusResponse,
        /// Re-reads config.toml. On error the previous configuration stays in force.
        ConfigMcpServerReload => "config/mcpServer/reload" (ReloadConfigParams) -> ReloadConfigResponse,
        /// Starts an OAuth login for a configured server and answers at once with the URL to
        /// open in the browser (`flow: "browser"`), the code and URL to show the user
        /// (`flow: "device"`, RFC 8628), or, for a grant that needs no user, once the tokens
        /// are stored (`flow: "direct"`). The login ends with `mcpServer/oauthLogin/completed`.
        OauthLogin => "mcpServer/oauth/login" (OauthLoginParams) -> OauthLoginResponse,
        /// Cancels the pending login of a server (a device login's polling stops at once).
        OauthCancel => "mcpServer/oauth/cancel" (OauthCancelParams) -> OauthCancelResponse,
        /// Finishes a pending login from the redirect URL pasted from the browser, with the
        /// same checks as the loopback listener. Answers once the tokens are stored.
        OauthComplete => "mcpServer/oauth/complete" (OauthCompleteParams) -> OauthCompleteResponse,
        /// Deletes a server's stored credentials, revoking them first when asked.
        OauthLogout => "mcpServer/oauth/logout" (OauthLogoutParams) -> OauthLogoutResponse,
        /// Returns a valid access token for a server, refreshing it first when it expires
        /// within `minValiditySecs`.
        OauthToken => "mcpServer/oauth/token" (OauthTokenParams) -> OauthTokenResponse,
        /// Tells the daemon that the MCP server refused a request (HTTP 401 or 403) and
        /// what its `WWW-Authenticate` said. A 401 refreshes the token now, however valid it
        /// looks; a 403 `insufficient_scope` starts a step-up login for the scopes held plus
        /// those asked for (at most 3 per server and scope set). The result says which.
        OauthChallenge => "mcpServer/oauth/challenge" (OauthChallengeParams) -> OauthChallengeResponse,
        /// A DPoP proof (RFC 9449) for one request to the MCP server of a server whose token
        /// is DPoP-bound (`tokenType: "DPoP"`), with the current access token. The key never
        /// leaves the daemon.
        OauthDpopProof => "mcpServer/oauth/dpopProof" (OauthDpopProofParams) -> OauthDpopProofResponse,
    }
    notifications {
        /// A login ended (success, failure, timeout, cancel or superseded).
        OauthLoginCompleted => "mcpServer/oauthLogin/completed" (OauthLoginCompletedNotification),
        /// A login fell back to another client registration; open the new URL.
        OauthLoginRestarted => "mcpServer/oauthLogin/restarted" (OauthLoginRestartedNotification),
        /// A server's credential state changed.
        AuthStatusChanged => "mcpServer/authStatus/changed" (AuthStatusChangedNotification),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_known_method_and_absent_params() {
        let req = ClientRequest::parse("config/mcpServer/reload", None).unwrap();
        assert_eq!(
            req,
            ClientRequest::ConfigMcpServerReload(ReloadConfigParams {})
        );
        assert_eq!(req.method(), "config/mcpServer/reload");
    }

    #[test]
    fn unknown_method_is_reported() {
        assert_eq!(
            ClientRequest::parse("nope", None),
            Err(RequestParseError::UnknownMethod("nope".into()))
        );
    }

    #[test]
    fn invalid_params_name_the_field() {
        let err = ClientRequest::parse(
            "initialize",
            Some(json!({"clientInfo": {"name": "x", "version": 3}})),
        )
        .unwrap_err();
        let RequestParseError::InvalidParams(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("clientInfo.version"), "{msg}");

        let err = ClientRequest::parse("mcpServer/oauth/login", Some(json!({}))).unwrap_err();
        let RequestParseError::InvalidParams(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("name"), "{msg}");

        let err = ClientRequest::parse("mcpServer/oauth/login", Some(json!([1]))).unwrap_err();
        assert!(matches!(err, RequestParseError::InvalidParams(_)));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = ClientRequest::parse(
            "mcpServer/oauth/login",
            Some(json!({"name": "a", "scope": "x"})),
        )
        .unwrap_err();
        let RequestParseError::InvalidParams(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("scope"), "{msg}");
    }

    #[test]
    fn notifications_round_trip() {
        let n = ServerNotification::OauthLoginCompleted(OauthLoginCompletedNotification {
            name: "a".into(),
            account: Some("someone@example.com".into()),
            success: false,
            error: Some("boom".into()),
            error_kind: Some(crate::ErrorKind::LoginTimedOut),
        });
        let back = ServerNotification::parse(n.method(), n.params_value()).unwrap();
        assert_eq!(back, n);
        assert_eq!(
            n.params_value(),
            json!({"name": "a", "account": "someone@example.com", "success": false,
                   "error": "boom", "errorKind": "loginTimedOut"})
        );
    }

    #[test]
    fn challenge_results_are_told_apart_by_action() {
        let token = OauthChallengeResponse::Token(OauthTokenResponse {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_at: None,
            scopes: vec!["a".into()],
            certificate_binding: None,
        });
        assert_eq!(
            serde_json::to_value(&token).unwrap(),
            json!({"action": "token", "accessToken": "at", "tokenType": "Bearer", "scopes": ["a"]})
        );
        let login = OauthChallengeResponse::Login(OauthChallengeLogin {
            authorization_url: "https://as/authorize".into(),
            redirect_uri: "http://127.0.0.1:1/callback/x".into(),
            scopes: vec![],
        });
        assert_eq!(
            serde_json::to_value(&login).unwrap()["action"],
            json!("login")
        );
        let reauth =
            OauthChallengeResponse::ReauthenticationRequired(OauthChallengeReauthentication {
                reason: "r".into(),
                cause: None,
            });
        let value = serde_json::to_value(&reauth).unwrap();
        assert_eq!(
            value,
            json!({"action": "reauthenticationRequired", "reason": "r"})
        );
        assert_eq!(
            serde_json::from_value::<OauthChallengeResponse>(value).unwrap(),
            reauth
        );
        let err = ClientRequest::parse(
            "mcpServer/oauth/challenge",
            Some(json!({"name": "a", "status": "401", "wwwAuthenticate": "Bearer"})),
        )
        .unwrap_err();
        let RequestParseError::InvalidParams(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("status"), "{msg}");
    }

    #[test]
    fn method_names_are_unique() {
        let mut all: Vec<_> = ClientRequest::METHODS
            .iter()
            .chain(ServerNotification::METHODS)
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
