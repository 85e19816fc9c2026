//! The one HTTP client every OAuth step uses, so that the transport rules (rules 22-23) hold
//! everywhere: https for every endpoint except loopback hosts, connect and total timeouts,
//! bodies capped at 1 MiB, no redirects on token/registration/revocation requests and at most
//! a few same-origin redirects on metadata requests. Requests made on behalf of an MCP
//! server go through a client carrying that server's [`NetPolicy`] (rule 35).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::{Host, Url};

use super::net_policy::{
    HostResolver, NetOptIns, NetPolicy, PolicyResolver, ProxyHosts, Refused, SystemResolver,
    check_all,
};

mod error;
mod failure;
#[cfg(not(all(unix, not(target_os = "android"), not(target_vendor = "apple"))))]
mod platform_tls;
mod pool;
#[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
mod tls;

pub use error::HttpError;
use failure::{error_chain, map_send_error};
use pool::{Pooled, Pools, Route};

use crate::config::network::ServerNetwork;

/// Whether a client for `network` can be built without reading files (see
/// [`HttpClient::reqwest`]).
fn tls_ready(network: &ServerNetwork) -> bool {
    #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
    return tls::ready_for(&network.tls()).is_some();
    #[cfg(not(all(unix, not(target_os = "android"), not(target_vendor = "apple"))))]
    {
        let _ = network;
        return false;
    }
}

/// Largest response body accepted from any endpoint.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Time allowed to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, body included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortens [`TOTAL_TIMEOUT`] (and [`CONNECT_TIMEOUT`] with it), in milliseconds: for tests
/// of servers that stall or trickle. A value above the default is ignored.
pub const TIMEOUT_ENV: &str = "MCP_APP_SERVER_HTTP_TIMEOUT_MS";

/// The whole-request timeout in force: [`TOTAL_TIMEOUT`], or less when [`TIMEOUT_ENV`] says.
pub fn total_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
            .filter(|t| !t.is_zero())
            .map_or(TOTAL_TIMEOUT, |t| t.min(TOTAL_TIMEOUT))
    })
}
/// Idle keep-alive connections kept per host. Enough for the few requests a login or a
/// refresh makes at once to reuse their connections; after a burst (1,000 logins starting
/// together open hundreds), the rest are closed instead of each holding its buffers and task
/// for the pool's idle timeout.
pub const MAX_IDLE_CONNECTIONS_PER_HOST: usize = 4;
/// Bodies up to this size are parsed on the async worker; larger ones on a blocking thread.
pub const PARSE_INLINE_BYTES: usize = 64 * 1024;
/// Redirects a metadata GET may follow (same origin only).
pub const MAX_METADATA_REDIRECTS: usize = 3;

/// A fully read (and capped) HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The URL that produced this response (after any followed redirects). Only the tests
    /// that check where redirects led read it today.
    #[cfg_attr(not(test), allow(dead_code))]
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Parses the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// [`HttpResponse::json`] through `parse`, on a blocking thread when the body is larger
    /// than [`PARSE_INLINE_BYTES`]: parsing a body near the 1 MiB cap takes milliseconds
    /// (tens in a debug build), which the daemon's one async worker must not spend.
    pub async fn parse_off_worker<T, F>(&self, parse: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&[u8]) -> T + Send + 'static,
    {
        if self.body.len() <= PARSE_INLINE_BYTES {
            return parse(&self.body);
        }
        let body = self.body.clone();
        match tokio::task::spawn_blocking(move || parse(&body)).await {
            Ok(parsed) => parsed,
            // The parse panicked: let the panic go on as it would have inline.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// How long the response may be cached: `None` when the server did not say,
    /// `Some(ZERO)` for `no-store`/`no-cache`.
    pub fn cache_max_age(&self) -> Option<Duration> {
        cache_max_age(&self.headers)
    }
}

/// Reads `Cache-Control` (all header lines) for `max-age`, `no-store` and `no-cache`.
pub fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                max_age = Some(Duration::from_secs(secs));
            }
        }
    }
    max_age
}

/// True for hosts that never leave the machine: 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback_host(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        }
        None => false,
    }
}

/// Rule 22: https everywhere, plain http only for loopback hosts.
pub fn check_secure_url(url: &Url) -> Result<(), HttpError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url.host()) => Ok(()),
        _ => Err(HttpError::InsecureUrl {
            url: url.to_string(),
        }),
    }
}

/// Builds a header map from configured `http_headers` (name, value) pairs.
pub fn header_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| HttpError::InvalidHeader {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        let header_value = HeaderValue::from_str(value).map_err(|e| HttpError::InvalidHeader {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// The shared, cheaply cloneable HTTP client. Redirects are never followed by reqwest itself:
/// [`HttpClient::get`] follows a bounded number of same-origin redirects by hand and
/// everything else sees the 3xx as it is.
///
/// A client carries a [`NetPolicy`]: [`HttpClient::with_policy`] gives one that only reaches
/// what the policy allows; and a route ([`HttpClient::with_network`]: the server's `proxy`).
/// Each policy and route has its own reqwest client (its resolver filters by that policy),
/// built on first use and shared by every clone, so connections are reused within a policy
/// and route and never across them.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
    policy: NetPolicy,
    route: Arc<Route>,
    body_limit: usize,
}

struct Shared {
    system_proxy: bool,
    resolver: Arc<dyn HostResolver>,
    /// Proxy host names met so far: the resolver does not judge them.
    proxy_hosts: Arc<ProxyHosts>,
    /// The route of servers without a `proxy` key (the environment's proxy rules).
    system_route: Arc<Route>,
    /// Built on first use, off the async workers (building one loads and parses the
    /// system's root certificates): an idle daemon has none.
    clients: Pools,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .field("route", &self.route)
            .field("system_proxy", &self.shared.system_proxy)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

/// `builder` set up to reach the network as `network` says: its proxy (the environment's
/// when it names none), its certificate authorities and its client certificate. For the
/// clients that speak MCP itself (`mcp-app-server connect`), so that the MCP server is
/// reached the way its authorization server is. Reads files: a blocking thread's work.
pub fn with_server_network(
    builder: reqwest::ClientBuilder,
    network: &ServerNetwork,
) -> Result<reqwest::ClientBuilder, HttpError> {
    let builder = Route::new(network, true)
        .apply(builder, true)
        .map_err(HttpError::Setup)?;
    #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
    {
        Ok(builder.tls_backend_preconfigured(tls::config_for(&network.tls())?))
    }
    #[cfg(not(all(unix, not(target_os = "android"), not(target_vendor = "apple"))))]
    {
        platform_tls::platform_tls(builder, network)
    }
}

impl HttpClient {
    /// The production client (honours the system proxy settings). Its policy is
    /// [`NetPolicy::Unrestricted`]: it is for the destinations the user chose.
    pub fn new() -> Result<Self, HttpError> {
        #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
        tls::preload();
        Self::build(true, Arc::new(SystemResolver))
    }

    #[cfg(test)]
    /// A client that ignores proxy environment variables, for tests on loopback.
    pub fn for_tests() -> Self {
        Self::for_tests_with_resolver(Arc::new(SystemResolver))
    }

    #[cfg(test)]
    /// [`HttpClient::for_tests`] with a chosen name resolver.
    pub fn for_tests_with_resolver(resolver: Arc<dyn HostResolver>) -> Self {
        Self::build(false, resolver).expect("the HTTP client builds with a static configuration")
    }

    fn build(system_proxy: bool, resolver: Arc<dyn HostResolver>) -> Result<Self, HttpError> {
        let system_route = Arc::new(Route::new(&ServerNetwork::default(), system_proxy));
        let shared = Arc::new(Shared {
            system_proxy,
            resolver,
            proxy_hosts: Arc::default(),
            system_route: system_route.clone(),
            clients: Pools::default(),
        });
        Ok(Self {
            shared,
            policy: NetPolicy::Unrestricted,
            route: system_route,
            body_limit: MAX_BODY_BYTES,
        })
    }

    /// The same client, reaching the network as `network` says (its proxy).
    pub fn with_network(&self, network: &ServerNetwork) -> Self {
        if *network == self.route.network {
            return self.clone();
        }
        let route = if *network == self.shared.system_route.network {
            self.shared.system_route.clone()
        } else {
            Arc::new(Route::new(network, self.shared.system_proxy))
        };
        Self {
            route,
            ..self.clone()
        }
    }

    /// The same client, limited to what `policy` allows.
    pub fn with_policy(&self, policy: NetPolicy) -> Self {
        Self {
            policy,
            ..self.clone()
        }
    }

    #[cfg(test)]
    pub fn policy(&self) -> NetPolicy {
        self.policy
    }

    /// The policy for requests made on behalf of the MCP server at `server_url`, from the
    /// addresses its host resolves to now (the public-only policy when it does not resolve).
    pub async fn policy_for_server(&self, server_url: &Url, opt_ins: NetOptIns) -> NetPolicy {
        if opt_ins.link_local_and_special_use {
            return NetPolicy::Unrestricted;
        }
        let addresses = match server_url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => match self.shared.resolver.lookup(name).await {
                Ok(addresses) => addresses,
                Err(e) => {
                    tracing::debug!(host = name, error = %e, "the MCP server's host does not resolve; public-only policy");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let policy = NetPolicy::for_server(&addresses, opt_ins);
        tracing::debug!(server = %server_url, ?policy, "network policy");
        policy
    }

    /// The same client, with the policy for `server_url` (see [`HttpClient::policy_for_server`]).
    pub async fn for_server(&self, server_url: &Url, opt_ins: NetOptIns) -> Self {
        let policy = self.policy_for_server(server_url, opt_ins).await;
        self.with_policy(policy)
    }

    /// The reqwest clients of this policy and route.
    fn pooled(&self) -> Arc<Pooled> {
        self.shared.clients.get(self.policy, &self.route.network)
    }

    /// The reqwest client of this policy and route, built at its first use (once, however
    /// many requests wait for it); `fresh` is the one that keeps no connection for reuse.
    /// Once the process's TLS configuration is built that is cheap and done here; before
    /// (the first requests of a process, or a platform verifier) it is done on a blocking
    /// thread.
    async fn reqwest<'p>(
        &self,
        pooled: &'p Pooled,
        fresh: bool,
    ) -> Result<&'p reqwest::Client, HttpError> {
        let cell = if fresh { &pooled.fresh } else { &pooled.client };
        let counter = (!fresh).then(|| pooled.connections.clone());
        cell.get_or_try_init(|| async {
            if tls_ready(&self.route.network) {
                return self.build_reqwest(counter);
            }
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.build_reqwest(counter))
                .await
                .map_err(|e| HttpError::Setup(e.to_string()))?
        })
        .await
    }

    /// A reqwest client; `counter` counts its connections and says it keeps idle ones.
    fn build_reqwest(
        &self,
        counter: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Result<reqwest::Client, HttpError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(total_timeout()))
            .timeout(total_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-app-server/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(PolicyResolver {
                resolver: self.shared.resolver.clone(),
                policy: self.policy,
                proxies: self.shared.proxy_hosts.clone(),
            });
        builder = match counter {
            Some(counter) => builder
                .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS_PER_HOST)
                .connector_layer(pool::CountConnections(counter)),
            None => builder.pool_max_idle_per_host(0),
        };
        builder = self
            .route
            .apply(builder, self.shared.system_proxy)
            .map_err(HttpError::Setup)?;
        #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
        {
            builder =
                builder.tls_backend_preconfigured(tls::config_for(&self.route.network.tls())?);
        }
        #[cfg(not(all(unix, not(target_os = "android"), not(target_vendor = "apple"))))]
        {
            builder = platform_tls::platform_tls(builder, &self.route.network)?;
        }
        builder
            .build()
            .map_err(|e| HttpError::Setup(error_chain(&e)))
    }

    /// Rule 35 before anything is sent: IP literals (reqwest does not resolve them), and
    /// names a proxy will resolve (the addresses this machine sees for them are checked;
    /// the proxy's own view is outside the daemon's reach). Names connected to directly are
    /// checked again, at the address used, by the resolver.
    async fn check_destination(&self, url: &Url) -> Result<(), HttpError> {
        if self.policy == NetPolicy::Unrestricted {
            return Ok(());
        }
        let refused = |refused: Refused| HttpError::DestinationRefused {
            url: url.to_string(),
            refused,
        };
        let host = match url.host() {
            Some(Host::Ipv4(ip)) => {
                return check_all(&ip.to_string(), &[IpAddr::V4(ip)], self.policy).map_err(refused);
            }
            Some(Host::Ipv6(ip)) => {
                return check_all(&ip.to_string(), &[IpAddr::V6(ip)], self.policy).map_err(refused);
            }
            Some(Host::Domain(name)) => name,
            None => return Ok(()),
        };
        let proxy = self.route.matcher.as_ref().and_then(|m| {
            let uri: oauth2::http::Uri = url.as_str().parse().ok()?;
            m.intercept(&uri)
        });
        let judge_here = match &proxy {
            Some(intercept) => {
                if let Some(proxy_host) = intercept.uri().host() {
                    self.shared.proxy_hosts.insert(proxy_host);
                }
                true
            }
            // A proxy's own name, asked for directly, is judged like any other.
            None => self.shared.proxy_hosts.contains(host),
        };
        if !judge_here {
            return Ok(());
        }
        let addresses =
            self.shared
                .resolver
                .lookup(host)
                .await
                .map_err(|e| HttpError::Connect {
                    url: url.to_string(),
                    reason: format!("cannot resolve {host}: {e}"),
                })?;
        check_all(host, &addresses, self.policy).map_err(refused)
    }

    /// GET for metadata documents: follows at most [`MAX_METADATA_REDIRECTS`] redirects, and
    /// only to the same origin as `url`.
    pub async fn get(&self, url: &Url, headers: &HeaderMap) -> Result<HttpResponse, HttpError> {
        let mut current = url.clone();
        let mut redirects = 0;
        loop {
            let response = self
                .send(Method::GET, &current, headers, None, true)
                .await?;
            if !response.status.is_redirection() {
                return Ok(response);
            }
            let Some(location) = response.headers.get(LOCATION).and_then(|v| v.to_str().ok())
            else {
                return Ok(response);
            };
            let next = current
                .join(location)
                .map_err(|e| HttpError::RedirectRefused {
                    url: current.to_string(),
                    location: location.to_string(),
                    reason: format!("invalid Location: {e}"),
                })?;
            if next.origin() != url.origin() {
                return Err(HttpError::RedirectRefused {
                    url: current.to_string(),
                    location: next.to_string(),
                    reason: "metadata redirects must stay on the same origin".to_string(),
                });
            }
            redirects += 1;
            if redirects > MAX_METADATA_REDIRECTS {
                return Err(HttpError::TooManyRedirects {
                    url: url.to_string(),
                    max: MAX_METADATA_REDIRECTS,
                });
            }
            current = next;
        }
    }

    /// POST of an `application/x-www-form-urlencoded` body; redirects are not followed.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        headers: &HeaderMap,
    ) -> Result<HttpResponse, HttpError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = headers.clone();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
            .entry(reqwest::header::ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        self.send(Method::POST, url, &headers, Some(body.into_bytes()), true)
            .await
    }

    /// POST of a JSON body; redirects are not followed.
    pub async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
        headers: &HeaderMap,
    ) -> Result<HttpResponse, HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Request {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let mut headers = headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
            .entry(reqwest::header::ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        self.send(Method::POST, url, &headers, Some(bytes), true)
            .await
    }

    /// POST whose body is only read when the status is not 2xx: a 2xx answer to an MCP
    /// probe may be an event stream that never ends. The probe goes to the MCP server URL
    /// the user configured, so the network policy does not apply to it.
    pub(crate) async fn post_probe(
        &self,
        url: &Url,
        body: Vec<u8>,
        headers: &HeaderMap,
    ) -> Result<HttpResponse, HttpError> {
        self.with_policy(NetPolicy::Unrestricted)
            .send(Method::POST, url, headers, Some(body), false)
            .await
    }

    /// Rule 35 for an endpoint the daemon will call later (token, registration,
    /// revocation): refused now, before any connection, when the policy allows none of the
    /// addresses it resolves to. A name that does not resolve now is left to the request.
    pub async fn check_endpoint(&self, url: &Url) -> Result<(), HttpError> {
        self.check_destination(url).await?;
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        if self.policy == NetPolicy::Unrestricted {
            return Ok(());
        }
        let resolver = PolicyResolver {
            resolver: self.shared.resolver.clone(),
            policy: self.policy,
            proxies: self.shared.proxy_hosts.clone(),
        };
        match resolver.allowed(name).await {
            Err(e) => match e.downcast::<Refused>() {
                Ok(refused) => Err(HttpError::DestinationRefused {
                    url: url.to_string(),
                    refused: *refused,
                }),
                Err(_) => Ok(()),
            },
            Ok(_) => Ok(()),
        }
    }

    /// Sends an `http::Request` as built by the oauth2 crate, with the same rules.
    pub async fn execute(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|e| HttpError::Request {
            url: parts.uri.to_string(),
            reason: format!("invalid URL: {e}"),
        })?;
        let response = self
            .send(parts.method, &url, &parts.headers, Some(body), true)
            .await?;
        let mut builder = oauth2::http::Response::builder().status(response.status);
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers;
        }
        builder.body(response.body).map_err(|e| HttpError::Request {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// The client as the `oauth2` crate's HTTP client, adding `headers` to every request (a
    /// DPoP proof).
    pub fn oauth2_adapter_with(&self, headers: HeaderMap) -> OAuth2Http {
        OAuth2Http {
            http: self.clone(),
            extra_headers: headers,
            last_status: Mutex::new(None),
            last_nonce: Mutex::new(None),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<Vec<u8>>,
        read_body: bool,
    ) -> Result<HttpResponse, HttpError> {
        self.check_destination(url).await?;
        check_secure_url(url)?;
        let pooled = self.pooled();
        let request = |client: &reqwest::Client| {
            let mut request = client.request(method.clone(), url.clone());
            request = request.headers(headers.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            request
        };
        let opened = pooled.connections();
        let sent = request(self.reqwest(&pooled, false).await?).send().await;
        let mut response = match sent {
            // A kept-alive connection the other end (often a proxy) closed after its last
            // answer without saying so: the request never had an answer. Once more, on a
            // connection of its own.
            Err(e) if pool::closed_before_answer(&e) && pooled.connections() == opened => {
                tracing::debug!(%method, %url, "a reused connection closed before the answer; retrying on a new connection");
                request(self.reqwest(&pooled, true).await?).send().await
            }
            sent => sent,
        }
        .map_err(|e| map_send_error(url, &e))?;
        let status = response.status();
        tracing::debug!(%method, %url, status = status.as_u16(), "oauth http");
        let headers = std::mem::take(response.headers_mut());
        let body = if read_body || !status.is_success() {
            self.read_capped(url, response).await?
        } else {
            Vec::new()
        };
        Ok(HttpResponse {
            url: url.clone(),
            status,
            headers,
            body,
        })
    }

    async fn read_capped(
        &self,
        url: &Url,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, HttpError> {
        let too_large = || HttpError::BodyTooLarge {
            url: url.to_string(),
            limit: self.body_limit,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.body_limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| map_send_error(url, &e))?
        {
            if body.len() + chunk.len() > self.body_limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// [`oauth2::AsyncHttpClient`] over [`HttpClient`], so oauth2's token requests get the same
/// timeouts, body cap, https rule and no-redirect policy.
#[derive(Debug)]
pub struct OAuth2Http {
    http: HttpClient,
    extra_headers: HeaderMap,
    last_status: Mutex<Option<StatusCode>>,
    last_nonce: Mutex<Option<String>>,
}

impl OAuth2Http {
    /// The `DPoP-Nonce` header of the last response, if it had one.
    pub fn last_nonce(&self) -> Option<String> {
        self.last_nonce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Status of the last response received through this adapter.
    pub fn last_status(&self) -> Option<StatusCode> {
        *self
            .last_status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuth2Http {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, mut request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            for (name, value) in &self.extra_headers {
                request.headers_mut().insert(name.clone(), value.clone());
            }
            let response = self.http.execute(request).await?;
            *self
                .last_nonce
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = response
                .headers()
                .get(super::dpop::NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            *self
                .last_status
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(response.status());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests;
