//! Scope selection, unions and `scope` parsing.

use super::*;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn select_scopes_table() {
    struct Case {
        explicit: Option<Vec<String>>,
        configured: Option<Vec<String>>,
        challenge: Option<&'static str>,
        prm: Option<Vec<String>>,
        as_supported: Option<Vec<String>>,
        expected: Option<Vec<String>>,
    }
    let case = |explicit: Option<&[&str]>,
                configured: Option<&[&str]>,
                challenge: Option<&'static str>,
                prm: Option<&[&str]>,
                as_supported: Option<&[&str]>,
                expected: Option<&[&str]>| Case {
        explicit: explicit.map(v),
        configured: configured.map(v),
        challenge,
        prm: prm.map(v),
        as_supported: as_supported.map(v),
        expected: expected.map(v),
    };
    let cases = [
        // Each source in priority order.
        case(
            Some(&["a"]),
            Some(&["b"]),
            Some("c"),
            Some(&["d"]),
            None,
            Some(&["a"]),
        ),
        case(
            None,
            Some(&["b"]),
            Some("c"),
            Some(&["d"]),
            None,
            Some(&["b"]),
        ),
        case(
            None,
            None,
            Some("c1 c2"),
            Some(&["d"]),
            None,
            Some(&["c1", "c2"]),
        ),
        case(None, None, None, Some(&["d"]), None, Some(&["d"])),
        case(None, None, None, None, None, None),
        // Empty sources fall through.
        case(
            Some(&[]),
            Some(&[]),
            Some("  "),
            Some(&["d"]),
            None,
            Some(&["d"]),
        ),
        case(None, None, None, Some(&[]), Some(&["x"]), None),
        // offline_access only when the AS lists it.
        case(
            None,
            None,
            Some("c"),
            None,
            Some(&["c", "offline_access"]),
            Some(&["c", "offline_access"]),
        ),
        case(None, None, Some("c"), None, Some(&["c"]), Some(&["c"])),
        case(
            Some(&["offline_access", "a"]),
            None,
            None,
            None,
            Some(&["offline_access"]),
            Some(&["offline_access", "a"]),
        ),
        // Rule 30: named by any source but not listed by the AS: dropped.
        case(
            None,
            Some(&["a", "offline_access"]),
            None,
            None,
            Some(&["a"]),
            Some(&["a"]),
        ),
        case(
            None,
            None,
            Some("a offline_access"),
            None,
            None,
            Some(&["a"]),
        ),
        case(
            None,
            None,
            None,
            Some(&["offline_access"]),
            Some(&["a"]),
            None,
        ),
        case(
            None,
            None,
            None,
            None,
            Some(&["offline_access"]),
            Some(&["offline_access"]),
        ),
        // Duplicates removed.
        case(
            Some(&["a", "a", "b"]),
            None,
            None,
            None,
            None,
            Some(&["a", "b"]),
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        let got = select_scopes(
            c.explicit.as_deref(),
            c.configured.as_deref(),
            c.challenge,
            c.prm.as_deref(),
            c.as_supported.as_deref(),
        );
        assert_eq!(got, c.expected, "case {i}");
    }
}

#[test]
fn union_keeps_order_and_drops_duplicates() {
    assert_eq!(
        union_scopes(&v(&["read", "offline_access"]), &v(&["write", "read"])),
        v(&["read", "offline_access", "write"])
    );
    assert_eq!(union_scopes(&[], &v(&["x"])), v(&["x"]));
}

#[test]
fn parse_scope_splits_whitespace() {
    assert_eq!(parse_scope(" a  b\tc "), v(&["a", "b", "c"]));
    assert!(parse_scope("").is_empty());
}
