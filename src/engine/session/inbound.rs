//! [`Handshakes`]: inbound connections waiting for their handshake, which says the torrent they
//! are for (an encrypted one says it through MSE first, see `peer::transport`). Each step must
//! arrive within the peer module's 10 s timeout. At most
//! [`MAX_PENDING`] wait at once and at most [`MAX_PENDING_PER_IP`] from one address; when every
//! slot is taken, the connection that has waited longest is closed to make room, so that
//! connections held open without a word (slowloris) never lock a real peer out.

use crate::net::Transport;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use crate::engine::peer::{self, PeerStream, TorrentKeys};
use crate::mse::EncryptionPolicy;
use crate::sync::MutexExt;
use crate::wire::Handshake;

/// Handshakes that may be pending on inbound connections at once.
pub(super) const MAX_PENDING: usize = 64;
/// Of those, from one IP address: a flood from one address is turned away at its door
/// instead of taking every place. Real peers send their handshake at once, so even many
/// behind one address (a NAT, or a test on loopback) seldom have more than a few waiting.
pub(super) const MAX_PENDING_PER_IP: usize = 32;

/// A connection whose handshake came: the torrent it names takes it from here.
pub(super) type Handshaken = (PeerStream, SocketAddr, Handshake);

/// The waiting connections, oldest first, by arrival number.
#[derive(Default)]
struct Waiting {
    next: u64,
    order: BTreeMap<u64, (IpAddr, Option<AbortHandle>)>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Waiting {
    /// Makes room for one more connection from `ip`: `None` if that address has its fill;
    /// otherwise its arrival number, after closing the oldest waiting one if all are taken.
    fn admit(&mut self, ip: IpAddr) -> Option<u64> {
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_PENDING_PER_IP {
            return None;
        }
        if self.order.len() >= MAX_PENDING
            && let Some(&oldest) = self.order.keys().next()
            && let Some((_, Some(task))) = self.remove(oldest)
        {
            task.abort();
        }
        let id = self.next;
        self.next += 1;
        self.order.insert(id, (ip, None));
        *self.per_ip.entry(ip).or_default() += 1;
        Some(id)
    }

    fn remove(&mut self, id: u64) -> Option<(IpAddr, Option<AbortHandle>)> {
        let removed = self.order.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&removed.0) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&removed.0);
            }
        }
        Some(removed)
    }
}

#[derive(Default)]
pub(super) struct Handshakes(Arc<Mutex<Waiting>>);

/// Frees its connection's place when the handshake task ends, however it ends.
struct Place(Arc<Mutex<Waiting>>, u64);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.locked().remove(self.1);
    }
}

impl Handshakes {
    /// Waits for the connection's handshake on a task of its own, or closes it at once when
    /// its address already has [`MAX_PENDING_PER_IP`] waiting.
    pub fn accept(
        &self,
        transport: Transport,
        addr: SocketAddr,
        keys: &TorrentKeys,
        policy: EncryptionPolicy,
        handshaken: UnboundedSender<Handshaken>,
    ) {
        let admitted = self.0.locked().admit(addr.ip().to_canonical());
        let Some(id) = admitted else {
            tracing::debug!(%addr, "too many handshakes pending from one address");
            return;
        };
        let place = Place(self.0.clone(), id);
        let keys = keys.clone();
        // Spawned without the lock held: a task dropped at once (the runtime shutting down)
        // frees its place, which takes the lock.
        let task = tokio::spawn(async move {
            let _place = place;
            // One deadline for the whole: MSE (if any) and the handshake.
            let met = tokio::time::timeout(peer::HANDSHAKE_TIMEOUT, async {
                let mut stream = PeerStream::accept(transport, &keys, policy).await?;
                let handshake = peer::read_handshake(&mut stream).await?;
                Ok::<_, peer::PeerError>((stream, handshake))
            })
            .await;
            match met {
                Ok(Ok((stream, handshake))) => {
                    let _ = handshaken.send((stream, addr, handshake));
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "inbound handshake failed"),
                Err(_) => tracing::debug!(%addr, "inbound handshake timed out"),
            }
        });
        // Gone already if it finished, or gave way, in between: nothing to keep then.
        if let Some(entry) = self.0.locked().order.get_mut(&id) {
            entry.1 = Some(task.abort_handle());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn one_address_gets_a_few_places() {
        let mut waiting = Waiting::default();
        for _ in 0..MAX_PENDING_PER_IP {
            assert!(waiting.admit(ip(2)).is_some());
        }
        assert_eq!(waiting.admit(ip(2)), None);
        assert!(
            waiting.admit(ip(3)).is_some(),
            "other addresses still get in"
        );
        waiting.remove(0);
        assert!(waiting.admit(ip(2)).is_some(), "a freed place is reused");
    }

    #[test]
    fn the_longest_waiting_makes_room_when_all_are_taken() {
        let mut waiting = Waiting::default();
        let ips = (2..=100).map(ip).cycle();
        let admitted: Vec<u64> = ips
            .take(MAX_PENDING)
            .map(|a| waiting.admit(a).unwrap())
            .collect();
        assert_eq!(waiting.order.len(), MAX_PENDING);
        let newcomer = waiting.admit(ip(1)).unwrap();
        assert_eq!(
            waiting.order.len(),
            MAX_PENDING,
            "still no more than the cap"
        );
        assert!(!waiting.order.contains_key(&admitted[0]), "the oldest went");
        assert!(waiting.order.contains_key(&admitted[1]));
        assert!(waiting.order.contains_key(&newcomer));
        assert_eq!(
            waiting.per_ip.get(&ip(2)),
            None,
            "its address's count went with it"
        );
    }
}
