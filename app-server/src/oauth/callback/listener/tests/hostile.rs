//! What a local process or a web page can send to the port: raw bytes on a socket, and what
//! must follow (an answer, a closed connection, a login that still waits).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream as AsyncTcpStream;

use super::*;

/// Longest any exchange below may take before the listener is deemed to hold it open.
const PATIENCE: Duration = Duration::from_secs(15);

/// What came back on one raw connection.
#[derive(Debug)]
struct Raw {
    /// The status code of the response, if one arrived before the connection closed.
    status: Option<u16>,
    text: String,
}

/// Writes `request` (in the background, ignoring a refusal to take it all) and reads until
/// the listener closes the connection. Panics if it stays open past [`PATIENCE`].
async fn raw(port: u16, request: Vec<u8>) -> Raw {
    let stream = AsyncTcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("connect to the listener");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        // Keep the write side open: a client that never finishes its body.
        tokio::time::sleep(PATIENCE).await;
        drop(write);
    });
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) if received.len() < 1 << 20 => received.extend_from_slice(&chunk[..n]),
                Ok(_) => panic!("the listener sent more than 1 MiB"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the listener kept the connection open");
    writer.abort();
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok());
    Raw { status, text }
}

fn head(method: &str, target: &str, port: u16, extra: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").into_bytes()
}

fn short_limits() -> Limits {
    Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(300),
        connection_lifetime: Duration::from_secs(30),
        ..test_limits()
    }
}

#[tokio::test]
async fn a_huge_or_false_content_length_is_never_waited_for() {
    let server = CallbackServer::with_limits("Test IDE", test_limits());
    let mut registration = server
        .register(None, None, expected("IDbody", "s"))
        .expect("register");
    let port = registration.port;
    let real = "/callback/IDbody?code=c&state=s";
    let cases: Vec<(Vec<u8>, u16)> = vec![
        // Other methods with the right code and state take nothing, body or not.
        (
            head("POST", real, port, "Content-Length: 70368744177664\r\n"),
            405,
        ),
        (
            [
                head("PUT", real, port, "Content-Length: 70368744177664\r\n"),
                vec![b'x'; 64 * 1024],
            ]
            .concat(),
            405,
        ),
        // Lengths the HTTP layer cannot represent are refused before any method or path.
        (
            head(
                "PUT",
                real,
                port,
                "Content-Length: 18446744073709551615\r\n",
            ),
            431,
        ),
        (
            head(
                "GET",
                real,
                port,
                "Content-Length: 18446744073709551615\r\n",
            ),
            431,
        ),
        (
            [
                head("POST", real, port, "Content-Length: 1000\r\n"),
                b"ten bytes.".to_vec(),
            ]
            .concat(),
            405,
        ),
        (
            head(
                "GET",
                real,
                port,
                "Content-Length: 99999999999999999999999\r\n",
            ),
            400,
        ),
        (
            head(
                "GET",
                "/favicon.ico",
                port,
                "Content-Length: 70368744177664\r\n",
            ),
            404,
        ),
    ];
    for (request, want) in cases {
        let answer = raw(port, request).await;
        // The unread rest of a body may reset the connection before the answer is read;
        // what matters is that it ends and nothing else changes.
        if let Some(status) = answer.status {
            assert_eq!(status, want, "{}", answer.text);
        }
        assert_eq!(registration.outcome.try_recv(), Err(TryRecvError::Empty));
    }
    // A GET on the real path is answered from its head alone, body announced or not.
    let answer = raw(
        port,
        head("GET", real, port, "Content-Length: 70368744177664\r\n"),
    )
    .await;
    assert_eq!(answer.status, Some(200), "{}", answer.text);
    assert_eq!((&mut registration.outcome).await, Ok(code("c")));
}

#[tokio::test]
async fn oversized_heads_get_431_and_the_login_goes_on() {
    let server = CallbackServer::with_limits("Test IDE", test_limits());
    let mut registration = server
        .register(None, None, expected("IDhead", "s"))
        .expect("register");
    let port = registration.port;
    let real = "/callback/IDhead?code=c&state=s";
    let long_line = format!("X-Long: {}\r\n", "a".repeat(1 << 20));
    let many: String = (0..2_000).map(|i| format!("x{i}:1\r\n")).collect();
    let long_target = format!("{real}&pad={}", "p".repeat(64 * 1024));
    for request in [
        head("GET", real, port, &long_line),
        head("GET", real, port, &many),
        head("GET", &long_target, port, ""),
    ] {
        let answer = raw(port, request).await;
        if let Some(status) = answer.status {
            assert_eq!(status, 431, "{}", answer.text);
        }
        assert_eq!(registration.outcome.try_recv(), Err(TryRecvError::Empty));
    }
    assert_eq!(get(port, real).await.status, 200);
    assert_eq!((&mut registration.outcome).await, Ok(code("c")));
}

#[tokio::test]
async fn a_half_sent_head_is_cut_off_and_the_login_goes_on() {
    let server = CallbackServer::with_limits("Test IDE", short_limits());
    let mut registration = server
        .register(None, None, expected("IDslow", "s"))
        .expect("register");
    let port = registration.port;
    let partial = format!(
        "GET /callback/IDslow?code=c&state=s HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: "
    );
    let answer = raw(port, partial.into_bytes()).await;
    assert!(!answer.text.contains("Login approved"), "{}", answer.text);
    assert_eq!(registration.outcome.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        get(port, "/callback/IDslow?code=c&state=s").await.status,
        200
    );
    assert_eq!((&mut registration.outcome).await, Ok(code("c")));
}

#[tokio::test]
async fn a_full_listener_evicts_its_oldest_silent_connection_for_the_browser() {
    let limits = Limits {
        max_connections: 3,
        // Long enough that only eviction can explain a closed connection below.
        header_read_timeout: Duration::from_secs(60),
        connection_lifetime: Duration::from_secs(60),
        ..test_limits()
    };
    let server = CallbackServer::with_limits("Test IDE", limits);
    let mut registration = server
        .register(None, None, expected("IDcap", "s"))
        .expect("register");
    let port = registration.port;
    // One that sent half a head (slowloris), then two silent ones.
    let mut slow = AsyncTcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("connect");
    slow.write_all(b"GET /callback/IDcap?code=x HTTP/1.1\r\nX-Slow: ")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(
            AsyncTcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The browser is served at once; the oldest silent connection made room for it.
    let answer = raw(
        port,
        head("GET", "/callback/IDcap?code=c&state=s", port, ""),
    )
    .await;
    assert_eq!(answer.status, Some(200), "{}", answer.text);
    assert_eq!((&mut registration.outcome).await, Ok(code("c")));
    let closed = tokio::time::timeout(PATIENCE, silent[0].read(&mut [0u8; 16]))
        .await
        .expect("the oldest silent connection was evicted");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // The older half-sent head and the newer silent one are still open.
    for (what, stream) in [
        ("the half-sent head", &mut slow),
        ("the newer silent", &mut silent[1]),
    ] {
        assert!(
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut [0u8; 16]))
                .await
                .is_err(),
            "{what} was closed"
        );
    }

    // With no silent connection left, the oldest half-sent head is evicted next.
    drop(silent);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newer = Vec::new();
    for _ in 0..2 {
        let mut stream = AsyncTcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        newer.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = raw(port, head("GET", "/", port, "")).await;
    assert_eq!(again.status, Some(404), "{}", again.text);
    let closed = tokio::time::timeout(PATIENCE, slow.read(&mut [0u8; 16]))
        .await
        .expect("the oldest half-sent head was evicted");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}

#[tokio::test]
async fn only_the_served_host_is_answered() {
    let server = CallbackServer::with_limits("Test IDE", test_limits());
    let forwarded = Url::parse("http://localhost:9000/ide/callback").expect("url");
    let mut direct = server
        .register(None, None, expected("IDhost", "s"))
        .expect("register");
    let port = direct.port;
    let mut via_forwarder = server
        .register(
            Some(port),
            Some(&forwarded),
            ExpectedCallback {
                callback_path: "/ide/callback/IDfwd".to_owned(),
                ..expected("unused", "f")
            },
        )
        .expect("register forwarded");
    let real = "/callback/IDhost?code=c&state=s";
    let request = |host: &str| format!("GET {real} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    for (bytes, want) in [
        // DNS rebinding: a page on another name that resolves to 127.0.0.1.
        (request(&format!("evil.example:{port}")), 421),
        (request("evil.example"), 421),
        (request(&format!("localhost:{port}")), 421),
        (request(&format!("127.0.0.1:{}", port.wrapping_add(1))), 421),
        (request(&format!("127.0.0.1.:{port}")), 421),
        (request("localhost:9001"), 421),
        (
            format!(
                "GET http://evil.example:{port}{real} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
            )
            .into_bytes(),
            421,
        ),
        // No Host at all (HTTP/1.0), or two.
        (format!("GET {real} HTTP/1.0\r\n\r\n").into_bytes(), 400),
        (
            format!("GET {real} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n")
                .into_bytes(),
            400,
        ),
    ] {
        let answer = raw(port, bytes).await;
        assert_eq!(answer.status, Some(want), "{}", answer.text);
        assert!(!answer.text.contains("Login approved"), "{}", answer.text);
    }
    assert_eq!(direct.outcome.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(via_forwarder.outcome.try_recv(), Err(TryRecvError::Empty));

    // The host of the configured redirect base, as a browser behind the forwarder sends it.
    let answer = raw(port, request("LocalHost:9000")).await;
    assert_eq!(answer.status, Some(200), "{}", answer.text);
    assert_eq!((&mut direct.outcome).await, Ok(code("c")));
    let answer = raw(
        port,
        format!(
            "GET /ide/callback/IDfwd?code=f1&state=f HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(answer.status, Some(200), "{}", answer.text);
    assert_eq!((&mut via_forwarder.outcome).await, Ok(code("f1")));
}

#[test]
fn host_values_match_as_a_browser_writes_them() {
    let own = Authority::loopback(8765);
    for (value, want) in [
        ("127.0.0.1:8765", true),
        ("127.0.0.1:08765", true),
        ("127.0.0.1", false),
        ("127.0.0.1:80", false),
        ("127.0.0.1:", false),
        ("127.0.0.1:8765x", false),
        ("127.0.0.1:99999999999", false),
        ("localhost:8765", false),
        ("[::1]:8765", false),
        ("", false),
        (":8765", false),
        ("127.0.0.1:8765:8765", false),
    ] {
        assert_eq!(own.matches(value), want, "{value:?}");
    }
    assert!(Authority::loopback(80).matches("127.0.0.1"));
    let https = Authority::of_url(&Url::parse("https://Fwd.Example.com/cb").unwrap()).unwrap();
    for (value, want) in [
        ("fwd.example.com", true),
        ("FWD.example.com:443", true),
        ("fwd.example.com:80", false),
        ("fwd.example.com.evil", false),
    ] {
        assert_eq!(https.matches(value), want, "{value:?}");
    }
    let v6 = Authority::of_url(&Url::parse("http://[::1]:9000/cb").unwrap()).unwrap();
    assert!(v6.matches("[::1]:9000"));
    assert!(!v6.matches("[::1]"));
    assert!(!v6.matches("[::1]x:9000"));
}

#[tokio::test]
async fn closing_a_listener_with_connections_open_frees_the_port_at_once() {
    let server = CallbackServer::with_limits("Test IDE", short_limits());
    let port = free_port();
    let registration = server
        .register(Some(port), None, expected("IDbusyclose", "s"))
        .expect("register");
    let _held = AsyncTcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("connect");
    drop(registration);
    assert!(!connectable(port), "port {port} still accepts connections");
    let again = server
        .register(Some(port), None, expected("IDbusyclose", "s2"))
        .expect("the port is free again at once");
    assert_eq!(again.port, port);
}

mod routing {
    use proptest::prelude::*;

    use super::super::super::routes::{Answer, Request, Route, Routes, answer};
    use super::*;

    const PORT: u16 = 8765;
    const STATE: &str = "the-state";

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            Just("HEAD".to_owned()),
            "[A-Za-z]{0,8}",
        ]
    }

    fn host() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(Some(format!("127.0.0.1:{PORT}"))),
            Just(Some(format!("evil.example:{PORT}"))),
            Just(None),
            any::<String>().prop_map(Some),
        ]
    }

    fn target() -> impl Strategy<Value = String> {
        let path = prop_oneof![
            Just("/callback/IDprop".to_owned()),
            Just("/callback/IDprop/".to_owned()),
            Just("/".to_owned()),
            any::<String>(),
        ];
        let param = prop_oneof![
            Just(format!("state={STATE}")),
            Just("state=other".to_owned()),
            Just("state=".to_owned()),
            Just("code=c".to_owned()),
            Just("error=access_denied".to_owned()),
            Just("iss=https%3A%2F%2Fas.example".to_owned()),
            "[a-z_%=&#+0-9]{0,12}",
        ];
        (path, prop::collection::vec(param, 0..5))
            .prop_map(|(path, params)| format!("{path}?{}", params.join("&")))
    }

    /// How many times the target's query carries `state` (empty values included), and
    /// whether the one it carries is the login's.
    fn carries_the_state(target: &str) -> bool {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let states: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == "state")
            .collect();
        states.len() == 1 && states[0].1 == STATE
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Nothing but a GET naming the served host, on the login's path, with the login's
        /// state, takes the login's one outcome; every request gets a page.
        #[test]
        fn only_the_real_redirect_takes_the_outcome(
            method in method(),
            target in target(),
            host in host(),
        ) {
            let (sender, mut outcome) = oneshot::channel();
            let mut table = Routes::default();
            table.by_path.insert(
                "/callback/IDprop".to_owned(),
                Route {
                    id: 1,
                    expected: expected("IDprop", STATE),
                    sender: Some(sender),
                    names: PageNames::default(),
                    ending: None,
                    forwarded_host: None,
                },
            );
            let routes = Mutex::new(table);
            let answered = answer(
                &Request { method: &method, target: &target, host: host.as_deref() },
                &routes,
                &Authority::loopback(PORT),
                "Test IDE",
            );
            let status = match answered {
                Answer::Page(page) => page.status,
                Answer::AfterExchange { meanwhile, .. } => meanwhile.status,
            };
            prop_assert!((200..600).contains(&status));
            let taken = outcome.try_recv() != Err(TryRecvError::Empty);
            let path = target.split(['?', '#']).next().unwrap_or_default();
            let may_take = method == "GET"
                && host.as_deref() == Some(&format!("127.0.0.1:{PORT}")[..])
                && path == "/callback/IDprop"
                && carries_the_state(&target);
            prop_assert!(!taken || may_take, "taken by {method} {target:?} Host {host:?}");
            prop_assert_eq!(taken, may_take);
        }
    }
}
