//! [`Listeners`]: the sockets peers connect to, one TCP and one UDP socket per local address
//! on one port number. The UDP sockets carry uTP and the DHT ([`UtpSocket`]). Bound to any
//! address, that is `0.0.0.0` and `[::]` (the IPv6 sockets `IPV6_V6ONLY`, so each family has
//! sockets of its own and addresses never come v4-mapped); a machine without IPv6 listens on
//! IPv4 alone.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use super::transport::Transport;
use crate::utp::UtpSocket;

/// Ports tried after the preferred one when it is taken.
const NEXT_PORTS: u16 = 10;
const BACKLOG: i32 = 1024;

/// The listen sockets of one port number.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<TcpListener>,
    utp: UtpSocket,
    port: u16,
    /// Where the next accept starts looking, so that no socket starves the other.
    next: AtomicUsize,
}

impl Listeners {
    /// Listens on every address of `ips` on `port`, TCP and UDP, or on the next free port of
    /// the nine after it (with `port` 0, a port the system picks); uTP starts on the UDP
    /// sockets (on the current runtime). An IPv6 address the system cannot use is left out
    /// when another address is listened on.
    pub fn bind(ips: &[IpAddr], port: u16) -> io::Result<Self> {
        let mut last_error = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address");
        let tries = if port == 0 { 3 } else { NEXT_PORTS };
        for offset in 0..tries {
            match Self::bind_all(ips, port.saturating_add(offset)) {
                Ok(listeners) => return Ok(listeners),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Every address on one port (the first one picks it when `port` is 0).
    fn bind_all(ips: &[IpAddr], mut port: u16) -> io::Result<Self> {
        let mut sockets = Vec::with_capacity(ips.len());
        let mut udp = Vec::with_capacity(ips.len());
        for ip in ips {
            let bound = listen(SocketAddr::new(*ip, port)).and_then(|tcp| {
                let at = tcp.local_addr()?;
                Ok((tcp, bind_udp(at)?))
            });
            match bound {
                Ok((tcp, datagrams)) => {
                    port = tcp.local_addr()?.port();
                    sockets.push(tcp);
                    udp.push(datagrams);
                }
                Err(e) if ip.is_ipv6() && !sockets.is_empty() && no_ipv6(&e) => {
                    tracing::info!(error = %e, "no IPv6 here: listening on IPv4 only");
                }
                Err(e) => return Err(e),
            }
        }
        if sockets.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no address to listen on",
            ));
        }
        Ok(Self {
            sockets,
            utp: UtpSocket::start(udp)?,
            port,
            next: AtomicUsize::new(0),
        })
    }

    /// The uTP endpoint on the UDP sockets (which the DHT shares).
    pub fn utp(&self) -> &UtpSocket {
        &self.utp
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The addresses listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The next connection on any of the sockets, TCP or uTP.
    pub async fn accept(&self) -> io::Result<(Transport, SocketAddr)> {
        tokio::select! {
            tcp = self.accept_tcp() => tcp.map(|(s, addr)| (Transport::Tcp(s), addr)),
            utp = self.utp.accept() => utp.map(|(s, addr)| (Transport::Utp(s), addr)),
        }
    }

    async fn accept_tcp(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| {
            let count = self.sockets.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for i in 0..count {
                if let Some(socket) = self.sockets.get((start + i) % count)
                    && let Poll::Ready(accepted) = socket.poll_accept(cx)
                {
                    return Poll::Ready(accepted);
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Listeners {
    /// The UDP sockets close with the TCP ones: uTP connections end, and the DHT's share stops.
    fn drop(&mut self) {
        self.utp.close();
    }
}

/// A listening, non-blocking socket on `addr`, IPv6 ones for IPv6 alone.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A UDP socket on `addr` (IPv6 ones for IPv6 alone), for uTP and the DHT.
fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The errors of a system without (usable) IPv6.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[tokio::test]
    async fn one_port_takes_peers_over_ipv4_and_ipv6() {
        let ips = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        let listeners = Listeners::bind(&ips, 0).unwrap();
        let port = listeners.port();
        let addrs = listeners.local_addrs();
        assert!(addrs.iter().all(|a| a.port() == port));
        for addr in addrs {
            let dialled = TcpStream::connect(addr).await.unwrap();
            let (_, from) = listeners.accept_tcp().await.unwrap();
            assert_eq!(from, dialled.local_addr().unwrap());
            assert_eq!(from.is_ipv6(), addr.is_ipv6(), "never v4-mapped");
        }
    }

    #[tokio::test]
    async fn utp_listens_on_the_same_port_and_a_taken_udp_port_moves_both() {
        let ips = [Ipv4Addr::LOCALHOST.into()];
        let listeners = Listeners::bind(&ips, 0).unwrap();
        assert_eq!(
            listeners.utp().ipv4_addr().unwrap().port(),
            listeners.port()
        );
        let dialler =
            UtpSocket::start(vec![std::net::UdpSocket::bind("127.0.0.1:0").unwrap()]).unwrap();
        let to = listeners.utp().ipv4_addr().unwrap();
        let dial = async {
            // The session hears of a uTP connection once the peer has sent something.
            let mut stream = dialler.connect(to).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"hello")
                .await
                .unwrap();
            stream
        };
        let (_dialled, accepted) = tokio::join!(dial, listeners.accept());
        assert!(accepted.unwrap().0.is_utp());
        // UDP taken, TCP free: the next port, for both.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = udp.local_addr().unwrap().port();
        let moved = Listeners::bind(&ips, taken).unwrap();
        assert_ne!(moved.port(), taken);
        assert_eq!(moved.utp().ipv4_addr().unwrap().port(), moved.port());
    }

    #[tokio::test]
    async fn a_taken_port_moves_both_sockets_to_the_next() {
        // The IPv4 port is taken; the IPv6 one is free, and still both move.
        let taken = Listeners::bind(&[Ipv4Addr::LOCALHOST.into()], 0).unwrap();
        let ips = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        let moved = Listeners::bind(&ips, taken.port()).unwrap();
        assert!(moved.port() > taken.port() && moved.port() < taken.port() + NEXT_PORTS);
        assert!(moved.local_addrs().iter().all(|a| a.port() == moved.port()));
    }

    #[test]
    fn nothing_to_listen_on_is_an_error() {
        assert!(Listeners::bind(&[], 0).is_err());
    }
}
