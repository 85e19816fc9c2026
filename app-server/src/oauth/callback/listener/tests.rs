use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tokio::sync::oneshot::error::TryRecvError;

use super::*;

fn expected(id: &str, state: &str) -> ExpectedCallback {
    ExpectedCallback {
        callback_path: format!("/callback/{id}"),
        state: state.to_owned(),
        issuer: None,
        iss_required: false,
    }
}

/// Limits for tests: the port closes with its last login, and a delivered code's page waits
/// only briefly for an ending no test gives.
fn test_limits() -> Limits {
    Limits {
        linger: Duration::ZERO,
        exchange_wait: Duration::from_millis(300),
        ..Limits::default()
    }
}

fn test_server() -> Arc<CallbackServer> {
    CallbackServer::with_limits("Test IDE", test_limits())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

struct Answer {
    status: u16,
    content_type: String,
    cache_control: String,
    allow: String,
    body: String,
}

async fn get(port: u16, target: &str) -> Answer {
    send(reqwest::Method::GET, port, target).await
}

async fn send(method: reqwest::Method, port: u16, target: &str) -> Answer {
    let response = client()
        .request(method, format!("http://127.0.0.1:{port}{target}"))
        .send()
        .await
        .expect("request to the listener");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, cache_control, allow) = (
        header("content-type"),
        header("cache-control"),
        header("allow"),
    );
    let status = response.status().as_u16();
    let body = response.text().await.expect("response body");
    Answer {
        status,
        content_type,
        cache_control,
        allow,
        body,
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

fn connectable(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn code(code: &str) -> CallbackOutcome {
    CallbackOutcome::Code {
        code: code.to_owned(),
    }
}

#[tokio::test]
async fn success_delivers_the_code_and_the_page_says_success() {
    let server = test_server();
    let mut registration = server
        .register(None, None, expected("IDone", "state-1"))
        .expect("register");
    assert_ne!(registration.port, 0);
    assert_eq!(server.active_ports(), vec![registration.port]);

    let answer = get(
        registration.port,
        "/callback/IDone?code=the%2Fcode&state=state-1",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "text/html; charset=utf-8");
    assert_eq!(answer.cache_control, "no-store");
    assert!(answer.body.contains("Login approved"), "{}", answer.body);
    assert!(
        answer.body.contains("return to Test IDE."),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("the/code") && !answer.body.contains("state-1"));
    assert_eq!((&mut registration.outcome).await, Ok(code("the/code")));

    // A reload after the login took its result does not crash or deliver twice.
    let reload = get(
        registration.port,
        "/callback/IDone?code=the%2Fcode&state=state-1",
    )
    .await;
    assert_eq!(reload.status, 200);
    assert!(reload.body.contains("Login approved"), "{}", reload.body);

    // Once the login says how it ended, a reload shows that.
    registration.finish(LoginEnding::LoggedIn);
    let reload = get(
        registration.port,
        "/callback/IDone?code=the%2Fcode&state=state-1",
    )
    .await;
    assert_eq!(reload.status, 200);
    assert!(
        reload
            .body
            .contains("Test IDE is now logged in to the server."),
        "{}",
        reload.body
    );
}

#[tokio::test]
async fn stray_requests_get_404_and_the_login_goes_on() {
    let server = test_server();
    let mut registration = server
        .register(None, None, expected("IDstray", "s2"))
        .expect("register");
    let port = registration.port;

    for target in [
        "/favicon.ico",
        "/",
        "/callback/OTHERID?code=x&state=s2",
        "/callback/IDstray/extra?code=x&state=s2",
    ] {
        let answer = get(port, target).await;
        assert_eq!(answer.status, 404, "{target}");
        assert_eq!(answer.content_type, "text/html; charset=utf-8");
    }
    // Only GET is answered; the right code and state in another method take nothing.
    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::OPTIONS,
    ] {
        let answer = send(method.clone(), port, "/callback/IDstray?code=x&state=s2").await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.allow, "GET", "{method}");
    }
    assert_eq!(registration.outcome.try_recv(), Err(TryRecvError::Empty));

    let answer = get(port, "/callback/IDstray?code=real&state=s2").await;
    assert_eq!(answer.status, 200);
    assert_eq!((&mut registration.outcome).await, Ok(code("real")));
}

#[tokio::test]
async fn two_logins_share_one_fixed_port_routed_by_path() {
    let server = test_server();
    let port = free_port();
    let mut first = server
        .register(Some(port), None, expected("IDfirst", "sa"))
        .expect("register first");
    let mut second = server
        .register(Some(port), None, expected("IDsecond", "sb"))
        .expect("register second");
    assert_eq!((first.port, second.port), (port, port));
    assert_eq!(server.active_ports(), vec![port]);

    let (to_second, to_first) = tokio::join!(
        get(port, "/callback/IDsecond?code=code-b&state=sb"),
        get(port, "/callback/IDfirst?code=code-a&state=sa"),
    );
    assert_eq!((to_first.status, to_second.status), (200, 200));
    assert_eq!((&mut first.outcome).await, Ok(code("code-a")));
    assert_eq!((&mut second.outcome).await, Ok(code("code-b")));
}

#[tokio::test]
async fn logins_without_a_fixed_port_share_the_ephemeral_listener() {
    let server = test_server();
    let first = server
        .register(None, None, expected("IDe1", "s"))
        .expect("register");
    let second = server
        .register(Some(0), None, expected("IDe2", "s"))
        .expect("register");
    assert_eq!(first.port, second.port);
    assert_eq!(server.active_ports(), vec![first.port]);
}

#[tokio::test]
async fn listener_closes_after_the_last_registration_is_dropped() {
    let server = test_server();
    let port = free_port();
    let first = server
        .register(Some(port), None, expected("IDc1", "s1"))
        .expect("register first");
    let second = server
        .register(Some(port), None, expected("IDc2", "s2"))
        .expect("register second");

    drop(first);
    assert_eq!(server.active_ports(), vec![port]);
    assert!(connectable(port));
    // Its redirect gets a page saying it stopped, not a 404.
    assert_eq!(
        get(port, "/callback/IDc1?code=x&state=s1").await.status,
        410
    );

    drop(second);
    assert!(server.active_ports().is_empty());
    assert!(!connectable(port), "port {port} still accepts connections");
    let rebound = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free again");
    drop(rebound);

    // The same fixed port can be taken again at once (a restarted login).
    let again = server
        .register(Some(port), None, expected("IDc1", "s3"))
        .expect("register again");
    assert_eq!(again.port, port);
    drop(again);

    let ephemeral = server
        .register(None, None, expected("IDc3", "s"))
        .expect("register ephemeral");
    let ephemeral_port = ephemeral.port;
    drop(ephemeral);
    assert!(!connectable(ephemeral_port));
    assert!(server.active_ports().is_empty());
}

#[tokio::test]
async fn a_port_held_by_another_program_is_port_in_use() {
    let foreign = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("foreign socket");
    let port = foreign.local_addr().expect("address").port();
    let server = test_server();
    let err = server
        .register(Some(port), None, expected("IDbusy", "s"))
        .expect_err("port is taken");
    assert!(
        matches!(err, CallbackListenError::PortInUse { port: p } if p == port),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("mcp_oauth_callback_port"), "{message}");
    assert!(server.active_ports().is_empty());
}

#[tokio::test]
async fn wrong_missing_or_repeated_state_is_discarded_and_the_login_keeps_waiting() {
    let server = test_server();
    let mut registration = server
        .register(None, None, expected("IDcsrf", "right-state"))
        .expect("register");
    let port = registration.port;
    for (target, why) in [
        (
            "/callback/IDcsrf?code=stolen-code&state=wrong-state",
            "state does not match",
        ),
        ("/callback/IDcsrf?code=stolen-code", "carries no state"),
        ("/callback/IDcsrf", "carries no state"),
        ("/callback/IDcsrf?error=access_denied", "carries no state"),
        (
            "/callback/IDcsrf?code=stolen-code&state=right-state&state=wrong-state",
            "carries its state twice",
        ),
    ] {
        let answer = get(port, target).await;
        assert_eq!(answer.status, 400, "{target}");
        assert!(answer.body.contains(why), "{target}: {}", answer.body);
        assert!(
            answer.body.contains("The login is still waiting"),
            "{}",
            answer.body
        );
        assert!(!answer.body.contains("stolen-code") && !answer.body.contains("wrong-state"));
        assert_eq!(
            registration.outcome.try_recv(),
            Err(TryRecvError::Empty),
            "{target} touched the login"
        );
    }
    // The real redirect still ends the login.
    let answer = get(port, "/callback/IDcsrf?code=real-code&state=right-state").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!((&mut registration.outcome).await, Ok(code("real-code")));
}

#[tokio::test]
async fn oauth_error_page_shows_the_servers_error_escaped() {
    let server = test_server();
    let mut registration = server
        .register(None, None, expected("IDerr", "s"))
        .expect("register");
    let answer = get(
        registration.port,
        "/callback/IDerr?error=access_denied&error_description=%3Cscript%3Eno%3C%2Fscript%3E&state=s",
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("<code>access_denied</code>"));
    assert!(answer.body.contains("&lt;script&gt;no&lt;/script&gt;"));
    assert!(!answer.body.contains("<script>"));
    assert_eq!(
        (&mut registration.outcome).await,
        Ok(CallbackOutcome::Error(CallbackError::OAuth {
            error: "access_denied".to_owned(),
            description: Some("<script>no</script>".to_owned()),
            uri: None,
        }))
    );
}

#[tokio::test]
async fn a_newer_login_on_the_same_path_replaces_the_older() {
    let server = test_server();
    let mut older = server
        .register(None, None, expected("IDsame", "old-state"))
        .expect("register older");
    let mut newer = server
        .register(None, None, expected("IDsame", "new-state"))
        .expect("register newer");
    assert_eq!(
        (&mut older.outcome).await,
        Ok(CallbackOutcome::Error(CallbackError::Superseded))
    );

    // The older login's tab gets a "replaced" page; the newer login keeps waiting.
    let stale = get(newer.port, "/callback/IDsame?code=c-old&state=old-state").await;
    assert_eq!(stale.status, 409);
    assert!(
        stale.body.contains("replaced by a newer one"),
        "{}",
        stale.body
    );
    assert_eq!(newer.outcome.try_recv(), Err(TryRecvError::Empty));

    // Dropping the older registration leaves the newer one in place.
    let port = newer.port;
    drop(older);
    assert_eq!(server.active_ports(), vec![port]);

    assert_eq!(
        get(port, "/callback/IDsame?code=c-new&state=new-state")
            .await
            .status,
        200
    );
    assert_eq!((&mut newer.outcome).await, Ok(code("c-new")));
}

#[tokio::test]
async fn a_login_that_stopped_waiting_gets_a_no_longer_waiting_page() {
    let server = test_server();
    let mut registration = server
        .register(None, None, expected("IDgone", "s"))
        .expect("register");
    let port = registration.port;
    // The login gave up (timeout, cancel) but still holds its place: close the receiver only.
    registration.outcome.close();
    let answer = get(port, "/callback/IDgone?code=c&state=s").await;
    assert_eq!(answer.status, 410);
    assert!(answer.body.contains("no longer waiting"), "{}", answer.body);
}

#[tokio::test]
async fn shutdown_fails_pending_logins_and_frees_the_ports() {
    let server = test_server();
    let port = free_port();
    let mut fixed = server
        .register(Some(port), None, expected("IDs1", "s"))
        .expect("register fixed");
    let mut ephemeral = server
        .register(None, None, expected("IDs2", "s"))
        .expect("register ephemeral");
    let ephemeral_port = ephemeral.port;

    server.shutdown();
    assert!(server.active_ports().is_empty());
    assert!(!connectable(port) && !connectable(ephemeral_port));
    for outcome in [(&mut fixed.outcome).await, (&mut ephemeral.outcome).await] {
        assert!(
            matches!(
                outcome,
                Ok(CallbackOutcome::Error(CallbackError::ListenerClosed { .. }))
            ),
            "{outcome:?}"
        );
    }
    assert!(matches!(
        server.register(None, None, expected("IDs3", "s")),
        Err(CallbackListenError::ShutDown)
    ));
}

#[test]
fn invalid_callback_paths_are_refused() {
    let server = test_server();
    for path in ["callback/ID", "/callback/ID?x=1", "/callback/ID#f", ""] {
        let expected = ExpectedCallback {
            callback_path: path.to_owned(),
            ..expected("x", "s")
        };
        assert!(
            matches!(
                server.register(None, None, expected),
                Err(CallbackListenError::InvalidCallbackPath { .. })
            ),
            "{path}"
        );
    }
    assert!(server.active_ports().is_empty());
}

mod hostile;

#[tokio::test]
async fn a_late_redirect_gets_its_logins_ending_while_the_port_lingers() {
    let server = CallbackServer::with_limits(
        "Test IDE",
        Limits {
            linger: Duration::from_millis(600),
            ..test_limits()
        },
    );
    let registration = server
        .register(None, None, expected("IDlate", "s-late"))
        .expect("register");
    registration.describe(PageNames::new(Some("Zed"), Some("linear")));
    let port = registration.port;
    registration.finish(LoginEnding::Cancelled);
    drop(registration);

    // No login waits, yet the port answers the cancelled login's redirect with its ending.
    let late = get(port, "/callback/IDlate?code=c&state=s-late").await;
    assert_eq!(late.status, 410, "{}", late.body);
    assert!(late.body.contains("Login cancelled"), "{}", late.body);
    assert!(
        late.body
            .contains("<strong>linear</strong> was cancelled in Zed"),
        "{}",
        late.body
    );
    // Another state learns nothing.
    assert_eq!(
        get(port, "/callback/IDlate?code=c&state=guess")
            .await
            .status,
        404
    );
    // A new login on the lingering port is served as usual.
    let mut again = server
        .register(None, None, expected("IDlate2", "s2"))
        .expect("register again");
    assert_eq!(again.port, port);
    assert_eq!(
        get(port, "/callback/IDlate2?code=c2&state=s2").await.status,
        200
    );
    assert_eq!((&mut again.outcome).await, Ok(code("c2")));
    drop(again);

    // Then the port closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while connectable(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.active_ports().is_empty());
}

#[tokio::test]
async fn the_page_for_a_code_waits_for_the_exchange_and_says_how_it_ended() {
    let server = CallbackServer::with_limits(
        "Test IDE",
        Limits {
            exchange_wait: Duration::from_secs(20),
            ..test_limits()
        },
    );
    let mut registration = server
        .register(None, None, expected("IDwait", "s"))
        .expect("register");
    registration.describe(PageNames::new(None, Some("linear")));
    let port = registration.port;
    let browser = tokio::spawn(get(port, "/callback/IDwait?code=c&state=s"));
    assert_eq!((&mut registration.outcome).await, Ok(code("c")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !browser.is_finished(),
        "the page did not wait for the exchange"
    );
    registration.finish(LoginEnding::Failed(
        "the token endpoint answered <500>".to_owned(),
    ));
    let page = tokio::time::timeout(Duration::from_secs(10), browser)
        .await
        .expect("the page came once the login ended")
        .expect("request");
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.body
            .contains("the token endpoint answered &lt;500&gt;"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Test IDE could not finish the login to <strong>linear</strong>")
    );
}
