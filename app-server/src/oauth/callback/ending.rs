//! What the pages of a login name and how a login ended, as the login engine tells the
//! listener. A leaf: the listener and the pages import it.

use super::response::truncate_chars;

/// Longest name of a frontend or server shown on a page, in characters.
pub(super) const MAX_NAME_CHARS: usize = 80;

/// How a login that waited on the listener ended. A redirect that arrives after the end (a
/// late tab, a reload) gets the page for it while the listener remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginEnding {
    /// The code was exchanged and the credentials stored.
    LoggedIn,
    /// The person declined access at the authorization server (`access_denied`).
    Denied,
    /// The login failed; the message says why and what to do (no secret in it).
    Failed(String),
    /// The login waited longer than its time-out for the browser.
    Expired,
    /// The frontend (or the person through it) cancelled the login.
    Cancelled,
    /// A newer login for the same server replaced it.
    Superseded,
    /// The daemon shut down or the listener stopped.
    Stopped,
}

/// Who the pages of one login name: the frontend that started it (`clientInfo.title`, else
/// `name`, of its `initialize`) and the MCP server it logs in to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageNames {
    pub frontend: Option<String>,
    pub server: Option<String>,
}

impl PageNames {
    /// Names as shown: control characters dropped, blank names absent, at most
    /// [`MAX_NAME_CHARS`] characters each. (Escaping for HTML happens in the pages.)
    pub fn new(frontend: Option<&str>, server: Option<&str>) -> Self {
        Self {
            frontend: frontend.and_then(clean_name),
            server: server.and_then(clean_name),
        }
    }
}

fn clean_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    (!cleaned.is_empty()).then(|| truncate_chars(&cleaned, MAX_NAME_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_bounded() {
        let names = PageNames::new(Some("  Zed\n<dev>\u{7}  "), Some(&"s".repeat(500)));
        assert_eq!(names.frontend.as_deref(), Some("Zed <dev>"));
        let server = names.server.expect("server");
        assert_eq!(
            server.chars().count(),
            MAX_NAME_CHARS + 1,
            "cut, with an ellipsis"
        );
        assert_eq!(PageNames::new(Some(" \t "), None), PageNames::default());
    }
}
