//! [`Listeners`]: the TCP sockets peers connect to, one per local address on one port number.
//! Bound to any address, that is `0.0.0.0` and `[::]` (the IPv6 socket `IPV6_V6ONLY`, so each
//! family has a socket of its own and addresses never come v4-mapped); a machine without
//! IPv6 listens on IPv4 alone.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Ports tried after the preferred one when it is taken.
const NEXT_PORTS: u16 = 10;
const BACKLOG: i32 = 1024;

/// The listen sockets of one port number.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<TcpListener>,
    port: u16,
    /// Where the next accept starts looking, so that no socket starves the other.
    next: AtomicUsize,
}

impl Listeners {
    /// Listens on every address of `ips` on `port`, or on the next free port of the nine after
    /// it (with `port` 0, a port the system picks). An IPv6 address the system cannot use is
    /// left out when another address is listened on.
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
        for ip in ips {
            match listen(SocketAddr::new(*ip, port)) {
                Ok(socket) => {
                    port = socket.local_addr()?.port();
                    sockets.push(socket);
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
            port,
            next: AtomicUsize::new(0),
        })
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

    /// The next connection on any of the sockets.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
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
            let (_, from) = listeners.accept().await.unwrap();
            assert_eq!(from, dialled.local_addr().unwrap());
            assert_eq!(from.is_ipv6(), addr.is_ipv6(), "never v4-mapped");
        }
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
