//! The authorization server's in-memory state: clients, codes and tokens. The resource
//! server validates bearer tokens against the same tables (one process, shared state).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::checks::random_token;

/// How a client authenticates at the token and revocation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 client assertions signed with the client's registered key.
    PrivateKeyJwt,
    /// RFC 8705 2.1: a certificate of the kit's client CA with the registered subject DN.
    TlsClientAuth,
    /// RFC 8705 2.2: the registered certificate, whoever issued it.
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "tls_client_auth" => Some(Self::TlsClientAuth),
            "self_signed_tls_client_auth" => Some(Self::SelfSignedTlsClientAuth),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub client_id: String,
    pub secret: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    /// Fetched from a Client ID Metadata Document (refetched on every authorization).
    pub from_metadata_document: bool,
    /// `private_key_jwt`: the public key (uncompressed P-256 point) assertions must verify with.
    pub jwt_public_key: Option<Vec<u8>>,
    /// `tls_client_auth`: the subject DN its certificate must carry.
    pub tls_client_auth_subject_dn: Option<String>,
    /// `self_signed_tls_client_auth`: SHA-256 of the certificate it must present.
    pub tls_client_certificate_sha256: Option<[u8; 32]>,
}

#[derive(Clone, Debug)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
    pub used: bool,
    /// Tokens issued from this code share it, so a replayed code can revoke them.
    pub family: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessToken {
    pub scopes: Vec<String>,
    pub resource: String,
    pub expires_at: Instant,
    pub family: Option<u64>,
    pub revoked: bool,
    pub client_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshStatus {
    Active,
    /// Replaced by a newer token of the same family; presenting it again is a replay.
    Rotated,
    Revoked,
}

#[derive(Clone, Debug)]
pub(crate) struct RefreshToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub family: u64,
    pub status: RefreshStatus,
}

/// A consent page waiting for a decision (`auto_approve: false`).
#[derive(Clone, Debug)]
pub(crate) struct PendingApproval {
    pub id: String,
    pub grant: CodeGrant,
    pub state: Option<String>,
}

/// A successful token response before serialisation.
#[derive(Clone, Debug)]
pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub scopes: Vec<String>,
}

/// Why a grant was refused; mapped to `invalid_grant` with this description.
#[derive(Clone, Debug)]
pub(crate) struct GrantRefused(pub &'static str);

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub clients: HashMap<String, Client>,
    pub codes: HashMap<String, CodeGrant>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub revoked_families: HashSet<u64>,
    pub pending: Vec<PendingApproval>,
    /// `jti` of every assertion accepted: a second use is a replay.
    pub seen_jtis: HashSet<String>,
    /// Device authorizations (RFC 8628) by device code.
    pub devices: HashMap<String, crate::authorization_server::device::DeviceGrant>,
    /// The signed-in user each authorization (token family) was made for.
    pub family_users: HashMap<u64, String>,
    next_family: u64,
}

/// Token lifetime settings copied from the config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenPolicy {
    pub access_ttl: Duration,
    pub issue_refresh: bool,
    pub rotate_refresh: bool,
}

impl Store {
    pub fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    pub fn revoke_family(&mut self, family: u64) {
        self.revoked_families.insert(family);
        for rt in self.refresh.values_mut().filter(|rt| rt.family == family) {
            rt.status = RefreshStatus::Revoked;
        }
        for at in self
            .access
            .values_mut()
            .filter(|at| at.family == Some(family))
        {
            at.revoked = true;
        }
    }

    fn insert_access(
        &mut self,
        client_id: &str,
        scopes: &[String],
        resource: &str,
        ttl: Duration,
        family: Option<u64>,
    ) -> String {
        let token = random_token();
        self.access.insert(
            token.clone(),
            AccessToken {
                scopes: scopes.to_vec(),
                resource: resource.to_owned(),
                expires_at: Instant::now() + ttl,
                family,
                revoked: false,
                client_id: client_id.to_owned(),
            },
        );
        token
    }

    fn insert_refresh(
        &mut self,
        client_id: &str,
        scopes: &[String],
        resource: &str,
        family: u64,
    ) -> String {
        let token = random_token();
        self.refresh.insert(
            token.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                resource: resource.to_owned(),
                family,
                status: RefreshStatus::Active,
            },
        );
        token
    }

    pub fn issue_code(&mut self, grant: CodeGrant) -> String {
        let code = random_token();
        self.codes.insert(code.clone(), grant);
        code
    }

    /// Marks a code used whatever happens next (strict servers burn a code on any failed
    /// exchange). Returns the grant if it was still redeemable; a replay of a used code
    /// revokes what it produced (RFC 6749 4.1.2).
    pub fn take_code(&mut self, code: &str) -> Result<CodeGrant, GrantRefused> {
        let Some(grant) = self.codes.get_mut(code) else {
            return Err(GrantRefused("unknown authorization code"));
        };
        if grant.used {
            let family = grant.family;
            self.revoke_family(family);
            return Err(GrantRefused("authorization code already used"));
        }
        grant.used = true;
        if Instant::now() >= grant.expires_at {
            return Err(GrantRefused("authorization code expired"));
        }
        Ok(grant.clone())
    }

    pub fn burn_code(&mut self, code: &str) {
        if let Some(grant) = self.codes.get_mut(code) {
            grant.used = true;
        }
    }

    /// Tokens for a grant with no user (client credentials, JWT bearer): an access token
    /// only; the client runs the grant again when it expires.
    pub fn issue_machine(
        &mut self,
        client_id: &str,
        scopes: &[String],
        resource: &str,
        policy: TokenPolicy,
    ) -> IssuedTokens {
        let access_token = self.insert_access(client_id, scopes, resource, policy.access_ttl, None);
        IssuedTokens {
            access_token,
            expires_in: policy.access_ttl.as_secs(),
            refresh_token: None,
            scopes: scopes.to_vec(),
        }
    }

    pub fn issue_for_code(&mut self, grant: &CodeGrant, policy: TokenPolicy) -> IssuedTokens {
        let access_token = self.insert_access(
            &grant.client_id,
            &grant.scopes,
            &grant.resource,
            policy.access_ttl,
            Some(grant.family),
        );
        let refresh_token = policy.issue_refresh.then(|| {
            self.insert_refresh(
                &grant.client_id,
                &grant.scopes,
                &grant.resource,
                grant.family,
            )
        });
        IssuedTokens {
            access_token,
            expires_in: policy.access_ttl.as_secs(),
            refresh_token,
            scopes: grant.scopes.clone(),
        }
    }

    /// Looks up a refresh token for `client_id`; a replayed rotated token revokes its family.
    pub fn check_refresh(
        &mut self,
        token: &str,
        client_id: &str,
    ) -> Result<RefreshToken, GrantRefused> {
        let Some(rt) = self.refresh.get(token).cloned() else {
            return Err(GrantRefused("unknown refresh token"));
        };
        if rt.client_id != client_id {
            return Err(GrantRefused("refresh token was issued to another client"));
        }
        if self.revoked_families.contains(&rt.family) || rt.status == RefreshStatus::Revoked {
            return Err(GrantRefused("refresh token revoked"));
        }
        if rt.status == RefreshStatus::Rotated {
            self.revoke_family(rt.family);
            return Err(GrantRefused(
                "refresh token already used; every token of this grant is now revoked",
            ));
        }
        Ok(rt)
    }

    pub fn issue_for_refresh(
        &mut self,
        token: &str,
        rt: &RefreshToken,
        resource: &str,
        scopes: Vec<String>,
        policy: TokenPolicy,
    ) -> IssuedTokens {
        let access_token = self.insert_access(
            &rt.client_id,
            &scopes,
            resource,
            policy.access_ttl,
            Some(rt.family),
        );
        let refresh_token = if policy.rotate_refresh {
            if let Some(old) = self.refresh.get_mut(token) {
                old.status = RefreshStatus::Rotated;
            }
            Some(self.insert_refresh(&rt.client_id, &rt.scopes, &rt.resource, rt.family))
        } else {
            None
        };
        IssuedTokens {
            access_token,
            expires_in: policy.access_ttl.as_secs(),
            refresh_token,
            scopes,
        }
    }

    /// The user of the authorization an access token descends from.
    pub fn user_of_access(&self, token: &str) -> Option<String> {
        let family = self.access.get(token)?.family?;
        self.family_users.get(&family).cloned()
    }

    pub fn mint_access(&mut self, scopes: &[String], resource: &str, ttl: Duration) -> String {
        self.insert_access("testkit-minted", scopes, resource, ttl, None)
    }

    /// A usable access token for `resource`, or why not.
    pub fn validate_access(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<&AccessToken, &'static str> {
        let at = self.access.get(token).ok_or("unknown access token")?;
        if at.revoked
            || at
                .family
                .is_some_and(|f| self.revoked_families.contains(&f))
        {
            return Err("access token revoked");
        }
        if Instant::now() >= at.expires_at {
            return Err("access token expired");
        }
        if at.resource != resource {
            return Err("access token was issued for another resource");
        }
        Ok(at)
    }

    /// RFC 7009 revocation. `Ok(true)` when a token of `client_id` was revoked,
    /// `Ok(false)` for unknown tokens, `Err` when the token belongs to another client.
    pub fn revoke(&mut self, token: &str, client_id: &str) -> Result<bool, ()> {
        if let Some(rt) = self.refresh.get(token) {
            if rt.client_id != client_id {
                return Err(());
            }
            let family = rt.family;
            self.revoke_family(family);
            return Ok(true);
        }
        if let Some(at) = self.access.get_mut(token) {
            if at.client_id != client_id {
                return Err(());
            }
            at.revoked = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Server-side logout: nothing issued so far works any more.
    pub fn invalidate_all(&mut self) {
        for rt in self.refresh.values_mut() {
            rt.status = RefreshStatus::Revoked;
        }
        for at in self.access.values_mut() {
            at.revoked = true;
        }
    }

    pub fn expire_all_access(&mut self) {
        let now = Instant::now();
        for at in self.access.values_mut() {
            at.expires_at = now;
        }
    }
}
