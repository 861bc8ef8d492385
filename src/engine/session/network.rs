//! The session's network: watching what its binding means ([`Reach`]: an interface coming
//! and going, its addresses changing), and moving with it the listen sockets, the DHT node,
//! local discovery, the trackers' source address and every torrent (which stops, showing why,
//! while the binding is down, and starts again when it is back).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::actor::SessionActor;
use crate::dht::{Dht, DhtConfig};
use crate::engine::torrent::TorrentCommand;
use crate::lsd::Lsd;
use crate::net::{Listeners, Reach, Transport};
use crate::portmap::{MappingStatus, PortMapper};

/// The port mapper of one port from one source address.
pub(super) struct MappedPort {
    mapper: PortMapper,
    port: u16,
    source: std::net::Ipv4Addr,
}

impl MappedPort {
    pub(super) fn status(&self) -> MappingStatus {
        self.mapper.status().borrow().clone()
    }

    /// Removes the mapping at the router (bounded by the mapper's own deadline).
    pub(super) async fn stop(self) {
        self.mapper.stop().await;
    }
}

/// How often the interfaces are looked at (a binding going down is seen within this).
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The next inbound connection; never, while nothing listens.
pub(super) async fn accept(listeners: Option<&Listeners>) -> io::Result<(Transport, SocketAddr)> {
    match listeners {
        Some(listeners) => listeners.accept().await,
        None => std::future::pending().await,
    }
}

impl SessionActor {
    /// Looks at the interfaces: the IPv6 address to announce, and whether the binding moved.
    pub(super) async fn check_network(&mut self, listeners: &mut Option<Listeners>) {
        let reach = match self.config.bind.resolve() {
            Ok(reach) => reach,
            Err(e) => {
                // Out of descriptors for a moment, say: nothing is known, so nothing changes.
                tracing::debug!(error = %e, "cannot list the network interfaces");
                return;
            }
        };
        let public_ipv6 = match &reach {
            Reach::Any => crate::net::public_ipv6(),
            Reach::Bound { v6, .. } => v6.filter(crate::net::is_global_ipv6),
            Reach::Down(_) => None,
        };
        self.live.set_public_ipv6(public_ipv6);
        if reach != self.live.reach() {
            self.network_changed(reach, listeners).await;
        } else if listeners.is_none() && reach.down().is_none() {
            // Up, but the last bind failed (an address still being configured): try again.
            self.listen(&reach, listeners);
            self.apply_dht().await;
            self.apply_port_mapping().await;
        }
    }

    /// The binding means something else now: everything that uses the network follows.
    pub(super) async fn network_changed(
        &mut self,
        reach: Reach,
        listeners: &mut Option<Listeners>,
    ) {
        match reach.down() {
            Some(reason) => tracing::warn!(reason, "network down: every torrent waits"),
            None => tracing::info!(?reach, "network up"),
        }
        let before = self.live.reach();
        self.live.set_reach(reach.clone());
        self.trackers.set_reach(&reach);
        *listeners = None;
        self.live.set_utp(None);
        self.listen(&reach, listeners);
        // Local discovery joins the group on one interface: start it afresh when that moved.
        if before.ipv4() != reach.ipv4() {
            self.live.set_lsd(None);
        }
        self.apply_lsd();
        self.apply_dht().await;
        self.apply_port_mapping().await;
        // Every torrent hears of it: down, back, or moved (its connections from the old
        // addresses end).
        let offline = reach.down().map(str::to_string);
        for torrent in self.torrents.values() {
            let _ = torrent
                .commands
                .send(TorrentCommand::Network(offline.clone()));
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Starts, stops or moves the port mapping so that the listen port is mapped (from the
    /// binding's IPv4 address) while port mapping is on and the network is up.
    pub(super) async fn apply_port_mapping(&mut self) {
        let wanted = self
            .live
            .reach()
            .ipv4()
            .filter(|_| self.config.port_mapping && self.listen_port != 0)
            .map(|source| (self.listen_port, source));
        let running = self.port_mapper.as_ref().map(|m| (m.port, m.source));
        if wanted == running {
            return;
        }
        if let Some(mapped) = self.port_mapper.take() {
            mapped.stop().await;
        }
        if let Some((port, source)) = wanted {
            let config = crate::portmap::PortMapperConfig {
                port,
                source,
                ..self.config.port_mapper.clone()
            };
            self.port_mapper = Some(MappedPort {
                mapper: PortMapper::spawn(config),
                port,
                source,
            });
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Listens where `reach` says, on the port peers and trackers know (the next free one if
    /// it is taken now); nowhere while down, or when the bind fails (retried on the next
    /// look at the interfaces).
    fn listen(&mut self, reach: &Reach, listeners: &mut Option<Listeners>) {
        if reach.down().is_some() {
            return;
        }
        if let Err(e) = self.bind_on(reach, self.listen_port, listeners) {
            tracing::warn!(error = %e, "cannot listen for peers");
            self.log_listening(listeners.as_ref());
        }
    }

    /// A new listen port from the settings: the sockets move to it, or stay where they are
    /// if it cannot be had.
    pub(super) fn move_port(&mut self, port: u16, listeners: &mut Option<Listeners>) {
        let reach = self.live.reach();
        if reach.down().is_some() || listeners.is_none() {
            // Nothing listens now: the next bind takes the new port.
            self.listen_port = port;
            return;
        }
        if port == self.listen_port {
            return;
        }
        if let Err(e) = self.bind_on(&reach, port, listeners) {
            tracing::warn!(port, error = %e, "keeping the old listen port");
        }
    }

    /// Listens where `reach` says on `port` (or the next free one) and makes those sockets
    /// the session's; on failure the old ones stay.
    fn bind_on(
        &mut self,
        reach: &Reach,
        port: u16,
        listeners: &mut Option<Listeners>,
    ) -> std::io::Result<()> {
        let bound = Listeners::bind(&reach.listen_ips(), port)?;
        self.live.set_utp(Some(bound.utp().clone()));
        self.listen_port = bound.port();
        self.live
            .listen_port
            .store(self.listen_port, Ordering::Relaxed);
        *listeners = Some(bound);
        self.log_listening(listeners.as_ref());
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn log_listening(&self, listeners: Option<&Listeners>) {
        match listeners {
            Some(l) => tracing::info!(addrs = ?l.local_addrs(), "listening for peers"),
            None => tracing::warn!(reason = self.live.reach().down(), "not listening for peers"),
        }
    }

    /// Starts, stops or moves the DHT node so that it runs as the configuration says, on the
    /// listen port's IPv4 UDP socket, which it shares with uTP.
    pub(super) async fn apply_dht(&mut self) {
        let running = self.live.dht();
        let wanted = self.config.dht.clone();
        let utp = self.live.utp().filter(|u| u.ipv4_addr().is_some());
        let same = match (&running, &wanted) {
            (None, None) => true,
            (Some(_), Some(routers)) => {
                utp.as_ref().map(|u| u.id()) == self.dht_socket && *routers == self.dht_routers
            }
            _ => false,
        };
        if same {
            return;
        }
        if let Some(dht) = running {
            self.live.set_dht(None);
            dht.shutdown().await;
        }
        self.dht_socket = None;
        if let (Some(routers), Some(utp)) = (wanted, utp)
            && let (Some(bind), Some(channel)) = (utp.ipv4_addr(), utp.attach_dht())
        {
            let config = DhtConfig {
                bind,
                bootstrap: routers.clone(),
                state_file: Some(self.config.state_dir.join("dht.dat")),
            };
            match Dht::start_shared(config, channel).await {
                Ok(dht) => {
                    self.live.set_dht(Some(dht));
                    self.dht_socket = Some(utp.id());
                }
                Err(e) => tracing::warn!(error = %e, "the DHT could not start"),
            }
            self.dht_routers = routers;
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Starts or stops local service discovery as the configuration says. Torrents register
    /// when they start.
    pub(super) fn apply_lsd(&mut self) {
        let ipv4 = self.config.lsd.then(|| self.live.reach().ipv4()).flatten();
        match (self.live.lsd(), ipv4) {
            (None, Some(ip)) => match Lsd::start(ip.into()) {
                Ok(lsd) => self.live.set_lsd(Some(lsd)),
                Err(e) => tracing::warn!(error = %e, "local service discovery could not start"),
            },
            (Some(_), None) => self.live.set_lsd(None),
            _ => return,
        }
        self.dirty.store(true, Ordering::Relaxed);
    }
}
