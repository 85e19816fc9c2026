//! What to do when an MCP server refuses a request: a 401 gets the token refreshed now
//! (however valid it looks), a 403 `insufficient_scope` gets a step-up login for the scopes
//! held plus those asked for (rules 9 and 29), and a challenge that names another protected
//! resource metadata document than discovery used gets discovery again.
//!
//! Pure decisions first ([`read_challenge`], [`step_up_scopes`], [`resource_metadata_moved`],
//! [`ChallengeState`]), then the thin async shell on [`OAuthService`] that frontends
//! (`mcpServer/oauth/challenge`) and `connect` share.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use mcp_app_server_protocol::McpAuthStatus;
use reqwest::StatusCode;
use url::Url;

use super::error::LoginError;
use super::login::{LoginBegun, LoginOptions, LoginStarted};
use super::resource_proof::{ProofError, ResourceProof};
use super::service::{OAuthEvent, OAuthService};
use super::target::ServerTarget;
use super::vending::can_renew;
use crate::credentials::{CredentialKey, StoredCredentials, unix_now};
use crate::oauth::discovery::issuers_match;
use crate::oauth::discovery::{
    Discovery, DiscoveryCache, DiscoveryError, Probe, discover_after_probe,
};
use crate::oauth::dpop::USE_DPOP_NONCE;
use crate::oauth::http::header_map;
use crate::oauth::scopes::union_scopes;
use crate::oauth::www_authenticate::{BearerChallenge, bearer_challenge_from_values};

/// Step-up logins per server and scope set (rule 9: "at most 3 attempts").
pub const MAX_STEP_UPS: u32 = 3;
/// Scope sets remembered per server; the oldest is forgotten first.
const MAX_SCOPE_SETS_PER_SERVER: usize = 32;
/// Servers remembered at once; beyond that the state starts over (it only ever saves work).
const MAX_SERVERS: usize = 1024;

/// A refusal from an MCP server, read from its status and `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, or the token sent is no longer good.
    Unauthorized(BearerChallenge),
    /// 403 `insufficient_scope`: the token lacks scopes the operation needs.
    InsufficientScope(BearerChallenge),
}

impl Refusal {
    pub fn challenge(&self) -> &BearerChallenge {
        match self {
            Refusal::Unauthorized(c) | Refusal::InsufficientScope(c) => c,
        }
    }

    fn probe(&self) -> Probe {
        let status = match self {
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::InsufficientScope(_) => StatusCode::FORBIDDEN,
        };
        Probe {
            status,
            challenge: Some(self.challenge().clone()),
        }
    }
}

/// Why a status and header are not a refusal the daemon can act on. `field` names the
/// request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeInputError {
    #[error(
        "HTTP {0} is not an authorization refusal; only 401 (token refused) and 403 (insufficient scope) are"
    )]
    Status(u16),
    #[error(
        "no Bearer challenge in the header ({0}); pass the MCP server's WWW-Authenticate header as received"
    )]
    NoBearer(&'static str),
    #[error(
        "a 403 asks for more scopes only with error=\"insufficient_scope\"; this one says {0}, which no login can fix"
    )]
    NotInsufficientScope(String),
    #[error("resource_metadata {value:?} is not a URL: {reason}")]
    BadResourceMetadata { value: String, reason: String },
    /// A `use_dpop_nonce` refusal without what a new proof needs; names the missing field.
    #[error(
        "a use_dpop_nonce challenge needs `dpopNonce` (the DPoP-Nonce header), `method` and `url` of the refused request"
    )]
    IncompleteNonceRequest(&'static str),
}

impl ChallengeInputError {
    /// The request field the problem is in.
    pub fn field(&self) -> &'static str {
        match self {
            ChallengeInputError::Status(_) => "status",
            ChallengeInputError::IncompleteNonceRequest(field) => field,
            _ => "wwwAuthenticate",
        }
    }
}

/// Reads a refusal from the status and the raw header a frontend received. Pure.
pub fn read_challenge(status: u16, www_authenticate: &str) -> Result<Refusal, ChallengeInputError> {
    if status != 401 && status != 403 {
        return Err(ChallengeInputError::Status(status));
    }
    let challenge = bearer_challenge_from_values([www_authenticate]).ok_or(
        ChallengeInputError::NoBearer(if www_authenticate.trim().is_empty() {
            "it is empty"
        } else {
            "it names other schemes only, or cannot be read"
        }),
    )?;
    if status == 401 {
        return Ok(Refusal::Unauthorized(challenge));
    }
    match challenge.error.as_deref() {
        Some("insufficient_scope") => Ok(Refusal::InsufficientScope(challenge)),
        Some(other) => Err(ChallengeInputError::NotInsufficientScope(format!(
            "error={other:?}"
        ))),
        None => Err(ChallengeInputError::NotInsufficientScope("no error".into())),
    }
}

/// The `resource_metadata` of a challenge, resolved against the server URL (discovery
/// resolves it the same way). Pure.
pub fn resource_metadata_url(
    server_url: &Url,
    challenge: &BearerChallenge,
) -> Result<Option<Url>, ChallengeInputError> {
    let Some(value) = challenge.resource_metadata.as_deref() else {
        return Ok(None);
    };
    let url = server_url
        .join(value)
        .map_err(|e| ChallengeInputError::BadResourceMetadata {
            value: value.to_string(),
            reason: e.to_string(),
        })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ChallengeInputError::BadResourceMetadata {
            value: value.to_string(),
            reason: "not an http(s) URL".into(),
        });
    }
    Ok(Some(url))
}

/// Whether a challenge's `resource_metadata` means discovery must run again: it names a
/// document and the daemon does not know that discovery used that one (`known` is `None`
/// when no discovery for this server ran in this process, `Some(None)` when the last one
/// found no document). Pure.
pub fn resource_metadata_moved(known: Option<&Option<Url>>, challenged: Option<&Url>) -> bool {
    match (challenged, known) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(url), Some(used)) => used.as_ref() != Some(url),
    }
}

/// Rule 29: the scopes requested before (or granted, as stored) plus those the challenge
/// asks for, in order, without duplicates. Pure.
pub fn step_up_scopes(previous: &[String], challenge: &BearerChallenge) -> Vec<String> {
    union_scopes(previous, &challenge.scopes())
}

/// What the daemon remembers about refusals, per server: the protected resource metadata
/// URL the last discovery used, and how often each scope set was stepped up to. Bounded.
#[derive(Debug, Default)]
pub struct ChallengeState {
    servers: Mutex<HashMap<String, ServerChallenges>>,
}

#[derive(Debug, Default)]
struct ServerChallenges {
    /// `None`: no discovery ran in this process; `Some(None)`: it found no document.
    discovered_prm: Option<Option<Url>>,
    /// Sorted scope sets and the step-ups started for each, oldest first.
    step_ups: VecDeque<(Vec<String>, u32)>,
}

impl ChallengeState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServerChallenges>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_server<T>(&self, key: &CredentialKey, f: impl FnOnce(&mut ServerChallenges) -> T) -> T {
        let mut servers = self.lock();
        let slot = key.storage_key();
        if !servers.contains_key(&slot) && servers.len() >= MAX_SERVERS {
            servers.clear();
        }
        f(servers.entry(slot).or_default())
    }

    /// Discovery for this server used `prm_url` (none: it found no document).
    pub fn discovered(&self, key: &CredentialKey, prm_url: Option<&Url>) {
        self.with_server(key, |s| s.discovered_prm = Some(prm_url.cloned()));
    }

    fn known_prm(&self, key: &CredentialKey) -> Option<Option<Url>> {
        self.lock()
            .get(&key.storage_key())
            .and_then(|s| s.discovered_prm.clone())
    }

    /// Counts a step-up for `scopes`; refused (with the count so far) once
    /// [`MAX_STEP_UPS`] were started for the same set.
    pub fn begin_step_up(&self, key: &CredentialKey, scopes: &[String]) -> Result<(), u32> {
        let set = scope_set(scopes);
        self.with_server(key, |s| {
            if let Some(entry) = s.step_ups.iter_mut().find(|(k, _)| *k == set) {
                if entry.1 >= MAX_STEP_UPS {
                    return Err(entry.1);
                }
                entry.1 += 1;
                return Ok(());
            }
            if s.step_ups.len() >= MAX_SCOPE_SETS_PER_SERVER {
                s.step_ups.pop_front();
            }
            s.step_ups.push_back((set, 1));
            Ok(())
        })
    }

    /// Takes back a counted step-up whose login did not start.
    pub fn undo_step_up(&self, key: &CredentialKey, scopes: &[String]) {
        let set = scope_set(scopes);
        self.with_server(key, |s| {
            if let Some(entry) = s.step_ups.iter_mut().find(|(k, _)| *k == set) {
                entry.1 = entry.1.saturating_sub(1);
            }
        });
    }

    /// A login the user asked for starts the counts over.
    pub fn forget_step_ups(&self, key: &CredentialKey) {
        if let Some(s) = self.lock().get_mut(&key.storage_key()) {
            s.step_ups.clear();
        }
    }
}

fn scope_set(scopes: &[String]) -> Vec<String> {
    let mut set = scopes.to_vec();
    set.sort();
    set.dedup();
    set
}

/// What the caller should do after a refusal. `Debug` shows neither a token nor the
/// authorization URL (it carries the login's `state`).
#[derive(Clone)]
pub enum ChallengeOutcome {
    /// A refreshed token: retry with it.
    Token(Box<StoredCredentials>),
    /// A step-up login started; it ends with `LoginCompleted` like any login.
    Login {
        started: LoginStarted,
        scopes: Vec<String>,
    },
    /// No token without the user: the stored credentials are flagged and a new login is
    /// needed.
    ReauthenticationRequired { reason: String },
    /// A `use_dpop_nonce` refusal (RFC 9449 9): no refused token but a request for a proof
    /// with the server's nonce; this proof answers it.
    DpopProof(ResourceProof),
}

/// A refusal as a frontend received it, with the request that was refused (needed only to
/// answer a `use_dpop_nonce` challenge).
#[derive(Debug, Clone, Copy)]
pub struct ChallengeRequest<'a> {
    pub status: u16,
    pub www_authenticate: &'a str,
    /// The `DPoP-Nonce` header of the refusal.
    pub dpop_nonce: Option<&'a str>,
    pub method: Option<&'a str>,
    pub url: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// A [`ChallengeRequest`] the daemon can act on.
#[derive(Debug)]
pub enum CheckedChallenge<'a> {
    /// `use_dpop_nonce` (RFC 9449 9): not a refused token but a request for a proof with
    /// the server's nonce.
    NonceRequest {
        nonce: &'a str,
        method: &'a str,
        url: &'a str,
        body: Option<&'a str>,
    },
    /// A refused token or missing scopes, with the nonce the server sent, if any.
    Refusal {
        refusal: Refusal,
        dpop_nonce: Option<&'a str>,
    },
}

impl<'a> ChallengeRequest<'a> {
    /// Reads the refusal and checks that a `use_dpop_nonce` one comes with what a new proof
    /// needs. Pure: bad input is refused before anything is looked up or changed.
    pub fn check(self) -> Result<CheckedChallenge<'a>, ChallengeInputError> {
        let refusal = read_challenge(self.status, self.www_authenticate)?;
        if let Refusal::Unauthorized(c) = &refusal
            && c.error.as_deref() == Some(USE_DPOP_NONCE)
        {
            let missing = ChallengeInputError::IncompleteNonceRequest;
            return Ok(CheckedChallenge::NonceRequest {
                nonce: self.dpop_nonce.ok_or(missing("dpopNonce"))?,
                method: self.method.ok_or(missing("method"))?,
                url: self.url.ok_or(missing("url"))?,
                body: self.body,
            });
        }
        Ok(CheckedChallenge::Refusal {
            refusal,
            dpop_nonce: self.dpop_nonce,
        })
    }
}

/// Why a checked challenge got no answer: the refused request cannot get a proof (a bad
/// param, or no DPoP-bound token), or acting on the refusal failed.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failed(Arc<LoginError>),
}

impl std::fmt::Debug for ChallengeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeOutcome::Token(creds) => f.debug_tuple("Token").field(creds).finish(),
            ChallengeOutcome::Login { started, scopes } => f
                .debug_struct("Login")
                .field("redirect_uri", &started.redirect_uri)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
            ChallengeOutcome::ReauthenticationRequired { reason } => f
                .debug_struct("ReauthenticationRequired")
                .field("reason", reason)
                .finish(),
            ChallengeOutcome::DpopProof(proof) => f.debug_tuple("DpopProof").field(proof).finish(),
        }
    }
}

impl OAuthService {
    /// Acts on a refusal of `target`'s MCP server; see the module docs. A step-up login
    /// uses `options` with its scopes replaced by the union.
    /// `mcpServer/oauth/challenge`, once [`ChallengeRequest::check`] read it: answers a
    /// `use_dpop_nonce` refusal with a new proof, keeps any other nonce the server sent for
    /// later proofs, and acts on the refusal as [`OAuthService::challenge`] does.
    pub async fn answer_challenge(
        self: &Arc<Self>,
        target: &Arc<ServerTarget>,
        challenge: CheckedChallenge<'_>,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        match challenge {
            CheckedChallenge::NonceRequest {
                nonce,
                method,
                url,
                body,
            } => {
                let body = body.map(str::as_bytes);
                let proof = self
                    .proof_for(target, method, url, Some(nonce), body)
                    .await?;
                Ok(ChallengeOutcome::DpopProof(proof))
            }
            CheckedChallenge::Refusal {
                refusal,
                dpop_nonce,
            } => {
                if let Some(nonce) = dpop_nonce {
                    self.remember_resource_nonce(target, nonce);
                }
                self.challenge(target, refusal, LoginOptions::default())
                    .await
                    .map_err(ChallengeError::Failed)
            }
        }
    }

    pub async fn challenge(
        self: &Arc<Self>,
        target: &ServerTarget,
        refusal: Refusal,
        options: LoginOptions,
    ) -> Result<ChallengeOutcome, Arc<LoginError>> {
        let key = target.key();
        let prm_url = resource_metadata_url(&target.url, refusal.challenge())
            .map_err(|e| Arc::new(LoginError::InvalidChallenge(e)))?;
        let stored = self.load(&key).await?;
        let known = self.challenges.known_prm(&key);
        let moved = if resource_metadata_moved(known.as_ref(), prm_url.as_ref()) {
            match self.rediscover(target, &refusal, stored.as_ref()).await {
                Ok(discovery) => Some(discovery),
                // A refresh only ever goes to the stored token endpoint, so a 401 still gets
                // one; a step-up needs discovery and fails with it.
                Err(e) if matches!(refusal, Refusal::Unauthorized(_)) => {
                    tracing::warn!(server = %target.name, error = %e, "discovery from the challenge failed; refreshing with the stored credentials");
                    None
                }
                Err(e) => return Err(Arc::new(e)),
            }
        } else {
            None
        };
        match refusal {
            Refusal::Unauthorized(_) => self.on_unauthorized(target, stored, moved).await,
            Refusal::InsufficientScope(challenge) => {
                self.step_up(target, stored, challenge, options).await
            }
        }
    }

    /// Discovery from the challenge, without the discovery cache: the server named another
    /// protected resource metadata document, so what was cached may be out of date.
    async fn rediscover(
        &self,
        target: &ServerTarget,
        refusal: &Refusal,
        stored: Option<&StoredCredentials>,
    ) -> Result<Discovery, LoginError> {
        let headers = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| LoginError::Discovery(DiscoveryError::from(e)))?;
        // What the cache knows about this server is what was just refused: discover again
        // (the result replaces it, so later logins use it too).
        let key = DiscoveryCache::key(&target.url, &headers, target.resource_override.as_deref());
        self.cache.invalidate(&key).await;
        let discovery = discover_after_probe(
            &self.http,
            &target.url,
            &headers,
            target.resource_override.as_deref(),
            &self.cache,
            refusal.probe(),
        )
        .await?;
        tracing::info!(
            server = %target.name,
            issuer = %discovery.issuer,
            "the server named other protected resource metadata; discovery ran again"
        );
        if let Some(creds) = stored
            && creds.issuer != discovery.issuer
        {
            self.cache.invalidate_issuer(&creds.issuer).await;
        }
        self.challenges
            .discovered(&target.key(), discovery.protected_resource_url.as_ref());
        Ok(discovery)
    }

    /// A 401: the token the daemon handed out was refused, whatever its expiry says.
    async fn on_unauthorized(
        self: &Arc<Self>,
        target: &ServerTarget,
        stored: Option<StoredCredentials>,
        moved: Option<Discovery>,
    ) -> Result<ChallengeOutcome, Arc<LoginError>> {
        let name = &target.name;
        let creds = stored.ok_or_else(|| LoginError::NotLoggedIn(name.clone()))?;
        if creds.reauthentication_required {
            return Ok(ChallengeOutcome::ReauthenticationRequired {
                reason: format!("`{name}` already needs a new login"),
            });
        }
        if let Some(discovery) = moved
            && !issuers_match(&creds.issuer, &discovery.metadata.issuer)
        {
            // Rule 27: these tokens belong to the old authorization server; a refresh there
            // cannot give a token this server takes.
            let reason = format!(
                "the server now names the authorization server {} instead of {}",
                discovery.metadata.issuer, creds.issuer
            );
            return Ok(self.flag_reauthentication(target, creds, reason).await?);
        }
        // A configured grant that needs no browser, or an enterprise server, gets a new
        // token itself.
        if !can_renew(target, &creds) && target.enterprise.is_none() {
            let reason =
                "the server refused the access token and no refresh token was issued".to_string();
            return Ok(self.flag_reauthentication(target, creds, reason).await?);
        }
        match self.refresh_now(target).await {
            Ok(fresh) => Ok(ChallengeOutcome::Token(Box::new(fresh))),
            // The refresh was refused: refresh.rs flagged the credentials and announced it.
            Err(e) => match e.as_ref() {
                LoginError::ReauthenticationRequired { reason, .. } => {
                    Ok(ChallengeOutcome::ReauthenticationRequired {
                        reason: reason.clone(),
                    })
                }
                _ => Err(e),
            },
        }
    }

    /// Marks the credentials as needing a new login (unless they changed meanwhile: a
    /// login or refresh that finished stands) and announces it.
    async fn flag_reauthentication(
        &self,
        target: &ServerTarget,
        seen: StoredCredentials,
        reason: String,
    ) -> Result<ChallengeOutcome, LoginError> {
        let mut flagged = seen.clone();
        flagged.reauthentication_required = true;
        flagged.updated_at = unix_now();
        let stored = self.save_unless_replaced(seen, flagged.clone()).await?;
        match stored {
            Some(s) if s == flagged => {
                tracing::warn!(server = %target.name, %reason, "a new login is needed");
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: target.name.clone(),
                    status: McpAuthStatus::ReauthenticationRequired,
                });
                Ok(ChallengeOutcome::ReauthenticationRequired { reason })
            }
            Some(newer) if !newer.reauthentication_required => {
                Ok(ChallengeOutcome::Token(Box::new(newer)))
            }
            Some(_) => Ok(ChallengeOutcome::ReauthenticationRequired { reason }),
            None => Err(LoginError::NotLoggedIn(target.name.clone())),
        }
    }

    /// A 403 `insufficient_scope`: a login for the union of the scopes held before and
    /// those asked for, at most [`MAX_STEP_UPS`] times per scope set.
    async fn step_up(
        self: &Arc<Self>,
        target: &ServerTarget,
        stored: Option<StoredCredentials>,
        challenge: BearerChallenge,
        options: LoginOptions,
    ) -> Result<ChallengeOutcome, Arc<LoginError>> {
        let key = target.key();
        let previous = match &stored {
            Some(creds) => creds.scopes.clone(),
            None => target.configured_scopes.clone().unwrap_or_default(),
        };
        let scopes = step_up_scopes(&previous, &challenge);
        if let Err(attempts) = self.challenges.begin_step_up(&key, &scopes) {
            return Err(Arc::new(LoginError::StepUpLimitReached {
                name: target.name.clone(),
                scopes: scopes.join(" "),
                attempts,
            }));
        }
        let options = LoginOptions {
            scopes: (!scopes.is_empty()).then(|| scopes.clone()),
            ..options
        };
        let refusal = Refusal::InsufficientScope(challenge);
        match self
            .start_login_after(target.clone(), options, Some(refusal.probe()))
            .await
        {
            Ok(LoginBegun::Browser(started) | LoginBegun::IdpSignIn(started)) => {
                Ok(ChallengeOutcome::Login { started, scopes })
            }
            // A grant that needs no browser already stored tokens for the wider scopes.
            Ok(LoginBegun::Obtained(_)) => match self.load(&key).await {
                Ok(Some(creds)) => Ok(ChallengeOutcome::Token(Box::new(creds))),
                Ok(None) => Err(Arc::new(LoginError::NotLoggedIn(target.name.clone()))),
                Err(e) => Err(Arc::new(e)),
            },
            Err(e) => {
                self.challenges.undo_step_up(&key, &scopes);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn key() -> CredentialKey {
        CredentialKey::new("a", "https://a.example/mcp")
    }

    #[test]
    fn refusals_are_read_from_status_and_header() {
        let r = read_challenge(
            401,
            r#"Bearer error="invalid_token", resource_metadata="https://a.example/prm""#,
        )
        .unwrap();
        assert!(
            matches!(&r, Refusal::Unauthorized(c) if c.error.as_deref() == Some("invalid_token"))
        );
        // Any 401 with a Bearer challenge counts, with or without an error code.
        assert!(matches!(
            read_challenge(401, "Bearer"),
            Ok(Refusal::Unauthorized(_))
        ));
        assert!(matches!(
            read_challenge(401, r#"Basic realm="x", bearer realm="y""#),
            Ok(Refusal::Unauthorized(_))
        ));
        let r = read_challenge(403, r#"Bearer error="insufficient_scope", scope="a b""#).unwrap();
        assert_eq!(r.challenge().scopes(), v(&["a", "b"]));
        assert!(matches!(r, Refusal::InsufficientScope(_)));
    }

    #[test]
    fn bad_input_names_the_field() {
        for status in [200, 400, 404, 500, 0] {
            let e = read_challenge(status, "Bearer").unwrap_err();
            assert_eq!(e, ChallengeInputError::Status(status));
            assert_eq!(e.field(), "status");
        }
        for header in ["", "   ", r#"Basic realm="x""#, "\"unterminated", ",,,"] {
            let e = read_challenge(401, header).unwrap_err();
            assert!(
                matches!(e, ChallengeInputError::NoBearer(_)),
                "{header:?}: {e}"
            );
            assert_eq!(e.field(), "wwwAuthenticate");
        }
        let e = read_challenge(403, r#"Bearer error="invalid_token""#).unwrap_err();
        assert!(e.to_string().contains("invalid_token"), "{e}");
        assert!(matches!(
            read_challenge(403, "Bearer scope=\"a\""),
            Err(ChallengeInputError::NotInsufficientScope(_))
        ));
    }

    #[test]
    fn resource_metadata_resolves_against_the_server_url() {
        let server = Url::parse("https://a.example/mcp").unwrap();
        let challenge = |rm: &str| BearerChallenge {
            resource_metadata: Some(rm.to_string()),
            ..BearerChallenge::default()
        };
        assert_eq!(
            resource_metadata_url(
                &server,
                &challenge("/.well-known/oauth-protected-resource/mcp")
            )
            .unwrap()
            .unwrap()
            .as_str(),
            "https://a.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            resource_metadata_url(&server, &BearerChallenge::default()).unwrap(),
            None
        );
        for bad in ["http://[::1", "file:///etc/passwd", "javascript:alert(1)"] {
            assert!(
                matches!(
                    resource_metadata_url(&server, &challenge(bad)),
                    Err(ChallengeInputError::BadResourceMetadata { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn discovery_runs_again_only_for_another_document() {
        let a = Url::parse("https://a.example/.well-known/oauth-protected-resource/mcp").unwrap();
        let b = Url::parse("https://b.example/.well-known/oauth-protected-resource").unwrap();
        // No hint: nothing to compare.
        assert!(!resource_metadata_moved(None, None));
        assert!(!resource_metadata_moved(Some(&Some(a.clone())), None));
        // The same document: no discovery.
        assert!(!resource_metadata_moved(Some(&Some(a.clone())), Some(&a)));
        // Another one, one where none was found, or nothing known: discovery.
        assert!(resource_metadata_moved(Some(&Some(a.clone())), Some(&b)));
        assert!(resource_metadata_moved(Some(&None), Some(&a)));
        assert!(resource_metadata_moved(None, Some(&a)));
    }

    #[test]
    fn step_up_asks_for_the_union() {
        let challenge = BearerChallenge {
            scope: Some("mcp:write mcp:read".into()),
            error: Some("insufficient_scope".into()),
            ..BearerChallenge::default()
        };
        assert_eq!(
            step_up_scopes(&v(&["mcp:read", "offline_access"]), &challenge),
            v(&["mcp:read", "offline_access", "mcp:write"])
        );
        assert_eq!(
            step_up_scopes(&[], &challenge),
            v(&["mcp:write", "mcp:read"])
        );
        assert_eq!(
            step_up_scopes(&v(&["x"]), &BearerChallenge::default()),
            v(&["x"])
        );
    }

    #[test]
    fn step_ups_are_capped_per_scope_set() {
        let state = ChallengeState::default();
        let set = v(&["b", "a"]);
        for _ in 0..MAX_STEP_UPS {
            assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
        }
        // The same set in another order is the same set.
        assert_eq!(
            state.begin_step_up(&key(), &v(&["a", "b"])),
            Err(MAX_STEP_UPS)
        );
        // Another set, or another server, has its own count.
        assert_eq!(state.begin_step_up(&key(), &v(&["a", "b", "c"])), Ok(()));
        let other = CredentialKey::new("a", "https://other.example/mcp");
        assert_eq!(state.begin_step_up(&other, &set), Ok(()));
        // A login that did not start is not counted.
        state.undo_step_up(&key(), &set);
        assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
        assert_eq!(state.begin_step_up(&key(), &set), Err(MAX_STEP_UPS));
        // A login the user asked for starts over.
        state.forget_step_ups(&key());
        assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
    }

    #[test]
    fn the_state_stays_bounded() {
        let state = ChallengeState::default();
        for i in 0..(MAX_SCOPE_SETS_PER_SERVER + 10) {
            state
                .begin_step_up(&key(), &v(&[&format!("s{i}")]))
                .unwrap();
        }
        let servers = state.lock();
        assert_eq!(
            servers[&key().storage_key()].step_ups.len(),
            MAX_SCOPE_SETS_PER_SERVER
        );
        drop(servers);
        for i in 0..(MAX_SERVERS + 5) {
            let k = CredentialKey::new(format!("s{i}"), "https://a.example/mcp");
            state.discovered(&k, None);
        }
        assert!(state.lock().len() <= MAX_SERVERS);
    }

    #[test]
    fn debug_shows_no_state_and_no_token() {
        let started = LoginStarted {
            authorization_url: Url::parse(
                "https://as.example/authorize?state=state-secret&code_challenge=cc-secret",
            )
            .unwrap(),
            redirect_uri: "http://127.0.0.1:1/callback/x".into(),
        };
        let text = format!(
            "{:?}",
            ChallengeOutcome::Login {
                started,
                scopes: v(&["a"])
            }
        );
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("callback/x"), "{text}");
    }

    #[test]
    fn the_discovered_document_is_remembered() {
        let state = ChallengeState::default();
        assert_eq!(state.known_prm(&key()), None);
        state.discovered(&key(), None);
        assert_eq!(state.known_prm(&key()), Some(None));
        let a = Url::parse("https://a.example/prm").unwrap();
        state.discovered(&key(), Some(&a));
        assert_eq!(state.known_prm(&key()), Some(Some(a)));
    }
}
