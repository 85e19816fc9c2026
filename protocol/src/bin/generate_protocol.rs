//! Writes the generated protocol files (schema/, bindings/, docs/protocol.md) into the
//! repository and deletes stale files in the generated folders.
//!
//! Run with `cargo run -p mcp-app-server-protocol --bin generate-protocol`.

// A developer tool, not the daemon: stdout is not a protocol channel here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mcp_app_server_protocol::export::{
    GENERATED_DIRS, RELEASED_SCHEMA_DIR, RETIRED_GENERATED, generate_all,
};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match run(&root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate-protocol: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let files = generate_all()?;
    let wanted: BTreeSet<PathBuf> = files.iter().map(|f| f.path.clone()).collect();

    let mut written = 0;
    for file in &files {
        let path = root.join(&file.path);
        if fs::read_to_string(&path).ok().as_deref() == Some(file.contents.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, &file.contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", file.path.display());
        written += 1;
    }

    let mut removed = 0;
    for dir in GENERATED_DIRS {
        let mut existing = Vec::new();
        list_files(root, Path::new(dir), &mut existing)
            .map_err(|e| format!("cannot list {}: {e}", root.join(dir).display()))?;
        for stale in existing.iter().filter(|p| !wanted.contains(*p)) {
            fs::remove_file(root.join(stale))
                .map_err(|e| format!("cannot delete {}: {e}", stale.display()))?;
            println!("deleted stale {}", stale.display());
            removed += 1;
        }
        remove_empty_dirs(&root.join(dir));
    }
    for (dir, ext) in RETIRED_GENERATED {
        for stale in retired_files(root, dir, ext)
            .map_err(|e| format!("cannot list {}: {e}", root.join(dir).display()))?
        {
            fs::remove_file(root.join(&stale))
                .map_err(|e| format!("cannot delete {}: {e}", stale.display()))?;
            println!("deleted retired {}", stale.display());
            removed += 1;
        }
    }

    println!(
        "{} files generated: {written} written, {removed} stale deleted",
        files.len()
    );
    Ok(())
}

/// Files under `root/rel`, as paths relative to `root`. `node_modules` is not ours.
fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let dir = root.join(rel);
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let child = rel.join(&name);
        if entry.file_type()?.is_dir() {
            if name != "node_modules" && child != Path::new(RELEASED_SCHEMA_DIR) {
                list_files(root, &child, out)?;
            }
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Files `root/dir/*.ext` (top level only): where an earlier layout put generated files.
fn retired_files(root: &Path, dir: &str, ext: &str) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(root.join(dir)) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry?;
        let path = Path::new(dir).join(entry.file_name());
        if entry.file_type()?.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(out)
}

/// Best effort: folders left empty by deleting stale files.
fn remove_empty_dirs(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            remove_empty_dirs(&path);
            let _ = fs::remove_dir(&path); // fails unless empty, which is what we want
        }
    }
}
