//! The cache in memory and in its file: lifetimes, bounds, keys, and several processes
//! sharing the file.

use super::*;
use crate::oauth::discovery::AuthServerMetadata;

fn discovery(issuer: &str) -> Discovery {
    let origin = Url::parse(issuer).unwrap();
    Discovery {
        resource: "https://mcp.example/mcp".into(),
        protected_resource_url: None,
        protected_resource: None,
        challenge: None,
        issuer: issuer.into(),
        metadata: AuthServerMetadata::legacy_defaults(&origin),
        legacy: true,
        default_endpoints: true,
        escape_hatches: Vec::new(),
        cached: false,
    }
}

#[tokio::test]
async fn entries_persist_expire_and_a_corrupt_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DiscoveryCache::new();
    cache.persist_in(dir.path());
    let d = discovery("https://as.example");
    cache.insert("a", &d, None).await;
    cache.insert("gone", &d, Some(Duration::ZERO)).await;
    cache
        .insert(
            "short",
            &discovery("https://b.example"),
            Some(Duration::from_millis(1)),
        )
        .await;
    assert_eq!(cache.get("a").await, Some(d.clone()));
    assert_eq!(cache.get("gone").await, None);
    cache.flush().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(cache.get("short").await, None);

    let path = dir.path().join(FILE_NAME);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A new process reads what the last one wrote.
    let again = DiscoveryCache::new();
    again.persist_in(dir.path());
    assert_eq!(again.get("a").await, Some(d.clone()));
    again.invalidate_issuer("https://as.example").await;
    assert_eq!(again.get("a").await, None);

    std::fs::write(&path, b"{ not json").unwrap();
    let corrupt = DiscoveryCache::new();
    corrupt.persist_in(dir.path());
    assert_eq!(corrupt.get("a").await, None);
    corrupt.insert("b", &d, None).await;
    assert_eq!(corrupt.get("b").await, Some(d));
}

fn on(dir: &Path) -> DiscoveryCache {
    let cache = DiscoveryCache::new();
    cache.persist_in(dir);
    cache
}

fn issuer_of(d: Option<Discovery>) -> Option<String> {
    d.map(|d| d.issuer)
}

#[tokio::test]
async fn processes_sharing_the_file_merge_their_entries_and_the_later_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (on(dir.path()), on(dir.path()));
    a.insert("one", &discovery("https://a.example"), None).await;
    a.flush().await;
    b.insert("two", &discovery("https://b.example"), None).await;
    b.flush().await;
    // A writes again after B: B's entry stays in the file, and A now knows it too.
    a.insert("three", &discovery("https://a.example"), None)
        .await;
    a.flush().await;
    assert!(a.get("two").await.is_some());
    let fresh = on(dir.path());
    for key in ["one", "two", "three"] {
        assert!(fresh.get(key).await.is_some(), "{key}");
    }

    // The same server stored by both: the later one wins, whoever writes last.
    tokio::time::sleep(Duration::from_millis(3)).await;
    b.insert("one", &discovery("https://moved.example"), None)
        .await;
    b.flush().await;
    a.flush().await;
    assert_eq!(
        issuer_of(on(dir.path()).get("one").await).as_deref(),
        Some("https://moved.example")
    );
    assert_eq!(
        issuer_of(a.get("one").await).as_deref(),
        Some("https://moved.example")
    );
}

#[tokio::test]
async fn a_dropped_entry_is_not_brought_back_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (on(dir.path()), on(dir.path()));
    a.insert("one", &discovery("https://a.example"), None).await;
    a.flush().await;
    // B has it in memory too.
    assert!(b.get("one").await.is_some());
    tokio::time::sleep(Duration::from_millis(3)).await;
    a.invalidate("one").await;
    a.flush().await;
    // B's write does not resurrect it, and B drops its own copy.
    b.insert("two", &discovery("https://b.example"), None).await;
    b.flush().await;
    assert_eq!(on(dir.path()).get("one").await, None);
    assert_eq!(b.get("one").await, None);
    // Found again later, it is kept again.
    tokio::time::sleep(Duration::from_millis(3)).await;
    b.insert("one", &discovery("https://a.example"), None).await;
    b.flush().await;
    a.flush().await;
    assert!(on(dir.path()).get("one").await.is_some());
    assert!(a.get("one").await.is_some());
}

#[test]
fn merges_stay_bounded() {
    let mut table = Table::default();
    let now = now_ms();
    let mut other = FileDoc::default();
    for i in 0..MAX_ENTRIES as u64 * 2 {
        let entry = Entry {
            expires_at_ms: now + 1000 + i,
            stored_at_ms: now,
            discovery: Arc::new(discovery("https://as.example")),
        };
        other.entries.insert(format!("k{i}"), entry);
        other.removed.insert(format!("gone{i}"), now - i);
    }
    table.merge(other, now);
    assert_eq!(table.entries.len(), MAX_ENTRIES);
    assert_eq!(table.removed.len(), MAX_ENTRIES);
    // The longest-lived entries and the latest marks are the ones kept.
    assert!(
        table
            .entries
            .contains_key(&format!("k{}", MAX_ENTRIES * 2 - 1))
    );
    assert!(!table.entries.contains_key("k0"));
    assert!(table.removed.contains_key("gone0"));
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let cache = DiscoveryCache::new();
    let d = discovery("https://as.example");
    for i in 0..MAX_ENTRIES + 10 {
        cache
            .insert(
                &format!("k{i}"),
                &d,
                Some(Duration::from_secs(1000 + i as u64)),
            )
            .await;
    }
    assert_eq!(cache.lock().entries.len(), MAX_ENTRIES);
    // The ones expiring first made room.
    assert_eq!(cache.get("k0").await, None);
    assert!(cache.get(&format!("k{}", MAX_ENTRIES + 9)).await.is_some());
}

#[test]
fn keys_differ_by_resource_and_headers_and_hide_header_values() {
    let url = Url::parse("https://mcp.example/mcp#frag").unwrap();
    let none = EscapeHatches::default();
    let plain = DiscoveryCache::key(&url, &HeaderMap::new(), None, &none);
    assert_eq!(plain, "https://mcp.example/mcp");
    let with_resource = DiscoveryCache::key(&url, &HeaderMap::new(), Some("https://r"), &none);
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", "SECRET-VALUE".parse().unwrap());
    let with_headers = DiscoveryCache::key(&url, &headers, None, &none);
    assert_ne!(plain, with_resource);
    assert_ne!(plain, with_headers);
    assert!(!with_headers.contains("SECRET"));
}

#[test]
fn keys_differ_by_escape_hatches() {
    let url = Url::parse("https://mcp.example/mcp").unwrap();
    let key = |hatches: &EscapeHatches| DiscoveryCache::key(&url, &HeaderMap::new(), None, hatches);
    let plain = key(&EscapeHatches::default());
    let issuer = EscapeHatches {
        issuer: Some("https://as.example/t".into()),
        ..Default::default()
    };
    let other_issuer = EscapeHatches {
        issuer: Some("https://as.example/u".into()),
        ..Default::default()
    };
    let token = EscapeHatches {
        token_endpoint: Some(Url::parse("https://as.example/t").unwrap()),
        ..Default::default()
    };
    let keys = [plain, key(&issuer), key(&other_issuer), key(&token)];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
}
