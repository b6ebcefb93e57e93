//! Which name a node advertises to its peers (`spark.public_dns`, `spark.local_hostname`).
//!
//! By default a node advertises its FQDN: right when every container has its own resolvable name
//! (Compose with one container per service, Kubernetes StatefulSets, KubeDirector). It is wrong for
//! replicas of one Compose or Swarm service: they share the service's name, which resolves to the
//! service's virtual IP (Swarm) or to any replica (Compose), so the master and drivers would reach a
//! random replica. `spark.advertise: address` (`SPARKVISOR_ADVERTISE=address`) makes the node
//! advertise its own IP address instead: the local address of the route towards the master, which is
//! the address on the network the master and the drivers share with this node (docs/swarm.md).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

/// The value of `spark.advertise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advertise {
    /// Advertise the node's FQDN (the default).
    Hostname,
    /// Advertise the node's IP address on the route to the master.
    Address,
}

impl Advertise {
    /// Parses `hostname` or `address`.
    pub fn parse(text: &str) -> Result<Advertise, String> {
        match text {
            "hostname" => Ok(Advertise::Hostname),
            "address" => Ok(Advertise::Address),
            other => Err(format!(
                "invalid spark.advertise {other:?}: use hostname or address"
            )),
        }
    }
}

/// The name to advertise and where it came from (for `inspect`). With `address`, the address is
/// found by [`route_address`] towards the master host, then towards the node's own FQDN; when
/// neither resolves, the FQDN is kept (and a warning logged) so that a node still starts.
pub fn advertised_name(
    setting: Option<&str>,
    master_host: Option<&str>,
    fqdn: &str,
) -> (String, &'static str) {
    if setting.and_then(|s| Advertise::parse(s).ok()) != Some(Advertise::Address) {
        return (fqdn.to_string(), "node.fqdn");
    }
    for (host, from) in [
        (
            master_host,
            "spark.advertise=address: the local address routing to spark.master_host",
        ),
        (
            Some(fqdn),
            "spark.advertise=address: the address of node.fqdn",
        ),
    ] {
        if let Some(ip) = host.and_then(route_address) {
            return (ip.to_string(), from);
        }
    }
    log::warn!("spark.advertise=address: no address found (master host {master_host:?} and {fqdn:?} do not resolve): advertising {fqdn}");
    (fqdn.to_string(), "node.fqdn")
}

/// The local address the kernel would use to reach `host` (resolved by the system resolver): a UDP
/// socket is connected, which picks a route and a source address without sending anything.
/// Loopback results are skipped: they are never reachable from another container.
pub fn route_address(host: &str) -> Option<IpAddr> {
    let targets: Vec<SocketAddr> = (host, 9).to_socket_addrs().ok()?.collect();
    targets.iter().find_map(|target| {
        let bind: SocketAddr = if target.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(bind).ok()?;
        socket.connect(target).ok()?;
        let local = socket.local_addr().ok()?.ip();
        (!local.is_loopback() && !local.is_unspecified()).then_some(local)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_the_two_modes() {
        assert_eq!(Advertise::parse("address"), Ok(Advertise::Address));
        assert_eq!(Advertise::parse("hostname"), Ok(Advertise::Hostname));
        assert!(Advertise::parse("ip").is_err());
        assert!(Advertise::parse("").is_err());
    }

    #[test]
    fn default_and_hostname_advertise_the_fqdn() {
        assert_eq!(
            advertised_name(None, Some("master"), "w1.example"),
            ("w1.example".to_string(), "node.fqdn")
        );
        assert_eq!(
            advertised_name(Some("hostname"), Some("master"), "w1.example").0,
            "w1.example"
        );
    }

    #[test]
    fn loopback_routes_are_never_advertised() {
        assert_eq!(route_address("127.0.0.1"), None);
        assert_eq!(route_address("no-such-host.invalid"), None);
    }

    #[test]
    fn address_mode_advertises_an_address_of_this_host() {
        // A public address needs no reachability: connecting a UDP socket only picks the route.
        // Hosts without any non-loopback route keep the FQDN.
        let (name, _) = advertised_name(Some("address"), Some("192.0.2.1"), "w1.invalid");
        match route_address("192.0.2.1") {
            Some(ip) => assert_eq!(name, ip.to_string()),
            None => assert_eq!(name, "w1.invalid"),
        }
    }
}
