//! The subject distinguished name of an X.509 certificate, read from its DER and rendered
//! as an RFC 4514 string, and the comparison of two such strings the authorization server
//! applies to `tls_client_auth_subject_dn` (RFC 8705 2.1.2).

use std::fmt::Write as _;

/// One DER element: its tag, its contents, and the input after it. Only single-byte tags
/// and definite lengths (what DER allows) are read.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return None;
            }
            let (bytes, rest) = rest.split_at(n);
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// The contents of the element at the start of `input`, which must have tag `tag`, and the
/// input after it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, after) = element(input)?;
    (found == tag).then_some((contents, after))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The DER contents of the subject `Name` of a certificate.
fn subject_name(cert_der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, present from v2 on.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    expect(rest, SEQUENCE).map(|(subject, _)| subject)
}

fn dotted_oid(contents: &[u8]) -> Option<String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in contents.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        } else if i + 1 == contents.len() {
            return None;
        }
    }
    let (&first, others) = arcs.split_first()?;
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{a}.{b}");
    for arc in others {
        let _ = write!(text, ".{arc}");
    }
    Some(text)
}

/// The RFC 4514 short name of an attribute type, where it has one.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a directory string, for the string types certificates use.
fn string_value(tag: u8, contents: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String.
        0x0c | 0x13 | 0x16 => String::from_utf8(contents.to_vec()).ok(),
        // TeletexString, read as Latin-1 as most software does.
        0x14 => Some(contents.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e if contents.len().is_multiple_of(2) => {
            let units: Vec<u16> = contents
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // UniversalString: UTF-32BE.
        0x1c if contents.len().is_multiple_of(4) => contents
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// RFC 4514 2.4 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            _ => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `type=value` of one AttributeTypeAndValue.
fn attribute(input: &[u8]) -> Option<String> {
    let (oid, value) = expect(input, OID)?;
    let oid = dotted_oid(oid)?;
    let (tag, contents, after) = element(value)?;
    if !after.is_empty() {
        return None;
    }
    let text = short_name(&oid).and_then(|name| {
        string_value(tag, contents).map(|text| format!("{name}={}", escape(&text)))
    });
    // A type without a short name, or a value that is no string: the dotted type and the
    // hex of the value's whole encoding.
    Some(text.unwrap_or_else(|| format!("{oid}=#{}", hex(&value[..value.len() - after.len()]))))
}

/// The subject DN of the certificate `cert_der` as an RFC 4514 string (the last RDN of the
/// encoding first), e.g. `CN=alice,O=Example`; `None` when the DER cannot be read.
pub(crate) fn subject_dn(cert_der: &[u8]) -> Option<String> {
    let mut rest = subject_name(cert_der)?;
    let mut rdns = Vec::new();
    while !rest.is_empty() {
        let (mut set, after) = expect(rest, SET)?;
        rest = after;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (attr, after) = expect(set, SEQUENCE)?;
            set = after;
            attributes.push(attribute(attr)?);
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// Whether the character at byte `at` of `text` is escaped (preceded by an odd number of
/// backslashes).
fn escaped(text: &str, at: usize) -> bool {
    text[..at].bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// `text` split at its unescaped `separator`s.
fn split_unescaped(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c == separator && !escaped(text, at) {
            parts.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `text` without spaces at either end, an escaped trailing space kept.
fn trim_unescaped(text: &str) -> &str {
    let mut text = text.trim_start_matches(' ');
    while text.ends_with(' ') && !escaped(text, text.len() - 1) {
        text = &text[..text.len() - 1];
    }
    text
}

/// A DN string with the spaces around `,`, `+` and `=` removed and attribute types in
/// ASCII lower case: two DNs naming the same subject the same way compare equal.
pub(crate) fn normalize(dn: &str) -> String {
    split_unescaped(dn, ',')
        .into_iter()
        .map(|rdn| {
            split_unescaped(rdn, '+')
                .into_iter()
                .map(|attr| {
                    let eq = attr
                        .char_indices()
                        .find(|&(at, c)| c == '=' && !escaped(attr, at))
                        .map(|(at, _)| at);
                    match eq {
                        Some(at) => format!(
                            "{}={}",
                            attr[..at].trim().to_ascii_lowercase(),
                            trim_unescaped(&attr[at + 1..])
                        ),
                        None => trim_unescaped(attr).to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::{normalize, subject_dn};

    fn cert_with(subject: &[(DnType, &str)]) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn renders_a_single_common_name() {
        let der = cert_with(&[(DnType::CommonName, "alice")]);
        assert_eq!(subject_dn(&der).as_deref(), Some("CN=alice"));
    }

    #[test]
    fn renders_the_last_rdn_first_and_escapes_specials() {
        let der = cert_with(&[
            (DnType::CountryName, "SE"),
            (DnType::OrganizationName, "Acme, Inc"),
            (DnType::CommonName, " bob+1"),
        ]);
        assert_eq!(
            subject_dn(&der).as_deref(),
            Some("CN=\\ bob\\+1,O=Acme\\, Inc,C=SE")
        );
    }

    #[test]
    fn renders_unnamed_types_as_hex() {
        let der = cert_with(&[(DnType::CustomDnType(vec![1, 2, 3, 4]), "x")]);
        // UTF8String "x": tag 0c, length 01, 78.
        assert_eq!(subject_dn(&der).as_deref(), Some("1.2.3.4=#0c0178"));
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(subject_dn(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_dn(&[]), None);
    }

    #[test]
    fn normalisation_ignores_spaces_and_type_case_only() {
        assert_eq!(
            normalize(" cn = alice , O=Acme"),
            normalize("CN=alice,o=Acme")
        );
        assert_eq!(normalize("CN=alice\\, jr"), "cn=alice\\, jr");
        assert_eq!(normalize("CN=a\\ "), "cn=a\\ ");
        assert_ne!(normalize("CN=Alice"), normalize("CN=alice"));
        assert_ne!(normalize("CN=alice,O=Acme"), normalize("O=Acme,CN=alice"));
    }
}
