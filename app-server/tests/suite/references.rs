//! Every "rule N" the code cites resolves in docs/requirements.md, the project's own
//! statement of the rules it relies on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The rule numbers cited in `text`: "rule 12", "Rules 4 and 26", "rules 1-7",
/// "Rule 1 (and 32)".
fn cited(text: &str) -> BTreeSet<u32> {
    let mut numbers = BTreeSet::new();
    let lower = text.to_ascii_lowercase();
    for (at, word) in lower.match_indices("rule") {
        if at > 0 && lower.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut rest = &lower[at + word.len()..];
        rest = rest.strip_prefix('s').unwrap_or(rest);
        if !rest.starts_with(' ') {
            continue;
        }
        // Numbers joined by ",", "and", "(and" or a "-" range; anything else ends the run.
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest
                .strip_prefix(',')
                .or_else(|| rest.strip_prefix("(and "))
            {
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix("and ") {
                rest = r;
                continue;
            }
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(first) = rest[..digits].parse::<u32>() else {
                break;
            };
            rest = &rest[digits..];
            let upto = rest
                .strip_prefix('-')
                .map(|r| (r, r.bytes().take_while(u8::is_ascii_digit).count()))
                .and_then(|(r, n)| Some((r[..n].parse::<u32>().ok()?, &r[n..])));
            match upto {
                Some((last, r)) if last >= first => {
                    numbers.extend(first..=last);
                    rest = r;
                }
                _ => {
                    numbers.insert(first);
                }
            }
        }
    }
    numbers
}

#[test]
fn every_rule_the_code_cites_is_stated_in_the_requirements() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut wanted = BTreeSet::new();
    for file in &files {
        wanted.extend(cited(&std::fs::read_to_string(file).expect("read source")));
    }
    let doc = std::fs::read_to_string(root.join("../docs/requirements.md")).expect("read docs");
    let stated: BTreeSet<u32> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("**Rule ")?.split('.').next()?.parse().ok())
        .collect();
    assert!(wanted.len() > 20, "the citations were not read: {wanted:?}");
    let missing: Vec<u32> = wanted.difference(&stated).copied().collect();
    assert!(
        missing.is_empty(),
        "cited but not in docs/requirements.md: {missing:?}"
    );
}

#[test]
fn citations_are_read_with_their_ranges() {
    assert_eq!(cited("see rule 35."), BTreeSet::from([35]));
    assert_eq!(cited("Rules 4 and 26"), BTreeSet::from([4, 26]));
    assert_eq!(cited("(rules 1-3)"), BTreeSet::from([1, 2, 3]));
    assert_eq!(cited("Rule 1 (and 32)"), BTreeSet::from([1, 32]));
    assert_eq!(cited("no rules here; a ruler 5"), BTreeSet::new());
    assert_eq!(cited("Rule 15 (2026-07-28): exact"), BTreeSet::from([15]));
}
