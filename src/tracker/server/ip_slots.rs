//! The tracker's HTTP connections per address: at most a cap each, so that one host cannot
//! take every connection; a new connection over the cap takes the place of one sitting idle
//! between requests. Clients keep their connections alive, and many share one address (a
//! household or a carrier-grade NAT; every client of a machine on loopback): refusing the
//! newcomer would leave it without peers until its retry, while the idle one reconnects
//! when it next announces.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::sync::MutexExt;

/// Each address's connections.
pub(super) struct IpSlots {
    cap: usize,
    by_ip: Mutex<HashMap<IpAddr, Vec<Arc<Standing>>>>,
}

/// One connection's standing: waiting for its next request, or told to give way.
#[derive(Default)]
struct Standing {
    idle: AtomicBool,
    evicted: AtomicBool,
    give_way: Notify,
}

/// A connection's place among its address's; given back when dropped.
pub(super) struct IpSlot {
    slots: Arc<IpSlots>,
    ip: IpAddr,
    standing: Arc<Standing>,
}

impl IpSlots {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            by_ip: Mutex::default(),
        })
    }

    /// A place for a new connection from `ip`: a free one, or one an idle connection is told
    /// to give up. `None` when every connection of the address is busy with a request.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut by_ip = self.by_ip.locked();
        let conns = by_ip.entry(ip).or_default();
        let staying = conns
            .iter()
            .filter(|c| !c.evicted.load(Ordering::Acquire))
            .count();
        if staying >= self.cap {
            let idle = conns.iter().find(|c| {
                !c.evicted.load(Ordering::Acquire)
                    && c.idle
                        .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
            })?;
            idle.evicted.store(true, Ordering::Release);
            // Kept if the connection is not waiting yet: its next wait ends at once.
            idle.give_way.notify_one();
        }
        let standing = Arc::new(Standing::default());
        conns.push(standing.clone());
        Some(IpSlot {
            slots: self.clone(),
            ip,
            standing,
        })
    }
}

impl IpSlot {
    /// Waits for `next` (the next request's first bytes) as an idle connection, which a
    /// newcomer from the same address may displace: `None` when told to give way first.
    pub async fn while_idle<F: Future>(&self, next: F) -> Option<F::Output> {
        if self.evicted() {
            return None;
        }
        self.standing.idle.store(true, Ordering::Release);
        // A request already arriving is served (then the connection closes).
        let outcome = tokio::select! {
            biased;
            out = next => Some(out),
            () = self.standing.give_way.notified() => None,
        };
        self.standing.idle.store(false, Ordering::Release);
        outcome
    }

    /// Whether this connection was told to give way (it closes after the request at hand).
    pub fn evicted(&self) -> bool {
        self.standing.evicted.load(Ordering::Acquire)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut by_ip = self.slots.by_ip.locked();
        if let Some(conns) = by_ip.get_mut(&self.ip) {
            conns.retain(|c| !Arc::ptr_eq(c, &self.standing));
            if conns.is_empty() {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn busy_connections_keep_their_places() {
        let slots = IpSlots::new(2);
        let held = [slots.take(IP).unwrap(), slots.take(IP).unwrap()];
        assert!(slots.take(IP).is_none(), "both are busy with a request");
        assert!(
            slots.take(IpAddr::from([127, 0, 0, 2])).is_some(),
            "another address has its own places"
        );
        drop(held);
        assert!(slots.take(IP).is_some(), "places come back when dropped");
        assert!(slots.by_ip.locked().is_empty());
    }

    #[tokio::test]
    async fn a_newcomer_displaces_an_idle_connection() {
        let slots = IpSlots::new(2);
        let busy = slots.take(IP).unwrap();
        let idle = slots.take(IP).unwrap();
        let waiting = tokio::spawn(async move {
            let out = idle
                .while_idle(tokio::time::sleep(Duration::from_secs(30)))
                .await;
            (out.is_none(), idle.evicted())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let newcomer = slots.take(IP).expect("the idle connection gives way");
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), waiting)
                .await
                .unwrap()
                .unwrap(),
            (true, true),
            "the idle connection's wait ends"
        );
        assert!(slots.take(IP).is_none(), "the cap holds again");
        assert!(!busy.evicted() && !newcomer.evicted());
    }

    #[tokio::test]
    async fn a_connection_told_to_give_way_before_it_waits_ends_its_next_wait() {
        let slots = IpSlots::new(1);
        let first = slots.take(IP).unwrap();
        // Idle, then given way to while not waiting: the next wait ends at once.
        first.standing.idle.store(true, Ordering::Release);
        let _second = slots.take(IP).unwrap();
        assert!(first.evicted());
        let next = tokio::time::timeout(
            Duration::from_secs(1),
            first.while_idle(std::future::pending::<()>()),
        )
        .await;
        assert_eq!(next, Ok(None));
    }
}
