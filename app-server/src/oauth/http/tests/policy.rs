//! Rule 35 at the HTTP client: refused destinations are never connected to.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::HeaderMap;
use url::Url;

use super::super::{HttpClient, HttpError};
use crate::oauth::net_policy::{AddressClass, NetOptIns, NetPolicy, StaticResolver};

/// A loopback listener that counts the connections it accepts and closes each at once.
struct Counting {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Counting {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, accepted }
    }

    fn url(&self, scheme_host: &str) -> Url {
        Url::parse(&format!("{scheme_host}:{}/x", self.port)).unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn resolver(table: &[(&str, &str)]) -> HttpClient {
    HttpClient::for_tests_with_resolver(Arc::new(StaticResolver::new(
        table
            .iter()
            .map(|(h, ip)| (*h, vec![ip.parse::<IpAddr>().unwrap()])),
    )))
}

fn refused_class(err: &HttpError) -> AddressClass {
    match err {
        HttpError::DestinationRefused { refused, .. } => refused.class,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

/// 0.0.0.0 and its IPv4-mapped form reach this machine on Linux, so a missing check would
/// show up as an accepted connection on the loopback listener.
#[tokio::test]
async fn special_use_literals_are_refused_before_connecting() {
    let target = Counting::start().await;
    let http = HttpClient::for_tests().with_policy(NetPolicy::Local);
    let none = HeaderMap::new();
    for host in [
        "https://0.0.0.0",
        "https://[::ffff:0.0.0.0]",
        "http://0.0.0.0",
    ] {
        let url = target.url(host);
        let err = http.get(&url, &none).await.unwrap_err();
        assert_eq!(refused_class(&err), AddressClass::SpecialUse, "{url}");
        let text = err.to_string();
        assert!(text.contains(url.as_str()), "{text}");
        assert!(text.contains("allow_link_local_and_special_use"), "{text}");
        let err = http
            .post_form(&url, &[("a", "b")], &none)
            .await
            .unwrap_err();
        assert_eq!(refused_class(&err), AddressClass::SpecialUse, "{url}");
        assert!(!err.is_transient());
    }
    assert_eq!(target.accepted(), 0);

    // The same request without the policy does connect: the refusal above was the policy.
    let open = HttpClient::for_tests();
    let err = open
        .get(&target.url("https://0.0.0.0"), &none)
        .await
        .unwrap_err();
    assert!(
        !matches!(err, HttpError::DestinationRefused { .. }),
        "{err:?}"
    );
    assert_eq!(target.accepted(), 1);
}

#[tokio::test]
async fn loopback_is_refused_to_public_and_intranet_servers_only() {
    let target = Counting::start().await;
    let url = target.url("http://127.0.0.1");
    let none = HeaderMap::new();
    for policy in [NetPolicy::PublicOnly, NetPolicy::Intranet] {
        let err = HttpClient::for_tests()
            .with_policy(policy)
            .get(&url, &none)
            .await
            .unwrap_err();
        assert_eq!(refused_class(&err), AddressClass::Loopback, "{policy:?}");
        assert!(err.to_string().contains(policy.rule()), "{err}");
    }
    assert_eq!(target.accepted(), 0);
    let _ = HttpClient::for_tests()
        .with_policy(NetPolicy::Local)
        .get(&url, &none)
        .await;
    assert_eq!(target.accepted(), 1);
}

/// A host name is checked at the address it resolves to, inside the connection: reqwest
/// never sees a refused address.
#[tokio::test]
async fn a_name_resolving_to_a_refused_address_is_never_connected_to() {
    let target = Counting::start().await;
    let http = resolver(&[("evil.test", "0.0.0.0"), ("mapped.test", "::ffff:0.0.0.0")]);
    let none = HeaderMap::new();
    for host in ["https://evil.test", "https://mapped.test"] {
        let url = target.url(host);
        let err = http
            .with_policy(NetPolicy::Local)
            .post_form(&url, &[], &none)
            .await
            .unwrap_err();
        assert_eq!(refused_class(&err), AddressClass::SpecialUse, "{url}");
        assert!(err.to_string().contains("resolves to"), "{err}");
        let err = http
            .with_policy(NetPolicy::Local)
            .check_endpoint(&url)
            .await
            .unwrap_err();
        assert_eq!(refused_class(&err), AddressClass::SpecialUse, "{url}");
    }
    assert_eq!(target.accepted(), 0);
    let _ = http.get(&target.url("https://evil.test"), &none).await;
    assert_eq!(target.accepted(), 1);
}

#[tokio::test]
async fn the_probe_of_the_configured_url_is_not_restricted() {
    let target = Counting::start().await;
    let http = HttpClient::for_tests().with_policy(NetPolicy::PublicOnly);
    let _ = http
        .post_probe(
            &target.url("http://127.0.0.1"),
            Vec::new(),
            &HeaderMap::new(),
        )
        .await;
    assert_eq!(target.accepted(), 1);
}

#[tokio::test]
async fn the_server_url_decides_the_policy() {
    const NONE: NetOptIns = NetOptIns {
        private_network: false,
        link_local_and_special_use: false,
    };
    const PRIVATE: NetOptIns = NetOptIns {
        private_network: true,
        link_local_and_special_use: false,
    };
    const SPECIAL: NetOptIns = NetOptIns {
        private_network: false,
        link_local_and_special_use: true,
    };
    let http = resolver(&[
        ("intra.test", "10.1.2.3"),
        ("public.test", "8.8.8.8"),
        ("meta.test", "169.254.169.254"),
        ("localhost", "127.0.0.1"),
    ]);
    let table = [
        ("http://127.0.0.1:9/mcp", NONE, NetPolicy::Local),
        ("http://[::1]:9/mcp", NONE, NetPolicy::Local),
        ("http://localhost:9/mcp", NONE, NetPolicy::Local),
        ("https://intra.test/mcp", NONE, NetPolicy::Intranet),
        ("https://10.0.0.8/mcp", NONE, NetPolicy::Intranet),
        ("https://public.test/mcp", NONE, NetPolicy::PublicOnly),
        ("https://meta.test/mcp", NONE, NetPolicy::PublicOnly),
        ("https://unknown.test/mcp", NONE, NetPolicy::PublicOnly),
        ("https://public.test/mcp", PRIVATE, NetPolicy::Intranet),
        ("https://meta.test/mcp", PRIVATE, NetPolicy::Intranet),
        ("https://public.test/mcp", SPECIAL, NetPolicy::Unrestricted),
    ];
    for (url, allow, expected) in table {
        let url = Url::parse(url).unwrap();
        assert_eq!(http.policy_for_server(&url, allow).await, expected, "{url}");
        assert_eq!(
            http.for_server(&url, allow).await.policy(),
            expected,
            "{url}"
        );
    }
}

/// Endpoints named by metadata are judged at discovery; a name that does not resolve now
/// is left to the request (which is judged again).
#[tokio::test]
async fn endpoint_check_refuses_only_what_the_policy_forbids() {
    let http = resolver(&[("intra.test", "10.1.2.3"), ("public.test", "8.8.8.8")])
        .with_policy(NetPolicy::PublicOnly);
    let check = |u: &str| {
        let http = http.clone();
        let url = Url::parse(u).unwrap();
        async move { http.check_endpoint(&url).await }
    };
    assert!(check("https://public.test/token").await.is_ok());
    assert!(check("https://unknown.test/token").await.is_ok());
    assert!(check("https://93.184.215.14/token").await.is_ok());
    for bad in [
        "https://intra.test/token",
        "https://10.0.0.1/token",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/token",
        "https://[fd00::1]/token",
        "https://[64:ff9b::a9fe:a9fe]/token",
    ] {
        let err = check(bad).await.unwrap_err();
        assert!(
            matches!(err, HttpError::DestinationRefused { .. }),
            "{bad}: {err:?}"
        );
    }
}
