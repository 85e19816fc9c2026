//! The reqwest clients behind [`super::HttpClient`]: one per network policy and route (the
//! proxy in use), built on first use and shared by every clone, so that connections are
//! reused within a policy and route and never across them. Each counts the connections it
//! opens, which tells whether a failed request went out on a reused one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::client::proxy::matcher::Matcher;

use crate::config::network::{ProxySetting, ServerNetwork};
use crate::oauth::net_policy::NetPolicy;

/// At most this many clients are kept (policies times the routes of the configured
/// servers: a handful in practice). Past it the table starts over; clients in use live on.
const MAX_CLIENTS: usize = 64;

/// Where a request goes first: its proxy, and the rules that say when the proxy applies.
pub(crate) struct Route {
    pub(crate) network: ServerNetwork,
    /// The proxy rules as reqwest applies them (`None`: no proxy at all).
    pub(crate) matcher: Option<Matcher>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The matcher's own Debug would show a proxy URL with its password.
        f.debug_struct("Route")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// The route of `network`; `system` is the environment's (when the process honours it).
    pub(crate) fn new(network: &ServerNetwork, system_proxy: bool) -> Self {
        let matcher = match &network.proxy {
            ProxySetting::System => system_proxy.then(Matcher::from_system),
            ProxySetting::Direct => None,
            ProxySetting::Url(url) => Some(
                Matcher::builder()
                    .all(url.expose().to_string())
                    .no(no_proxy_env())
                    .build(),
            ),
        };
        Route {
            network: network.clone(),
            matcher,
        }
    }

    /// Sets up `builder` to go through this route's proxy.
    pub(crate) fn apply(
        &self,
        builder: reqwest::ClientBuilder,
        system_proxy: bool,
    ) -> Result<reqwest::ClientBuilder, String> {
        Ok(match &self.network.proxy {
            ProxySetting::System if system_proxy => builder,
            ProxySetting::System | ProxySetting::Direct => builder.no_proxy(),
            ProxySetting::Url(url) => {
                // reqwest's message would repeat the URL, password included.
                let proxy = reqwest::Proxy::all(url.expose().as_str())
                    .map_err(|_| format!("the proxy {url} is not usable"))?
                    .no_proxy(reqwest::NoProxy::from_env());
                builder.proxy(proxy)
            }
        })
    }
}

/// `NO_PROXY`, else `no_proxy`, as the environment's proxy rules read it.
fn no_proxy_env() -> String {
    std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default()
}

/// One reqwest client and what goes with it.
#[derive(Default)]
pub(crate) struct Pooled {
    /// The client, keeping idle connections for reuse.
    pub(crate) client: tokio::sync::OnceCell<reqwest::Client>,
    /// The same client without a pool: each request on a connection of its own, for the
    /// retry of a request whose reused connection was closed under it.
    pub(crate) fresh: tokio::sync::OnceCell<reqwest::Client>,
    /// Connections `client` opened so far.
    pub(crate) connections: Arc<AtomicU64>,
}

impl Pooled {
    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The clients by policy and route.
#[derive(Default)]
pub(crate) struct Pools(Mutex<HashMap<(NetPolicy, ServerNetwork), Arc<Pooled>>>);

impl Pools {
    pub(crate) fn get(&self, policy: NetPolicy, network: &ServerNetwork) -> Arc<Pooled> {
        let mut pools = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pooled) = pools.get(&(policy, network.clone())) {
            return pooled.clone();
        }
        if pools.len() >= MAX_CLIENTS {
            pools.clear();
        }
        let pooled = Arc::new(Pooled::default());
        pools.insert((policy, network.clone()), pooled.clone());
        pooled
    }
}

/// A layer on reqwest's connector counting the connections it opens.
#[derive(Clone)]
pub(crate) struct CountConnections(pub(crate) Arc<AtomicU64>);

impl<S> tower_layer::Layer<S> for CountConnections {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    count: Arc<AtomicU64>,
}

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for Counted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

/// True when `error` is a connection that closed before the whole answer arrived
/// ("connection closed before message completed").
pub(crate) fn closed_before_answer(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && hyper_error.is_incomplete_message()
        {
            return true;
        }
        source = cause.source();
    }
    false
}
