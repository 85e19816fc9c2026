//! The transport rules of the HTTP client: secure URLs, Cache-Control, capped bodies,
//! redirects, extra headers, transient errors and idle connections. Rule 35 at the client:
//! [`policy`].

mod policy;
mod proxy;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::oauth::test_server::{serve, status, with_headers};

#[test]
fn secure_url_table() {
    let ok = [
        "https://as.example.com/token",
        "http://127.0.0.1:8080/token",
        "http://127.4.5.6/token",
        "http://[::1]:9/token",
        "http://localhost:9/token",
        "http://LOCALHOST/token",
    ];
    for url in ok {
        assert!(check_secure_url(&Url::parse(url).unwrap()).is_ok(), "{url}");
    }
    let bad = [
        "http://as.example.com/token",
        "http://10.0.0.1/token",
        "http://localhost.evil.example/token",
        "http://[::2]/token",
        "ftp://as.example.com/token",
    ];
    for url in bad {
        let err = check_secure_url(&Url::parse(url).unwrap()).unwrap_err();
        assert!(matches!(err, HttpError::InsecureUrl { .. }), "{url}");
        assert!(err.to_string().contains(url), "{err}");
    }
}

#[test]
fn cache_control_table() {
    let cases: [(&[&str], Option<u64>); 7] = [
        (&[], None),
        (&["max-age=600"], Some(600)),
        (&["public, Max-Age=60"], Some(60)),
        (&["max-age=\"30\""], Some(30)),
        (&["max-age=60", "no-store"], Some(0)),
        (&["no-cache"], Some(0)),
        (&["max-age=abc"], None),
    ];
    for (values, expected) in cases {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(CACHE_CONTROL, v.parse().unwrap());
        }
        assert_eq!(
            cache_max_age(&headers),
            expected.map(Duration::from_secs),
            "{values:?}"
        );
    }
}

#[test]
fn header_map_from_pairs() {
    let map = header_map([("X-Tenant", "acme")]).unwrap();
    assert_eq!(map.get("x-tenant").unwrap(), "acme");
    assert!(matches!(
        header_map([("bad header", "x")]),
        Err(HttpError::InvalidHeader { .. })
    ));
}

#[tokio::test]
async fn insecure_url_is_refused_before_any_request() {
    let http = HttpClient::for_tests();
    let url = Url::parse("http://as.example.com/token").unwrap();
    let err = http
        .post_form(&url, &[], &HeaderMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::InsecureUrl { .. }), "{err:?}");
    let err = http.get(&url, &HeaderMap::new()).await.unwrap_err();
    assert!(matches!(err, HttpError::InsecureUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn body_is_capped() {
    let server = serve(|req, _| match req.path.as_str() {
        "/exact" => with_headers(200, &[], vec![b'a'; MAX_BODY_BYTES]),
        "/over" => with_headers(200, &[], vec![b'a'; MAX_BODY_BYTES + 1]),
        // Chunked, no Content-Length: the cap must hold while reading.
        _ => {
            let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 64 * 1024]));
            with_headers(200, &[], Body::from_stream(futures::stream::iter(chunks)))
        }
    })
    .await;
    let http = HttpClient::for_tests();
    let none = HeaderMap::new();
    let exact = http.get(&server.url("/exact"), &none).await.unwrap();
    assert_eq!(exact.body.len(), MAX_BODY_BYTES);
    for path in ["/over", "/stream"] {
        let err = http.get(&server.url(path), &none).await.unwrap_err();
        assert!(
            matches!(err, HttpError::BodyTooLarge { .. }),
            "{path}: {err:?}"
        );
        assert!(err.to_string().contains(path), "{err}");
    }
}

#[tokio::test]
async fn posts_do_not_follow_redirects() {
    let server = serve(|req, _| match req.path.as_str() {
        "/token" => with_headers(302, &[("location", "/elsewhere")], ""),
        _ => status(200),
    })
    .await;
    let http = HttpClient::for_tests();
    let response = http
        .post_form(&server.url("/token"), &[("a", "b")], &HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    let response = http
        .post_json(
            &server.url("/token"),
            &serde_json::json!({}),
            &HeaderMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(server.count("/elsewhere"), 0);
}

#[tokio::test]
async fn metadata_redirects_are_bounded_and_same_origin() {
    let other = serve(|_, _| status(200)).await;
    let other_url = other.url("/stolen").to_string();
    let server = serve(move |req, _| {
        let hop = |to: &str| with_headers(302, &[("location", to)], "");
        match req.path.as_str() {
            "/three" => hop("/r1"),
            "/r1" => hop("/r2"),
            "/r2" => hop("/final"),
            "/four" => hop("/three"),
            "/cross" => hop(&other_url),
            "/final" => with_headers(200, &[], "{}"),
            _ => status(404),
        }
    })
    .await;
    let http = HttpClient::for_tests();
    let none = HeaderMap::new();
    let ok = http.get(&server.url("/three"), &none).await.unwrap();
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.url.path(), "/final");

    let err = http.get(&server.url("/four"), &none).await.unwrap_err();
    assert!(
        matches!(err, HttpError::TooManyRedirects { max: 3, .. }),
        "{err:?}"
    );

    let err = http.get(&server.url("/cross"), &none).await.unwrap_err();
    assert!(matches!(err, HttpError::RedirectRefused { .. }), "{err:?}");
    assert_eq!(other.count("/stolen"), 0);
}

#[tokio::test]
async fn extra_headers_are_sent() {
    let server = serve(|_, _| status(204)).await;
    let http = HttpClient::for_tests();
    let headers = header_map([("X-Tenant", "acme")]).unwrap();
    http.get(&server.url("/x"), &headers).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].headers.get("x-tenant").unwrap(), "acme");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let err = HttpClient::for_tests()
        .get(&url, &HeaderMap::new())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains(url.as_str()), "{err}");
}

/// A keep-alive HTTP/1.1 server on loopback that holds every answer until `hold` requests
/// arrived (so that many connections are open at once) and counts the connections it
/// accepted and those still open.
async fn counting_server(hold: usize) -> (Url, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(hold));
    let (a, o) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        let mut served = 0usize;
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let (o, barrier) = (o.clone(), barrier.clone());
            let first_wave = served < hold;
            served += 1;
            tokio::spawn(async move {
                let mut waited = !first_wave;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    buf.drain(..end + 4);
                    if !waited {
                        barrier.wait().await;
                        waited = true;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if tcp.write_all(answer).await.is_err() {
                        break;
                    }
                }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, accepted, open)
}

#[tokio::test]
async fn after_a_burst_only_a_few_idle_connections_stay_open_and_serve_again() {
    const BURST: usize = 20;
    let (url, accepted, open) = counting_server(BURST).await;
    let http = HttpClient::for_tests();
    let headers = HeaderMap::new();
    let answers = futures::future::join_all((0..BURST).map(|_| http.get(&url, &headers))).await;
    assert!(
        answers
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status == 200))
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        BURST,
        "one connection per request"
    );
    // The pool closes what it does not keep as soon as each answer is read.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while open.load(Ordering::SeqCst) > MAX_IDLE_CONNECTIONS_PER_HOST
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(open.load(Ordering::SeqCst), MAX_IDLE_CONNECTIONS_PER_HOST);
    // The kept ones serve the next requests: no new connection.
    for _ in 0..MAX_IDLE_CONNECTIONS_PER_HOST {
        assert_eq!(http.get(&url, &HeaderMap::new()).await.unwrap().status, 200);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), BURST);
}
