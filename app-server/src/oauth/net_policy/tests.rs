use super::*;
use AddressClass::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn ipv4_classes() {
    let table = [
        ("0.0.0.0", SpecialUse),
        ("0.255.1.2", SpecialUse),
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.15.0.1", Public),
        ("172.32.0.1", Public),
        ("192.168.1.1", Private),
        ("100.64.0.1", Private),
        ("100.127.255.255", Private),
        ("100.63.255.255", Public),
        ("100.128.0.0", Public),
        ("169.254.169.254", LinkLocal),
        ("169.254.0.1", LinkLocal),
        ("169.253.0.1", Public),
        ("192.0.0.8", SpecialUse),
        ("192.0.0.170", SpecialUse),
        ("192.0.1.1", Public),
        ("192.0.2.1", SpecialUse),
        ("198.51.100.7", SpecialUse),
        ("203.0.113.9", SpecialUse),
        ("192.88.99.1", SpecialUse),
        ("198.18.0.1", SpecialUse),
        ("198.19.255.255", SpecialUse),
        ("198.20.0.1", Public),
        ("224.0.0.1", SpecialUse),
        ("239.255.255.250", SpecialUse),
        ("240.0.0.1", SpecialUse),
        ("255.255.255.255", SpecialUse),
        ("8.8.8.8", Public),
        ("1.1.1.1", Public),
        ("223.255.255.255", Public),
    ];
    for (addr, class) in table {
        assert_eq!(classify(ip(addr)), class, "{addr}");
    }
}

#[test]
fn ipv6_classes() {
    let table = [
        ("::", SpecialUse),
        ("::1", Loopback),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("fec0::1", Private),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("ff02::1", SpecialUse),
        ("100::1", SpecialUse),
        ("2001:db8::1", SpecialUse),
        ("3fff:123::1", SpecialUse),
        ("2001:2::1", SpecialUse),
        ("2001:10::1", SpecialUse),
        ("2001:20::1", SpecialUse),
        ("5f00::1", SpecialUse),
        ("0:0:0:0:1::", SpecialUse),
        ("2606:4700::1111", Public),
        ("2a00:1450:4001::1", Public),
    ];
    for (addr, class) in table {
        assert_eq!(classify(ip(addr)), class, "{addr}");
    }
}

/// Every IPv6 form that carries an IPv4 address is judged by that address.
#[test]
fn ipv6_forms_of_ipv4_addresses_take_the_ipv4_class() {
    let v4 = [
        ("0.0.0.0", SpecialUse),
        ("127.0.0.1", Loopback),
        ("10.1.2.3", Private),
        ("192.168.0.1", Private),
        ("100.64.1.1", Private),
        ("169.254.169.254", LinkLocal),
        ("192.0.2.1", SpecialUse),
        ("224.0.0.1", SpecialUse),
        ("8.8.8.8", Public),
    ];
    for (addr, class) in v4 {
        let [a, b, c, d] = ip(addr).to_string().parse::<Ipv4Addr>().unwrap().octets();
        let (h, l) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        let forms = [
            format!("::ffff:{addr}"),
            format!("::ffff:0:{addr}"),
            format!("64:ff9b::{addr}"),
            format!("2002:{h:x}:{l:x}::1"),
            // Teredo: public server 8.8.4.4, client address inverted.
            format!("2001:0:808:404::{:x}:{:x}", !h, !l),
        ];
        for form in forms {
            assert_eq!(classify(ip(&form)), class, "{form} (from {addr})");
        }
        // IPv4-compatible ::a.b.c.d; ::0.0.0.0 and ::0.0.0.1 are :: and ::1 themselves.
        if a != 0 {
            let form = format!("::{addr}");
            assert_eq!(classify(ip(&form)), class, "{form}");
        }
        // Local-use NAT64 is at least a private-network address.
        let local_nat64 = format!("64:ff9b:1::{addr}");
        let expected = if class == Public { Private } else { class };
        assert_eq!(classify(ip(&local_nat64)), expected, "{local_nat64}");
    }
    // A Teredo address whose server is special-use is special-use.
    assert_eq!(classify(ip("2001:0:c000:201::1")), SpecialUse);
}

#[test]
fn policies_allow_what_their_server_class_may_use() {
    let table: [(NetPolicy, [bool; 5]); 4] = [
        // Public, Private, Loopback, LinkLocal, SpecialUse
        (NetPolicy::PublicOnly, [true, false, false, false, false]),
        (NetPolicy::Intranet, [true, true, false, false, false]),
        (NetPolicy::Local, [true, true, true, false, false]),
        (NetPolicy::Unrestricted, [true, true, true, true, true]),
    ];
    let classes = [Public, Private, Loopback, LinkLocal, SpecialUse];
    for (policy, allowed) in table {
        for (class, allow) in classes.iter().zip(allowed) {
            assert_eq!(policy.allows(*class), allow, "{policy:?} {class:?}");
        }
    }
}

#[test]
fn a_server_gets_the_policy_of_its_most_public_address() {
    const NONE: NetOptIns = NetOptIns {
        private_network: false,
        link_local_and_special_use: false,
    };
    const PRIVATE: NetOptIns = NetOptIns {
        private_network: true,
        link_local_and_special_use: false,
    };
    const SPECIAL: NetOptIns = NetOptIns {
        private_network: false,
        link_local_and_special_use: true,
    };
    let table: [(&[&str], NetOptIns, NetPolicy); 15] = [
        (&["127.0.0.1"], NONE, NetPolicy::Local),
        (&["127.0.0.1", "::1"], NONE, NetPolicy::Local),
        (&["10.0.0.5"], NONE, NetPolicy::Intranet),
        (&["fd00::5", "127.0.0.1"], NONE, NetPolicy::Intranet),
        (&["8.8.8.8"], NONE, NetPolicy::PublicOnly),
        (&["10.0.0.5", "8.8.8.8"], NONE, NetPolicy::PublicOnly),
        (&["169.254.169.254"], NONE, NetPolicy::PublicOnly),
        (&["0.0.0.0"], NONE, NetPolicy::PublicOnly),
        (&[], NONE, NetPolicy::PublicOnly),
        // `allow_private_network` lifts the private-network rule only.
        (&["8.8.8.8"], PRIVATE, NetPolicy::Intranet),
        (&["10.0.0.5"], PRIVATE, NetPolicy::Intranet),
        (&["127.0.0.1"], PRIVATE, NetPolicy::Local),
        (&["169.254.169.254"], PRIVATE, NetPolicy::Intranet),
        (&[], PRIVATE, NetPolicy::Intranet),
        (&["8.8.8.8"], SPECIAL, NetPolicy::Unrestricted),
    ];
    for (addresses, opt_ins, expected) in table {
        let addresses: Vec<IpAddr> = addresses.iter().map(|a| ip(a)).collect();
        assert_eq!(
            NetPolicy::for_server(&addresses, opt_ins),
            expected,
            "{addresses:?} {opt_ins:?}"
        );
    }
    // Whatever the server, `allow_private_network` never reaches the cloud metadata
    // service or another special-use address.
    for addresses in [&["8.8.8.8"][..], &["10.0.0.5"], &["127.0.0.1"], &[]] {
        let addresses: Vec<IpAddr> = addresses.iter().map(|a| ip(a)).collect();
        let policy = NetPolicy::for_server(&addresses, PRIVATE);
        assert!(policy.allows(Private), "{addresses:?}");
        assert!(!policy.allows(LinkLocal), "{addresses:?}");
        assert!(!policy.allows(SpecialUse), "{addresses:?}");
    }
}

fn resolver(policy: NetPolicy, table: &[(&str, &[&str])]) -> PolicyResolver {
    PolicyResolver {
        resolver: Arc::new(StaticResolver::new(
            table
                .iter()
                .map(|(h, ips)| (*h, ips.iter().map(|a| ip(a)).collect())),
        )),
        policy,
        proxies: Arc::default(),
    }
}

/// The resolver given to reqwest never hands out a refused address, so nothing connects
/// to it: a name that leads only to the cloud metadata address fails with [`Refused`].
#[tokio::test]
async fn resolver_drops_refused_addresses_before_any_connect() {
    let r = resolver(
        NetPolicy::Local,
        &[
            ("evil.test", &["169.254.169.254"]),
            ("mixed.test", &["169.254.169.254", "127.0.0.1", "0.0.0.0"]),
            ("mapped.test", &["::ffff:169.254.169.254"]),
            ("ok.test", &["10.0.0.1"]),
        ],
    );
    let err = r.allowed("evil.test").await.unwrap_err();
    let refused = err.downcast_ref::<Refused>().expect("a policy refusal");
    assert_eq!(refused.class, LinkLocal);
    assert_eq!(refused.address, ip("169.254.169.254"));
    // The advice names the key that allows link-local addresses, not the private one.
    assert!(
        refused
            .to_string()
            .contains("`allow_link_local_and_special_use = true`"),
        "{refused}"
    );
    let err = r.allowed("mapped.test").await.unwrap_err();
    assert_eq!(err.downcast_ref::<Refused>().unwrap().class, LinkLocal);
    assert_eq!(
        r.allowed("mixed.test").await.unwrap(),
        vec![ip("127.0.0.1")]
    );
    assert_eq!(r.allowed("ok.test").await.unwrap(), vec![ip("10.0.0.1")]);
    // Through reqwest's trait too.
    let name: Name = "evil.test".parse().unwrap();
    let err = match Resolve::resolve(&r, name).await {
        Ok(_) => panic!("evil.test resolved"),
        Err(e) => e,
    };
    assert!(err.downcast_ref::<Refused>().is_some(), "{err}");

    let public = resolver(NetPolicy::PublicOnly, &[("ok.test", &["10.0.0.1"])]);
    assert!(public.allowed("ok.test").await.is_err());
    let open = resolver(
        NetPolicy::Unrestricted,
        &[("evil.test", &["169.254.169.254"])],
    );
    assert_eq!(
        open.allowed("evil.test").await.unwrap(),
        vec![ip("169.254.169.254")]
    );
}

#[tokio::test]
async fn proxy_hosts_are_not_judged() {
    let r = resolver(NetPolicy::PublicOnly, &[("proxy.corp", &["10.1.1.1"])]);
    assert!(r.allowed("proxy.corp").await.is_err());
    r.proxies.insert("PROXY.corp");
    assert_eq!(r.allowed("proxy.corp").await.unwrap(), vec![ip("10.1.1.1")]);
}

#[test]
fn check_all_names_the_first_refused_address() {
    let addrs = [ip("8.8.8.8"), ip("fe80::1")];
    let err = check_all("h.test", &addrs, NetPolicy::PublicOnly).unwrap_err();
    assert_eq!(err.address, ip("fe80::1"));
    assert!(check_all("h.test", &addrs, NetPolicy::Unrestricted).is_ok());
}
