use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Doc {
    #[serde(default, deserialize_with = "opt_names")]
    names: Option<Vec<String>>,
    #[serde(default, deserialize_with = "urls")]
    urls: Vec<String>,
}

fn doc(json: &str) -> Doc {
    serde_json::from_str(json).unwrap()
}

#[test]
fn a_list_past_the_bound_keeps_its_first_entries_in_order() {
    let entries: Vec<String> = (0..MAX_LIST_ENTRIES * 3).map(|i| format!("s{i}")).collect();
    let json = serde_json::json!({ "names": entries, "urls": entries }).to_string();
    let parsed = doc(&json);
    let names = parsed.names.unwrap();
    assert_eq!(names.len(), MAX_LIST_ENTRIES);
    assert_eq!(names[..], entries[..MAX_LIST_ENTRIES]);
    assert_eq!(parsed.urls.len(), MAX_LIST_ENTRIES);
}

#[test]
fn entries_longer_than_the_bound_are_dropped_and_the_rest_kept() {
    let long_name = "n".repeat(MAX_NAME_BYTES + 1);
    let fits_url = format!("https://{}", "u".repeat(MAX_NAME_BYTES * 2));
    let long_url = format!("https://{}", "u".repeat(MAX_URL_BYTES));
    let json = serde_json::json!({
        "names": ["a", long_name, "n".repeat(MAX_NAME_BYTES)],
        "urls": [long_url, fits_url],
    })
    .to_string();
    let parsed = doc(&json);
    assert_eq!(
        parsed.names.unwrap(),
        vec!["a".to_string(), "n".repeat(MAX_NAME_BYTES)]
    );
    assert_eq!(parsed.urls, vec![fits_url]);
}

#[test]
fn absent_and_null_lists_and_wrong_types() {
    let parsed = doc("{}");
    assert_eq!(parsed.names, None);
    assert!(parsed.urls.is_empty());
    let parsed = doc(r#"{"names": null, "urls": null}"#);
    assert_eq!(parsed.names, None);
    assert!(parsed.urls.is_empty());
    for bad in [
        r#"{"names": "read"}"#,
        r#"{"names": [1]}"#,
        r#"{"names": {"a": 1}}"#,
        r#"{"urls": [["x"]]}"#,
    ] {
        assert!(serde_json::from_str::<Doc>(bad).is_err(), "{bad}");
    }
    // Past the bound, the rest is still checked to be JSON but never typed.
    let mut json = String::from(r#"{"names": ["#);
    for i in 0..MAX_LIST_ENTRIES {
        json.push_str(&format!("\"s{i}\","));
    }
    json.push_str("1, {\"x\": [2]}]}");
    assert_eq!(doc(&json).names.unwrap().len(), MAX_LIST_ENTRIES);
}

#[test]
fn scope_strings_are_bounded_like_lists() {
    let scope: String = (0..MAX_LIST_ENTRIES + 10)
        .map(|i| format!("s{i} "))
        .collect::<String>()
        + &"x".repeat(MAX_NAME_BYTES + 1);
    let kept = scope_string(&scope, "test scope");
    assert_eq!(kept.len(), MAX_LIST_ENTRIES);
    assert_eq!(kept[0], "s0");
    assert_eq!(
        kept[MAX_LIST_ENTRIES - 1],
        format!("s{}", MAX_LIST_ENTRIES - 1)
    );
    let (kept, cut) = bounded(["a", "bb", &"c".repeat(600)].into_iter(), MAX_NAME_BYTES);
    assert_eq!(kept, vec!["a", "bb"]);
    assert_eq!(
        cut,
        Cut {
            past_count: 0,
            too_long: 1
        }
    );
}
