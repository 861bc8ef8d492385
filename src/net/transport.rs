//! The byte stream under a peer connection: TCP or uTP ([`Transport`]), and which of the two
//! a dial tries ([`TransportMode`]). Everything above (encryption, the peer protocol) reads
//! and writes a `Transport` the same way whichever it is.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::sync::MutexExt;
use crate::utp::{UtpReadHalf, UtpSocket, UtpStream, UtpWriteHalf};

/// Which transports dialling uses. Inbound connections are taken over both, except that
/// `TcpOnly` ignores uTP altogether.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    /// uTP first (as libtorrent dials), TCP as well when the peer has not answered over uTP
    /// within [`UTP_HEAD_START`].
    #[default]
    UtpFirst,
    /// TCP first, uTP when TCP cannot reach the peer.
    TcpFirst,
    TcpOnly,
    UtpOnly,
}

impl TransportMode {
    pub const ALL: [TransportMode; 4] = [
        TransportMode::UtpFirst,
        TransportMode::TcpFirst,
        TransportMode::TcpOnly,
        TransportMode::UtpOnly,
    ];

    /// What the setting is called in the desktop app.
    pub fn label(self) -> &'static str {
        match self {
            Self::UtpFirst => "uTP first",
            Self::TcpFirst => "TCP first",
            Self::TcpOnly => "TCP only",
            Self::UtpOnly => "uTP only",
        }
    }

    /// Whether peers may connect over uTP.
    pub fn accepts_utp(self) -> bool {
        self != Self::TcpOnly
    }
}

impl fmt::Display for TransportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UtpFirst => "utp-first",
            Self::TcpFirst => "tcp-first",
            Self::TcpOnly => "tcp",
            Self::UtpOnly => "utp",
        })
    }
}

impl FromStr for TransportMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "utp-first" | "both" => Ok(Self::UtpFirst),
            "tcp-first" => Ok(Self::TcpFirst),
            "tcp" => Ok(Self::TcpOnly),
            "utp" => Ok(Self::UtpOnly),
            other => Err(format!(
                "unknown transport {other:?} (utp-first, tcp-first, tcp or utp)"
            )),
        }
    }
}

/// A connection to a peer over TCP or uTP.
#[derive(Debug)]
pub enum Transport {
    Tcp(TcpStream),
    Utp(UtpStream),
}

/// The reading half of a [`Transport`].
pub enum TransportReader {
    Tcp(OwnedReadHalf),
    Utp(UtpReadHalf),
}

/// The writing half of a [`Transport`].
pub enum TransportWriter {
    Tcp(OwnedWriteHalf),
    Utp(UtpWriteHalf),
}

impl Transport {
    pub fn is_utp(&self) -> bool {
        matches!(self, Self::Utp(_))
    }

    pub fn into_split(self) -> (TransportReader, TransportWriter) {
        match self {
            Self::Tcp(tcp) => {
                let (r, w) = tcp.into_split();
                (TransportReader::Tcp(r), TransportWriter::Tcp(w))
            }
            Self::Utp(utp) => {
                let (r, w) = utp.into_split();
                (TransportReader::Utp(r), TransportWriter::Utp(w))
            }
        }
    }
}

/// Delegates `AsyncRead` to whichever stream an enum holds.
macro_rules! read_either {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Utp(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

/// Delegates `AsyncWrite` to whichever stream an enum holds.
macro_rules! write_either {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, data),
                    Self::Utp(s) => Pin::new(s).poll_write(cx, data),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Utp(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Utp(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

read_either!(Transport);
read_either!(TransportReader);
write_either!(Transport);
write_either!(TransportWriter);

/// How long a `UtpFirst` dial waits for a uTP answer before dialling TCP as well (as happy
/// eyeballs, RFC 8305, gives IPv6 a head start): a peer without uTP costs this much, not
/// uTP's whole connect timeout.
pub const UTP_HEAD_START: Duration = Duration::from_millis(500);

/// Peers remembered as not answering over uTP, so that the next dial goes straight to TCP.
/// Bounded: forgotten all at once when full (a forgotten peer costs one more uTP try).
const REMEMBERED_WITHOUT_UTP: usize = 4096;

/// How the session dials peers: from which address, over which transports.
#[derive(Debug, Default)]
pub struct Dialer {
    without_utp: Mutex<HashSet<SocketAddr>>,
}

impl Dialer {
    /// Connects to `peer` as `mode` says; TCP dials come from `source` and give up after
    /// `tcp_timeout`, uTP dials go out of `utp`'s socket of the peer's family.
    pub async fn dial(
        &self,
        peer: SocketAddr,
        source: Option<IpAddr>,
        mode: TransportMode,
        utp: Option<&UtpSocket>,
        tcp_timeout: Duration,
    ) -> io::Result<Transport> {
        let tcp = async {
            let stream = tokio::time::timeout(tcp_timeout, super::connect(peer, source))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
            stream.set_nodelay(true)?;
            Ok(Transport::Tcp(stream))
        };
        let try_utp = utp.filter(|_| !self.without_utp.locked().contains(&peer));
        match (mode, try_utp) {
            (TransportMode::TcpOnly, _) | (TransportMode::UtpFirst, None) => tcp.await,
            (TransportMode::UtpOnly, _) => match utp {
                Some(utp) => utp.connect(peer).await.map(Transport::Utp),
                None => Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "no uTP socket",
                )),
            },
            (TransportMode::UtpFirst, Some(utp)) => {
                let utp_dial = utp.connect(peer);
                tokio::pin!(utp_dial);
                // uTP's head start: a peer that answers it by then is reached over uTP.
                let head_start = tokio::time::sleep(UTP_HEAD_START);
                tokio::select! {
                    dialled = &mut utp_dial => return self.utp_or_tcp(peer, dialled, tcp).await,
                    _ = head_start => {}
                }
                // No answer yet: TCP races on, and the first connection made wins (a uTP
                // dial given up on closes its connection).
                tokio::pin!(tcp);
                tokio::select! {
                    dialled = &mut utp_dial => self.utp_or_tcp(peer, dialled, tcp).await,
                    dialled = &mut tcp => match dialled {
                        Ok(stream) => {
                            tracing::debug!(%peer, "TCP answered before uTP");
                            self.remember_without_utp(peer);
                            Ok(stream)
                        }
                        Err(e) => utp_dial.await.map(Transport::Utp).map_err(|_| e),
                    },
                }
            }
            (TransportMode::TcpFirst, utp) => match (tcp.await, utp) {
                (Ok(stream), _) => Ok(stream),
                (Err(e), Some(utp)) => {
                    tracing::debug!(%peer, error = %e, "no TCP connection: dialling over uTP");
                    utp.connect(peer).await.map(Transport::Utp)
                }
                (Err(e), None) => Err(e),
            },
        }
    }

    /// The uTP dial's outcome, or, when it failed, the TCP dial's.
    async fn utp_or_tcp(
        &self,
        peer: SocketAddr,
        dialled: io::Result<UtpStream>,
        tcp: impl Future<Output = io::Result<Transport>>,
    ) -> io::Result<Transport> {
        match dialled {
            Ok(stream) => Ok(Transport::Utp(stream)),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "no uTP connection: dialling over TCP");
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.remember_without_utp(peer);
                }
                tcp.await
            }
        }
    }

    fn remember_without_utp(&self, peer: SocketAddr) {
        let mut without = self.without_utp.locked();
        if without.len() >= REMEMBERED_WITHOUT_UTP {
            without.clear();
        }
        without.insert(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_the_same() {
        for mode in TransportMode::ALL {
            assert_eq!(mode.to_string().parse::<TransportMode>(), Ok(mode));
        }
        assert_eq!("both".parse::<TransportMode>(), Ok(TransportMode::UtpFirst));
        assert!("udp".parse::<TransportMode>().is_err());
    }

    fn utp_socket() -> UtpSocket {
        UtpSocket::start(vec![std::net::UdpSocket::bind("127.0.0.1:0").unwrap()]).unwrap()
    }

    #[tokio::test]
    async fn utp_first_falls_back_to_tcp_and_remembers() {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tcp.local_addr().unwrap();
        let ours = utp_socket();
        let dialer = Dialer::default();
        let dial = || {
            dialer.dial(
                peer,
                None,
                TransportMode::UtpFirst,
                Some(&ours),
                Duration::from_secs(5),
            )
        };
        let started = std::time::Instant::now();
        assert!(!dial().await.unwrap().is_utp());
        let took = started.elapsed();
        assert!(
            took >= UTP_HEAD_START && took < crate::utp::conn::CONNECT_TIMEOUT,
            "TCP once uTP's head start is over, not after its connect timeout: {took:?}"
        );
        let started = std::time::Instant::now();
        assert!(!dial().await.unwrap().is_utp());
        assert!(started.elapsed() < UTP_HEAD_START, "straight to TCP");
    }

    #[tokio::test]
    async fn utp_first_takes_utp_when_the_peer_answers() {
        let theirs = utp_socket();
        let peer = theirs.ipv4_addr().unwrap();
        let accepting = tokio::spawn(async move { theirs.accept().await.map(|_| ()) });
        let dialer = Dialer::default();
        let ours = utp_socket();
        let mut dialled = dialer
            .dial(
                peer,
                None,
                TransportMode::UtpFirst,
                Some(&ours),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(dialled.is_utp());
        // The peer's session hears of the connection once something arrives.
        tokio::io::AsyncWriteExt::write_all(&mut dialled, b"hello")
            .await
            .unwrap();
        accepting.await.unwrap().unwrap();
    }
}
