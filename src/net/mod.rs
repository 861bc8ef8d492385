//! Where Rivulet's own sockets live: the address or network interface the user binds to
//! ([`Binding`]), what that binding means right now ([`Reach`]: any address, an interface's
//! addresses, or down), the listen sockets peers connect to ([`Listeners`], IPv4 and IPv6),
//! and dialling out from the bound address.
//!
//! Every peer, tracker and DHT socket takes its local address from [`Reach`], so nothing
//! falls back to another address when the bound interface goes away: dials fail with the
//! reason instead. (Binding is by source address, not `SO_BINDTODEVICE`: which interface a
//! packet leaves by is the routing table's choice for that source.)

mod interfaces;
mod listen;
mod transport;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use tokio::net::{TcpSocket, TcpStream};

pub use interfaces::{is_global_ipv6, public_ipv6};
pub use listen::Listeners;
pub use transport::{Dialer, Transport, TransportMode, TransportReader, TransportWriter};

/// What the user binds Rivulet's sockets to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Binding {
    /// Every interface, IPv4 and IPv6.
    #[default]
    Any,
    /// One address (`0.0.0.0` or `::` for every address of that family only).
    Address(IpAddr),
    /// The addresses of one network interface (`wg0`), whatever they are at the moment.
    Interface(String),
}

impl FromStr for Binding {
    type Err = BindingError;

    /// An empty string or `any`; an IP address; or an interface name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("any") {
            return Ok(Binding::Any);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Binding::Address(ip));
        }
        // Linux's rule for names: at most 15 bytes, no '/', no whitespace, not "." or "..".
        let valid = s.len() <= 15
            && s != "."
            && s != ".."
            && !s.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
        if valid {
            Ok(Binding::Interface(s.to_string()))
        } else {
            Err(BindingError(s.to_string()))
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Any => f.write_str("any"),
            Binding::Address(ip) => write!(f, "{ip}"),
            Binding::Interface(name) => f.write_str(name),
        }
    }
}

/// Neither an address nor an interface name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither an IP address nor a network interface name")]
pub struct BindingError(String);

/// What a [`Binding`] means at the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Any address: the system picks the source of each connection.
    Any,
    /// Only these local addresses (one per family at most); dialling a peer of a family
    /// without one fails at once.
    Bound {
        v4: Option<Ipv4Addr>,
        v6: Option<Ipv6Addr>,
    },
    /// The binding has no address now; the text says why ("network interface wg0 is down").
    Down(String),
}

impl Reach {
    /// The addresses to listen on.
    pub fn listen_ips(&self) -> Vec<IpAddr> {
        match self {
            Reach::Any => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            Reach::Bound { v4, v6 } => v4
                .map(IpAddr::from)
                .into_iter()
                .chain(v6.map(IpAddr::from))
                .collect(),
            Reach::Down(_) => Vec::new(),
        }
    }

    /// The local address to reach `peer` from: `None` lets the system choose.
    pub fn source_for(&self, peer: IpAddr) -> io::Result<Option<IpAddr>> {
        let peer = peer.to_canonical();
        match self {
            Reach::Any => Ok(None),
            Reach::Bound { v4, v6 } => {
                let source = match peer {
                    IpAddr::V4(_) => v4.map(IpAddr::from),
                    IpAddr::V6(_) => v6.map(IpAddr::from),
                };
                match source {
                    Some(ip) if ip.is_unspecified() => Ok(None),
                    Some(ip) => Ok(Some(ip)),
                    None => Err(io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        format!("the bound interface has no address to reach {peer} from"),
                    )),
                }
            }
            Reach::Down(reason) => Err(io::Error::new(io::ErrorKind::NetworkDown, reason.clone())),
        }
    }

    /// The one address HTTP requests leave from (IPv4 first), `None` for any.
    pub fn http_source(&self) -> Option<IpAddr> {
        match self {
            Reach::Bound { v4, v6 } => v4
                .map(IpAddr::from)
                .or(v6.map(IpAddr::from))
                .filter(|ip| !ip.is_unspecified()),
            Reach::Any | Reach::Down(_) => None,
        }
    }

    /// Why nothing can connect, when the binding is down.
    pub fn down(&self) -> Option<&str> {
        match self {
            Reach::Down(reason) => Some(reason),
            _ => None,
        }
    }

    /// The IPv4 address the DHT and local discovery use (unspecified: any).
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match self {
            Reach::Any => Some(Ipv4Addr::UNSPECIFIED),
            Reach::Bound { v4, .. } => *v4,
            Reach::Down(_) => None,
        }
    }
}

impl Binding {
    /// Bound to loopback: nothing beyond this machine is reached (no public DHT routers, no
    /// local discovery).
    pub fn is_loopback(&self) -> bool {
        match self {
            Binding::Address(ip) => ip.is_loopback(),
            Binding::Interface(name) => name == "lo",
            Binding::Any => false,
        }
    }

    /// Where Rivulet's own tracker listens: the bound address, or every IPv4 address.
    pub fn server_ip(&self) -> IpAddr {
        match self {
            Binding::Address(ip) => *ip,
            Binding::Any | Binding::Interface(_) => Ipv4Addr::UNSPECIFIED.into(),
        }
    }

    /// What the binding means now, from the system's interfaces; an error when they cannot
    /// be listed (then nothing is known, which is not the same as down).
    pub fn resolve(&self) -> io::Result<Reach> {
        Ok(match self {
            Binding::Any => Reach::Any,
            Binding::Address(ip) if ip.is_unspecified() || ip.is_loopback() => bound_to(*ip),
            Binding::Address(ip) => match interfaces::has_address(*ip)? {
                true => bound_to(*ip),
                false => Reach::Down(format!("address {ip} is on no network interface")),
            },
            Binding::Interface(name) => match interfaces::addresses_of(name)? {
                Some((v4, v6)) => Reach::Bound { v4, v6 },
                None => Reach::Down(format!("network interface {name} is down")),
            },
        })
    }

    /// What the binding means at start: a failed lookup counts as down, with its reason.
    pub fn resolve_or_down(&self) -> Reach {
        self.resolve()
            .unwrap_or_else(|e| Reach::Down(format!("cannot list the network interfaces: {e}")))
    }
}

fn bound_to(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => Reach::Bound {
            v4: Some(v4),
            v6: None,
        },
        IpAddr::V6(v6) => Reach::Bound {
            v4: None,
            v6: Some(v6),
        },
    }
}

/// Opens a TCP connection to `peer`, from `source` when given.
pub async fn connect(peer: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(peer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse_as_any_an_address_or_a_name() {
        assert_eq!("".parse::<Binding>(), Ok(Binding::Any));
        assert_eq!("any".parse::<Binding>(), Ok(Binding::Any));
        assert_eq!(
            "10.8.0.2".parse::<Binding>(),
            Ok(Binding::Address(Ipv4Addr::new(10, 8, 0, 2).into()))
        );
        assert_eq!(
            "::1".parse::<Binding>(),
            Ok(Binding::Address(Ipv6Addr::LOCALHOST.into()))
        );
        assert_eq!(
            "wg0".parse::<Binding>(),
            Ok(Binding::Interface("wg0".into()))
        );
        assert!("a/b".parse::<Binding>().is_err());
        assert!("much-too-long-interface".parse::<Binding>().is_err());
        assert!("fe80::1%eth0".parse::<Binding>().is_err());
        assert_eq!(Binding::Interface("wg0".into()).to_string(), "wg0");
    }

    #[test]
    fn a_bound_reach_dials_from_the_family_it_has() {
        let reach = Reach::Bound {
            v4: Some(Ipv4Addr::new(10, 8, 0, 2)),
            v6: None,
        };
        assert_eq!(
            reach.source_for(Ipv4Addr::new(1, 2, 3, 4).into()).unwrap(),
            Some(Ipv4Addr::new(10, 8, 0, 2).into())
        );
        // A v4-mapped address is an IPv4 peer.
        let mapped: IpAddr = "::ffff:1.2.3.4".parse().unwrap();
        assert!(reach.source_for(mapped).unwrap().is_some());
        assert!(reach.source_for(Ipv6Addr::LOCALHOST.into()).is_err());
        assert_eq!(
            reach.listen_ips(),
            vec![IpAddr::from(Ipv4Addr::new(10, 8, 0, 2))]
        );
        assert_eq!(reach.http_source(), Some(Ipv4Addr::new(10, 8, 0, 2).into()));
    }

    #[test]
    fn a_down_reach_refuses_every_dial_with_its_reason() {
        let reach = Reach::Down("network interface wg0 is down".into());
        let error = reach.source_for(Ipv4Addr::LOCALHOST.into()).unwrap_err();
        assert_eq!(error.to_string(), "network interface wg0 is down");
        assert!(reach.listen_ips().is_empty());
        assert_eq!(reach.down(), Some("network interface wg0 is down"));
    }

    #[test]
    fn any_reach_listens_on_both_families() {
        assert_eq!(Reach::Any.listen_ips().len(), 2);
        assert_eq!(
            Reach::Any.source_for(Ipv6Addr::LOCALHOST.into()).unwrap(),
            None
        );
        assert_eq!(Binding::Any.resolve().unwrap(), Reach::Any);
    }

    #[test]
    fn a_missing_interface_is_down() {
        let reach = Binding::Interface("rvnosuch0".into()).resolve().unwrap();
        assert_eq!(reach.down(), Some("network interface rvnosuch0 is down"));
        let reach = Binding::Address(Ipv4Addr::new(192, 0, 2, 77).into()).resolve_or_down();
        assert!(reach.down().is_some());
        assert_eq!(
            Binding::Address(Ipv4Addr::LOCALHOST.into()).resolve_or_down(),
            Reach::Bound {
                v4: Some(Ipv4Addr::LOCALHOST),
                v6: None
            }
        );
    }
}
