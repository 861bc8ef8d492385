//! Local service discovery (BEP 14): torrents announced to the multicast group
//! 239.192.152.143:6771 on the local network, and peers found from the announces of others.
//!
//! [`Lsd`] is a task on the engine's runtime with one socket that listens on the group (with
//! `SO_REUSEADDR`/`SO_REUSEPORT`, so several clients on one machine can) and sends from the
//! session's listen address. A torrent registers its info hash and is announced at once, then
//! every [`ANNOUNCE_EVERY`], never more than once per [`MIN_GAP`]; the peers found for it
//! arrive on its receiver, which ends its registration when dropped. Our own announces are
//! known by their cookie and ignored.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::ids::InfoHash;

pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
pub const PORT: u16 = 6771;
/// How often a torrent is announced (BEP 14 suggests every five minutes).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);
/// A torrent is never announced more often than this.
pub const MIN_GAP: Duration = Duration::from_secs(60);
/// Info hashes in one announce (it must fit a datagram).
const HASHES_PER_ANNOUNCE: usize = 16;
/// Torrents registered at most.
const MAX_REGISTERED: usize = 10_000;
/// Announces read from one address per minute; the rest are ignored.
const ANNOUNCES_PER_IP_MINUTE: u32 = 60;

/// One `BT-SEARCH` announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub port: u16,
    pub info_hashes: Vec<InfoHash>,
    pub cookie: Option<String>,
}

/// A datagram that is not an announce we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LsdError {
    #[error("LSD: not a BT-SEARCH message")]
    NotSearch,
    #[error("LSD: no valid Port header")]
    Port,
    #[error("LSD: no valid Infohash header")]
    InfoHash,
}

impl Announce {
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {GROUP}:{PORT}\r\nPort: {}\r\n",
            self.port
        );
        for hash in &self.info_hashes {
            text.push_str(&format!("Infohash: {}\r\n", hash.to_hex()));
        }
        if let Some(cookie) = &self.cookie {
            text.push_str(&format!("cookie: {cookie}\r\n"));
        }
        text.push_str("\r\n\r\n");
        text.into_bytes()
    }

    /// Reads an announce; headers are matched without regard to case, unknown ones ignored.
    pub fn parse(datagram: &[u8]) -> Result<Self, LsdError> {
        let text = std::str::from_utf8(datagram).map_err(|_| LsdError::NotSearch)?;
        let mut lines = text.split("\r\n");
        if !lines
            .next()
            .is_some_and(|l| l.starts_with("BT-SEARCH * HTTP/1.1"))
        {
            return Err(LsdError::NotSearch);
        }
        let (mut port, mut info_hashes, mut cookie) = (None, Vec::new(), None);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "port" => port = value.parse::<u16>().ok().filter(|&p| p != 0),
                "infohash" => {
                    if info_hashes.len() < HASHES_PER_ANNOUNCE * 4
                        && let Some(hash) = InfoHash::from_hex(&value.to_ascii_lowercase())
                    {
                        info_hashes.push(hash);
                    }
                }
                "cookie" => cookie = Some(value.chars().take(64).collect()),
                _ => {}
            }
        }
        let port = port.ok_or(LsdError::Port)?;
        if info_hashes.is_empty() {
            return Err(LsdError::InfoHash);
        }
        Ok(Self {
            port,
            info_hashes,
            cookie,
        })
    }
}

enum LsdCommand {
    Register {
        info_hash: InfoHash,
        port: u16,
        found: UnboundedSender<SocketAddr>,
    },
}

/// The handle on the running service; cheap to clone. The service ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct Lsd {
    commands: UnboundedSender<LsdCommand>,
}

impl std::fmt::Debug for Lsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lsd")
    }
}

impl Lsd {
    /// Joins the group on the interface of `listen_ip` (any interface when unspecified) and
    /// starts the service on the current runtime.
    pub fn start(listen_ip: IpAddr) -> std::io::Result<Lsd> {
        let interface = match listen_ip {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT).into())?;
        socket.join_multicast_v4(&GROUP, &interface)?;
        if !interface.is_unspecified() {
            socket.set_multicast_if_v4(&interface)?;
        }
        socket.set_multicast_ttl_v4(1)?;
        socket.set_multicast_loop_v4(true)?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket.into())?;
        let (commands, inbox) = mpsc::unbounded_channel();
        let service = Service {
            socket,
            cookie: format!("{:016x}", rand::random::<u64>()),
            torrents: HashMap::new(),
            per_ip: HashMap::new(),
            per_ip_since: Instant::now(),
        };
        tokio::spawn(service.run(inbox));
        Ok(Lsd { commands })
    }

    /// Announces `info_hash` (our peers listen on `port`) until the receiver is dropped; the
    /// peers other announces name for it arrive there.
    pub fn register(&self, info_hash: InfoHash, port: u16) -> UnboundedReceiver<SocketAddr> {
        let (found, rx) = mpsc::unbounded_channel();
        let _ = self.commands.send(LsdCommand::Register {
            info_hash,
            port,
            found,
        });
        rx
    }
}

struct Registered {
    port: u16,
    found: UnboundedSender<SocketAddr>,
    next: Instant,
}

struct Service {
    socket: UdpSocket,
    cookie: String,
    torrents: HashMap<InfoHash, Registered>,
    per_ip: HashMap<IpAddr, u32>,
    per_ip_since: Instant,
}

impl Service {
    async fn run(mut self, mut inbox: UnboundedReceiver<LsdCommand>) {
        let mut buf = [0u8; 1500];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received
                        && let Some(datagram) = buf.get(..len)
                    {
                        self.on_datagram(datagram, from);
                    }
                }
                command = inbox.recv() => match command {
                    Some(LsdCommand::Register { info_hash, port, found }) => {
                        if self.torrents.len() < MAX_REGISTERED {
                            let next = Instant::now();
                            self.torrents.insert(info_hash, Registered { port, found, next });
                            self.announce_due();
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => self.announce_due(),
            }
        }
    }

    fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        let now = Instant::now();
        if now.duration_since(self.per_ip_since) >= Duration::from_secs(60) {
            self.per_ip.clear();
            self.per_ip_since = now;
        }
        let count = self.per_ip.entry(from.ip()).or_default();
        *count += 1;
        if *count > ANNOUNCES_PER_IP_MINUTE {
            return;
        }
        let Ok(announce) = Announce::parse(datagram) else {
            return;
        };
        if announce.cookie.as_deref() == Some(self.cookie.as_str()) {
            return;
        }
        let peer = SocketAddr::new(from.ip(), announce.port);
        for hash in &announce.info_hashes {
            if let Some(t) = self.torrents.get(hash) {
                let _ = t.found.send(peer);
            }
        }
    }

    /// Announces the torrents whose turn has come, a few per datagram, grouped by port.
    fn announce_due(&mut self) {
        let now = Instant::now();
        self.torrents.retain(|_, t| !t.found.is_closed());
        let mut due: HashMap<u16, Vec<InfoHash>> = HashMap::new();
        for (hash, t) in &mut self.torrents {
            if t.next <= now {
                t.next = now + ANNOUNCE_EVERY.max(MIN_GAP);
                due.entry(t.port).or_default().push(*hash);
            }
        }
        for (port, hashes) in due {
            for chunk in hashes.chunks(HASHES_PER_ANNOUNCE) {
                let announce = Announce {
                    port,
                    info_hashes: chunk.to_vec(),
                    cookie: Some(self.cookie.clone()),
                };
                if let Err(e) = self
                    .socket
                    .try_send_to(&announce.encode(), (GROUP, PORT).into())
                {
                    tracing::debug!(error = %e, "LSD announce not sent");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_round_trip_and_read_the_bep_14_example() {
        let a = Announce {
            port: 6881,
            info_hashes: vec![InfoHash([0xab; 20]), InfoHash([0x01; 20])],
            cookie: Some("c00k1e".into()),
        };
        assert_eq!(Announce::parse(&a.encode()), Ok(a));
        let example = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\nInfohash: ABCDEF0123456789ABCDEF0123456789ABCDEF01\r\n\r\n\r\n";
        let read = Announce::parse(example).unwrap();
        assert_eq!(read.port, 51413);
        assert_eq!(read.info_hashes.len(), 1, "upper-case hex is read");
        assert_eq!(read.cookie, None);
    }

    #[test]
    fn bad_announces_are_refused() {
        assert_eq!(
            Announce::parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(LsdError::NotSearch)
        );
        assert_eq!(
            Announce::parse(b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: abcdef0123456789abcdef0123456789abcdef01\r\n\r\n"),
            Err(LsdError::Port)
        );
        assert_eq!(
            Announce::parse(b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: xyz\r\n\r\n"),
            Err(LsdError::InfoHash)
        );
        assert_eq!(Announce::parse(&[0xff, 0xfe]), Err(LsdError::NotSearch));
    }
}
