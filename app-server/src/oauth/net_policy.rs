//! Rule 35: where the daemon may send requests on behalf of an MCP server.
//!
//! Every destination address falls in one [`AddressClass`]. The class of the MCP server's
//! own address decides the [`NetPolicy`] for everything its metadata names (protected
//! resource metadata, authorization server metadata, registration, token and revocation
//! endpoints): a server on the internet cannot point the daemon at the user's intranet, at
//! services on the user's machine or at a cloud metadata service. The policy is applied to
//! the address actually connected to, by [`PolicyResolver`] (names) and by
//! [`super::http::HttpClient`] (IP literals, and names a proxy resolves).

#[cfg(test)]
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Anything not listed below: reachable on the internet.
    Public,
    /// RFC 1918, unique local (fc00::/7), carrier-grade NAT (100.64.0.0/10), site-local.
    Private,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16 (cloud metadata services live here), fe80::/10.
    LinkLocal,
    /// Unspecified, "this network", multicast, broadcast, reserved, documentation,
    /// benchmarking and protocol-assignment ranges.
    SpecialUse,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Private => "private-network",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SpecialUse => "special-use",
        }
    }

    /// How far from the internet: the stricter of two classes has the higher rank.
    fn rank(self) -> u8 {
        match self {
            AddressClass::Public => 0,
            AddressClass::Private => 1,
            AddressClass::Loopback => 2,
            AddressClass::LinkLocal | AddressClass::SpecialUse => 3,
        }
    }

    fn stricter(self, other: AddressClass) -> AddressClass {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The class of `ip`. IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64,
/// 6to4, Teredo) are judged by the IPv4 address they lead to.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        // "This network" (0.0.0.0 connects to the local host on common systems).
        (0, _, _) => SpecialUse,
        (127, _, _) => Loopback,
        (10, _, _) | (192, 168, _) => Private,
        (172, 16..=31, _) => Private,
        // Carrier-grade NAT shared space (RFC 6598).
        (100, 64..=127, _) => Private,
        (169, 254, _) => LinkLocal,
        // IETF protocol assignments (RFC 6890), documentation (RFC 5737), 6to4 relay
        // anycast (RFC 7526), benchmarking (RFC 2544).
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (192, 88, 99) => SpecialUse,
        (198, 18..=19, _) => SpecialUse,
        // Multicast, then reserved 240/4 with the broadcast address.
        (224..=239, _, _) | (240..=255, _, _) => SpecialUse,
        _ => Public,
    }
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let s = ip.segments();
    if ip.is_unspecified() {
        return SpecialUse;
    }
    if ip.is_loopback() {
        return Loopback;
    }
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated).
        [0, 0, 0, 0, 0, 0xffff, h, l] | [0, 0, 0, 0, 0, 0, h, l] => {
            return classify_v4(embedded_v4(h, l));
        }
        // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
        [0, 0, 0, 0, 0xffff, 0, h, l] => return classify_v4(embedded_v4(h, l)),
        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, h, l] => return classify_v4(embedded_v4(h, l)),
        // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): a translator of the local network.
        [0x64, 0xff9b, 1, _, _, _, h, l] => {
            return Private.stricter(classify_v4(embedded_v4(h, l)));
        }
        // 6to4 2002::/16 (RFC 3056): the IPv4 address follows the prefix.
        [0x2002, h, l, _, _, _, _, _] => return classify_v4(embedded_v4(h, l)),
        // Teredo 2001::/32 (RFC 4380): server address, then the client's, inverted.
        [0x2001, 0, sh, sl, _, _, ch, cl] => {
            let server = classify_v4(embedded_v4(sh, sl));
            let client = classify_v4(embedded_v4(!ch, !cl));
            return server.stricter(client);
        }
        _ => {}
    }
    let first = s[0];
    if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7, deprecated site-local fec0::/10.
        return Private;
    }
    if first & 0xffc0 == 0xfe80 {
        return LinkLocal;
    }
    let special =
        // Multicast ff00::/8.
        first & 0xff00 == 0xff00
        // Discard-only 100::/64 (RFC 6666).
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // Documentation 2001:db8::/32 and 3fff::/20 (RFC 9637).
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || first & 0xfff0 == 0x3ff0
        // Benchmarking 2001:2::/48, ORCHID 2001:10::/28 and 2001:20::/28.
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
        || (s[0] == 0x2001 && (s[1] & 0xfff0 == 0x10 || s[1] & 0xfff0 == 0x20))
        // SRv6 segment identifiers 5f00::/16 (RFC 9602).
        || first == 0x5f00
        // The rest of ::/8 (reserved) not matched above.
        || first == 0;
    if special { SpecialUse } else { Public }
}

/// What the daemon may contact on a server's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetPolicy {
    /// An MCP server on the internet: public destinations only.
    PublicOnly,
    /// An MCP server on a private network: public and private destinations.
    Intranet,
    /// An MCP server on this machine: public, private and loopback destinations.
    Local,
    /// What the user chose directly (the MCP server URL itself), or
    /// `allow_link_local_and_special_use = true`: every destination.
    Unrestricted,
}

/// What a server's `[mcp_servers.NAME]` table lets its metadata reach beyond the policy its
/// own address gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetOptIns {
    /// `allow_private_network`: private-network destinations (an intranet authorization
    /// server). Link-local and special-use destinations stay refused.
    pub private_network: bool,
    /// `allow_link_local_and_special_use`: every destination, the cloud metadata address
    /// 169.254.169.254 included.
    pub link_local_and_special_use: bool,
}

impl NetPolicy {
    pub(crate) fn index(self) -> usize {
        match self {
            NetPolicy::PublicOnly => 0,
            NetPolicy::Intranet => 1,
            NetPolicy::Local => 2,
            NetPolicy::Unrestricted => 3,
        }
    }

    pub fn allows(self, class: AddressClass) -> bool {
        use AddressClass::*;
        match self {
            NetPolicy::PublicOnly => class == Public,
            NetPolicy::Intranet => matches!(class, Public | Private),
            NetPolicy::Local => matches!(class, Public | Private | Loopback),
            NetPolicy::Unrestricted => true,
        }
    }

    pub fn allows_ip(self, ip: IpAddr) -> bool {
        self.allows(classify(ip))
    }

    /// The policy for an MCP server whose URL resolves to `addresses`: decided by the
    /// address farthest from this machine (a server reachable on the internet is treated as
    /// an internet server). Link-local and special-use servers, and servers whose address
    /// is unknown, get the public-only policy. `allow_private_network` lifts only the
    /// private-network rule (at least [`NetPolicy::Intranet`]); only
    /// `allow_link_local_and_special_use` gives [`NetPolicy::Unrestricted`].
    pub fn for_server(addresses: &[IpAddr], opt_ins: NetOptIns) -> NetPolicy {
        if opt_ins.link_local_and_special_use {
            return NetPolicy::Unrestricted;
        }
        let mut policy = None::<NetPolicy>;
        for ip in addresses {
            let own = match classify(*ip) {
                AddressClass::Loopback => NetPolicy::Local,
                AddressClass::Private => NetPolicy::Intranet,
                _ => NetPolicy::PublicOnly,
            };
            policy = Some(match policy {
                Some(p) if p.index() <= own.index() => p,
                _ => own,
            });
        }
        let policy = policy.unwrap_or(NetPolicy::PublicOnly);
        if opt_ins.private_network && policy == NetPolicy::PublicOnly {
            return NetPolicy::Intranet;
        }
        policy
    }

    /// The rule, as error messages state it.
    pub fn rule(self) -> &'static str {
        match self {
            NetPolicy::PublicOnly => {
                "an MCP server on a public address may only send the daemon to public addresses"
            }
            NetPolicy::Intranet => {
                "an MCP server on a private network may only send the daemon to public and private-network addresses"
            }
            NetPolicy::Local => {
                "an MCP server on this machine may only send the daemon to public, private-network and loopback addresses"
            }
            NetPolicy::Unrestricted => "every destination is allowed",
        }
    }
}

/// A destination refused by the policy. Travels inside reqwest's error chain when the
/// refusal happens at name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub host: String,
    pub address: IpAddr,
    pub class: AddressClass,
    pub policy: NetPolicy,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.trim_matches(['[', ']']) == self.address.to_string() {
            write!(f, "{} is a {} address", self.address, self.class)?;
        } else {
            write!(
                f,
                "{} resolves to {}, a {} address",
                self.host, self.address, self.class
            )?;
        }
        let key = match self.class {
            AddressClass::Private => "allow_private_network",
            _ => "allow_link_local_and_special_use",
        };
        write!(
            f,
            ", and {}; set `{key} = true` in the server's [mcp_servers.NAME] table if this is intended",
            self.policy.rule()
        )
    }
}

impl std::error::Error for Refused {}

/// Checks every address of `host`: the first one the policy refuses is the error.
pub fn check_all(host: &str, addresses: &[IpAddr], policy: NetPolicy) -> Result<(), Refused> {
    match addresses.iter().find(|ip| !policy.allows_ip(**ip)) {
        Some(ip) => Err(refused(host, *ip, policy)),
        None => Ok(()),
    }
}

fn refused(host: &str, address: IpAddr, policy: NetPolicy) -> Refused {
    Refused {
        host: host.to_string(),
        address,
        class: classify(address),
        policy,
    }
}

/// Name resolution, behind a seam so tests can map names to chosen addresses.
pub trait HostResolver: Send + Sync + fmt::Debug {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The system resolver, through tokio (getaddrinfo on the blocking pool).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed host table for tests; unknown names do not resolve.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

#[cfg(test)]
impl StaticResolver {
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<IpAddr>)>) -> Self {
        Self {
            table: entries
                .into_iter()
                .map(|(host, ips)| (host.to_ascii_lowercase(), ips))
                .collect(),
        }
    }
}

#[cfg(test)]
impl HostResolver for StaticResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let found = self.table.get(&host.to_ascii_lowercase()).cloned();
        let host = host.to_string();
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} is not known"))
            })
        })
    }
}

/// Host names of the proxies in use: they are the user's choice, so their addresses are
/// not judged. Filled as requests find their proxy.
#[derive(Debug, Default)]
pub struct ProxyHosts(RwLock<Vec<String>>);

/// At most this many proxy host names are remembered (there are one or two in practice).
const MAX_PROXY_HOSTS: usize = 16;

impl ProxyHosts {
    pub fn contains(&self, host: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn insert(&self, host: &str) {
        if self.contains(host) {
            return;
        }
        let mut hosts = self.0.write().unwrap_or_else(|e| e.into_inner());
        if hosts.len() < MAX_PROXY_HOSTS {
            hosts.push(host.to_ascii_lowercase());
        }
    }
}

/// reqwest's resolver for one policy: resolves, then drops the addresses the policy
/// refuses, so a name that leads to a refused address is never connected to. A name with
/// no allowed address fails with [`Refused`].
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    pub resolver: Arc<dyn HostResolver>,
    pub policy: NetPolicy,
    pub proxies: Arc<ProxyHosts>,
}

impl PolicyResolver {
    /// The addresses a connection to `host` may use.
    pub async fn allowed(
        &self,
        host: &str,
    ) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addresses = self.resolver.lookup(host).await?;
        if self.policy == NetPolicy::Unrestricted || self.proxies.contains(host) {
            return Ok(addresses);
        }
        let allowed: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|ip| self.policy.allows_ip(*ip))
            .collect();
        match (allowed.is_empty(), addresses.first()) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => Err(Box::new(refused(host, *first, self.policy))),
            (true, None) => Err(Box::new(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ))),
        }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let allowed = this.allowed(name.as_str()).await?;
            let addrs: Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests;
