//! Probes never reach link-local or metadata addresses. The check is made on every resolved
//! address (so DNS rebinding is covered), on IP literals in URLs, and on every redirect hop.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The default deny list: link-local (cloud metadata lives there), the metadata addresses of
/// the major clouds, and addresses that are never a provider.
pub const DEFAULT_DENY: [&str; 9] = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "ff00::/8",
];

#[derive(Debug, Clone)]
pub struct DenyList(Vec<IpNet>);

impl DenyList {
    pub fn new(nets: Vec<IpNet>) -> DenyList {
        DenyList(nets)
    }

    pub fn parse(cidrs: &[&str]) -> Result<DenyList, String> {
        cidrs
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<IpNet>()
                    .or_else(|_| c.trim().parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{c:?} is not an IP network (CIDR) or address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(DenyList)
    }

    /// Whether `ip` may be reached. An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is
    /// checked as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        !self.0.iter().any(|net| net.contains(&ip))
    }
}

impl Default for DenyList {
    fn default() -> Self {
        DenyList::parse(&DEFAULT_DENY).expect("valid default deny list")
    }
}

/// The error of a connection to a denied address.
#[derive(Debug)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves only to denied addresses", self.0)
    }
}

impl std::error::Error for Denied {}

/// The error of a name that does not resolve.
#[derive(Debug)]
pub struct DnsFailed(pub String);

impl fmt::Display for DnsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DNS lookup of {} failed", self.0)
    }
}

impl std::error::Error for DnsFailed {}

/// A resolver that drops denied addresses: a name that resolves only to denied ones fails.
pub struct GuardedResolver(pub Arc<DenyList>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(DnsFailed(host.clone())) as Box<dyn std::error::Error + Send + Sync>
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(DnsFailed(host)) as _);
            }
            let allowed: Vec<SocketAddr> =
                addrs.into_iter().filter(|a| deny.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Denied(host)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_denies_metadata_and_allows_the_rest() {
        let d = DenyList::default();
        for denied in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "fe80::1",
        ] {
            assert!(!d.allows(denied.parse().unwrap()), "{denied}");
        }
        for allowed in ["127.0.0.1", "10.0.0.5", "8.8.8.8", "::1", "2001:db8::1"] {
            assert!(d.allows(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn the_list_is_configurable() {
        let d = DenyList::parse(&["127.0.0.0/8", "10.1.2.3"]).unwrap();
        assert!(!d.allows("127.0.0.1".parse().unwrap()));
        assert!(!d.allows("10.1.2.3".parse().unwrap()));
        assert!(d.allows("169.254.169.254".parse().unwrap()));
        assert!(DenyList::parse(&["not-a-net"]).is_err());
    }
}
