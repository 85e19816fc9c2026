//! The running kit: loopback listeners (AS and RS, and with RFC 8705 aliases a third for
//! the AS's endpoints that take client certificates) sharing one in-memory state, and the
//! accessors tests use to look inside.

mod request_log;

use request_log::every_request;
pub use request_log::{RequestSpan, sequential_round_trips};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::middleware;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::authorization_server;
use crate::config::{IssVariant, KitConfig, PrmMode};
use crate::counters::{AtomicCounters, Counters};
use crate::faults::{Faults, lock};
use crate::resource_server;
use crate::store::{Client, Store, TokenPolicy};

/// What the token endpoint received, for asserting client authentication, `resource`, and
/// that no secret was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestRecord {
    /// Form fields (the last value wins when a field repeats).
    pub form: BTreeMap<String, String>,
    /// An `Authorization` header was present.
    pub authorization_header: bool,
    /// The client id from an `Authorization: Basic` header, decoded per RFC 6749 2.3.1.
    pub basic_client_id: Option<String>,
    /// The `DPoP` header, as sent.
    pub dpop_proof: Option<String>,
    /// SHA-256 of the client certificate the request's connection presented.
    pub client_certificate_sha256: Option<[u8; 32]>,
    /// The request reached the RFC 8705 endpoint alias listener.
    pub at_alias: bool,
}

/// The URLs of a running kit.
#[derive(Clone, Debug)]
pub(crate) struct Urls {
    pub rs_origin: String,
    pub as_origin: String,
    /// `""` or `/tenant1`.
    pub issuer_path: String,
    pub issuer: String,
    /// The `iss` authorization responses carry (the issuer, or the configured variant).
    pub iss: Option<String>,
    pub mcp_url: String,
    /// The resource identifier the PRM publishes and tokens are bound to: the MCP URL, or
    /// the bare origin with `prm_resource_pathless`.
    pub resource: String,
    pub prm_path_url: String,
    pub prm_root_url: String,
    /// `https://127.0.0.1:P` of the RFC 8705 endpoint alias listener.
    pub mtls_origin: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Records {
    pub revoked: Vec<String>,
    pub registrations: Vec<serde_json::Value>,
    pub token_requests: Vec<TokenRequestRecord>,
    pub mcp_dpop_requests: usize,
    pub last_authorize_query: Option<BTreeMap<String, String>>,
    /// The `prompt` of every authorization request, in order.
    pub authorize_prompts: Vec<Option<String>>,
    /// `METHOD /path` of every request, without query strings (they carry codes and state).
    pub requests: Vec<String>,
    /// When each request of `requests` arrived and was answered, on one event counter.
    pub spans: Vec<RequestSpan>,
    /// The event counter of `spans`.
    pub events: u64,
    /// The JSON-RPC method of every authorized MCP request, with its `MCP-Protocol-Version`.
    pub mcp_methods: Vec<(String, Option<String>)>,
    /// When each device-code token request (RFC 8628 poll) arrived.
    pub device_polls: Vec<std::time::Instant>,
    /// `METHOD /path` of every request of the RFC 8705 endpoint alias listener.
    pub mtls_alias_requests: Vec<String>,
}

/// State shared by every handler of every listener.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: KitConfig,
    pub urls: Urls,
    pub counters: AtomicCounters,
    pub faults: Faults,
    pub store: Mutex<Store>,
    pub records: Mutex<Records>,
    /// Seen proof `jti`s and the tokens bound to keys.
    pub dpop: Mutex<crate::dpop::DpopState>,
    /// The tokens bound to client certificates (RFC 8705 3).
    pub certificate_bindings: Mutex<crate::mtls::Bindings>,
    /// The issuer the PRM lists instead of this kit's own (a moved authorization server).
    pub prm_authorization_server: Mutex<Option<String>>,
    /// `Cache-Control: max-age` sent with the PRM and authorization server metadata.
    pub metadata_max_age: Mutex<Option<u64>>,
    /// The token and registration endpoints moved under `/v2` (the old ones answer 404).
    pub endpoints_moved: std::sync::atomic::AtomicBool,
    /// The user the browser is signed in as: authorizations from now on are theirs, and so
    /// are the tokens issued for them ([`Kit::user_of_token`]).
    pub signed_in_user: Mutex<Option<String>>,
    /// Fetches Client ID Metadata Documents: no proxy, no redirects, bounded time.
    pub http: reqwest::Client,
}

impl Shared {
    pub fn token_policy(&self) -> TokenPolicy {
        TokenPolicy {
            access_ttl: Duration::from_secs(self.config.access_token_ttl_secs),
            issue_refresh: self.config.issue_refresh_tokens,
            rotate_refresh: self.config.rotate_refresh_tokens,
        }
    }
}

/// A running reference authorization server and MCP resource server. Dropping it stops
/// its listeners.
#[derive(Debug)]
pub struct Kit {
    pub(crate) shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Kit {
    fn drop(&mut self) {
        // Aborting `axum::serve` closes the listener; its connection tasks then shut down
        // gracefully because the serve future held their shutdown signal.
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind_loopback(tls: bool) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding an ephemeral port on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let scheme = if tls { "https" } else { "http" };
    Ok((listener, format!("{scheme}://127.0.0.1:{port}")))
}

fn spawn_server(
    listener: TcpListener,
    router: Router,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> JoinHandle<()> {
    let tls = tls.cloned();
    tokio::spawn(async move {
        let served = match tls {
            None => axum::serve(listener, router).await,
            Some(acceptor) => {
                let listener = crate::tls::TlsListener::new(listener, acceptor);
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<crate::tls::TlsPeer>(),
                )
                .await
            }
        };
        if let Err(error) = served {
            tracing::warn!(%error, "test kit listener stopped");
        }
    })
}

impl Kit {
    /// Binds the listeners on 127.0.0.1 (ephemeral ports) and starts serving.
    pub async fn start(config: KitConfig) -> anyhow::Result<Kit> {
        config.validate()?;
        let issuer_path = config.normalized_issuer_path()?;
        let crate::mtls::Acceptors {
            rs: acceptor,
            authorization: as_acceptor,
            alias: alias_acceptor,
        } = crate::mtls::acceptors(&config)?;
        let (rs_listener, rs_origin) = bind_loopback(acceptor.is_some()).await?;
        let alias_listener = match alias_acceptor {
            Some(acceptor) => Some((bind_loopback(true).await?, acceptor)),
            None => None,
        };
        let as_listener = if config.prm == PrmMode::None || config.as_on_mcp_origin {
            None
        } else {
            Some(bind_loopback(acceptor.is_some()).await?)
        };
        let as_origin = as_listener
            .as_ref()
            .map_or_else(|| rs_origin.clone(), |(_, origin)| origin.clone());
        let issuer = format!("{as_origin}{issuer_path}");
        let iss = match config.iss_variant {
            IssVariant::Exact if config.wrong_issuer => {
                Some(format!("{as_origin}/impostor{issuer_path}"))
            }
            IssVariant::Exact => Some(issuer.clone()),
            IssVariant::TrailingSlash => Some(format!("{issuer}/")),
            IssVariant::UpperCase => Some(match issuer.split_once("://") {
                Some((scheme, rest)) => {
                    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                    format!(
                        "{}://{}{path}",
                        scheme.to_ascii_uppercase(),
                        host.to_ascii_uppercase()
                    )
                }
                None => issuer.to_ascii_uppercase(),
            }),
            IssVariant::Foreign => Some("https://mix-up.example".to_owned()),
            IssVariant::Omitted => None,
        };
        let urls = Urls {
            issuer,
            iss,
            mcp_url: format!("{rs_origin}/mcp"),
            resource: if config.prm_resource_pathless {
                rs_origin.clone()
            } else {
                format!("{rs_origin}/mcp")
            },
            prm_path_url: format!("{rs_origin}/.well-known/oauth-protected-resource/mcp"),
            prm_root_url: format!("{rs_origin}/.well-known/oauth-protected-resource"),
            mtls_origin: alias_listener
                .as_ref()
                .map(|((_, origin), _)| origin.clone()),
            rs_origin,
            as_origin,
            issuer_path,
        };
        let http =
            crate::checks::loopback_http_client(crate::authorization_server::cimd::FETCH_TIMEOUT)
                .context("building the HTTP client for client metadata documents")?;
        let mut store = Store::default();
        for pre in &config.preregistered {
            let auth_method = crate::store::AuthMethod::parse(&pre.auth_method)
                .context("preregistered client auth_method")?;
            store.clients.insert(
                pre.client_id.clone(),
                Client {
                    client_id: pre.client_id.clone(),
                    secret: pre.client_secret.clone(),
                    auth_method,
                    redirect_uris: pre
                        .redirect_uris
                        .iter()
                        .map(|u| {
                            u.replace(CALLBACK_ID_PLACEHOLDER, &callback_id_for(&urls.mcp_url))
                        })
                        .collect(),
                    from_metadata_document: false,
                    jwt_public_key: pre.jwt_public_key.clone(),
                    tls_client_auth_subject_dn: pre.tls_client_auth_subject_dn.clone(),
                    tls_client_certificate_sha256: pre.tls_client_certificate_sha256,
                },
            );
        }
        let shared = Arc::new(Shared {
            config,
            urls,
            counters: AtomicCounters::default(),
            faults: Faults::default(),
            store: Mutex::new(store),
            records: Mutex::new(Records::default()),
            dpop: Mutex::new(Default::default()),
            certificate_bindings: Mutex::new(Default::default()),
            prm_authorization_server: Mutex::new(None),
            metadata_max_age: Mutex::new(None),
            endpoints_moved: Default::default(),
            signed_in_user: Mutex::new(None),
            http,
        });

        let global = middleware::from_fn_with_state(shared.clone(), every_request);
        let rs_router = resource_server::router(shared.clone());
        let as_router = authorization_server::router(shared.clone());
        let mut tasks = Vec::new();
        if let Some(((listener, _), acceptor)) = alias_listener {
            // Outermost: a request a fault answers is logged as arriving at the alias too.
            let alias = middleware::from_fn_with_state(shared.clone(), crate::mtls::alias_request);
            tasks.push(spawn_server(
                listener,
                as_router.clone().layer(global.clone()).layer(alias),
                Some(&acceptor),
            ));
        }
        match as_listener {
            Some((as_listener, _)) => {
                tasks.push(spawn_server(
                    as_listener,
                    as_router.layer(global.clone()),
                    as_acceptor.as_ref(),
                ));
                tasks.push(spawn_server(
                    rs_listener,
                    rs_router.layer(global),
                    acceptor.as_ref(),
                ));
            }
            None => {
                tasks.push(spawn_server(
                    rs_listener,
                    rs_router.merge(as_router).layer(global),
                    acceptor.as_ref(),
                ));
            }
        }
        tracing::debug!(issuer = %shared.urls.issuer, mcp = %shared.urls.mcp_url, "test kit started");
        Ok(Kit { shared, tasks })
    }

    /// The MCP endpoint, `http://127.0.0.1:P/mcp` (also the canonical `resource`).
    pub fn mcp_url(&self) -> String {
        self.shared.urls.mcp_url.clone()
    }

    /// The resource identifier the PRM publishes (the MCP URL unless
    /// `prm_resource_pathless`).
    pub fn resource(&self) -> String {
        self.shared.urls.resource.clone()
    }

    /// Where the metadata document is served with [`crate::KitConfig::metadata_path`].
    pub fn custom_metadata_url(&self) -> Option<String> {
        let path = self.shared.config.metadata_path.as_deref()?;
        Some(format!("{}{path}", self.shared.urls.as_origin))
    }

    /// The authorization server's issuer identifier (what PRM lists).
    pub fn issuer(&self) -> String {
        self.shared.urls.issuer.clone()
    }

    /// Origin of the authorization server (equals [`Kit::rs_origin`] with [`PrmMode::None`]).
    pub fn as_origin(&self) -> String {
        self.shared.urls.as_origin.clone()
    }

    /// Origin of the MCP resource server.
    pub fn rs_origin(&self) -> String {
        self.shared.urls.rs_origin.clone()
    }

    /// The path-form PRM URL (what the 401 challenge names in [`PrmMode::HeaderAndPath`]).
    pub fn prm_url(&self) -> String {
        self.shared.urls.prm_path_url.clone()
    }

    /// The root PRM URL (served in [`PrmMode::RootOnly`]).
    pub fn prm_root_url(&self) -> String {
        self.shared.urls.prm_root_url.clone()
    }

    pub fn config(&self) -> &KitConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Tokens revoked through the RFC 7009 endpoint, in order.
    pub fn revoked_tokens(&self) -> Vec<String> {
        lock(&self.shared.records).revoked.clone()
    }

    /// Every JSON body the registration endpoint received, valid or not.
    pub fn registered_clients(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.records).registrations.clone()
    }

    /// The key thumbprint (`cnf.jkt`) a token is bound to, if it is.
    pub fn dpop_binding(&self, token: &str) -> Option<String> {
        lock(&self.shared.dpop).bound.get(token).cloned()
    }

    /// MCP requests that carried a valid DPoP proof for a bound token.
    pub fn mcp_dpop_requests(&self) -> usize {
        lock(&self.shared.records).mcp_dpop_requests
    }

    pub fn last_token_request(&self) -> Option<TokenRequestRecord> {
        lock(&self.shared.records).token_requests.last().cloned()
    }

    /// Every token request received, in order.
    pub fn token_requests(&self) -> Vec<TokenRequestRecord> {
        lock(&self.shared.records).token_requests.clone()
    }

    pub fn last_authorize_query(&self) -> Option<BTreeMap<String, String>> {
        lock(&self.shared.records).last_authorize_query.clone()
    }

    /// The `prompt` parameter of every authorization request so far, in order.
    pub fn authorize_prompts(&self) -> Vec<Option<String>> {
        lock(&self.shared.records).authorize_prompts.clone()
    }

    /// Signs the browser in as `user` (`None`: nobody): the authorizations that follow are
    /// that user's, whatever the request asks for.
    pub fn sign_in_as(&self, user: Option<&str>) {
        *lock(&self.shared.signed_in_user) = user.map(str::to_owned);
    }

    /// The user an access token was issued for (through its authorization, also after
    /// refreshes); `None` for a token of no signed-in user or an unknown one.
    pub fn user_of_token(&self, access_token: &str) -> Option<String> {
        lock(&self.shared.store).user_of_access(access_token)
    }

    /// `(JSON-RPC method, MCP-Protocol-Version header)` of every MCP request that carried a
    /// valid token, in order.
    pub fn mcp_methods(&self) -> Vec<(String, Option<String>)> {
        lock(&self.shared.records).mcp_methods.clone()
    }

    /// `METHOD /path` of every request the listeners received, in order (no query strings).
    pub fn request_log(&self) -> Vec<String> {
        lock(&self.shared.records).requests.clone()
    }

    /// Arrival and answer of every request the listeners received, in arrival order; see
    /// [`sequential_round_trips`].
    pub fn request_spans(&self) -> Vec<RequestSpan> {
        lock(&self.shared.records).spans.clone()
    }

    /// From now on the PRM names `issuer` as its authorization server instead of this kit's
    /// own (`None`: back to its own). Models a resource moved to another authorization
    /// server, for example another kit's.
    pub fn set_prm_authorization_server(&self, issuer: Option<String>) {
        *lock(&self.shared.prm_authorization_server) = issuer;
    }

    /// From now on the PRM and the authorization server metadata carry
    /// `Cache-Control: max-age=<secs>` (`None`: no header).
    pub fn set_metadata_max_age(&self, secs: Option<u64>) {
        *lock(&self.shared.metadata_max_age) = secs;
    }

    /// From now on the token and registration endpoints live under `<issuer>/v2/` and the
    /// old ones answer 404 (the metadata says so): a client that kept the old metadata
    /// finds out at the endpoint.
    pub fn move_endpoints(&self) {
        self.shared
            .endpoints_moved
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Server-side logout: every refresh token answers `invalid_grant` and every access
    /// token is refused from now on.
    pub fn invalidate_all_tokens(&self) {
        lock(&self.shared.store).invalidate_all();
    }

    /// The server prunes every client registered by DCR: their ids are unknown from now on
    /// (the authorization page shows an error, the token endpoint answers `invalid_client`).
    pub fn forget_registered_clients(&self) {
        let preregistered: Vec<String> = self
            .shared
            .config
            .preregistered
            .iter()
            .map(|p| p.client_id.clone())
            .collect();
        lock(&self.shared.store)
            .clients
            .retain(|id, _| preregistered.contains(id));
    }

    /// Every access token issued so far is expired (refresh tokens keep working).
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.store).expire_all_access();
    }

    /// An access token for the MCP server with `scopes`, without an OAuth flow.
    pub fn mint_access_token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let ttl = Duration::from_secs(self.shared.config.access_token_ttl_secs);
        lock(&self.shared.store).mint_access(&scopes, &self.shared.urls.resource, ttl)
    }

    /// With `auto_approve: false`: decide the oldest waiting consent page and return the
    /// redirect URI the browser would be sent to (`code` when approved, `access_denied` when
    /// not). `None` when nothing waits.
    pub fn approve_pending(&self, approve: bool) -> Option<String> {
        let pending = {
            let mut store = lock(&self.shared.store);
            if store.pending.is_empty() {
                return None;
            }
            store.pending.remove(0)
        };
        Some(authorization_server::authorize::decide(
            &self.shared,
            pending,
            approve,
        ))
    }

    /// When each device-code token request (RFC 8628 poll) arrived, in order.
    pub fn device_poll_times(&self) -> Vec<std::time::Instant> {
        lock(&self.shared.records).device_polls.clone()
    }

    /// How many consent pages wait for a decision.
    pub fn pending_approvals(&self) -> usize {
        lock(&self.shared.store).pending.len()
    }
}

/// In a preregistered client's redirect URI, stands for the callback id of the kit's MCP
/// server URL (not known before the kit has its port).
pub const CALLBACK_ID_PLACEHOLDER: &str = "{callback_id}";

/// The callback id of a server URL: base64url (no padding) of the first 9 bytes of SHA-256
/// over the URL without its fragment. Computed here independently of the daemon's code.
pub fn callback_id_for(server_url: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut url = url::Url::parse(server_url).expect("the kit's own URL parses");
    url.set_fragment(None);
    let digest = sha2::Sha256::digest(url.as_str().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9])
}

#[cfg(test)]
mod callback_id_tests {
    #[test]
    fn matches_the_published_vector() {
        assert_eq!(
            super::callback_id_for("https://mcp.example.com/mcp?tenant=one"),
            "XuuuHAzzHOni"
        );
    }
}
