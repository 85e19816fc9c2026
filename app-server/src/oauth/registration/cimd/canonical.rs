//! The one-pass recognizer of the document request the daemon itself produces:
//! `redirect_uri=<canonically encoded http://<loopback host>[:port]/<plain path>/callback/<id>>`.
//!
//! It accepts a strict subset of what the URL-parser path of `cimd.rs` accepts (hosts
//! `127.a.b.c` in canonical dotted decimal, `localhost` and `[::1]`; a non-default port
//! without leading zeros; path segments of unreserved characters only, none of them `.` or
//! `..`), chosen so that the URL parser would leave the text as it is: whatever it accepts,
//! `check_query` accepts with the same redirect URI (the tests compare both on every mix of
//! hosts, ports, paths and encodings). Anything else returns `None` and goes through the URL
//! parser, which also words the refusal. The document host runs this on every request.

/// The decoded redirect URI when `query` is the canonical `redirect_uri=` query of a plain
/// loopback redirect URI for `callback_id`.
pub(super) fn plain_redirect_query(query: &str, callback_id: &str) -> Option<String> {
    let value = query.strip_prefix("redirect_uri=")?.as_bytes();
    let mut decoded = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        let byte = match value[at] {
            b'%' => {
                let high = upper_hex(*value.get(at + 1)?)?;
                let low = upper_hex(*value.get(at + 2)?)?;
                at += 3;
                let byte = high << 4 | low;
                // An encoded unreserved character is not the canonical spelling; nor is
                // anything outside ASCII on this path.
                if is_unreserved(byte) || !byte.is_ascii() {
                    return None;
                }
                byte
            }
            byte if is_unreserved(byte) => {
                at += 1;
                byte
            }
            _ => return None,
        };
        decoded.push(byte);
    }
    let text = String::from_utf8(decoded).ok()?;
    is_plain_loopback_redirect(&text, callback_id).then_some(text)
}

/// `http://<host>[:port]/<segments>/callback/<callback_id>` as the URL parser would spell it.
fn is_plain_loopback_redirect(text: &str, callback_id: &str) -> bool {
    let Some(rest) = text.strip_prefix("http://") else {
        return false;
    };
    let host_end = if rest.starts_with('[') {
        rest.find(']').map_or(rest.len(), |end| end + 1)
    } else {
        rest.find([':', '/']).unwrap_or(rest.len())
    };
    let (host, rest) = rest.split_at(host_end);
    if !(host == "localhost" || host == "[::1]" || is_loopback_ipv4(host)) {
        return false;
    }
    let (port, path) = match rest.strip_prefix(':') {
        Some(after) => after.split_at(after.find('/').unwrap_or(after.len())),
        None => ("", rest),
    };
    if rest.starts_with(':') && !is_explicit_port(port) {
        return false;
    }
    let Some(path) = path.strip_prefix('/') else {
        return false;
    };
    let mut segments = path.split('/').rev();
    if segments.next() != Some(callback_id) || segments.next() != Some("callback") {
        return false;
    }
    path.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.bytes().all(is_unreserved)
    })
}

/// `127.a.b.c`, each part decimal 0-255 without leading zeros.
fn is_loopback_ipv4(host: &str) -> bool {
    let mut parts = 0;
    for (i, part) in host.split('.').enumerate() {
        parts += 1;
        let plain = (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        match part.parse::<u16>() {
            Ok(value) if plain && value <= 255 && (i > 0 || value == 127) => {}
            _ => return false,
        }
    }
    parts == 4
}

/// A port the URL parser keeps as written: 1-65535 without leading zeros, not http's 80.
fn is_explicit_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port.parse::<u32>().is_ok_and(|p| p <= 65_535 && p != 80)
}

/// RFC 3986 unreserved: what the canonical encoding leaves as it is.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// The value of an upper-case hex digit (the canonical encoding's spelling).
fn upper_hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_query, encode_component};
    use super::*;

    const ID: &str = "XuuuHAzzHOni";

    /// Every spelling of a redirect query the recognizer accepts, the URL parser path
    /// accepts with the same redirect URI; and it accepts the daemon's own shapes.
    #[test]
    fn accepts_only_what_the_url_parser_path_accepts() {
        let hosts = [
            "127.0.0.1",
            "127.255.255.254",
            "127.0.0.01",
            "127.1",
            "127.0.0.1.",
            "128.0.0.1",
            "127.0.0.256",
            "localhost",
            "LOCALHOST",
            "localhost.",
            "localhostx",
            "[::1]",
            "[0:0::1]",
            "[::2]",
            "0x7f.0.0.1",
            "evil.example",
            "u@127.0.0.1",
        ];
        let ports = [
            "", ":", ":0", ":1", ":80", ":8765", ":65535", ":65536", ":08765", ":1x",
        ];
        let paths = [
            "/callback/ID",
            "/x/callback/ID",
            "/callback/ID/",
            "//callback/ID",
            "/./callback/ID",
            "/../callback/ID",
            "/%2e/callback/ID",
            "/callback/OTHER",
            "/a~b_c-d.e/callback/ID",
            "/.../callback/ID",
            "/callback/ID?x",
            "/callback/ID#f",
            "/c%41llback/ID",
            "/ca llback/ID",
            "/caf\u{e9}/callback/ID",
            "callback/ID",
            "",
        ];
        let encodings: [fn(&str) -> String; 4] = [
            encode_component,
            |s| encode_component(s).replace("%3A", "%3a"),
            |s| s.bytes().map(|b| format!("%{b:02X}")).collect(),
            |s| encode_component(s).replace("%3A", ":"),
        ];
        let mut accepted = 0;
        for host in hosts {
            for port in ports {
                for path in paths {
                    let uri = format!("http://{host}{port}{}", path.replace("ID", ID));
                    for (e, encode) in encodings.iter().enumerate() {
                        let query = format!("redirect_uri={}", encode(&uri));
                        let Some(fast) = plain_redirect_query(&query, ID) else {
                            continue;
                        };
                        accepted += 1;
                        assert_eq!(e, 0, "{query}: only the canonical encoding");
                        match check_query(&query, ID) {
                            Ok(url) => assert_eq!(url.as_str(), fast, "{query}"),
                            Err(error) => panic!("{query}: accepted, but {error}"),
                        }
                    }
                }
            }
        }
        // 2 IPv4 hosts, localhost and [::1]; 4 ports (none, 1, 8765, 65535); 4 paths.
        assert_eq!(accepted, 4 * 4 * 4);
        let daemon = format!("redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2F{ID}");
        assert_eq!(
            plain_redirect_query(&daemon, ID).as_deref(),
            Some(format!("http://127.0.0.1:8765/callback/{ID}").as_str())
        );
    }

    #[test]
    fn refuses_truncated_and_foreign_queries() {
        for query in [
            "",
            "redirect_uri=",
            "redirect_uri=http%3A%2F%2F127.0.0.1%3",
            "redirect_uri=http%3A%2F%2F127.0.0.1%",
            "redirect_uri=%FF",
            "redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback%2FXuuuHAzzHOni&x=1",
            "x=1&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback%2FXuuuHAzzHOni",
            "redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback%2FXuuuHAzzHOni+",
        ] {
            assert_eq!(plain_redirect_query(query, ID), None, "{query}");
        }
    }
}
