//! The small self-contained HTML pages the browser shows after the redirect. Every piece of
//! text that did not come from this file is escaped; codes and state values never appear.

use super::response::{CallbackError, CallbackOutcome, DiscardReason};

/// One response of the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    pub(super) status: u16,
    pub(super) html: String,
}

pub(super) fn for_outcome(outcome: &CallbackOutcome, app_name: &str) -> Page {
    match outcome {
        CallbackOutcome::Code { .. } => success(app_name),
        CallbackOutcome::Error(error) => failure(error, app_name),
    }
}

fn success(app_name: &str) -> Page {
    let app = escape_html(app_name);
    Page {
        status: 200,
        html: render(
            "Login approved",
            Tone::Ok,
            "Login approved",
            &[format!(
                "{app} received the authorization and is finishing the login. \
                 You can close this tab and return to {app}."
            )],
        ),
    }
}

fn failure(error: &CallbackError, app_name: &str) -> Page {
    let app = escape_html(app_name);
    let again = format!("Start the login again from {app}.");
    let paragraphs = match error {
        CallbackError::OAuth {
            error,
            description,
            uri,
        } => {
            let mut lines = vec![format!(
                "The authorization server refused the login with the error <code>{}</code>.",
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
                "The response says it comes from <code>{}</code>, but the login started at \
                 <code>{}</code>. It was discarded to protect you from a mix-up attack.",
                escape_html(got),
                escape_html(expected)
            ),
            again,
        ],
        CallbackError::MissingIssuer => vec![
            "The authorization server promised to identify itself on this redirect (RFC 9207) \
             but did not. The response was discarded."
                .to_owned(),
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
    Page {
        status: 400,
        html: render("Login failed", Tone::Failed, "Login failed", &paragraphs),
    }
}

/// A request on a login's path that cannot be that login's response (rule 14). The login is
/// not touched, so the page must not say it failed.
pub(super) fn discarded(reason: DiscardReason, app_name: &str) -> Page {
    let app = escape_html(app_name);
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
                    "The login is still waiting: finish it in the browser tab {app} opened, \
                     or start it again from {app}."
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
            &["No login is waiting at this address.".to_owned()],
        ),
    }
}

/// A second visit (a reload) after the login already took its result.
pub(super) fn already_finished(app_name: &str) -> Page {
    let app = escape_html(app_name);
    Page {
        status: 200,
        html: render(
            "Login already finished",
            Tone::Neutral,
            "This login has already finished",
            &[format!(
                "{app} already received the result of this login. You can close this tab; \
                 if the login did not work, start it again from {app}."
            )],
        ),
    }
}

/// The redirect of a login that a newer login on the same path replaced.
pub(super) fn superseded(app_name: &str) -> Page {
    let app = escape_html(app_name);
    Page {
        status: 409,
        html: render(
            "Login replaced",
            Tone::Neutral,
            "This login was replaced by a newer one",
            &[format!(
                "A newer login for the same server was started, so this tab is out of date. \
                 Finish the login in the newest browser tab, or start it again from {app}."
            )],
        ),
    }
}

/// The login stopped waiting (cancelled or timed out) just before the browser came back.
pub(super) fn no_longer_waiting(app_name: &str) -> Page {
    let app = escape_html(app_name);
    Page {
        status: 410,
        html: render(
            "Login no longer waiting",
            Tone::Failed,
            "This login is no longer waiting",
            &[format!(
                "The login was cancelled or timed out before the browser came back. \
                 Start the login again from {app}."
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

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
    }

    #[test]
    fn success_page_names_the_app_and_says_close_the_tab() {
        let page = for_outcome(
            &CallbackOutcome::Code {
                code: "secret-code-123".to_owned(),
            },
            "Zed <dev>",
        );
        assert_eq!(page.status, 200);
        assert!(page.html.contains("Login approved"));
        assert!(
            page.html
                .contains("You can close this tab and return to Zed &lt;dev&gt;.")
        );
        assert!(!page.html.contains("secret-code-123"));
        assert!(!page.html.contains("<dev>"));
    }

    #[test]
    fn oauth_error_page_shows_escaped_error_and_next_step() {
        let page = failure(
            &CallbackError::OAuth {
                error: "access_denied".to_owned(),
                description: Some("<b>user</b> said no".to_owned()),
                uri: Some("https://as.example/errors?a=1&b=2".to_owned()),
            },
            "VS Code",
        );
        assert_eq!(page.status, 400);
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
            let page = discarded(reason, "VS Code");
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
            let page = failure(&error, "the app");
            assert!(
                page.html.contains("Start the login again from the app."),
                "{error:?}: {}",
                page.html
            );
        }
    }
}
