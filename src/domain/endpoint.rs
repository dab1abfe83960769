//! Which endpoints an external container may name, so that a container cannot be used to reach
//! the server's own network: hosts the operator lists (`--external-endpoints`, any scheme and
//! address), else only the providers' public endpoints over HTTPS, and never a loopback,
//! link-local, private or otherwise non-public address unless listed. The address rule is
//! applied to every resolved address, at creation and again whenever a connection is made (see
//! `store::external`), so a name that later resolves elsewhere (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::DomainError;
use super::external::{field, ContainerType};

/// A host (and port, when given) the operator allows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// The operator's list of allowed endpoint hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    allowed: Vec<Allowed>,
}

/// An endpoint that passed the URL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given, without a trailing slash.
    pub url: String,
    pub host: String,
    pub port: u16,
    /// Listed by the operator: any scheme and any address.
    pub listed: bool,
}

impl EndpointPolicy {
    /// Parses `host` / `host:port` / `[v6]:port` entries separated by commas.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = url::Url::parse(&format!("http://{entry}"))
                .map_err(|e| format!("invalid external endpoint {entry:?}: {e}"))?;
            let host = parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format!("invalid external endpoint {entry:?}: no host"))?;
            if parsed.path() != "/" || parsed.query().is_some() || !parsed.username().is_empty() {
                return Err(format!(
                    "invalid external endpoint {entry:?}: only host or host:port"
                ));
            }
            // Url drops a port equal to the scheme's default: read it from the entry.
            let port = match parsed.port() {
                Some(p) => Some(p),
                None if entry.ends_with(":80") => Some(80),
                None => None,
            };
            allowed.push(Allowed {
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(EndpointPolicy { allowed })
    }

    /// Whether `host` is listed for some port (what a resolver sees, without the port).
    pub fn lists_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allowed.iter().any(|a| {
            a.host.trim_start_matches('[').trim_end_matches(']') == host.to_ascii_lowercase()
        })
    }

    fn lists(&self, host: &str, port: u16) -> bool {
        self.allowed
            .iter()
            .any(|a| a.host == host && a.port.is_none_or(|p| p == port))
    }

    /// Checks an `endpoint` of a `kind` container (400 naming `external.endpoint`): a listed
    /// host, or the provider's public endpoint over HTTPS. Addresses are checked separately
    /// ([`Self::admits`]) once the name is resolved.
    pub fn check_url(&self, kind: ContainerType, endpoint: &str) -> Result<Endpoint, DomainError> {
        let bad = |m: &str| DomainError::invalid(field("endpoint"), m.to_string());
        let url = url::Url::parse(endpoint).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("must name a host"))?
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("must name a port"))?;
        let listed = self.lists(&host, port);
        if !listed {
            if url.scheme() != "https" {
                return Err(bad(
                    "must use https unless its host is listed in --external-endpoints",
                ));
            }
            if !is_provider_host(kind, &host) {
                return Err(bad(&format!(
                    "{host} is neither a public {} endpoint nor listed in --external-endpoints",
                    kind.as_str()
                )));
            }
        }
        Ok(Endpoint {
            url: endpoint.trim_end_matches('/').to_string(),
            host,
            port,
            listed,
        })
    }

    /// Whether a connection to `ip` is allowed for `endpoint`: any address of a listed host, else
    /// public addresses only.
    pub fn admits(&self, endpoint: &Endpoint, ip: IpAddr) -> bool {
        endpoint.listed || is_public(ip)
    }
}

/// The providers' public endpoints (their HTTPS APIs), by host.
fn is_provider_host(kind: ContainerType, host: &str) -> bool {
    match kind {
        ContainerType::Aws => {
            host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
        }
        // oauth2.googleapis.com: the token endpoint a service-account key names.
        ContainerType::Gcp => {
            host == "storage.googleapis.com"
                || host.ends_with(".storage.googleapis.com")
                || host == "oauth2.googleapis.com"
        }
        ContainerType::Azure => host.ends_with(".blob.core.windows.net"),
        ContainerType::Internal => false,
    }
}

/// A globally routable unicast address: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation or benchmarking space, nor an IPv6 form of
/// one (mapped, NAT64, 6to4 of a private address, unique-local).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and other reserved low space
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(private)), "{private} must not be public");
        }
        for public in [
            "52.216.1.1",
            "142.250.1.1",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn unlisted_endpoints_must_be_the_providers_over_https() {
        let none = EndpointPolicy::default();
        assert!(none
            .check_url(ContainerType::Aws, "https://s3.eu-west-1.amazonaws.com")
            .is_ok());
        assert!(none
            .check_url(ContainerType::Azure, "https://acct.blob.core.windows.net")
            .is_ok());
        assert!(none
            .check_url(ContainerType::Gcp, "https://storage.googleapis.com")
            .is_ok());
        for bad in [
            "http://s3.eu-west-1.amazonaws.com",
            "https://127.0.0.1:9000",
            "https://minio.internal",
            "https://evil.amazonaws.com.attacker.net",
            "ftp://s3.amazonaws.com",
            "https://user:pw@s3.amazonaws.com",
        ] {
            let refused = none.check_url(ContainerType::Aws, bad);
            assert!(
                matches!(&refused, Err(DomainError::InvalidInput { field, .. }) if field == "external.endpoint"),
                "{bad}: {refused:?}"
            );
        }
        assert!(none
            .check_url(ContainerType::Gcp, "https://s3.amazonaws.com")
            .is_err());
    }

    #[test]
    fn listed_hosts_may_use_any_scheme_and_address() -> Result<(), String> {
        let policy = EndpointPolicy::parse("127.0.0.1:3900, minio.lan ,[::1]:10000")?;
        let e = policy
            .check_url(ContainerType::Aws, "http://127.0.0.1:3900/")
            .map_err(|e| e.to_string())?;
        assert!(e.listed && policy.admits(&e, ip("127.0.0.1")));
        assert_eq!(e.url, "http://127.0.0.1:3900");
        assert!(
            policy
                .check_url(ContainerType::Aws, "http://127.0.0.1:3901")
                .is_err(),
            "port listed"
        );
        assert!(
            policy
                .check_url(ContainerType::Aws, "http://minio.lan:9000")
                .is_ok(),
            "any port"
        );
        assert!(policy
            .check_url(ContainerType::Azure, "http://[::1]:10000/devstoreaccount1")
            .is_ok());
        assert!(policy.lists_host("minio.lan") && policy.lists_host("::1"));
        let public = policy
            .check_url(ContainerType::Aws, "https://s3.amazonaws.com")
            .map_err(|e| e.to_string())?;
        assert!(
            !policy.admits(&public, ip("10.0.0.1")),
            "public names must resolve publicly"
        );
        assert!(EndpointPolicy::parse("http://x/y").is_err());
        Ok(())
    }
}
