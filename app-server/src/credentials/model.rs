//! What is stored: tokens per server, client registrations per issuer. `Debug` never shows
//! a token or a client secret, so these values can sit in logged structs safely.

use std::fmt;

use mcp_app_server_protocol::{McpAuthStatusReason, RegistrationKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Identifies one server's credentials. Entries are keyed by name and URL together: when a
/// server's URL changes in the config, the tokens obtained for the old URL are not offered
/// to the new one. A server may hold several accounts (rule 80): each is an entry of its
/// own, told apart by the label the frontend chose; `None` is the entry of a login that
/// named no account (every entry stored before accounts existed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialKey {
    pub(crate) server_name: String,
    pub server_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<String>,
}

impl CredentialKey {
    pub fn new(server_name: impl Into<String>, server_url: impl Into<String>) -> Self {
        CredentialKey {
            server_name: server_name.into(),
            server_url: server_url.into(),
            account: None,
        }
    }

    /// This server's key for `account` (`None`: the entry of logins that name no account).
    pub fn with_account(mut self, account: Option<String>) -> Self {
        self.account = account;
        self
    }

    /// The account label, if the entry has one.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The string under which the entry is stored: the server name (readable in the file and
    /// in keyring managers), `|`, and 16 hex digits of SHA-256 over the URL. The hash suffix
    /// has a fixed length, so names containing `|` cannot collide with other keys. An
    /// account adds `|` and 16 hex digits of SHA-256 over its label, so the key of an entry
    /// without one is what it always was (stores written before accounts keep working), and
    /// each account has a refresh lock of its own (rule 83: the lock file is named after it).
    pub(crate) fn storage_key(&self) -> String {
        let digest = Sha256::digest(self.server_url.as_bytes());
        let mut key = format!("{}|{}", self.server_name, &hex(&digest)[..16]);
        if let Some(account) = &self.account {
            let digest = Sha256::digest(account.as_bytes());
            key.push('|');
            key.push_str(&hex(&digest)[..16]);
        }
        key
    }

    /// Whether `other` is a key of the same server (any account).
    pub fn same_server(&self, other: &CredentialKey) -> bool {
        self.server_name == other.server_name && self.server_url == other.server_url
    }

    /// Whether `creds` is the entry of this key (not one stored under its storage key for
    /// another URL or account, which a hand edit could make).
    pub(crate) fn is_key_of(&self, creds: &StoredCredentials) -> bool {
        creds.server_name == self.server_name
            && creds.server_url == self.server_url
            && creds.account == self.account
    }
}

/// The longest account label, in bytes.
pub const MAX_ACCOUNT_LEN: usize = 256;

/// An account label the daemon will not store (rule 80).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account label is empty; leave `account` out to use the account last used")]
    Empty,
    #[error(
        "the account label is {0} bytes long; at most {MAX_ACCOUNT_LEN} are allowed (an e-mail address or a short name)"
    )]
    TooLong(usize),
    #[error(
        "the account label contains a control character or leading or trailing spaces; use printable text such as the user's e-mail address"
    )]
    BadCharacter,
}

/// Rule 80: an account label is printable text of 1 to [`MAX_ACCOUNT_LEN`] bytes without
/// control characters or surrounding spaces, so that it shows as it is in the status, the
/// store file and the CLI, and two labels that look alike are alike.
pub fn check_account(label: &str) -> Result<(), AccountError> {
    if label.is_empty() {
        return Err(AccountError::Empty);
    }
    if label.len() > MAX_ACCOUNT_LEN {
        return Err(AccountError::TooLong(label.len()));
    }
    if label.chars().any(char::is_control) || label.trim() != label {
        return Err(AccountError::BadCharacter);
    }
    Ok(())
}

/// A [`CredentialKey`] with its storage key worked out once (it hashes the URL): what
/// lookups made for every token request use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupKey {
    key: CredentialKey,
    storage_key: String,
}

impl LookupKey {
    pub(crate) fn new(key: CredentialKey) -> LookupKey {
        let storage_key = key.storage_key();
        LookupKey { key, storage_key }
    }

    pub(crate) fn key(&self) -> &CredentialKey {
        &self.key
    }

    /// [`CredentialKey::storage_key`] of [`LookupKey::key`].
    pub(crate) fn storage_key(&self) -> &str {
        &self.storage_key
    }

    /// Whether this is the key of the server `server_name` at `server_url`, for `account`.
    pub(crate) fn is_for(
        &self,
        server_name: &str,
        server_url: &str,
        account: Option<&str>,
    ) -> bool {
        self.key.server_name == server_name
            && self.key.server_url == server_url
            && self.key.account.as_deref() == account
    }
}

impl fmt::Display for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.server_name, self.server_url)?;
        match &self.account {
            Some(account) => write!(f, " as {account}"),
            None => Ok(()),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The OAuth client the tokens were issued to; refresh must present the same client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredClient {
    pub kind: RegistrationKind,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    pub token_endpoint_auth_method: String,
}

/// One server's tokens and everything needed to refresh or revoke them later without
/// running discovery again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCredentials {
    pub server_name: String,
    pub server_url: String,
    /// The account these tokens are for (rule 80); `None` for a login that named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// When this account was last chosen (logged in to, or named by a request), unix
    /// milliseconds: a request naming no account uses the server's account chosen last
    /// (rule 81). Stored, so that every process sharing the store and a restart agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_at: Option<i64>,
    pub access_token: String,
    pub token_type: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Absolute expiry, unix seconds; `None` when the server gave no `expires_in`.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The scopes the login asked for (rule 70: what a refresh re-sends with
    /// `refresh_scope = "requested"`, and the retry of one the server refused as
    /// `invalid_scope`). Empty in entries saved before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_scopes: Vec<String>,
    /// Tokens belong to this issuer; they are discarded if the server moves to another.
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The RFC 8707 resource sent with every token request, so refresh repeats it exactly.
    pub resource: String,
    pub client: StoredClient,
    /// Set when refresh failed for good (`invalid_grant`): the user must log in again.
    #[serde(default)]
    pub reauthentication_required: bool,
    /// Why a new login is needed (with `reauthentication_required`), or why one is asked
    /// for while the tokens still serve (`moreScopesNeeded`). Stored, so that it outlives
    /// the process and every process sharing the store shows the same cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_reason: Option<McpAuthStatusReason>,
    /// The grant that obtained these tokens when it needs no browser (`client_credentials`,
    /// `jwt_bearer`): it runs again when they expire, so they need no refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The private key (PKCS#8 DER, base64url) the tokens are bound to (DPoP, RFC 9449);
    /// every token request and, for a `DPoP` token type, every resource request carries a
    /// proof signed with it. A secret like the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
    /// The `x5t#S256` of the client certificate the tokens are bound to (RFC 8705 §3):
    /// every request with them must present that certificate. Not a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_x5t: Option<String>,
    /// When this entry was last written, unix seconds.
    pub updated_at: i64,
    /// These tokens were obtained with the refresh token of the server this names, for
    /// this server's own `resource` (rule 86): they are renewed the same way, under that
    /// server's refresh lock, and hold no refresh token of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_through: Option<CredentialKey>,
    /// Never stored: set when these are the credentials of the server this names, shown
    /// under this server's name because both share one login (rule 85). Writing them
    /// back writes that server's entry; its refresh lock guards them.
    #[serde(skip)]
    pub shared_with: Option<CredentialKey>,
}

impl StoredCredentials {
    /// The key of the entry these credentials are kept in: [`Self::shared_with`] for a
    /// shared login, else their own. Refreshes lock and join by it.
    pub(crate) fn entry_key(&self) -> CredentialKey {
        self.shared_with.clone().unwrap_or_else(|| self.key())
    }

    pub(crate) fn key(&self) -> CredentialKey {
        CredentialKey::new(self.server_name.clone(), self.server_url.clone())
            .with_account(self.account.clone())
    }

    /// New tokens can be had without the user: with the refresh token, or by running the
    /// grant that obtained these again.
    pub(crate) fn renewable(&self) -> bool {
        self.refresh_token.is_some() || self.grant.is_some() || self.refreshed_through.is_some()
    }

    /// The access token is bound to [`Self::dpop_key`]: resource requests present it with
    /// the `DPoP` scheme and a proof.
    pub fn is_dpop_bound(&self) -> bool {
        self.dpop_key.is_some() && self.token_type.eq_ignore_ascii_case("DPoP")
    }
}

/// A client registered with an authorization server by DCR, reused for later logins with
/// the same issuer and redirect URI (requirements rule 12).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRegistration {
    pub(crate) issuer: String,
    pub(crate) redirect_uri: String,
    pub(crate) client_id: String,
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
    pub(crate) token_endpoint_auth_method: String,
    pub(crate) registered_at: i64,
    /// When the client secret expires, unix seconds (`client_secret_expires_at`, RFC 7591
    /// §3.2.1); `None` when it never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret_expires_at: Option<i64>,
    /// The `x5t#S256` of the client certificate configured when the client was registered
    /// (RFC 8705), whichever method the server accepted. Another certificate configured
    /// since, or none, means another registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) certificate_x5t: Option<String>,
}

impl StoredRegistration {
    /// A registration whose client secret expires this soon is not reused: the next
    /// login registers again before it stops working.
    pub(crate) const SECRET_RENEWAL_MARGIN_SECS: i64 = 300;

    /// True when the client secret expires before `now` plus the renewal margin.
    pub(crate) fn secret_expiring(&self, now: i64) -> bool {
        self.client_secret.is_some()
            && self
                .client_secret_expires_at
                .is_some_and(|at| at <= now + Self::SECRET_RENEWAL_MARGIN_SECS)
    }
}

/// Prints as `<redacted>` whatever it stands for.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn redact_opt(secret: &Option<String>) -> Option<Redacted> {
    secret.as_ref().map(|_| Redacted)
}

impl fmt::Debug for StoredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredClient")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &redact_opt(&self.client_secret))
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish()
    }
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("server_name", &self.server_name)
            .field("server_url", &self.server_url)
            .field("account", &self.account)
            .field("selected_at", &self.selected_at)
            .field("access_token", &Redacted)
            .field("token_type", &self.token_type)
            .field("refresh_token", &redact_opt(&self.refresh_token))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("requested_scopes", &self.requested_scopes)
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("revocation_endpoint", &self.revocation_endpoint)
            .field("resource", &self.resource)
            .field("client", &self.client)
            .field("reauthentication_required", &self.reauthentication_required)
            .field("login_reason", &self.login_reason)
            .field("grant", &self.grant)
            .field("dpop_key", &redact_opt(&self.dpop_key))
            .field("updated_at", &self.updated_at)
            .field("refreshed_through", &self.refreshed_through)
            .field("shared_with", &self.shared_with)
            .finish()
    }
}

/// A server that shares another server's login (rule 85): kept in the document instead
/// of a copy of the tokens, so they are kept once and every refresh serves both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredLink {
    /// The server that shares the login.
    pub(crate) server: CredentialKey,
    /// The server whose entry holds the tokens.
    pub(crate) owner: CredentialKey,
    /// The issuer and `resource` the login was shared for: the link serves only while
    /// the owner's tokens are still from this issuer and for this resource.
    pub(crate) issuer: String,
    pub(crate) resource: String,
}

impl fmt::Debug for StoredRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRegistration")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("client_id", &self.client_id)
            .field("client_secret", &redact_opt(&self.client_secret))
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("registered_at", &self.registered_at)
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn credentials(name: &str, url: &str) -> StoredCredentials {
        StoredCredentials {
            server_name: name.to_owned(),
            server_url: url.to_owned(),
            account: None,
            selected_at: None,
            access_token: format!("at-secret-{name}"),
            token_type: "Bearer".to_owned(),
            refresh_token: Some(format!("rt-secret-{name}")),
            expires_at: Some(1_900_000_000),
            scopes: vec!["read".to_owned(), "offline_access".to_owned()],
            requested_scopes: Vec::new(),
            issuer: "https://auth.example.com".to_owned(),
            token_endpoint: "https://auth.example.com/token".to_owned(),
            revocation_endpoint: Some("https://auth.example.com/revoke".to_owned()),
            resource: url.to_owned(),
            client: StoredClient {
                kind: RegistrationKind::Dcr,
                client_id: "client-123".to_owned(),
                client_secret: Some("cs-secret".to_owned()),
                token_endpoint_auth_method: "client_secret_basic".to_owned(),
            },
            reauthentication_required: false,
            login_reason: None,
            grant: None,
            dpop_key: None,
            certificate_x5t: None,
            updated_at: 1_800_000_000,
            refreshed_through: None,
            shared_with: None,
        }
    }

    pub(crate) fn registration(issuer: &str, redirect_uri: &str) -> StoredRegistration {
        StoredRegistration {
            issuer: issuer.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            client_id: format!("dcr-{issuer}"),
            client_secret: Some("reg-secret".to_owned()),
            token_endpoint_auth_method: "client_secret_post".to_owned(),
            registered_at: 1_700_000_000,
            client_secret_expires_at: None,
            certificate_x5t: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_registration_whose_secret_expires_soon_is_not_reused() {
        let now = 1_800_000_000;
        let mut reg = registration("https://as", "http://127.0.0.1:1/cb");
        assert!(!reg.secret_expiring(now), "no expiry: reused for ever");
        reg.client_secret_expires_at =
            Some(now + StoredRegistration::SECRET_RENEWAL_MARGIN_SECS + 1);
        assert!(!reg.secret_expiring(now));
        reg.client_secret_expires_at = Some(now + 60);
        assert!(reg.secret_expiring(now));
        reg.client_secret_expires_at = Some(now - 1);
        assert!(reg.secret_expiring(now));
        // A public client has no secret to expire.
        reg.client_secret = None;
        assert!(!reg.secret_expiring(now));
        // Kept in the store; older files without it still load.
        reg.client_secret = Some("s".into());
        let text = serde_json::to_string(&reg).unwrap();
        assert!(text.contains("clientSecretExpiresAt"), "{text}");
        let back: StoredRegistration = serde_json::from_str(&text).unwrap();
        assert_eq!(back, reg);
        let old = text.replace(&format!(",\"clientSecretExpiresAt\":{}", now - 1), "");
        let old: StoredRegistration = serde_json::from_str(&old).unwrap();
        assert_eq!(old.client_secret_expires_at, None);
    }

    #[test]
    fn storage_key_depends_on_name_and_url() {
        let a = CredentialKey::new("linear", "https://mcp.linear.app/mcp");
        let moved = CredentialKey::new("linear", "https://mcp.linear.app/v2/mcp");
        let renamed = CredentialKey::new("lin", "https://mcp.linear.app/mcp");
        assert!(a.storage_key().starts_with("linear|"));
        assert_eq!(a.storage_key().len(), "linear|".len() + 16);
        assert_eq!(a.storage_key(), a.clone().storage_key());
        assert_ne!(a.storage_key(), moved.storage_key());
        assert_ne!(a.storage_key(), renamed.storage_key());
    }

    #[test]
    fn lookup_key_carries_the_storage_key_of_its_key() {
        let key = CredentialKey::new("linear", "https://mcp.linear.app/mcp");
        let lookup = LookupKey::new(key.clone());
        assert_eq!(lookup.key(), &key);
        assert_eq!(lookup.storage_key(), key.storage_key());
        assert!(lookup.is_for("linear", "https://mcp.linear.app/mcp", None));
        assert!(!lookup.is_for("linear", "https://mcp.linear.app/v2/mcp", None));
        assert!(!lookup.is_for("lin", "https://mcp.linear.app/mcp", None));
        assert!(!lookup.is_for("linear", "https://mcp.linear.app/mcp", Some("a")));
    }

    #[test]
    fn an_account_is_an_entry_of_its_own_and_no_account_keeps_the_old_key() {
        let url = "https://mcp.linear.app/mcp";
        let plain = CredentialKey::new("linear", url);
        // The key every store written before accounts has: name | 16 hex of SHA-256(url).
        assert_eq!(plain.storage_key().len(), "linear|".len() + 16);
        let digest = hex(&Sha256::digest(url.as_bytes()));
        assert_eq!(plain.storage_key(), format!("linear|{}", &digest[..16]));

        let alice = plain.clone().with_account(Some("alice@example.com".into()));
        let bob = plain.clone().with_account(Some("bob@example.com".into()));
        assert!(
            alice
                .storage_key()
                .starts_with(&format!("{}|", plain.storage_key()))
        );
        assert_eq!(alice.storage_key().len(), plain.storage_key().len() + 17);
        assert_ne!(alice.storage_key(), bob.storage_key());
        assert!(alice.same_server(&bob) && alice.same_server(&plain));
        assert!(!alice.same_server(&CredentialKey::new("linear", "https://other/mcp")));

        let mut creds = credentials("linear", url);
        assert!(plain.is_key_of(&creds) && !alice.is_key_of(&creds));
        creds.account = Some("alice@example.com".into());
        assert_eq!(creds.key(), alice);
        assert!(alice.is_key_of(&creds) && !plain.is_key_of(&creds) && !bob.is_key_of(&creds));
        assert_eq!(
            alice.to_string(),
            format!("linear ({url}) as alice@example.com")
        );

        // Stored without the new fields when there is no account: old readers see no change.
        let json = serde_json::to_value(credentials("linear", url)).unwrap();
        assert!(json.get("account").is_none() && json.get("selectedAt").is_none());
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("account").is_none(), "{json}");
    }

    #[test]
    fn account_labels_are_bounded_printable_text() {
        assert_eq!(check_account("alice@example.com"), Ok(()));
        assert_eq!(check_account("Zoë (work)"), Ok(()));
        assert_eq!(check_account(&"a".repeat(MAX_ACCOUNT_LEN)), Ok(()));
        assert_eq!(check_account(""), Err(AccountError::Empty));
        assert_eq!(
            check_account(&"a".repeat(MAX_ACCOUNT_LEN + 1)),
            Err(AccountError::TooLong(MAX_ACCOUNT_LEN + 1))
        );
        for bad in ["a\nb", "a\u{0}", " a", "a ", "tab\there", "\u{7f}"] {
            assert_eq!(
                check_account(bad),
                Err(AccountError::BadCharacter),
                "{bad:?}"
            );
        }
        assert!(
            AccountError::TooLong(300)
                .to_string()
                .contains("at most 256")
        );
    }

    #[test]
    fn json_is_camel_case_and_round_trips() {
        let creds = credentials("linear", "https://mcp.linear.app/mcp");
        let json = serde_json::to_value(&creds).unwrap();
        assert_eq!(json["accessToken"], "at-secret-linear");
        assert_eq!(json["expiresAt"], 1_900_000_000);
        assert_eq!(json["client"]["kind"], "dcr");
        assert_eq!(
            json["client"]["tokenEndpointAuthMethod"],
            "client_secret_basic"
        );
        assert_eq!(json["reauthenticationRequired"], false);
        let back: StoredCredentials = serde_json::from_value(json).unwrap();
        assert_eq!(back, creds);

        let reg = registration("https://auth.example.com", "http://127.0.0.1:1/callback/x");
        let json = serde_json::to_value(&reg).unwrap();
        assert_eq!(json["redirectUri"], "http://127.0.0.1:1/callback/x");
        assert_eq!(
            serde_json::from_value::<StoredRegistration>(json).unwrap(),
            reg
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let creds = credentials("linear", "https://mcp.linear.app/mcp");
        let text = format!("{creds:?} {:#?}", creds);
        assert!(!text.contains("at-secret"), "{text}");
        assert!(!text.contains("rt-secret"), "{text}");
        assert!(!text.contains("cs-secret"), "{text}");
        assert!(text.contains("access_token: <redacted>"), "{text}");
        assert!(text.contains("refresh_token: Some(<redacted>)"), "{text}");
        assert!(text.contains("client_secret: Some(<redacted>)"), "{text}");
        // Non-secret fields stay visible: they are what a person debugging needs.
        assert!(text.contains("client-123") && text.contains("https://auth.example.com"));

        let reg = registration("https://auth.example.com", "http://127.0.0.1:1/callback/x");
        let text = format!("{reg:?}");
        assert!(!text.contains("reg-secret"), "{text}");
        assert!(text.contains("client_secret: Some(<redacted>)"), "{text}");

        let mut public = creds.client.clone();
        public.client_secret = None;
        assert!(format!("{public:?}").contains("client_secret: None"));
    }
}
