//! Where callmesh may send requests that a tenant chose the destination of (an organization's
//! CRM webhook): the public internet only. Loopback, private, shared (CGNAT), link-local (the
//! cloud metadata address among them), multicast and unspecified addresses are refused, both
//! when the URL is saved and again for every address its host resolves to when connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a destination is refused; short enough to show to the organization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("must be an http(s) URL with a host")]
    NotAUrl,
    #[error("points at a private, loopback or link-local address")]
    PrivateAddress,
    #[error("its host does not resolve")]
    Unresolved,
}

/// Whether `ip` is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7 (AWS's metadata service listens on fd00:ec2::254).
        || (first & 0xfe00) == 0xfc00
        // Link-local fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// The host and port of an http(s) URL, refusing names that can only mean this machine or its
/// cloud's metadata service. The URL is read as HTTP clients read it (WHATWG), so `127.1` and
/// `2130706433` are the addresses they stand for.
pub fn destination(url: &str) -> Result<(String, u16), EgressError> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| EgressError::NotAUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EgressError::NotAUrl);
    }
    let port = parsed.port_or_known_default().ok_or(EgressError::NotAUrl)?;
    let host = match parsed.host().ok_or(EgressError::NotAUrl)? {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => {
            return Err(EgressError::PrivateAddress);
        }
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => {
            return Err(EgressError::PrivateAddress);
        }
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty()
                || name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
            {
                return Err(EgressError::PrivateAddress);
            }
            name
        }
    };
    Ok((host, port))
}

/// Checks `url` as [`destination`] does, then resolves its host: every address must be public.
pub async fn check(url: &str) -> Result<(), EgressError> {
    let (host, port) = destination(url)?;
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| EgressError::Unresolved)?
        .collect();
    if addrs.is_empty() {
        return Err(EgressError::Unresolved);
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(EgressError::PrivateAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_are_refused_and_public_ones_pass() {
        for refused in [
            "http://127.0.0.1/crm",
            "http://127.1.2.3:8080/",
            "http://localhost/x",
            "http://api.localhost/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://100.100.100.200/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://127.1:8080/",
            "http://2130706433/",
        ] {
            assert_eq!(
                destination(refused),
                Err(EgressError::PrivateAddress),
                "{refused}"
            );
        }
        for malformed in ["ftp://example.com/", "example.com/crm", ""] {
            assert_eq!(
                destination(malformed),
                Err(EgressError::NotAUrl),
                "{malformed}"
            );
        }
        assert_eq!(
            destination("https://hooks.example.com/crm"),
            Ok(("hooks.example.com".into(), 443))
        );
        assert_eq!(
            destination("http://93.184.216.34:8080/"),
            Ok(("93.184.216.34".into(), 8080))
        );
    }
}
