//! Channels to the other services of the mesh. One lazily connected channel per service,
//! created once and cloned per request (a tonic `Channel` is a cheap handle onto a pool).
//!
//! By default a channel keeps one HTTP/2 connection to its URL's host. Behind a Kubernetes
//! ClusterIP that connection, and so every call multiplexed on it, lands on one pod however
//! many replicas run. With `GRPC_BALANCING=dns` the channel instead resolves the host every
//! `GRPC_RESOLVE_INTERVAL_SECS` (behind a headless Service the name resolves to every ready
//! pod), keeps a connection per address and spreads calls over them (power of two choices on
//! in-flight requests). Addresses that leave DNS are dropped; new ones are added.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use crate::config::{ConfigError, env_or, env_parse};

const BALANCING_VAR: &str = "GRPC_BALANCING";
const INTERVAL_VAR: &str = "GRPC_RESOLVE_INTERVAL_SECS";

/// How a channel finds the processes behind its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balancing {
    /// One connection to the URL's host: what a ClusterIP Service or a single process needs.
    Off,
    /// Re-resolve the host every `interval` and balance over every address it names.
    Dns { interval: Duration },
}

impl Balancing {
    /// `GRPC_BALANCING` (`off`, the default, or `dns`) and `GRPC_RESOLVE_INTERVAL_SECS` (5).
    pub fn from_env() -> Result<Self, ConfigError> {
        match env_or(BALANCING_VAR, "off")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "off" => Ok(Balancing::Off),
            "dns" => {
                let secs: u64 = env_parse(INTERVAL_VAR, 5)?;
                if secs == 0 {
                    return Err(ConfigError::invalid(INTERVAL_VAR, "must be at least 1"));
                }
                Ok(Balancing::Dns {
                    interval: Duration::from_secs(secs),
                })
            }
            _ => Err(ConfigError::invalid(BALANCING_VAR, "expected off or dns")),
        }
    }
}

/// A channel to `url` that connects on first use and reconnects by itself, balanced as
/// `GRPC_BALANCING` says. With balancing on it must be called inside a Tokio runtime.
pub fn lazy_channel(url: &str, variable: &str) -> Result<Channel, ConfigError> {
    channel(url, variable, Balancing::from_env()?)
}

/// A lazily connected channel to `url` (named by `variable` in errors), balanced as told.
pub fn channel(url: &str, variable: &str, balancing: Balancing) -> Result<Channel, ConfigError> {
    let invalid = |reason: String| ConfigError::invalid(variable, reason);
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| invalid(format!("invalid URL {url:?}: {e}")))?;
    let endpoint = configure(endpoint);
    // TLS when a CA is configured and the URL says https.
    let tls = match crate::tls::client_config()? {
        Some(tls) if url.starts_with("https://") => Some(tls),
        _ => None,
    };
    if tls.is_some() && balancing != Balancing::Off {
        return Err(ConfigError::invalid(
            crate::tls::CA_VAR,
            "TLS is not supported with GRPC_BALANCING=dns yet",
        ));
    }
    let endpoint = match tls {
        Some(tls) => endpoint
            .tls_config(tls)
            .map_err(|e| invalid(format!("TLS for {url:?}: {e}")))?,
        None => endpoint,
    };
    match balancing {
        Balancing::Off => Ok(endpoint.connect_lazy()),
        Balancing::Dns { interval } => {
            let target = Target::of(&endpoint)
                .ok_or_else(|| invalid(format!("the URL {url:?} names no host")))?;
            if target.host.parse::<IpAddr>().is_ok() {
                // An address is its own only resolution.
                return Ok(endpoint.connect_lazy());
            }
            Ok(balanced_channel(endpoint, SystemResolver, interval))
        }
    }
}

/// The settings every connection of the mesh gets.
fn configure(endpoint: Endpoint) -> Endpoint {
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
}

/// Turns a host name into the addresses it currently names.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = std::io::Result<Vec<SocketAddr>>> + Send;
}

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// A channel balancing over the addresses `resolver` finds for `endpoint`'s host, refreshed
/// every `interval`. Every address gets `endpoint`'s scheme and the mesh's connection settings.
/// The resolving task ends when the last clone of the channel is dropped.
pub fn balanced_channel<R: Resolve>(
    endpoint: Endpoint,
    resolver: R,
    interval: Duration,
) -> Channel {
    let (channel, changes) = Channel::balance_channel(DISCOVERY_CAPACITY);
    tokio::spawn(discover(endpoint, resolver, interval, changes));
    channel
}

/// Changes in flight between the resolving task and the balancer; it drains them on every call.
const DISCOVERY_CAPACITY: usize = 64;

/// One member of a balanced channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Member {
    /// The URL as written, used while its host resolves to nothing: calls then fail (or
    /// succeed) as they would on an unbalanced channel, rather than wait for an address.
    Unresolved,
    Address(SocketAddr),
}

/// Scheme, host and port of an endpoint's URI.
struct Target {
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn of(endpoint: &Endpoint) -> Option<Target> {
        let uri = endpoint.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_owned();
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some(Target {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    fn endpoint(&self, address: SocketAddr) -> Option<Endpoint> {
        Endpoint::from_shared(format!("{}://{address}", self.scheme))
            .ok()
            .map(configure)
    }
}

async fn discover<R: Resolve>(
    template: Endpoint,
    resolver: R,
    interval: Duration,
    changes: Sender<Change<Member, Endpoint>>,
) {
    let Some(target) = Target::of(&template) else {
        return;
    };
    let mut current = HashSet::new();
    loop {
        let wanted = match resolver.resolve(&target.host, target.port).await {
            Ok(addresses) if !addresses.is_empty() => {
                addresses.into_iter().map(Member::Address).collect()
            }
            outcome => {
                if let Err(error) = outcome {
                    tracing::debug!(host = %target.host, %error, "cannot resolve a service");
                }
                // A failed or empty answer keeps what worked last: a DNS hiccup must not
                // empty the channel.
                if current.is_empty() {
                    HashSet::from([Member::Unresolved])
                } else {
                    current.clone()
                }
            }
        };
        for (member, insert) in plan(&current, &wanted) {
            let change = match (insert, member) {
                (false, _) => Change::Remove(member),
                (true, Member::Unresolved) => Change::Insert(member, template.clone()),
                (true, Member::Address(address)) => match target.endpoint(address) {
                    Some(endpoint) => Change::Insert(member, endpoint),
                    None => continue,
                },
            };
            if changes.send(change).await.is_err() {
                return;
            }
        }
        if wanted != current {
            tracing::debug!(host = %target.host, members = ?wanted, "service members changed");
        }
        current = wanted;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = changes.closed() => return,
        }
    }
}

/// What moves the balancer from `current` to `wanted`: `(member, true)` to insert,
/// `(member, false)` to remove. Inserts come first so the set never passes through empty.
fn plan(current: &HashSet<Member>, wanted: &HashSet<Member>) -> Vec<(Member, bool)> {
    let mut inserts: Vec<_> = wanted.difference(current).map(|m| (*m, true)).collect();
    let mut removes: Vec<_> = current.difference(wanted).map(|m| (*m, false)).collect();
    inserts.sort();
    removes.sort();
    inserts.extend(removes);
    inserts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Member {
        Member::Address(text.parse().expect("socket address"))
    }

    #[test]
    fn a_change_of_pods_inserts_the_new_before_removing_the_old() {
        let current = HashSet::from([addr("10.0.0.1:50051"), addr("10.0.0.2:50051")]);
        let wanted = HashSet::from([addr("10.0.0.2:50051"), addr("10.0.0.3:50051")]);
        assert_eq!(
            plan(&current, &wanted),
            vec![
                (addr("10.0.0.3:50051"), true),
                (addr("10.0.0.1:50051"), false)
            ]
        );
        assert!(plan(&wanted, &wanted).is_empty());
    }

    #[test]
    fn the_first_addresses_replace_the_unresolved_name() {
        let current = HashSet::from([Member::Unresolved]);
        let wanted = HashSet::from([addr("10.0.0.1:50051")]);
        assert_eq!(
            plan(&current, &wanted),
            vec![(addr("10.0.0.1:50051"), true), (Member::Unresolved, false)]
        );
    }

    #[test]
    fn targets_take_the_scheme_default_port() {
        let endpoint = Endpoint::from_static("http://lead");
        let target = Target::of(&endpoint).expect("has a host");
        assert_eq!((target.host.as_str(), target.port), ("lead", 80));
        let endpoint = Endpoint::from_static("http://[::1]:50051");
        let target = Target::of(&endpoint).expect("has a host");
        assert_eq!((target.host.as_str(), target.port), ("::1", 50051));
        let member = target.endpoint("[::1]:50051".parse().expect("address"));
        assert_eq!(
            member.expect("valid").uri().to_string(),
            "http://[::1]:50051/"
        );
    }
}
