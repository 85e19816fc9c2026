//! `mcp-app-server`: the daemon (default, or `serve`) and the commands for people.

use std::process::ExitCode;

fn main() -> ExitCode {
    mcp_app_server::cli::main()
}
