//! [`Removals`]: torrents whose actors are still stopping after a remove (disconnecting,
//! draining writes, deleting files), and the adds (a .torrent or a magnet link) of the same
//! torrents parked until then.
//!
//! A re-add never waits in the session loop: it is parked, and carried out when the old actor
//! reports that it has ended, so the old actor can never delete the new copy's files.

use std::collections::HashMap;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::engine::command::Command;
use crate::ids::InfoHash;

pub(super) struct Removals {
    /// Torrents being removed, and the add parked for each (at most one).
    pending: HashMap<InfoHash, Option<Command>>,
    /// Where a removal that ended is reported to the session loop.
    ended: UnboundedSender<InfoHash>,
}

impl Removals {
    pub fn new(ended: UnboundedSender<InfoHash>) -> Self {
        Self {
            pending: HashMap::new(),
            ended,
        }
    }

    /// The actor of `id` is stopping; `done` fires (or is dropped) when it has ended.
    pub fn started(&mut self, id: InfoHash, done: oneshot::Receiver<()>) {
        self.pending.insert(id, None);
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let _ = done.await;
            let _ = ended.send(id);
        });
    }

    pub fn is_removing(&self, id: &InfoHash) -> bool {
        self.pending.contains_key(id)
    }

    /// Parks `add` until the removal of `id` ends; false (and `add` is dropped) if one is
    /// already parked (a duplicate) or `id` is not being removed.
    pub fn park(&mut self, id: InfoHash, add: Command) -> bool {
        match self.pending.get_mut(&id) {
            Some(slot @ None) => {
                *slot = Some(add);
                true
            }
            _ => false,
        }
    }

    /// Whether an add of `id` is parked.
    pub fn is_parked(&self, id: &InfoHash) -> bool {
        self.pending.get(id).is_some_and(Option::is_some)
    }

    /// Drops the add parked for `id` (the user removed it before it started).
    pub fn unpark(&mut self, id: &InfoHash) -> bool {
        self.pending.get_mut(id).and_then(Option::take).is_some()
    }

    /// The removal of `id` ended: the add parked for it, if any, may go ahead.
    pub fn ended(&mut self, id: InfoHash) -> Option<Command> {
        self.pending.remove(&id).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::command::{AddSource, AddTorrent};

    fn add() -> Command {
        Command::Add(AddTorrent {
            source: AddSource::Bytes(b"d4:infode".to_vec()),
            save_dir: "/downloads".into(),
            paused: false,
            seed: true,
            plan: Default::default(),
        })
    }

    #[tokio::test]
    async fn a_re_add_is_parked_until_the_old_actor_has_ended() {
        let (tx, mut ended) = tokio::sync::mpsc::unbounded_channel();
        let mut removals = Removals::new(tx);
        let id = InfoHash([7; 20]);
        assert!(!removals.park(id, add()), "nothing to wait for");

        let (done, removed) = oneshot::channel();
        removals.started(id, removed);
        assert!(removals.is_removing(&id));
        assert!(removals.park(id, add()));
        assert!(removals.is_parked(&id));
        assert!(!removals.park(id, add()), "one add parked at most");

        done.send(()).unwrap();
        assert_eq!(ended.recv().await, Some(id), "the end is reported");
        assert!(removals.ended(id).is_some(), "the parked add goes ahead");
        assert!(!removals.is_removing(&id));

        // An actor that dies without a word ends its removal too; an unparked add is dropped.
        let (done, removed) = oneshot::channel::<()>();
        removals.started(id, removed);
        assert!(removals.park(id, add()));
        assert!(removals.unpark(&id));
        drop(done);
        assert_eq!(ended.recv().await, Some(id));
        assert!(removals.ended(id).is_none());
    }
}
