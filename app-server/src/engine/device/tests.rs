//! The device login's polling on a paused clock, with scripted token endpoint answers, and
//! the choice `auto` makes.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::engine::flow::auto_picks_device;
use crate::engine::state::control::ControlSender;

fn refusal(error: &str) -> Result<TokenResponse, TokenError> {
    Err(TokenError::OAuth {
        endpoint: "https://as.example/token".into(),
        status: 400,
        error: error.into(),
        description: None,
    })
}

fn tokens() -> Result<TokenResponse, TokenError> {
    Ok(TokenResponse {
        access_token: "at".into(),
        token_type: "Bearer".into(),
        refresh_token: None,
        expires_in: Some(3600),
        scopes: None,
    })
}

fn transient() -> Result<TokenResponse, TokenError> {
    Err(TokenError::Transient {
        endpoint: "https://as.example/token".into(),
        reason: "HTTP 503".into(),
    })
}

/// Answers the scripted results in order (then `authorization_pending` forever) and
/// records when, in whole seconds after `start`, each poll came.
struct Script {
    start: Instant,
    answers: Mutex<VecDeque<Result<TokenResponse, TokenError>>>,
    at: Mutex<Vec<u64>>,
}

impl Script {
    fn new(answers: Vec<Result<TokenResponse, TokenError>>) -> Self {
        Self {
            start: Instant::now(),
            answers: Mutex::new(answers.into()),
            at: Mutex::new(Vec::new()),
        }
    }

    fn poll(&self) -> PollFuture<'_> {
        Box::pin(async move {
            let secs = (Instant::now() - self.start).as_secs_f64();
            self.at.lock().unwrap().push(secs.round() as u64);
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| refusal("authorization_pending"))
        })
    }

    fn times(&self) -> Vec<u64> {
        self.at.lock().unwrap().clone()
    }
}

async fn run(
    script: &Script,
    interval: u64,
    lifetime: u64,
) -> (Result<TokenResponse, LoginError>, ControlSender) {
    let (tx, mut rx) = control_channel();
    let deadline = Instant::now() + Duration::from_secs(lifetime);
    let result = poll_until(Duration::from_secs(interval), deadline, &mut rx, || {
        script.poll()
    })
    .await;
    (result, tx)
}

#[tokio::test(start_paused = true)]
async fn pending_polls_wait_the_interval_and_slow_down_adds_five_seconds_each_time() {
    let script = Script::new(vec![
        refusal("authorization_pending"),
        refusal("slow_down"),
        refusal("authorization_pending"),
        refusal("slow_down"),
        transient(),
        tokens(),
    ]);
    let (result, _) = run(&script, 2, 600).await;
    assert_eq!(result.unwrap().access_token, "at");
    // Every 2 s; 7 s after the first slow_down (poll 2 at 4 s), 12 s after the second
    // (poll 4 at 18 s); a transient failure keeps the interval.
    assert_eq!(script.times(), [2, 4, 11, 18, 30, 42]);
}

#[tokio::test(start_paused = true)]
async fn denial_expiry_and_other_refusals_end_the_polling_at_once() {
    for (answer, expect) in [
        ("access_denied", "denied"),
        ("expired_token", "expired"),
        ("invalid_grant", "token"),
    ] {
        let script = Script::new(vec![refusal("authorization_pending"), refusal(answer)]);
        let (result, _) = run(&script, 1, 600).await;
        let ok = match result.unwrap_err() {
            LoginError::DeviceDenied => expect == "denied",
            LoginError::DeviceExpired => expect == "expired",
            LoginError::TokenExchange(_) => expect == "token",
            other => panic!("{answer}: {other}"),
        };
        assert!(ok, "{answer}");
        assert_eq!(script.times(), [1, 2], "{answer}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_code_lifetime_bounds_the_polling_even_if_the_server_never_decides() {
    let script = Script::new(vec![]);
    let (result, _) = run(&script, 5, 23).await;
    assert!(matches!(result, Err(LoginError::DeviceExpired)));
    // Polls at 5, 10, 15, 20; the deadline at 23 ends it without a fifth poll.
    assert_eq!(script.times(), [5, 10, 15, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_ends_the_polling_and_no_poll_follows() {
    let script = Script::new(vec![]);
    let (tx, mut rx) = control_channel();
    let deadline = Instant::now() + Duration::from_secs(600);
    let polling = poll_until(Duration::from_secs(1), deadline, &mut rx, || script.poll());
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(tx.end(EndReason::Cancelled));
        // Time goes on well past further intervals.
        tokio::time::sleep(Duration::from_secs(30)).await;
    };
    let (result, ()) = tokio::join!(polling, cancel);
    assert!(matches!(result, Err(LoginError::Cancelled)));
    assert_eq!(script.times(), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_pasted_redirect_is_refused_and_the_polling_goes_on() {
    let script = Script::new(vec![refusal("authorization_pending"), tokens()]);
    let (tx, mut rx) = control_channel();
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.paste(
        crate::oauth::callback::CallbackOutcome::Code { code: "c".into() },
        reply,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let result = poll_until(Duration::from_secs(1), deadline, &mut rx, || script.poll()).await;
    assert_eq!(result.unwrap().access_token, "at");
    assert!(answer.await.unwrap().unwrap_err().contains("device login"));
}

#[test]
fn auto_picks_the_device_login_only_in_an_ssh_session_without_a_display() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        }
    };
    let ssh = &[("SSH_CONNECTION", "10.0.0.1 5555 10.0.0.2 22")];
    assert!(auto_picks_device(env(ssh), true));
    assert!(auto_picks_device(env(&[("SSH_TTY", "/dev/pts/1")]), true));
    // The server must offer it.
    assert!(!auto_picks_device(env(ssh), false));
    // A display (X11 forwarding, a desktop session) can open a browser that comes back.
    assert!(!auto_picks_device(
        env(&[("SSH_CONNECTION", "x"), ("DISPLAY", "localhost:10.0")]),
        true
    ));
    assert!(!auto_picks_device(
        env(&[("SSH_CLIENT", "x"), ("WAYLAND_DISPLAY", "wayland-0")]),
        true
    ));
    // No SSH session: a local desktop, or a container whose port the editor forwards.
    assert!(!auto_picks_device(env(&[]), true));
    // Empty values count as unset.
    assert!(!auto_picks_device(env(&[("SSH_CONNECTION", "")]), true));
}
