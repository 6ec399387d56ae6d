//! Which IP addresses a connector may reach, enforced after DNS resolution.
//!
//! Private, loopback, link-local (cloud metadata), CGNAT, multicast and reserved ranges are
//! refused unless the operator allows a range explicitly. IPv4-mapped and NAT64 IPv6
//! addresses are judged by the IPv4 address they carry. The check runs inside the HTTP
//! client's DNS resolver, so the address that is checked is the address that is dialled
//! (no DNS-rebinding window).

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The operator's address policy.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Ranges allowed even though they are non-public (e.g. `127.0.0.0/8` in tests, or an
    /// internal API's subnet).
    pub allowed_ranges: Vec<IpNet>,
}

/// Why an address was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{host} resolves to {addr}, a {class} address, which connectors may not reach")]
pub struct BlockedAddress {
    /// The host name (or literal) the connector asked for.
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
    /// Which non-public class it belongs to.
    pub class: &'static str,
}

impl AddressPolicy {
    /// `Ok` when `addr` is public or in an allowed range; otherwise the reason.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), BlockedAddress> {
        let Some(class) = non_public_class(addr) else {
            return Ok(());
        };
        if self.allowed_ranges.iter().any(|r| r.contains(&addr)) {
            return Ok(());
        }
        Err(BlockedAddress {
            host: host.to_string(),
            addr,
            class,
        })
    }
}

impl AddressPolicy {
    /// Check a URL whose host is an IP literal (host names are checked at resolution by
    /// [`policed_client_builder`]'s resolver).
    pub fn check_url(&self, url: &url::Url) -> Result<(), BlockedAddress> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), ip)
    }
}

/// An HTTP client builder that dials only addresses `policy` allows: it resolves through the
/// policed resolver, follows no redirects (callers re-check each hop) and ignores proxy
/// settings from the environment (a proxy would dial on our behalf, unchecked).
pub fn policed_client_builder(policy: Arc<AddressPolicy>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(PolicedResolver { policy }))
}

/// The class of a non-public address, or `None` for a public one.
pub fn non_public_class(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local/metadata",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (168, 63, 129) if ip.octets()[3] == 16 => "Azure host endpoint (metadata)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let seg = ip.segments();
    // NAT64 prefixes (well-known 64:ff9b::/96, local-use 64:ff9b:1::/48) carry an IPv4
    // address in their low 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && (seg[2..6] == [0, 0, 0, 0] || seg[2] == 1) {
        let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
        return v4_class(v4);
    }
    Some(match seg[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        0xfc00..=0xfdff => "unique-local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local (deprecated, private)",
        0xff00..=0xffff => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x0000 => "reserved (IPv4-compatible)",
        _ => return None,
    })
}

/// A DNS resolver for the broker's HTTP client that drops refused addresses and fails when
/// none is left.
pub(crate) struct PolicedResolver {
    pub(crate) policy: Arc<AddressPolicy>,
}

impl Resolve for PolicedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        first_refusal.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match first_refusal {
                    Some(refusal) => Box::new(refusal),
                    None => format!("{host} did not resolve to any address").into(),
                };
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "fec0::1",
            "168.63.129.16",
        ] {
            assert!(policy.check("h", ip(addr)).is_err(), "{addr} should be refused");
        }
        for addr in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(policy.check("h", ip(addr)).is_ok(), "{addr} should be allowed");
        }
    }

    #[test]
    fn operator_ranges_open_only_themselves() {
        let policy = AddressPolicy {
            allowed_ranges: vec!["127.0.0.0/8".parse().expect("net")],
        };
        assert!(policy.check("h", ip("127.0.0.1")).is_ok());
        assert!(policy.check("h", ip("127.9.9.9")).is_ok());
        let refused = policy.check("metadata", ip("169.254.169.254")).expect_err("metadata");
        assert_eq!(refused.class, "link-local/metadata");
        assert!(refused.to_string().contains("169.254.169.254"));
    }
}
