//! `mcp-app-server status`: every configured server and its credential state, plus the
//! servers logged in to by URL (`login --url`, `connect`), as a table or as JSON.

use mcp_app_server_protocol::{
    McpAuthStatus, McpAuthStatusReason, McpServerStatus, McpServerTransport, RegistrationKind,
};

use super::engine::{CliError, Engine};
use super::output::say;
use crate::config::ServerTransport;
use crate::credentials::{StoredCredentials, unix_now};
use crate::engine::{ServerAccounts, StatusInfo};

/// `status [--json]`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print a JSON array of server statuses (the `mcpServerStatus/list` entries) instead of
    /// a table.
    #[arg(long)]
    pub json: bool,
}

/// One row: the status, and whether the server is in config.toml.
struct Row {
    status: McpServerStatus,
    configured: bool,
}

pub async fn run(args: StatusArgs) -> Result<(), CliError> {
    let engine = Engine::open()?;
    let rows = collect(&engine).await;
    engine.close().await;
    let rows = rows?;
    if args.json {
        let list: Vec<&McpServerStatus> = rows.iter().map(|r| &r.status).collect();
        let text = serde_json::to_string_pretty(&list)
            .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?;
        say(text);
    } else {
        say(table(&rows, unix_now()));
    }
    Ok(())
}

async fn collect(engine: &Engine) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    let stored = engine.oauth.store_list().await?;
    for server in engine.config.servers.values() {
        let status = match &server.transport {
            ServerTransport::Stdio { .. } => McpServerStatus {
                name: server.name.clone(),
                transport: McpServerTransport::Stdio,
                url: None,
                auth_status: McpAuthStatus::Unsupported,
                reason: None,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
                login_pending: false,
                next_refresh_at: None,
                escape_hatches: None,
                account: None,
                accounts: None,
            },
            ServerTransport::Http(http) => {
                let entries: Vec<StoredCredentials> = stored
                    .iter()
                    .filter(|c| c.server_name == server.name && c.server_url == http.url.as_str())
                    .cloned()
                    .collect();
                let accounts = ServerAccounts::of(&entries, None);
                let mut status = with_info(&server.name, http.url.as_str(), accounts.info);
                status.account = accounts.account;
                status.accounts = accounts.accounts;
                status.escape_hatches = http.escape_hatches.status();
                status
            }
        };
        rows.push(Row {
            status,
            configured: true,
        });
    }
    let mut others = engine.unconfigured_credentials().await?;
    others.sort_by(|a, b| (&a.server_name, &a.server_url).cmp(&(&b.server_name, &b.server_url)));
    for creds in others {
        rows.push(Row {
            status: with_info(
                &creds.server_name,
                &creds.server_url,
                StatusInfo::from_credentials(Some(&creds)),
            ),
            configured: false,
        });
    }
    Ok(rows)
}

fn with_info(name: &str, url: &str, info: StatusInfo) -> McpServerStatus {
    McpServerStatus {
        name: name.to_string(),
        transport: McpServerTransport::StreamableHttp,
        url: Some(url.to_string()),
        auth_status: info.status,
        reason: info.reason,
        expires_at: info.expires_at,
        scopes: info.scopes,
        registration: info.registration,
        issuer: info.issuer,
        login_pending: false,
        next_refresh_at: None,
        escape_hatches: None,
        account: None,
        accounts: None,
    }
}

fn status_text(status: McpAuthStatus, reason: Option<McpAuthStatusReason>) -> String {
    let text = match status {
        McpAuthStatus::Unsupported => "no OAuth (stdio)",
        McpAuthStatus::NotLoggedIn => "not logged in",
        McpAuthStatus::LoggedIn => "logged in",
        McpAuthStatus::Expired => "expired",
        McpAuthStatus::ReauthenticationRequired => "log in again",
    };
    // Not logged in and expired say their cause themselves.
    match reason.and_then(reason_text) {
        Some(why) => format!("{text} ({why})"),
        None => text.to_string(),
    }
}

/// The cause shown after a status that does not say it itself.
fn reason_text(reason: McpAuthStatusReason) -> Option<&'static str> {
    Some(match reason {
        McpAuthStatusReason::NeverLoggedIn | McpAuthStatusReason::TokenExpired => return None,
        McpAuthStatusReason::RefreshRefused => "refresh refused",
        McpAuthStatusReason::AuthorizationServerChanged => "authorization server changed",
        McpAuthStatusReason::RegistrationDropped => "registration dropped",
        McpAuthStatusReason::MoreScopesNeeded => "more scopes needed",
        McpAuthStatusReason::TokenRevoked => "token revoked",
        McpAuthStatusReason::GrantCredentialMissing => "grant credential missing",
    })
}

fn registration_text(kind: RegistrationKind) -> &'static str {
    match kind {
        RegistrationKind::Preregistered => "preregistered",
        RegistrationKind::Cimd => "cimd",
        RegistrationKind::Dcr => "dcr",
    }
}

/// "in 59m", "in 2h 5m", "expired 3m ago".
pub(crate) fn expiry_text(at: i64, now: i64) -> String {
    let delta = at - now;
    let span = |secs: i64| {
        let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
        match (d, h, m) {
            (0, 0, 0) => format!("{secs}s"),
            (0, 0, m) => format!("{m}m"),
            (0, h, m) => format!("{h}h {m}m"),
            (d, h, _) => format!("{d}d {h}h"),
        }
    };
    if delta > 0 {
        format!("expires in {}", span(delta))
    } else {
        format!("expired {} ago", span(-delta))
    }
}

fn table(rows: &[Row], now: i64) -> String {
    if rows.is_empty() {
        return "No MCP servers: add [mcp_servers.NAME] tables to config.toml, or log in with `login --url <url>`.".to_string();
    }
    let header = ["NAME", "STATUS", "EXPIRES", "REGISTRATION", "URL"].map(str::to_string);
    let mut lines = vec![header];
    let expires = |status: McpAuthStatus, at: Option<i64>| match (status, at) {
        (McpAuthStatus::LoggedIn | McpAuthStatus::Expired, Some(at)) => {
            expiry_text(at, now).replace("expires ", "")
        }
        _ => "-".to_string(),
    };
    for row in rows {
        let s = &row.status;
        let name = if row.configured {
            s.name.clone()
        } else {
            format!("{}*", s.name)
        };
        let url = s.url.clone().unwrap_or_else(|| "-".to_string());
        let registration = s.registration.map_or("-", registration_text).to_string();
        match s.accounts.as_deref() {
            // Several accounts, or one with a label: a line each, the one used last marked.
            Some(accounts) if accounts.iter().any(|a| a.account.is_some()) => {
                for a in accounts {
                    let label = a.account.as_deref().unwrap_or("(no account)");
                    let mark = if a.current { " (used last)" } else { "" };
                    lines.push([
                        format!("{name} [{label}]{mark}"),
                        status_text(a.auth_status, a.reason),
                        expires(a.auth_status, a.expires_at),
                        registration.clone(),
                        url.clone(),
                    ]);
                }
            }
            _ => lines.push([
                name,
                status_text(s.auth_status, s.reason),
                expires(s.auth_status, s.expires_at),
                registration,
                url,
            ]),
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| {
            l.iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect();
    if rows.iter().any(|r| !r.configured) {
        out.push(String::new());
        out.push("* not in config.toml (logged in with --url or connect)".to_string());
    }
    // Rule 64: the workarounds a server relies on are never silent.
    let with_hatches: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let keys = r.status.escape_hatches.as_ref()?;
            Some(format!("  {}: {}", r.status.name, keys.join(", ")))
        })
        .collect();
    if !with_hatches.is_empty() {
        out.push(String::new());
        out.push(
            "Escape hatches in use (config.toml relaxes discovery for these servers):".to_string(),
        );
        out.extend(with_hatches);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_texts() {
        assert_eq!(expiry_text(1000 + 3599, 1000), "expires in 59m");
        assert_eq!(expiry_text(1000 + 7500, 1000), "expires in 2h 5m");
        assert_eq!(expiry_text(1000 + 90_000, 1000), "expires in 1d 1h");
        assert_eq!(expiry_text(1000 - 180, 1000), "expired 3m ago");
        assert_eq!(expiry_text(1000 + 20, 1000), "expires in 20s");
    }

    #[test]
    fn status_texts_name_the_cause_the_status_does_not_say() {
        use McpAuthStatusReason as R;
        let reauth = McpAuthStatus::ReauthenticationRequired;
        assert_eq!(
            status_text(reauth, Some(R::TokenRevoked)),
            "log in again (token revoked)"
        );
        assert_eq!(
            status_text(McpAuthStatus::LoggedIn, Some(R::MoreScopesNeeded)),
            "logged in (more scopes needed)"
        );
        assert_eq!(
            status_text(McpAuthStatus::NotLoggedIn, Some(R::NeverLoggedIn)),
            "not logged in"
        );
        assert_eq!(
            status_text(McpAuthStatus::Expired, Some(R::TokenExpired)),
            "expired"
        );
        assert_eq!(status_text(McpAuthStatus::LoggedIn, None), "logged in");
    }

    #[test]
    fn table_aligns_and_marks_unconfigured_rows() {
        let rows = vec![
            Row {
                status: with_info(
                    "linear",
                    "https://mcp.linear.app/mcp",
                    StatusInfo::from_credentials(None),
                ),
                configured: true,
            },
            Row {
                status: McpServerStatus {
                    name: "x".into(),
                    transport: McpServerTransport::StreamableHttp,
                    url: Some("http://127.0.0.1:1/mcp".into()),
                    auth_status: McpAuthStatus::LoggedIn,
                    reason: None,
                    expires_at: Some(4600),
                    scopes: Some(vec![]),
                    registration: Some(RegistrationKind::Dcr),
                    issuer: None,
                    login_pending: false,
                    next_refresh_at: None,
                    escape_hatches: None,
                    account: None,
                    accounts: None,
                },
                configured: false,
            },
        ];
        let text = table(&rows, 1000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME    STATUS         EXPIRES   REGISTRATION  URL"
        );
        assert_eq!(
            lines[1],
            "linear  not logged in  -         -             https://mcp.linear.app/mcp"
        );
        assert_eq!(
            lines[2],
            "x*      logged in      in 1h 0m  dcr           http://127.0.0.1:1/mcp"
        );
        assert!(text.ends_with("* not in config.toml (logged in with --url or connect)"));
    }

    #[test]
    fn table_lists_the_escape_hatches_of_each_server_that_sets_any() {
        let strict = with_info(
            "strict",
            "https://a.example/mcp",
            StatusInfo::from_credentials(None),
        );
        let relaxed = McpServerStatus {
            escape_hatches: Some(vec!["issuer".into(), "token_endpoint".into()]),
            ..with_info(
                "atl",
                "https://b.example/mcp",
                StatusInfo::from_credentials(None),
            )
        };
        let rows = |list: Vec<McpServerStatus>| -> Vec<Row> {
            list.into_iter()
                .map(|status| Row {
                    status,
                    configured: true,
                })
                .collect()
        };
        let text = table(&rows(vec![relaxed, strict.clone()]), 1000);
        assert!(
            text.ends_with(
                "Escape hatches in use (config.toml relaxes discovery for these servers):\n  atl: issuer, token_endpoint"
            ),
            "{text}"
        );
        assert!(!text.contains("strict:"), "{text}");
        let text = table(&rows(vec![strict]), 1000);
        assert!(!text.contains("Escape hatches"), "{text}");
    }

    #[test]
    fn a_server_with_accounts_has_a_line_per_account_and_marks_the_one_used_last() {
        use mcp_app_server_protocol::McpAccountStatus;
        let account = |label: Option<&str>, status, current| McpAccountStatus {
            account: label.map(str::to_owned),
            auth_status: status,
            reason: None,
            expires_at: Some(4600),
            scopes: None,
            current,
        };
        let mut status = with_info(
            "linear",
            "https://mcp.linear.app/mcp",
            StatusInfo::from_credentials(None),
        );
        status.accounts = Some(vec![
            account(None, McpAuthStatus::LoggedIn, false),
            account(Some("a@example.com"), McpAuthStatus::LoggedIn, true),
            account(Some("b@example.com"), McpAuthStatus::Expired, false),
        ]);
        let text = table(
            &[Row {
                status,
                configured: true,
            }],
            1000,
        );
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].starts_with("linear [(no account)]  "), "{text}");
        assert!(
            lines[2].starts_with("linear [a@example.com] (used last)  logged in"),
            "{text}"
        );
        assert!(lines[3].starts_with("linear [b@example.com]  "), "{text}");
        assert!(lines[3].contains("expired"), "{text}");

        // A server whose only entry has no label keeps its one line.
        let mut plain = with_info("x", "https://x/mcp", StatusInfo::from_credentials(None));
        plain.accounts = Some(vec![account(None, McpAuthStatus::LoggedIn, true)]);
        let text = table(
            &[Row {
                status: plain,
                configured: true,
            }],
            1000,
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.starts_with("x ") && line.contains("not logged in"),
            "{text}"
        );
    }
}
