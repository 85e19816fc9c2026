//! Reused connections that die under a request, and proxies: the retry on a new
//! connection, the `proxy` setting, and proxy credentials kept out of every message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::HeaderMap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use url::Url;

use super::super::{HttpClient, HttpError};
use crate::config::network::{ProxySetting, ServerNetwork};

/// What a [`Closing`] server does on each connection.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers the first request without `Connection: close`, then reads the next one and
    /// closes without answering (a proxy that closes kept-alive connections after its
    /// answer, met by a request already on its way).
    AnswerOnceThenClose,
    /// Reads the request and closes without answering.
    NeverAnswer,
}

/// A loopback HTTP/1.1 server counting the connections and requests it sees.
struct Closing {
    url: Url,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Closing {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    let mut answered = 0;
                    while read_request(&mut socket).await {
                        r.fetch_add(1, Ordering::SeqCst);
                        if mode == Mode::NeverAnswer || answered == 1 {
                            return;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.get_mut().write_all(answer).await.is_err() {
                            return;
                        }
                        answered += 1;
                    }
                });
            }
        });
        Self {
            url,
            connections,
            requests,
        }
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst),
        )
    }
}

/// Reads one request (head and `content-length` body); false at the end of the stream.
async fn read_request(socket: &mut BufReader<tokio::net::TcpStream>) -> bool {
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match socket.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.is_ok()
}

/// The second POST finds its pooled connection closed under it: sent again, once, on a new
/// connection, and answered. Fails without the retry ("connection closed before message
/// completed").
#[tokio::test]
async fn a_request_on_a_reused_connection_closed_under_it_is_sent_again_on_a_new_one() {
    let server = Closing::start(Mode::AnswerOnceThenClose).await;
    let http = HttpClient::for_tests();
    let none = HeaderMap::new();
    let first = http
        .post_form(&server.url, &[("token", "a")], &none)
        .await
        .unwrap();
    assert_eq!(first.body, b"ok");
    assert_eq!(server.counts(), (1, 1));
    let second = http
        .post_form(&server.url, &[("token", "b")], &none)
        .await
        .expect("retried on a new connection");
    assert_eq!(second.body, b"ok");
    // The dead connection carried the second request once; a new one carried it again.
    assert_eq!(server.counts(), (2, 3));
    // The retry's connection is not kept: the next request opens another, answered too,
    // and the one after it goes through the retry again. Never more than one retry.
    for _ in 0..3 {
        http.get(&server.url, &none).await.unwrap();
    }
}

/// A new connection closed before the answer is not retried: the server may have acted on
/// the request, and nothing says the connection was stale.
#[tokio::test]
async fn a_request_on_a_new_connection_closed_before_the_answer_is_not_sent_again() {
    let server = Closing::start(Mode::NeverAnswer).await;
    let http = HttpClient::for_tests();
    let err = http
        .post_form(&server.url, &[("code", "c")], &HeaderMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Request { .. }), "{err:?}");
    assert_eq!(server.counts(), (1, 1));
}

/// A configured proxy is used, `"none"` is not, and the proxy's password shows in no
/// error, no `Debug` text.
#[tokio::test]
async fn the_configured_proxy_carries_requests_and_its_password_never_shows() {
    // The "proxy" answers like a server would: it sees the absolute URL of each request.
    let proxy = Closing::start(Mode::AnswerOnceThenClose).await;
    let target = Url::parse("http://127.0.0.1:9/only-through-the-proxy").unwrap();
    let network = |value: &str| ServerNetwork {
        proxy: ProxySetting::parse(value).unwrap(),
        ..Default::default()
    };
    let proxied = HttpClient::for_tests().with_network(&network(&format!(
        "http://alice:pa55word-x@{}",
        proxy.url.host_str().unwrap().to_string() + ":" + &proxy.url.port().unwrap().to_string()
    )));
    let answer = proxied.get(&target, &HeaderMap::new()).await.unwrap();
    assert_eq!(answer.body, b"ok");
    assert_eq!(proxy.counts(), (1, 1));
    let shown = format!("{proxied:?}");
    assert!(!shown.contains("pa55word"), "{shown}");
    assert!(!shown.contains("alice"), "{shown}");

    // "none": straight to the destination (nothing listens on port 9).
    let direct = proxied.with_network(&network("none"));
    assert!(direct.get(&target, &HeaderMap::new()).await.is_err());
    assert_eq!(proxy.counts(), (1, 1));

    // A proxy that cannot be reached: the error names neither user nor password.
    let dead =
        HttpClient::for_tests().with_network(&network("http://alice:pa55word-x@127.0.0.1:9"));
    let err = dead.get(&target, &HeaderMap::new()).await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("pa55word"), "{text}");
        assert!(!text.contains("alice"), "{text}");
    }
}

/// Rule 35 with a proxy: the proxy resolves the destination's name, so the daemon judges
/// the addresses its own resolver gives for it before anything goes to the proxy; a name it
/// cannot resolve is refused too. The proxy's own address is the user's choice.
#[tokio::test]
async fn a_proxy_does_not_carry_requests_the_network_policy_refuses() {
    use crate::oauth::net_policy::{NetPolicy, StaticResolver};
    let proxy = Closing::start(Mode::AnswerOnceThenClose).await;
    let resolver = StaticResolver::new([
        ("intranet.corp", vec!["10.1.2.3".parse().unwrap()]),
        ("public.example", vec!["93.184.216.34".parse().unwrap()]),
    ]);
    let http = HttpClient::for_tests_with_resolver(Arc::new(resolver))
        .with_network(&ServerNetwork {
            proxy: ProxySetting::parse(&format!("http://127.0.0.1:{}", proxy.url.port().unwrap()))
                .unwrap(),
            ..Default::default()
        })
        .with_policy(NetPolicy::PublicOnly);
    let none = HeaderMap::new();
    for url in [
        "https://intranet.corp/token",
        "https://10.1.2.3/token",
        "https://169.254.169.254/latest",
    ] {
        let err = http
            .post_form(&Url::parse(url).unwrap(), &[("a", "b")], &none)
            .await
            .unwrap_err();
        assert!(
            matches!(err, HttpError::DestinationRefused { .. }),
            "{url}: {err:?}"
        );
    }
    let err = http
        .get(&Url::parse("https://unknown.example/x").unwrap(), &none)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot resolve"), "{err}");
    assert_eq!(proxy.counts(), (0, 0));
    // A public destination goes to the proxy (which is no real proxy: the tunnel fails).
    let _ = http
        .get(&Url::parse("https://public.example/x").unwrap(), &none)
        .await;
    assert_eq!(proxy.counts().0, 1);
}
