//! The one switch for tests that need Node.js (the third-party peers in tests/interop, and
//! anything else run with `node`): `MCP_APP_SERVER_SKIP_NODE=1` skips every one of them on a
//! machine without Node. Without the switch such a test installs the pinned Node packages
//! on first use (`.ci/interop-setup.sh`) and fails with advice when Node is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable that skips every test needing Node.
pub const SKIP_NODE: &str = "MCP_APP_SERVER_SKIP_NODE";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// Whether a test that needs Node runs: false when the switch is set (the test returns at
/// once and says so on its output); otherwise Node and the pinned peers are made ready once
/// per test process, and a missing Node fails the test with what to do.
pub fn node_ready(test: &str) -> bool {
    if std::env::var_os(SKIP_NODE).is_some_and(|v| !v.is_empty() && v != "0") {
        // A test's own output: the test harness shows it with the test's result.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped {test}: {SKIP_NODE} is set");
        }
        return false;
    }
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = SETUP.get_or_init(setup) {
        panic!("{test} needs Node.js: {e}");
    }
    true
}

fn setup() -> Result<(), String> {
    let advice = format!(
        "install Node.js >= 20 with npm, or set {SKIP_NODE}=1 to skip every test that needs Node"
    );
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "`node --version` failed ({}); {advice}",
                out.status
            ));
        }
        Err(e) => return Err(format!("cannot run `node` ({e}); {advice}")),
    }
    run_setup_script("interop-setup.sh").map_err(|e| format!("{e}\n{advice}"))
}

/// Runs one of the project's idempotent set-up scripts (`.ci/<name>`), which install what a
/// test needs on first use; the error carries the script's output.
pub fn run_setup_script(name: &str) -> Result<(), String> {
    let script = repo_root().join(".ci").join(name);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} failed ({}):\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
