use super::*;
use crate::credentials::StoredClient;
use mcp_app_server_protocol::{McpAuthStatus, McpAuthStatusReason, RegistrationKind};

fn creds(expires_in: Option<i64>, life: i64, refresh: bool) -> StoredCredentials {
    let now = unix_now();
    StoredCredentials {
        server_name: "a".into(),
        server_url: "https://a.example/mcp".into(),
        account: None,
        selected_at: None,
        access_token: "at".into(),
        token_type: "Bearer".into(),
        refresh_token: refresh.then(|| "rt".into()),
        expires_at: expires_in.map(|s| now + s),
        scopes: vec![],
        requested_scopes: Vec::new(),
        issuer: "https://auth.example".into(),
        token_endpoint: "https://auth.example/token".into(),
        revocation_endpoint: None,
        resource: "https://a.example/mcp".into(),
        client: StoredClient {
            kind: RegistrationKind::Dcr,
            client_id: "c".into(),
            client_secret: None,
            token_endpoint_auth_method: "none".into(),
        },
        reauthentication_required: false,
        login_reason: None,
        grant: None,
        dpop_key: None,
        certificate_x5t: None,
        updated_at: expires_in.map_or(now, |s| now + s - life),
        refreshed_through: None,
        shared_with: None,
    }
}

type Announcements = Arc<std::sync::Mutex<Vec<(String, McpAuthStatus)>>>;

/// A service on a file store in `dir`, configured with server `a`, collecting its
/// status announcements.
fn service(dir: &std::path::Path) -> (Arc<OAuthService>, Announcements) {
    let store = crate::credentials::FileStore::open(&crate::home::Home::at(dir)).unwrap();
    service_on(Arc::new(store))
}

/// The same on `store`.
fn service_on(
    store: Arc<dyn crate::credentials::CredentialStore>,
) -> (Arc<OAuthService>, Announcements) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let service = OAuthService::new(
        crate::engine::Network::new().unwrap(),
        store,
        Arc::new(move |event| {
            if let OAuthEvent::AuthStatusChanged { name, status, .. } = event {
                sink.lock().unwrap().push((name, status));
            }
        }),
    );
    let c = creds(None, 0, true);
    service.set_servers(vec![("a".into(), c.key())]);
    (service, seen)
}

#[tokio::test]
async fn each_change_is_announced_once_whoever_notices_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let (service, seen) = service(dir.path());
    let configured = service.live.configured();
    // The first look records without announcing.
    service.rescan(&configured).await.unwrap();
    assert!(seen.lock().unwrap().is_empty());

    // Written behind the service's back: the rescan announces it, once.
    let c = creds(Some(3600), 3600, true);
    service.store().save(&c).unwrap();
    service.rescan(&configured).await.unwrap();
    service.rescan(&configured).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("a".into(), McpAuthStatus::LoggedIn)]
    );
    // ... and the flow that made it, announcing it too, stays quiet.
    service.emit(OAuthEvent::AuthStatusChanged {
        name: "a".into(),
        status: McpAuthStatus::LoggedIn,
        reason: None,
    });
    assert_eq!(seen.lock().unwrap().len(), 1);

    // The flow announces first (a logout): the rescan that follows stays quiet.
    service.store().delete(&c.key()).unwrap();
    service.emit(OAuthEvent::AuthStatusChanged {
        name: "a".into(),
        status: McpAuthStatus::NotLoggedIn,
        reason: Some(McpAuthStatusReason::NeverLoggedIn),
    });
    service.rescan(&configured).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("a".into(), McpAuthStatus::LoggedIn),
            ("a".into(), McpAuthStatus::NotLoggedIn)
        ]
    );

    // A token without a refresh token that ran out reads `expired`.
    let mut gone = creds(Some(-5), 60, false);
    gone.expires_at = Some(unix_now() - 5);
    service.store().save(&gone).unwrap();
    service.rescan(&configured).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&("a".into(), McpAuthStatus::Expired))
    );
}

#[tokio::test]
async fn the_scheduler_and_the_watcher_end_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (service, _) = service(dir.path());
    service.start_live(Some(dir.path().join("credentials.json")));
    // Both tasks hold the wake-up handle while they run.
    assert_eq!(Arc::strong_count(&service.live.wake), 3);
    // Started once only.
    service.start_live(Some(dir.path().join("credentials.json")));
    assert_eq!(Arc::strong_count(&service.live.wake), 3);
    tokio::time::timeout(Duration::from_secs(20), service.shutdown())
        .await
        .expect("shutdown is bounded");
    assert_eq!(Arc::strong_count(&service.live.wake), 1);
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn servers_coming_into_use_are_planned_without_a_whole_round_each() {
    const SERVERS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    // The store the daemon uses for the file backend, with its copy in memory.
    let home = crate::home::Home::at(dir.path());
    let store = crate::credentials::open_store(&home, crate::credentials::StoreMode::File);
    let (service, _) = service_on(store.unwrap());
    let mut text = String::new();
    for i in 0..SERVERS {
        text.push_str(&format!(
            "[mcp_servers.s{i:02}]\nurl = \"https://s{i}.example/mcp\"\n"
        ));
    }
    let config = crate::config::parse(&text, std::path::Path::new("config.toml")).unwrap();
    let targets: Vec<Arc<crate::engine::ServerTarget>> = config
        .servers
        .values()
        .map(|s| {
            let http = s.http().unwrap();
            Arc::new(crate::engine::ServerTarget::from_config(
                &s.name, http, &config, None,
            ))
        })
        .collect();
    let saved_at = unix_now();
    for t in &targets {
        let mut c = creds(Some(3600), 3600, true);
        (c.server_name, c.server_url) = (t.name.clone(), t.url.to_string());
        service.store().save(&c).unwrap();
    }
    service.set_servers(crate::engine::configured_servers(&config));
    service.start_live(None);
    let live = &service.live;
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    // The first round, and the one `set_servers` asked for before the scheduler ran.
    until("the first rounds ran", || count(&live.full_rounds) >= 2).await;
    let whole = count(&live.full_rounds);
    let hand_offs = service.store_counts().hand_offs;

    // Each server asked for in turn is planned by a round of its own, which reads no
    // other server's entry: the whole rounds do not grow with the servers in use.
    for t in &targets {
        service.token_used(t);
        until("the server is planned", || {
            service.live_status(&t.name).1.is_some()
        })
        .await;
    }
    assert_eq!(count(&live.full_rounds), whole);
    // Where the store's copy is vouched for, the rounds read it where they run.
    #[cfg(target_os = "linux")]
    assert_eq!(service.store_counts().hand_offs, hand_offs);
    #[cfg(not(target_os = "linux"))]
    let _ = hand_offs;
    let added = count(&live.added_rounds);
    assert!((1..=SERVERS as u64).contains(&added), "{added}");
    let due = service.live_status("s07").1.unwrap();
    assert!(
        (saved_at + 3600 - 91..=unix_now() + 3600).contains(&due),
        "{due}"
    );

    // Asked for again: nothing for the scheduler to do, nothing queued for it.
    for t in &targets {
        service.token_used(t);
    }
    assert!(live.take_added().is_empty());

    // A store change is still a whole round, which keeps every plan.
    live.wake.notify_one();
    until("a whole round ran", || count(&live.full_rounds) > whole).await;
    until("every server is still planned", || {
        targets
            .iter()
            .all(|t| service.live_status(&t.name).1.is_some())
    })
    .await;
    tokio::time::timeout(Duration::from_secs(20), service.shutdown())
        .await
        .expect("shutdown is bounded");
}

#[test]
fn long_lived_tokens_are_refreshed_ninety_seconds_early_short_ones_at_half_life() {
    let c = creds(Some(3600), 3600, true);
    assert_eq!(refresh_due(&c), Some(c.expires_at.unwrap() - 90));
    let c = creds(Some(12), 12, true);
    assert_eq!(refresh_lead(&c), 6);
    assert_eq!(refresh_due(&c), Some(c.expires_at.unwrap() - 6));
    // A token that says it lived no time at all still gets a lead of one second.
    let c = creds(Some(5), 0, true);
    assert_eq!(refresh_lead(&c), 1);
    // After the refresh the token is fresh enough for the validity it was asked with.
    let c = creds(Some(3600), 3600, true);
    assert!(crate::engine::stored::fresh_enough(
        &c,
        refresh_lead(&c) as u32 + 1
    ));
}

#[test]
fn nothing_is_refreshed_that_cannot_be_or_never_expires() {
    assert_eq!(refresh_due(&creds(None, 0, true)), None);
    assert_eq!(refresh_due(&creds(Some(60), 60, false)), None);
    let mut refused = creds(Some(60), 60, true);
    refused.reauthentication_required = true;
    assert_eq!(refresh_due(&refused), None);
}

#[test]
fn only_tokens_without_refresh_token_expire_by_themselves() {
    let c = creds(Some(30), 30, false);
    assert_eq!(expiry_moment(&c), c.expires_at);
    assert_eq!(expiry_moment(&creds(Some(30), 30, true)), None);
    // Already expired: its status says so, there is nothing left to wait for.
    assert_eq!(expiry_moment(&creds(Some(-1), 30, false)), None);
    assert_eq!(expiry_moment(&creds(None, 0, false)), None);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let secs: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
    assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
}

#[test]
fn wall_clock_moments_map_to_instants_just_after_them() {
    let now = Instant::now();
    assert_eq!(instant_at(99, now, 100_000), now);
    assert_eq!(instant_at(100, now, 100_000), now);
    assert_eq!(
        instant_at(101, now, 100_250),
        now + Duration::from_millis(770)
    );
    assert_eq!(secs_until(now + Duration::from_millis(1500), now), 2);
    assert_eq!(secs_until(now, now), 0);
}

#[test]
fn a_failed_refresh_waits_longer_each_time_and_a_success_resets() {
    let mut s = Scheduler::default();
    let now = Instant::now();
    let gone: Result<Arc<StoredCredentials>, Arc<VendError>> =
        Err(Arc::new(VendError::NotLoggedIn("a".into())));
    s.finished("a", &gone, now);
    assert_eq!(s.holds["a"].failures, 0);
    let err = || {
        Err(Arc::new(VendError::RefreshTransient {
            name: "a".into(),
            error: crate::oauth::token::TokenError::Invalid {
                endpoint: "https://auth.example/token".into(),
                reason: "test".into(),
            },
        }))
    };
    s.running.insert("a".into());
    s.finished("a", &err(), now);
    assert!(!s.running.contains("a"));
    assert_eq!(
        s.holds["a"],
        Hold {
            failures: 1,
            until: now + Duration::from_secs(2)
        }
    );
    s.finished("a", &err(), now);
    assert_eq!(s.holds["a"].until, now + Duration::from_secs(4));
    s.finished("a", &Ok(Arc::new(creds(Some(60), 60, true))), now);
    assert_eq!(
        s.holds["a"],
        Hold {
            failures: 0,
            until: now + MIN_SPACING
        }
    );
}
