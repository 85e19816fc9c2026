//! The layers of `app-server/src`, read from the source: which file imports which, and the
//! rules docs/architecture.md states for them.
//!
//! - the top-level modules import downwards only (see [`LAYERS`]);
//! - no two files import each other, directly or round a longer circle, and no two entries
//!   of a folder (files or subfolders) do;
//! - the engine's leaves import neither its service nor a flow (see [`ENGINE_LEAVES`]);
//! - no file is longer than [`MAX_LINES`].
//!
//! Test code is left out: files named `tests.rs` or `props.rs`, files under a `tests/`
//! folder, and every item marked `#[cfg(test)]`. An import is a `use` or a path written in
//! the code (`crate::a::b`, `super::c`, `child::d`); `mod x;` alone is none. A path is
//! charged to the deepest file it names, through `pub use` re-exports (two hops at most).
//!
//! `LAYERS_PRINT=1 cargo test -p mcp-app-server --test all layers -- --nocapture` prints
//! the graph, one `file -> file` a line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// No file of `app-server/src` is longer.
const MAX_LINES: usize = 800;

/// Each top-level module and the top-level modules it may import. `main.rs` and `lib.rs`
/// are the crate's roots and may import anything.
const LAYERS: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("transport", &[]),
    ("config", &[]),
    ("home", &["config"]),
    ("mcp_wire", &[]),
    ("credentials", &["config", "home", "clock"]),
    ("oauth", &["config", "mcp_wire", "clock"]),
    (
        "engine",
        &[
            "oauth",
            "credentials",
            "config",
            "home",
            "mcp_wire",
            "clock",
        ],
    ),
    (
        "rpc",
        &["engine", "credentials", "config", "home", "transport"],
    ),
    (
        "cli",
        &[
            "rpc",
            "engine",
            "oauth",
            "credentials",
            "config",
            "home",
            "transport",
            "mcp_wire",
            "clock",
        ],
    ),
];

/// One source file: its module path and what it imports.
struct File {
    rel: String,
    module: Vec<String>,
    lines: usize,
    /// Paths as written, made absolute (`crate::...`), before resolution.
    paths: Vec<Vec<String>>,
    /// `pub use` re-exports: name -> absolute path of what it names.
    reexports: BTreeMap<String, Vec<String>>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == "tests.rs"
        || name == "props.rs"
        || rel.split('/').rev().skip(1).any(|dir| dir == "tests")
}

fn module_of(rel: &str) -> Vec<String> {
    let no_ext = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = no_ext.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source without comments, string literals and test code.
fn code_of(text: &str) -> String {
    without_test_items(&without_comments_and_strings(text))
}

/// `code` without each item marked `#[cfg(test)]`: up to its `;`, or its `{...}` block.
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0;
                let mut close = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                close
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

fn without_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|b| *b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
            i += end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if bytes[i] == b'\''
            && i + 2 < bytes.len()
            && (bytes[i + 2] == b'\'' || bytes[i + 1] == b'\\')
        {
            // A char literal such as '"' or '\n'.
            let end = rest[1..].find('\'').map_or(1, |e| e + 2);
            i += end.max(3);
        } else {
            let ch = rest.chars().next().expect("non-empty");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The inline modules of `code` (`mod name { ... }`): their byte ranges and names.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = at + 4 + name.len() + (rest[name.len()..].len() - after.len());
        let mut depth = 0;
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        found.push((open, open + i, name));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// The module of the code at `offset`: the file's, and the inline modules around it.
fn module_at(
    file_module: &[String],
    inline: &[(usize, usize, String)],
    offset: usize,
) -> Vec<String> {
    let mut module = file_module.to_vec();
    let mut around: Vec<&(usize, usize, String)> = inline
        .iter()
        .filter(|(start, end, _)| *start <= offset && offset <= *end)
        .collect();
    around.sort_by_key(|(start, _, _)| *start);
    module.extend(around.into_iter().map(|(_, _, name)| name.clone()));
    module
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    // Whitespace only matters in `X as Y`: keep it there as one space.
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree
        .replace(" ::", "::")
        .replace(":: ", "::")
        .replace("{ ", "{")
        .replace(" }", "}")
        .replace(", ", ",")
        .replace(" ,", ",");
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand_use(p)
                .into_iter()
                .map(|e| format!("{prefix}{e}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A path made absolute (`crate::`, `super::`, `self::`, or relative to the module).
fn absolute(path: &str, module: &[String]) -> Option<Vec<String>> {
    let path = path.split(" as ").next().unwrap_or(path).trim();
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let first = *segs.first()?;
    let mut base: Vec<String> = match first {
        "crate" => Vec::new(),
        "self" | "super" => module.to_vec(),
        // A name of the module's own (a child module, in `use child::Item`), or an outside
        // crate; the latter resolves to no file of the tree and is dropped there.
        name if name.starts_with(|c: char| c.is_ascii_lowercase()) => module.to_vec(),
        _ => return None,
    };
    let mut rest = if matches!(first, "crate" | "self" | "super") {
        &segs[1..]
    } else {
        &segs[..]
    };
    if first == "super" {
        base.pop();
        while rest.first() == Some(&"super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(
        rest.iter()
            .filter(|s| **s != "*" && **s != "self")
            .map(|s| s.to_string()),
    );
    Some(base)
}

fn read_files() -> Vec<File> {
    let src = src_dir();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files = Vec::new();
    for path in paths {
        let rel = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).expect("read source");
        let lines = text.lines().count();
        let module = module_of(&rel);
        if is_test_file(&rel) {
            files.push(File {
                rel,
                module,
                lines,
                paths: Vec::new(),
                reexports: BTreeMap::new(),
            });
            continue;
        }
        let code = code_of(&text);
        let inline = inline_modules(&code);
        let mut found = Vec::new();
        let mut reexports = BTreeMap::new();
        // `use` statements, with their trees.
        let mut offset = 0;
        while let Some(at) = find_use(&code[offset..]) {
            let (is_pub, stmt_start) = at;
            let here = module_at(&module, &inline, offset + stmt_start);
            let after = &code[offset + stmt_start..];
            let end = after.find(';').unwrap_or(after.len());
            for p in expand_use(&after[..end]) {
                if let Some(abs) = absolute(&p, &here) {
                    if is_pub {
                        let name = p
                            .split(" as ")
                            .nth(1)
                            .map(|n| n.trim().to_string())
                            .or_else(|| abs.last().cloned());
                        if let Some(name) = name {
                            reexports.insert(name.trim().to_string(), abs.clone());
                        }
                    }
                    found.push(abs);
                }
            }
            offset += stmt_start + end;
        }
        // Paths written in the code.
        for (i, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            if i > 0 {
                let prev = code.as_bytes()[i - 1];
                if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b':' {
                    continue;
                }
                // `pub(in crate::x)` names a visibility, not an import.
                if code[..i].ends_with("(in ") {
                    continue;
                }
            }
            let path: String = code[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let here = module_at(&module, &inline, i);
            if let Some(abs) = absolute(path.trim_end_matches(':'), &here) {
                found.push(abs);
            }
        }
        files.push(File {
            rel,
            module,
            lines,
            paths: found,
            reexports,
        });
    }
    files
}

/// The next `use` statement: whether it is `pub`, and where its tree starts.
fn find_use(code: &str) -> Option<(bool, usize)> {
    let mut from = 0;
    loop {
        let at = from + code[from..].find("use ")?;
        let boundary = at == 0 || {
            let prev = code.as_bytes()[at - 1];
            prev == b'\n' || prev == b' ' || prev == b';' || prev == b'{' || prev == b')'
        };
        if boundary {
            let line_start = code[..at].rfind('\n').map_or(0, |n| n + 1);
            let head = code[line_start..at].trim();
            let is_pub = head.starts_with("pub");
            if head.is_empty() || is_pub {
                return Some((is_pub, at + 4));
            }
        }
        from = at + 4;
    }
}

/// The files by module path, and the resolution of absolute paths to files.
struct Crate {
    files: Vec<File>,
    by_module: BTreeMap<Vec<String>, usize>,
}

impl Crate {
    fn read() -> Self {
        let files = read_files();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Crate { files, by_module }
    }

    /// The file that declares what `path` names: the deepest module file on it, through one
    /// level of re-export.
    fn resolve(&self, path: &[String], hops: u8) -> Option<usize> {
        let mut deepest = None;
        let mut depth = 0;
        for n in (0..=path.len()).rev() {
            if let Some(&i) = self.by_module.get(&path[..n]) {
                deepest = Some(i);
                depth = n;
                break;
            }
        }
        let i = deepest?;
        if hops > 0
            && let Some(name) = path.get(depth)
            && let Some(target) = self.files[i].reexports.get(name)
        {
            let mut full = target.clone();
            full.extend(path[depth + 1..].iter().cloned());
            if full != path {
                return self.resolve(&full, hops - 1).or(Some(i));
            }
        }
        Some(i)
    }

    /// File -> files it imports, self-imports left out.
    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, f) in self.files.iter().enumerate() {
            let set = edges.entry(i).or_default();
            for p in &f.paths {
                if let Some(j) = self.resolve(p, 2)
                    && j != i
                {
                    set.insert(j);
                }
            }
        }
        edges
    }
}

fn top(module: &[String]) -> &str {
    module.first().map_or("", String::as_str)
}

/// Strongly connected components of more than one file (Tarjan).
fn circles(n: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        let next: Vec<usize> = s.edges.get(&v).into_iter().flatten().copied().collect();
        for w in next {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
// LAYERS_PRINT=1 prints the graph for a reader; nothing else is printed.
#[allow(clippy::print_stderr)]
fn no_file_imports_itself_round_a_circle() {
    let krate = Crate::read();
    let edges = krate.edges();
    if std::env::var_os("LAYERS_PRINT").is_some() {
        for (i, to) in &edges {
            for j in to {
                eprintln!("{} -> {}", krate.files[*i].rel, krate.files[*j].rel);
            }
        }
    }
    let found = circles(krate.files.len(), &edges);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            let names: Vec<&str> = c.iter().map(|i| krate.files[*i].rel.as_str()).collect();
            let within: Vec<String> = c
                .iter()
                .flat_map(|i| {
                    edges[i]
                        .iter()
                        .filter(|j| c.contains(j))
                        .map(|j| format!("{} -> {}", krate.files[*i].rel, krate.files[*j].rel))
                        .collect::<Vec<_>>()
                })
                .collect();
            format!("circle of {}: {}", names.join(", "), within.join("; "))
        })
        .collect();
    assert!(described.is_empty(), "{}", described.join("\n"));
}

#[test]
fn layers_import_downwards_only() {
    let krate = Crate::read();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (i, to) in krate.edges() {
        let from = &krate.files[i];
        let from_top = top(&from.module);
        if from_top.is_empty() || from_top == "main" {
            continue;
        }
        let Some(may) = allowed.get(from_top) else {
            wrong.push(format!("{} is in no layer; add it to LAYERS", from.rel));
            continue;
        };
        for j in to {
            let target_top = top(&krate.files[j].module);
            if target_top != from_top && !target_top.is_empty() && !may.contains(&target_top) {
                wrong.push(format!(
                    "{} imports {} ({from_top} may import only {may:?})",
                    from.rel, krate.files[j].rel
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The entry of `rel` directly under the folder `dir` (a file or a subfolder; `foo.rs` and
/// `foo/` are one module, so one entry), or `None` when `rel` is not under `dir`.
fn entry_under<'a>(dir: &str, rel: &'a str) -> Option<&'a str> {
    let rest = if dir.is_empty() {
        rel
    } else {
        rel.strip_prefix(dir)?.strip_prefix('/')?
    };
    let first = rest.split('/').next()?;
    Some(first.strip_suffix(".rs").unwrap_or(first))
}

#[test]
fn no_folder_imports_itself_round_a_circle() {
    let krate = Crate::read();
    let edges = krate.edges();
    let mut dirs: BTreeSet<String> = BTreeSet::from([String::new()]);
    for f in &krate.files {
        let mut parts: Vec<&str> = f.rel.split('/').collect();
        parts.pop();
        for n in 1..=parts.len() {
            dirs.insert(parts[..n].join("/"));
        }
    }
    let mut found = Vec::new();
    for dir in &dirs {
        // The entries of `dir` (files and folders) and the imports between them; a folder's
        // own `mod.rs` is its facade, not an entry.
        let mut names: Vec<String> = Vec::new();
        let mut index = BTreeMap::new();
        let mut folder_edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, to) in &edges {
            let Some(from) = entry_under(dir, &krate.files[*i].rel) else {
                continue;
            };
            for j in to {
                let Some(target) = entry_under(dir, &krate.files[*j].rel) else {
                    continue;
                };
                if from == target
                    || ["mod", "lib", "main"].contains(&from)
                    || ["mod", "lib", "main"].contains(&target)
                {
                    continue;
                }
                let mut id = |name: &str| {
                    *index.entry(name.to_string()).or_insert_with(|| {
                        names.push(name.to_string());
                        names.len() - 1
                    })
                };
                let (a, b) = (id(from), id(target));
                folder_edges.entry(a).or_default().insert(b);
            }
        }
        for circle in circles(names.len(), &folder_edges) {
            let members: Vec<&str> = circle.iter().map(|i| names[*i].as_str()).collect();
            found.push(format!("in `{dir}/`: {}", members.join(", ")));
        }
    }
    assert!(
        found.is_empty(),
        "entries that import each other round a circle:\n{}",
        found.join("\n")
    );
}

/// The engine's leaves: its public types, errors, targets, pure rules and per-concern state.
/// They import other leaves only, never the service or a flow (docs/architecture.md).
const ENGINE_LEAVES: &[&str] = &[
    "engine/callback_ports.rs",
    "engine/enterprise/idp.rs",
    "engine/error.rs",
    "engine/flow.rs",
    "engine/login/context.rs",
    "engine/refusal.rs",
    "engine/requests.rs",
    "engine/state/",
    "engine/status.rs",
    "engine/store_watch.rs",
    "engine/stored.rs",
    "engine/target.rs",
    "engine/types.rs",
];

fn is_engine_leaf(rel: &str) -> bool {
    ENGINE_LEAVES
        .iter()
        .any(|leaf| rel == *leaf || (leaf.ends_with('/') && rel.starts_with(leaf)))
}

#[test]
fn the_engine_leaves_import_neither_the_service_nor_a_flow() {
    let krate = Crate::read();
    let mut wrong = Vec::new();
    for (i, to) in krate.edges() {
        let from = &krate.files[i].rel;
        if !is_engine_leaf(from) {
            continue;
        }
        for j in to {
            let target = &krate.files[j].rel;
            if target.starts_with("engine/") && target != "engine/mod.rs" && !is_engine_leaf(target)
            {
                wrong.push(format!("{from} imports {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The engine's flows (every file that is neither a leaf, nor the service, nor the module's
/// facade) reach each other through the service's methods: none imports another.
#[test]
fn the_engine_flows_import_no_other_flow() {
    let krate = Crate::read();
    let is_flow = |rel: &str| {
        rel.starts_with("engine/")
            && !is_engine_leaf(rel)
            && rel != "engine/service.rs"
            && rel != "engine/mod.rs"
    };
    let mut wrong = Vec::new();
    for (i, to) in krate.edges() {
        let from = &krate.files[i].rel;
        if !is_flow(from) {
            continue;
        }
        for j in to {
            let target = &krate.files[j].rel;
            if is_flow(target) {
                wrong.push(format!("{from} imports {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_source_file_is_too_long_to_hold_in_mind() {
    let long: Vec<String> = Crate::read()
        .files
        .iter()
        .filter(|f| f.lines > MAX_LINES)
        .map(|f| format!("{} has {} lines", f.rel, f.lines))
        .collect();
    assert!(
        long.is_empty(),
        "split along its seams: {}",
        long.join(", ")
    );
}

/// The reader itself: a circle and a wrong import made on purpose are found.
#[test]
fn the_reader_sees_imports_circles_and_test_code() {
    let module = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        expand_use("super::{a::{B, C}, d}"),
        ["super::a::B", "super::a::C", "super::d"]
    );
    assert_eq!(
        absolute("super::super::x::Y", &module("engine/login/attempt")),
        Some(module("engine/x/Y"))
    );
    let code = code_of(
        "use crate::a::B; // crate::b::C\nlet s = \"crate::c\";\n#[cfg(test)]\nmod tests { use crate::d; }",
    );
    assert!(
        code.contains("crate::a::B")
            && !code.contains("crate::b")
            && !code.contains("crate::c")
            && !code.contains("crate::d")
    );
    let mut edges = BTreeMap::new();
    edges.insert(0, BTreeSet::from([1]));
    edges.insert(1, BTreeSet::from([2]));
    edges.insert(2, BTreeSet::from([0]));
    edges.insert(3, BTreeSet::from([0]));
    assert_eq!(circles(4, &edges), vec![vec![0, 1, 2]]);
}
