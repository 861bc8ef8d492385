//! Which torrents are selected: click, Ctrl-click and Shift-click as in a file manager.

use std::collections::BTreeSet;

use crate::ids::InfoHash;

#[derive(Default)]
pub struct Selection {
    ids: BTreeSet<InfoHash>,
    anchor: Option<InfoHash>,
}

impl Selection {
    pub fn contains(&self, id: &InfoHash) -> bool {
        self.ids.contains(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = InfoHash> + '_ {
        self.ids.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A click on `id` in a list shown in `order`, with the modifiers held.
    pub fn click(&mut self, id: InfoHash, order: &[InfoHash], ctrl: bool, shift: bool) {
        if shift && let Some(anchor) = self.anchor {
            let a = order.iter().position(|x| *x == anchor);
            let b = order.iter().position(|x| *x == id);
            if let (Some(a), Some(b)) = (a, b) {
                if !ctrl {
                    self.ids.clear();
                }
                self.ids.extend(&order[a.min(b)..=a.max(b)]);
                return;
            }
        }
        if ctrl {
            if !self.ids.remove(&id) {
                self.ids.insert(id);
            }
        } else {
            self.ids.clear();
            self.ids.insert(id);
        }
        self.anchor = Some(id);
    }

    /// Right-click: keep a selection that holds `id`, otherwise select only `id`.
    pub fn secondary_click(&mut self, id: InfoHash) {
        if !self.ids.contains(&id) {
            self.ids.clear();
            self.ids.insert(id);
            self.anchor = Some(id);
        }
    }

    pub fn select_all(&mut self, order: &[InfoHash]) {
        self.ids = order.iter().copied().collect();
    }

    /// Forgets torrents that are gone.
    pub fn retain(&mut self, exists: impl Fn(&InfoHash) -> bool) {
        self.ids.retain(|id| exists(id));
        if self.anchor.is_some_and(|a| !exists(&a)) {
            self.anchor = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    #[test]
    fn click_ctrl_and_shift() {
        let order: Vec<_> = (0..5).map(id).collect();
        let mut s = Selection::default();
        s.click(id(1), &order, false, false);
        s.click(id(3), &order, false, true);
        assert_eq!(s.ids().collect::<Vec<_>>(), vec![id(1), id(2), id(3)]);
        s.click(id(2), &order, true, false);
        assert_eq!(s.ids().collect::<Vec<_>>(), vec![id(1), id(3)]);
        s.click(id(4), &order, false, false);
        assert_eq!(s.ids().collect::<Vec<_>>(), vec![id(4)]);
        s.select_all(&order);
        s.retain(|x| *x != id(0));
        assert_eq!(s.ids().count(), 4);
    }
}
