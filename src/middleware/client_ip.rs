//! `general_settings.allowed_ips`: the client addresses that may call authenticated routes.
//!
//! Owns the parsed allow-list and the check the auth layer runs first, before the key is read
//! (LiteLLM's pre-auth checks run in that order, so a refused address learns nothing about
//! keys). The address is the connection's peer, which the server records only when an
//! allow-list is configured; with `use_x_forwarded_for: true` it is the `X-Forwarded-For`
//! header instead, read whole as LiteLLM reads it (a list of hops matches no entry). Entries
//! are addresses, compared as addresses (`::ffff:10.0.0.1` is `10.0.0.1`), or CIDR blocks,
//! which LiteLLM does not have. An entry that is neither is warned about at start-up and
//! matches nothing, as a non-address string never matches in LiteLLM.

use crate::config::GeneralSettings;
use crate::error::ApiResult;
use axum::http::{HeaderMap, HeaderName};
use std::net::{IpAddr, SocketAddr};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One entry of the allow-list.
#[derive(Debug, Clone, PartialEq)]
enum Allowed {
    Addr(IpAddr),
    /// A block: the address with its host bits cleared, and the prefix length.
    Net(IpAddr, u8),
}

impl Allowed {
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        match entry.split_once('/') {
            None => entry
                .parse()
                .ok()
                .map(|a: IpAddr| Self::Addr(a.to_canonical())),
            Some((addr, len)) => {
                let addr: IpAddr = addr.parse().ok()?;
                let len: u8 = len.parse().ok()?;
                let addr = addr.to_canonical();
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                (len <= bits).then(|| Self::Net(mask(addr, len), len))
            }
        }
    }

    fn covers(&self, ip: IpAddr) -> bool {
        match *self {
            Self::Addr(a) => a == ip,
            Self::Net(base, len) => base.is_ipv4() == ip.is_ipv4() && mask(ip, len) == base,
        }
    }
}

/// `ip` with all but its first `len` bits cleared.
fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// The configured allow-list.
#[derive(Debug)]
pub struct IpGate {
    allowed: Vec<Allowed>,
    forwarded_for: bool,
}

impl IpGate {
    /// The gate `general_settings` asks for; `None` when `allowed_ips` is unset (an empty
    /// list is a gate that lets nobody in, as in LiteLLM).
    pub fn from_settings(g: &GeneralSettings) -> Option<Self> {
        let entries = g.allowed_ips.as_ref()?;
        let allowed = entries
            .iter()
            .filter_map(|e| {
                let parsed = Allowed::parse(e);
                if parsed.is_none() {
                    tracing::warn!(
                        "general_settings.allowed_ips: {e:?} is not an IP address or CIDR block; it matches no client"
                    );
                }
                parsed
            })
            .collect();
        Some(Self {
            allowed,
            forwarded_for: g.use_x_forwarded_for == Some(true),
        })
    }

    /// LiteLLM's 403 unless the caller's address is allowed.
    pub fn check(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> ApiResult<()> {
        let forwarded = self
            .forwarded_for
            .then(|| headers.get(&X_FORWARDED_FOR))
            .flatten();
        let (ip, shown) = match forwarded {
            Some(v) => {
                let text = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
                (text.parse::<IpAddr>().ok(), text)
            }
            None => match peer {
                Some(p) => {
                    let ip = p.ip().to_canonical();
                    (Some(ip), ip.to_string())
                }
                None => (None, String::new()),
            },
        };
        if ip.is_some_and(|ip| self.allowed.iter().any(|a| a.covers(ip.to_canonical()))) {
            return Ok(());
        }
        Err(crate::handlers::access::forbidden(format!(
            "Access forbidden: IP address {shown} not allowed."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn gate(entries: &[&str], forwarded_for: bool) -> IpGate {
        IpGate::from_settings(&GeneralSettings {
            allowed_ips: Some(entries.iter().map(|e| e.to_string()).collect()),
            use_x_forwarded_for: Some(forwarded_for),
            ..Default::default()
        })
        .unwrap()
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    #[test]
    fn addresses_and_blocks_match_the_peer() {
        let g = gate(
            &["127.0.0.1", "10.1.0.0/16", "2001:db8::/32", "localhost"],
            false,
        );
        let h = HeaderMap::new();
        assert!(g.check(&h, peer("127.0.0.1")).is_ok());
        assert!(g.check(&h, peer("::ffff:127.0.0.1")).is_ok());
        assert!(g.check(&h, peer("10.1.200.3")).is_ok());
        assert!(g.check(&h, peer("2001:db8:1::5")).is_ok());
        let e = g.check(&h, peer("10.2.0.1")).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        assert_eq!(
            e.message,
            "Access forbidden: IP address 10.2.0.1 not allowed."
        );
        assert!(g.check(&h, peer("::1")).is_err());
        assert!(g.check(&h, None).is_err());
        assert_eq!(g.allowed.len(), 3, "the name is dropped with a warning");
    }

    #[test]
    fn unset_is_no_gate_and_empty_lets_nobody_in() {
        assert!(IpGate::from_settings(&GeneralSettings::default()).is_none());
        let g = gate(&[], false);
        assert!(g.check(&HeaderMap::new(), peer("127.0.0.1")).is_err());
    }

    #[test]
    fn forwarded_for_is_read_whole_when_asked() {
        let g = gate(&["203.0.113.7"], true);
        let mut h = HeaderMap::new();
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        assert!(g.check(&h, peer("10.0.0.1")).is_ok());
        h.insert(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("203.0.113.7, 10.0.0.2"),
        );
        let e = g.check(&h, peer("203.0.113.7")).unwrap_err();
        assert_eq!(
            e.message,
            "Access forbidden: IP address 203.0.113.7, 10.0.0.2 not allowed."
        );
        // Without the header, the peer address is what counts.
        assert!(g.check(&HeaderMap::new(), peer("203.0.113.7")).is_ok());
        assert!(g.check(&HeaderMap::new(), None).is_err());
    }

    #[test]
    fn blocks_mask_host_bits_and_bound_the_prefix() {
        assert_eq!(
            Allowed::parse("192.168.7.9/24"),
            Some(Allowed::Net("192.168.7.0".parse().unwrap(), 24))
        );
        assert_eq!(
            Allowed::parse("0.0.0.0/0"),
            Some(Allowed::Net("0.0.0.0".parse().unwrap(), 0))
        );
        assert!(Allowed::parse("0.0.0.0/0")
            .unwrap()
            .covers("8.8.8.8".parse().unwrap()));
        assert!(!Allowed::parse("0.0.0.0/0")
            .unwrap()
            .covers("::1".parse().unwrap()));
        assert_eq!(Allowed::parse("10.0.0.0/33"), None);
        assert_eq!(Allowed::parse("10.0.0.0/x"), None);
    }
}
