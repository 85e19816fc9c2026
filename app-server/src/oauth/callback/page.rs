//! The small self-contained HTML pages the browser shows after the redirect. Every piece of
//! text that did not come from this file is escaped; codes and state values never appear.
//! Each page names the frontend that started the login and the MCP server it is for, when
//! the login told the listener (see [`PageNames`]), and says what happened and what to do
//! next. No page has a script; the headers (serve.rs) forbid framing and caching.

use super::ending::{LoginEnding, PageNames};
use super::response::{CallbackError, CallbackOutcome, DiscardReason, clean_server_text};

/// One response of the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    pub(super) status: u16,
    pub(super) html: String,
}

/// The names a page uses, escaped for HTML.
pub(super) struct Who {
    /// The frontend, e.g. `Zed`; the listener's default name when the login gave none.
    app: String,
    /// The MCP server in bold, or "the server".
    server: String,
}

impl Who {
    pub(super) fn new(names: &PageNames, default_app: &str) -> Self {
        Self {
            app: escape_html(names.frontend.as_deref().unwrap_or(default_app)),
            server: names.server.as_deref().map_or_else(
                || "the server".to_owned(),
                |server| format!("<strong>{}</strong>", escape_html(server)),
            ),
        }
    }
}

pub(super) fn for_outcome(outcome: &CallbackOutcome, who: &Who) -> Page {
    match outcome {
        CallbackOutcome::Code { .. } => approved_finishing(who),
        CallbackOutcome::Error(error) => failure(error, who),
    }
}

/// The page for a login that ended, for its redirect and for any later visit.
pub(super) fn for_ending(ending: &LoginEnding, who: &Who) -> Page {
    let Who { app, server } = who;
    let again = format!("To log in, start the login again from {app}.");
    let (status, title, tone, paragraphs) = match ending {
        LoginEnding::LoggedIn => (
            200,
            "Logged in",
            Tone::Ok,
            vec![format!(
                "{app} is now logged in to {server}. You can close this tab and return to {app}."
            )],
        ),
        LoginEnding::Denied => (
            403,
            "Access declined",
            Tone::Failed,
            vec![
                format!("Access to {server} was declined, so {app} is not logged in to it."),
                format!(
                    "If that was not intended, start the login again from {app} and approve access."
                ),
            ],
        ),
        LoginEnding::Failed(message) => (
            502,
            "Login failed",
            Tone::Failed,
            vec![
                format!("{app} could not finish the login to {server}."),
                format!(
                    "What went wrong: {}",
                    escape_html(&clean_server_text(message))
                ),
                again,
            ],
        ),
        LoginEnding::Expired => (
            410,
            "Login expired",
            Tone::Failed,
            vec![
                format!(
                    "The login to {server} waited too long for the browser to come back and was stopped, so this response was not used."
                ),
                again,
            ],
        ),
        LoginEnding::Cancelled => (
            410,
            "Login cancelled",
            Tone::Neutral,
            vec![
                format!(
                    "The login to {server} was cancelled in {app}, so this response was not used."
                ),
                again,
            ],
        ),
        LoginEnding::Superseded => return superseded(who),
        LoginEnding::Stopped => (
            410,
            "Login stopped",
            Tone::Failed,
            vec![
                format!(
                    "{app} stopped waiting for this login to {server} (it shut down or closed its login listener), so this response was not used."
                ),
                again,
            ],
        ),
    };
    Page {
        status,
        html: render(title, tone, title, &paragraphs),
    }
}

/// The server approved and the browser came back, but the code exchange had not finished
/// when the page had to be sent.
pub(super) fn approved_finishing(who: &Who) -> Page {
    let Who { app, server } = who;
    Page {
        status: 200,
        html: render(
            "Login approved",
            Tone::Ok,
            "Login approved, finishing",
            &[format!(
                "{server} approved access and {app} is finishing the login (exchanging the authorization for credentials). {app} shows whether it worked. You can close this tab and return to {app}."
            )],
        ),
    }
}

fn failure(error: &CallbackError, who: &Who) -> Page {
    let Who { app, server } = who;
    let again = format!("Start the login again from {app}.");
    let paragraphs = match error {
        CallbackError::OAuth {
            error,
            description,
            uri,
        } => {
            let mut lines = vec![format!(
                "{server} refused the login of {app} with the error <code>{}</code>.",
                escape_html(error)
            )];
            if let Some(description) = description {
                lines.push(format!("It said: {}", escape_html(description)));
            }
            if let Some(uri) = uri {
                lines.push(format!(
                    "More information: <code>{}</code>",
                    escape_html(uri)
                ));
            }
            lines.push(match error.as_str() {
                "access_denied" => format!(
                    "Access was declined. If that was not intended, start the login again \
 from {app} and approve access."
                ),
                "invalid_scope" => format!(
                    "The server does not grant the requested scopes. Check the scopes \
 configured for this server, then start the login again from {app}."
                ),
                _ => again,
            });
            lines
        }
        CallbackError::IssuerMismatch { expected, got } => vec![
            format!(
                "The response says it comes from <code>{}</code>, but the login to {server} \
 started at <code>{}</code>. It was discarded to protect you from a mix-up \
 attack.",
                escape_html(got),
                escape_html(expected)
            ),
            again,
        ],
        CallbackError::MissingIssuer => vec![
            format!(
                "{server} promised to identify itself on this redirect (RFC 9207) but did not. \
                 The response was discarded."
            ),
            again,
        ],
        CallbackError::MissingCode => vec![
            "The response carries neither an authorization code nor an error.".to_owned(),
            again,
        ],
        CallbackError::DuplicateParameter { name } => vec![
            format!(
                "The response repeats the parameter <code>{}</code>, which is not allowed. \
                 It was discarded.",
                escape_html(name)
            ),
            again,
        ],
        CallbackError::Superseded | CallbackError::ListenerClosed { .. } => {
            vec![escape_html(&error.to_string()), again]
        }
    };
    let (status, heading) = match error {
        CallbackError::OAuth { error, .. } if error == "access_denied" => (403, "Access declined"),
        _ => (400, "Login failed"),
    };
    Page {
        status,
        html: render(heading, Tone::Failed, heading, &paragraphs),
    }
}

/// A request on a login's path that cannot be that login's response (rule 14). The login is
/// not touched, so the page must not say it failed.
pub(super) fn discarded(reason: DiscardReason, who: &Who) -> Page {
    let Who { app, server } = who;
    let why = match reason {
        DiscardReason::MissingState => {
            "This address carries no state, so it cannot be matched to the login that is \
 waiting (a reloaded page or an incomplete link)."
        }
        DiscardReason::StateMismatch => {
            "This response does not belong to the login that is waiting: its state does not \
 match. That happens with an old browser tab from an earlier attempt, or with a \
 link someone else made."
        }
        DiscardReason::RepeatedState => {
            "This response carries its state twice, so it cannot be matched to the login \
 that is waiting."
        }
    };
    Page {
        status: 400,
        html: render(
            "Response discarded",
            Tone::Neutral,
            "This response was discarded",
            &[
                format!("{why} For your safety it was discarded."),
                format!(
                    "The login is still waiting for {server}: finish it in the browser tab {app} \
 opened, or start it again from {app}."
                ),
            ],
        ),
    }
}

/// A request naming a host the listener does not serve (DNS rebinding: a web page whose
/// name resolves to the loopback address).
pub(super) fn misdirected() -> Page {
    Page {
        status: 421,
        html: render(
            "Wrong address",
            Tone::Neutral,
            "Wrong address",
            &[
                "This listener only answers requests addressed to it by its loopback address."
                    .to_owned(),
            ],
        ),
    }
}

/// A request without a (single, well-formed) `Host` header.
pub(super) fn bad_host() -> Page {
    Page {
        status: 400,
        html: render(
            "Bad request",
            Tone::Neutral,
            "Bad request",
            &["The request does not say which host it is for.".to_owned()],
        ),
    }
}

/// Anything but GET: nothing on this listener takes another method.
pub(super) fn method_not_allowed() -> Page {
    Page {
        status: 405,
        html: render(
            "Method not allowed",
            Tone::Neutral,
            "Method not allowed",
            &["Only the browser's redirect (a GET request) is answered here.".to_owned()],
        ),
    }
}

/// Any request that no pending login answers for.
pub(super) fn not_found() -> Page {
    Page {
        status: 404,
        html: render(
            "Not found",
            Tone::Neutral,
            "Not found",
            &[
                "No login is waiting at this address.".to_owned(),
                "If you were logging in, that login ended some time ago or was started by \
                 another program. Start the login again from the app you use."
                    .to_owned(),
            ],
        ),
    }
}

/// A second visit (a reload) after the login already took its result.
pub(super) fn already_finished(who: &Who) -> Page {
    let Who { app, server } = who;
    Page {
        status: 200,
        html: render(
            "Login already finished",
            Tone::Neutral,
            "This login has already finished",
            &[format!(
                "{app} already received the result of this login to {server}. You can close \
 this tab; if the login did not work, start it again from {app}."
            )],
        ),
    }
}

/// The redirect of a login that a newer login on the same path replaced.
pub(super) fn superseded(who: &Who) -> Page {
    let Who { app, server } = who;
    Page {
        status: 409,
        html: render(
            "Login replaced",
            Tone::Neutral,
            "This login was replaced by a newer one",
            &[format!(
                "A newer login to {server} was started in {app}, so this tab is out of date. \
                 Finish the login in the newest browser tab, or start it again from {app}."
            )],
        ),
    }
}

/// The login stopped waiting (cancelled or timed out) just before the browser came back.
pub(super) fn no_longer_waiting(who: &Who) -> Page {
    let Who { app, server } = who;
    Page {
        status: 410,
        html: render(
            "Login no longer waiting",
            Tone::Failed,
            "This login is no longer waiting",
            &[format!(
                "The login to {server} was cancelled or timed out before the browser came \
                 back. Start the login again from {app}."
            )],
        ),
    }
}

enum Tone {
    Ok,
    Failed,
    Neutral,
}

/// `paragraphs` are HTML already (escaped by the callers).
fn render(title: &str, tone: Tone, heading: &str, paragraphs: &[String]) -> String {
    let color = match tone {
        Tone::Ok => "#1a7f37",
        Tone::Failed => "#b42318",
        Tone::Neutral => "#333",
    };
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
         padding:0 1rem;line-height:1.5;color:#222}}h1{{font-size:1.4rem;color:{color}}}\
         code{{background:#f2f2f2;padding:0 .2em;overflow-wrap:anywhere}}</style>\n</head>\n\
         <body>\n<h1>{heading}</h1>\n{body}</body>\n</html>\n",
        title = escape_html(title),
        heading = escape_html(heading),
    )
}

pub(super) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(app: &str) -> Who {
        Who::new(
            &PageNames::new(Some(app), Some("Linear <prod>")),
            "your editor",
        )
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
    }

    #[test]
    fn approved_page_names_the_frontend_and_server_and_says_it_is_finishing() {
        let page = for_outcome(
            &CallbackOutcome::Code {
                code: "secret-code-123".to_owned(),
            },
            &who("Zed <dev>"),
        );
        assert_eq!(page.status, 200);
        assert!(
            page.html.contains("Login approved, finishing"),
            "{}",
            page.html
        );
        assert!(page.html.contains("return to Zed &lt;dev&gt;."));
        assert!(page.html.contains("<strong>Linear &lt;prod&gt;</strong>"));
        assert!(!page.html.contains("secret-code-123"));
        assert!(!page.html.contains("<dev>") && !page.html.contains("your editor"));
    }

    #[test]
    fn without_names_the_pages_say_your_editor_and_the_server() {
        let page = for_ending(
            &LoginEnding::LoggedIn,
            &Who::new(&PageNames::default(), "your editor"),
        );
        assert!(
            page.html
                .contains("your editor is now logged in to the server."),
            "{}",
            page.html
        );
    }

    #[test]
    fn every_ending_has_its_own_page_naming_both_and_no_script() {
        let endings = [
            (LoginEnding::LoggedIn, 200, "Logged in"),
            (LoginEnding::Denied, 403, "Access declined"),
            (
                LoginEnding::Failed("the token endpoint said <no>".to_owned()),
                502,
                "the token endpoint said &lt;no&gt;",
            ),
            (LoginEnding::Expired, 410, "Login expired"),
            (LoginEnding::Cancelled, 410, "Login cancelled"),
            (LoginEnding::Superseded, 409, "replaced by a newer one"),
            (LoginEnding::Stopped, 410, "Login stopped"),
        ];
        for (ending, status, says) in endings {
            let page = for_ending(&ending, &who("VS Code"));
            assert_eq!(page.status, status, "{ending:?}");
            assert!(page.html.contains(says), "{ending:?}: {}", page.html);
            assert!(page.html.contains("VS Code"), "{ending:?}: {}", page.html);
            assert!(
                page.html.contains("Linear &lt;prod&gt;"),
                "{ending:?}: {}",
                page.html
            );
            assert!(!page.html.contains("<script"), "{ending:?}");
            if ending != LoginEnding::LoggedIn {
                assert!(page.html.contains("again"), "{ending:?}: {}", page.html);
            }
        }
    }

    #[test]
    fn oauth_error_page_shows_escaped_error_and_next_step() {
        let page = failure(
            &CallbackError::OAuth {
                error: "access_denied".to_owned(),
                description: Some("<b>user</b> said no".to_owned()),
                uri: Some("https://as.example/errors?a=1&b=2".to_owned()),
            },
            &who("VS Code"),
        );
        assert_eq!(page.status, 403);
        assert!(page.html.contains("<code>access_denied</code>"));
        assert!(page.html.contains("&lt;b&gt;user&lt;/b&gt; said no"));
        assert!(page.html.contains("https://as.example/errors?a=1&amp;b=2"));
        assert!(page.html.contains("start the login again from VS Code"));
        assert!(!page.html.contains("<b>user</b>"));
    }

    #[test]
    fn discarded_pages_say_why_and_that_the_login_still_waits() {
        for (reason, why) in [
            (DiscardReason::StateMismatch, "state does not match"),
            (DiscardReason::MissingState, "carries no state"),
            (DiscardReason::RepeatedState, "carries its state twice"),
        ] {
            let page = discarded(reason, &who("VS Code"));
            assert_eq!(page.status, 400);
            assert!(page.html.contains(why), "{reason:?}: {}", page.html);
            assert!(
                page.html.contains("The login is still waiting"),
                "{}",
                page.html
            );
            assert!(!page.html.contains("Login failed"), "{}", page.html);
        }
    }

    #[test]
    fn every_failure_page_says_what_to_do_next() {
        let errors = [
            CallbackError::IssuerMismatch {
                expected: "https://a".to_owned(),
                got: "https://b".to_owned(),
            },
            CallbackError::MissingIssuer,
            CallbackError::MissingCode,
            CallbackError::DuplicateParameter {
                name: "code".to_owned(),
            },
            CallbackError::OAuth {
                error: "server_error".to_owned(),
                description: None,
                uri: None,
            },
        ];
        for error in errors {
            let page = failure(&error, &who("the app"));
            assert!(
                page.html.contains("Start the login again from the app."),
                "{error:?}: {}",
                page.html
            );
        }
    }
}
