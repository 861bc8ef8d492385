//! [`Picker`]: which blocks to ask which peer for, and the buffers of pieces being assembled.
//!
//! Policy: blocks of pieces already started come first (so pieces finish and can be shared);
//! new pieces are chosen by priority (from the files they hold, `engine::wanted`; pieces of
//! skipped files never), then, in sequential order, by window of [`SEQUENTIAL_WINDOW`] pieces,
//! then rarest-first with a random tie-break; once every missing block is
//! requested, endgame lets a second peer ask for blocks still in flight, and the first copy to
//! arrive wins (the others are cancelled). A budget caps the bytes held in piece buffers; when
//! it is full and a peer needs a new piece, a started piece nobody is fetching (its peers left,
//! choked us or were too slow) is given up to make room, so the budget can never stall the
//! download.

use std::collections::HashMap;

use rand::Rng;

use crate::bitfield::Bitfield;
use crate::wire::{BLOCK_LEN, BlockRef};

/// Identifies one connection for the life of the session.
pub type PeerKey = u64;

/// Most peers asked for the same block in endgame.
const ENDGAME_DUPLICATES: usize = 2;
/// In sequential order, pieces are taken window by window, rarest first within a window: a
/// piece only the slowest peer has does not hold the others up, and playback stays close.
pub const SEQUENTIAL_WINDOW: u32 = 8;
/// The priority of a piece nobody wants (its files are all skipped).
const SKIPPED: u8 = 0;
/// Every piece's priority until a plan says otherwise (`FilePriority::Normal`).
const NORMAL: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Missing,
    Requested(Vec<PeerKey>),
    Received,
}

struct Partial {
    buf: Vec<u8>,
    blocks: Vec<Block>,
    received: u32,
    contributors: Vec<PeerKey>,
}

/// A piece whose blocks have all arrived, ready to be verified and written.
pub struct CompletePiece {
    pub index: u32,
    pub data: Vec<u8>,
    pub contributors: Vec<PeerKey>,
}

/// What became of a block that arrived.
pub enum BlockOutcome {
    /// Nobody asked this peer for it, or it is no longer needed.
    Unwanted,
    /// Stored; `cancel` lists other peers that were asked for the same block (endgame).
    Stored {
        cancel: Vec<PeerKey>,
        complete: Option<CompletePiece>,
    },
}

pub struct Picker {
    piece_length: u64,
    total_length: u64,
    have: Bitfield,
    have_bytes: u64,
    /// Each piece's priority (0: not wanted).
    priority: Vec<u8>,
    /// The highest priority of a piece still missing.
    top_priority: u8,
    sequential: bool,
    /// Wanted pieces still missing, and the wanted pieces' bytes and those verified.
    wanted_missing: u32,
    wanted_bytes: u64,
    have_wanted_bytes: u64,
    /// Pieces handed to the disk for verification.
    verifying: Bitfield,
    availability: Vec<u32>,
    partial: HashMap<u32, Partial>,
    /// Buffers of verified pieces kept for reuse (no page faults or zeroing per piece).
    spare: Vec<Vec<u8>>,
    buffered: u64,
    buffer_budget: u64,
}

impl Picker {
    pub fn new(piece_count: u32, piece_length: u64, total_length: u64, buffer_budget: u64) -> Self {
        Self {
            piece_length,
            total_length,
            have: Bitfield::new(piece_count),
            have_bytes: 0,
            priority: vec![NORMAL; piece_count as usize],
            top_priority: NORMAL,
            sequential: false,
            wanted_missing: piece_count,
            wanted_bytes: total_length,
            have_wanted_bytes: 0,
            verifying: Bitfield::new(piece_count),
            availability: vec![0; piece_count as usize],
            partial: HashMap::new(),
            spare: Vec::new(),
            buffered: 0,
            buffer_budget,
        }
    }

    pub fn piece_count(&self) -> u32 {
        self.have.len()
    }

    pub fn piece_len(&self, index: u32) -> u64 {
        let start = index as u64 * self.piece_length;
        (self.total_length - start.min(self.total_length)).min(self.piece_length)
    }

    fn block_count(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_LEN as u64) as u32
    }

    fn block_ref(&self, index: u32, block: u32) -> BlockRef {
        let begin = block * BLOCK_LEN;
        let length = self
            .piece_len(index)
            .saturating_sub(begin as u64)
            .min(BLOCK_LEN as u64) as u32;
        BlockRef {
            index,
            begin,
            length,
        }
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn have_bytes(&self) -> u64 {
        self.have_bytes
    }

    /// Every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Every wanted piece is verified (all of them when no file is skipped).
    pub fn is_finished(&self) -> bool {
        self.wanted_missing == 0
    }

    /// Bytes of the wanted pieces, and of those verified.
    pub fn wanted_bytes(&self) -> (u64, u64) {
        (self.wanted_bytes, self.have_wanted_bytes)
    }

    /// Replaces what we have (after checking data on disk or loading resume data).
    pub fn set_have(&mut self, have: Bitfield) {
        self.have_bytes = have.ones().map(|i| self.piece_len(i)).sum();
        self.have = have;
        self.discard_partials();
        self.count_wanted();
    }

    /// Takes each piece's priority (`DownloadPlan::piece_priorities`; 0 is never picked)
    /// and whether pieces go in order. Started pieces are finished either way.
    pub fn set_plan(&mut self, priority: Vec<u8>, sequential: bool) {
        if priority.len() == self.priority.len() {
            self.priority = priority;
        }
        self.sequential = sequential;
        self.count_wanted();
    }

    fn count_wanted(&mut self) {
        let (mut missing, mut bytes, mut have_bytes, mut top) = (0, 0, 0, SKIPPED);
        for (i, &p) in self.priority.iter().enumerate() {
            if p == SKIPPED {
                continue;
            }
            let i = i as u32;
            bytes += self.piece_len(i);
            if self.have.get(i) {
                have_bytes += self.piece_len(i);
            } else {
                missing += 1;
                top = top.max(p);
            }
        }
        self.wanted_missing = missing;
        self.wanted_bytes = bytes;
        self.have_wanted_bytes = have_bytes;
        self.top_priority = top;
    }

    fn priority(&self, index: u32) -> u8 {
        self.priority
            .get(index as usize)
            .copied()
            .unwrap_or(SKIPPED)
    }

    /// A piece buffer of `len` bytes; its old contents do not matter, every block overwrites it.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Takes back a buffer handed out with a finished piece.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        // Every buffer is in use or here, so the pool never holds more than the budget allows;
        // a complete torrent needs none.
        if !self.is_complete()
            && (self.spare.len() as u64 + 1) * self.piece_length <= self.buffer_budget
        {
            self.spare.push(buf);
        }
    }

    /// Frees the buffers kept for reuse (when the torrent completes or stops: none is needed
    /// until it downloads again).
    pub fn free_spare_buffers(&mut self) {
        self.spare = Vec::new();
    }

    /// Drops every piece being assembled (on pause or error).
    pub fn discard_partials(&mut self) {
        let held: u64 = self.partial.keys().map(|&i| self.piece_len(i)).sum();
        self.buffered = self.buffered.saturating_sub(held);
        self.partial.clear();
    }

    /// Pieces being assembled, in index order.
    pub fn in_progress(&self) -> Vec<u32> {
        let mut pieces: Vec<u32> = self.partial.keys().copied().collect();
        pieces.sort_unstable();
        pieces
    }

    /// Pieces handed to the disk whose verdict has not come back.
    pub fn verifying_count(&self) -> u32 {
        self.verifying.count_ones()
    }

    /// Bytes of pieces received but not yet verified.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered
    }

    /// How many connected peers have each piece.
    pub fn availability(&self) -> &[u32] {
        &self.availability
    }

    /// The wanted pieces not verified yet, in order.
    pub fn wanted_missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.have.len()).filter(|&i| self.wants(i))
    }

    #[cfg(test)]
    pub fn add_availability(&mut self, pieces: &Bitfield) {
        for i in pieces.ones() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a += 1;
            }
        }
    }

    pub fn remove_availability(&mut self, pieces: &Bitfield) {
        for i in pieces.ones() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a = a.saturating_sub(1);
            }
        }
    }

    pub fn add_have(&mut self, index: u32) {
        if let Some(a) = self.availability.get_mut(index as usize) {
            *a += 1;
        }
    }

    /// Whether the peer has a piece we still need.
    pub fn wants_any_of(&self, peer_has: &Bitfield) -> bool {
        !self.is_finished() && peer_has.ones().any(|i| self.wants(i))
    }

    pub fn wants(&self, index: u32) -> bool {
        index < self.have.len() && !self.have.get(index) && self.priority(index) != SKIPPED
    }

    /// Appends up to `want` blocks for `peer` to request to `out`.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        want: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let start_len = out.len();
        let done = |out: &Vec<BlockRef>| out.len() - start_len >= want;

        // 1. Finish pieces already started.
        let mut started: Vec<u32> = self
            .partial
            .keys()
            .copied()
            .filter(|&i| peer_has.get(i))
            .collect();
        started.sort_unstable();
        for index in &started {
            self.take_missing(*index, peer, want - (out.len() - start_len), out);
            if done(out) {
                return;
            }
        }
        // 2. Start the rarest pieces, within the buffer budget.
        while !done(out) {
            let Some(index) = self.rarest_new_piece(peer_has) else {
                break;
            };
            let len = self.piece_len(index);
            while self.buffered + len > self.buffer_budget && self.reclaim_idle_piece() {}
            if self.buffered + len > self.buffer_budget && !self.partial.is_empty() {
                break;
            }
            let blocks = vec![Block::Missing; self.block_count(index) as usize];
            let buf = self.buffer(len as usize);
            self.partial.insert(
                index,
                Partial {
                    buf,
                    blocks,
                    received: 0,
                    contributors: Vec::new(),
                },
            );
            self.buffered += len;
            self.take_missing(index, peer, want - (out.len() - start_len), out);
        }
        if out.len() > start_len || self.has_unstarted_piece() {
            return;
        }
        // 3. Endgame: every missing block is in flight; ask this peer too.
        for index in started {
            let Some(partial) = self.partial.get_mut(&index) else {
                continue;
            };
            for (b, block) in partial.blocks.iter_mut().enumerate() {
                if let Block::Requested(by) = block
                    && by.len() < ENDGAME_DUPLICATES
                    && !by.contains(&peer)
                {
                    by.push(peer);
                    let begin = b as u32 * BLOCK_LEN;
                    let piece_len = (self.total_length - index as u64 * self.piece_length)
                        .min(self.piece_length);
                    let length = (piece_len - begin as u64).min(BLOCK_LEN as u64) as u32;
                    out.push(BlockRef {
                        index,
                        begin,
                        length,
                    });
                    if out.len() - start_len >= want {
                        return;
                    }
                }
            }
        }
    }

    /// Gives up one started piece with no block in flight, to free its buffer: first one no
    /// connected peer has, then the one with the fewest blocks received. False if every
    /// started piece is being fetched.
    fn reclaim_idle_piece(&mut self) -> bool {
        let victim = self
            .partial
            .iter()
            .filter(|(_, p)| !p.blocks.iter().any(|b| matches!(b, Block::Requested(_))))
            .min_by_key(|&(&index, p)| {
                let available = self.availability.get(index as usize).copied().unwrap_or(0);
                (available > 0, p.received, index)
            })
            .map(|(&index, _)| index);
        let Some(index) = victim else {
            return false;
        };
        if let Some(partial) = self.partial.remove(&index) {
            self.buffered = self.buffered.saturating_sub(self.piece_len(index));
            self.recycle(partial.buf);
        }
        true
    }

    fn take_missing(&mut self, index: u32, peer: PeerKey, want: usize, out: &mut Vec<BlockRef>) {
        let Some(partial) = self.partial.get_mut(&index) else {
            return;
        };
        let mut picked = Vec::new();
        for (b, block) in partial.blocks.iter_mut().enumerate() {
            if picked.len() >= want {
                break;
            }
            if *block == Block::Missing {
                *block = Block::Requested(vec![peer]);
                picked.push(b as u32);
            }
        }
        out.extend(picked.into_iter().map(|b| self.block_ref(index, b)));
    }

    fn is_candidate(&self, i: u32) -> bool {
        self.wants(i) && !self.verifying.get(i) && !self.partial.contains_key(&i)
    }

    fn has_unstarted_piece(&self) -> bool {
        (0..self.piece_count()).any(|i| self.is_candidate(i))
    }

    /// The piece to start next among those the peer has and nobody has started: the highest
    /// priority, in sequential order the earliest window, then the least available, ties
    /// broken at random.
    fn rarest_new_piece(&self, peer_has: &Bitfield) -> Option<u32> {
        let count = self.piece_count();
        if count == 0 {
            return None;
        }
        let offset = rand::rng().random_range(0..count);
        let window = |i: u32| {
            if self.sequential {
                i / SEQUENTIAL_WINDOW
            } else {
                0
            }
        };
        // Smaller is better; nothing beats the top priority's first window at availability 1.
        let key = |i: u32, a: u32| (u8::MAX - self.priority(i), window(i), a);
        let mut best: Option<(u32, (u8, u32, u32))> = None;
        for k in 0..count {
            let i = (offset + k) % count;
            if !peer_has.get(i) || !self.is_candidate(i) {
                continue;
            }
            let a = self.availability.get(i as usize).copied().unwrap_or(0);
            let key = key(i, a);
            if best.is_none_or(|(_, best_key)| key < best_key) {
                best = Some((i, key));
                if !self.sequential && self.priority(i) >= self.top_priority && a <= 1 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Stores a block that arrived from `peer`.
    pub fn on_block(&mut self, peer: PeerKey, block: BlockRef, data: &[u8]) -> BlockOutcome {
        if !block.begin.is_multiple_of(BLOCK_LEN) {
            return BlockOutcome::Unwanted;
        }
        let b = (block.begin / BLOCK_LEN) as usize;
        let expected = self.block_ref(block.index, b as u32);
        if expected.length as usize != data.len() {
            return BlockOutcome::Unwanted;
        }
        let Some(partial) = self.partial.get_mut(&block.index) else {
            return BlockOutcome::Unwanted;
        };
        let by = match partial.blocks.get_mut(b) {
            Some(Block::Requested(by)) if by.contains(&peer) => std::mem::take(by),
            _ => return BlockOutcome::Unwanted,
        };
        let start = block.begin as usize;
        partial.buf[start..start + data.len()].copy_from_slice(data);
        partial.blocks[b] = Block::Received;
        partial.received += 1;
        if !partial.contributors.contains(&peer) {
            partial.contributors.push(peer);
        }
        let cancel = by.into_iter().filter(|&p| p != peer).collect();
        let complete = if partial.received as usize == partial.blocks.len() {
            self.partial.remove(&block.index).map(|p| {
                self.verifying.set(block.index);
                CompletePiece {
                    index: block.index,
                    data: p.buf,
                    contributors: p.contributors,
                }
            })
        } else {
            None
        };
        BlockOutcome::Stored { cancel, complete }
    }

    /// Gives back blocks `peer` will not deliver (it choked us, left, or was too slow).
    pub fn release(&mut self, peer: PeerKey, blocks: impl IntoIterator<Item = BlockRef>) {
        for block in blocks {
            let Some(partial) = self.partial.get_mut(&block.index) else {
                continue;
            };
            if let Some(Block::Requested(by)) =
                partial.blocks.get_mut((block.begin / BLOCK_LEN) as usize)
            {
                by.retain(|&p| p != peer);
                if by.is_empty() {
                    partial.blocks[(block.begin / BLOCK_LEN) as usize] = Block::Missing;
                }
            }
        }
    }

    /// Records the verdict on a piece handed out by [`Picker::on_block`]; the buffer budget it
    /// used is freed either way, and a failed piece will be picked again.
    pub fn piece_verified(&mut self, index: u32, ok: bool) {
        if !self.verifying.get(index) {
            return;
        }
        self.verifying.clear(index);
        self.buffered = self.buffered.saturating_sub(self.piece_len(index));
        if ok && self.have.set(index) {
            self.have_bytes += self.piece_len(index);
            if self.priority(index) != SKIPPED {
                self.have_wanted_bytes += self.piece_len(index);
                self.wanted_missing = self.wanted_missing.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 2 * BLOCK_LEN as u64;

    fn picker(pieces: u32) -> Picker {
        Picker::new(pieces, PIECE, PIECE * pieces as u64 - 100, u64::MAX)
    }

    #[test]
    fn finishes_started_pieces_first_then_rarest() {
        let mut p = picker(4);
        let all = Bitfield::full(4);
        let mut rare = Bitfield::new(4);
        rare.set(2);
        p.add_availability(&all);
        p.add_availability(&all);
        p.add_availability(&rare);
        p.add_availability(&rare);
        let mut out = Vec::new();
        p.pick(1, &all, 1, &mut out);
        let first = out[0].index;
        out.clear();
        p.pick(2, &all, 1, &mut out);
        assert_eq!(out[0].index, first, "the started piece comes first");
        assert_eq!(out[0].begin, BLOCK_LEN);
        out.clear();
        p.pick(2, &all, 2, &mut out);
        assert!(
            out.iter().all(|b| b.index != 2 && b.index != first),
            "piece 2 is the most common"
        );
    }

    #[test]
    fn spare_buffers_are_kept_while_downloading_and_freed_when_complete_or_stopped() {
        let mut p = picker(2);
        p.recycle(vec![0; PIECE as usize]);
        assert_eq!(p.spare.len(), 1, "kept for the next piece");
        p.free_spare_buffers();
        assert!(p.spare.is_empty(), "freed on a stop");
        p.set_have(Bitfield::full(2));
        p.recycle(vec![0; PIECE as usize]);
        assert!(p.spare.is_empty(), "a complete torrent keeps none");
    }

    #[test]
    fn last_piece_blocks_are_short() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let mut out = Vec::new();
        p.pick(1, &all, 10, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].length, BLOCK_LEN - 100);
    }

    #[test]
    fn completes_piece_and_rejects_unrequested_blocks() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let mut out = Vec::new();
        p.pick(1, &all, 10, &mut out);
        assert!(matches!(
            p.on_block(2, out[0], &vec![1; out[0].length as usize]),
            BlockOutcome::Unwanted
        ));
        assert!(matches!(
            p.on_block(1, out[0], &[1; 5]),
            BlockOutcome::Unwanted
        ));
        assert!(matches!(
            p.on_block(1, out[0], &vec![1; out[0].length as usize]),
            BlockOutcome::Stored { complete: None, .. }
        ));
        let BlockOutcome::Stored {
            complete: Some(piece),
            ..
        } = p.on_block(1, out[1], &vec![2; out[1].length as usize])
        else {
            panic!("piece should complete")
        };
        assert_eq!(piece.data.len() as u64, p.piece_len(0));
        assert_eq!(piece.contributors, vec![1]);
        p.piece_verified(0, true);
        assert!(p.is_complete());
        assert_eq!(p.have_bytes(), p.piece_len(0));
    }

    #[test]
    fn failed_piece_is_picked_again_and_released_blocks_return() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let mut out = Vec::new();
        p.pick(1, &all, 1, &mut out);
        p.release(1, out.clone());
        let mut again = Vec::new();
        p.pick(2, &all, 2, &mut again);
        assert_eq!(again.len(), 2);
        for b in &again {
            let _ = p.on_block(2, *b, &vec![0; b.length as usize]);
        }
        p.piece_verified(0, false);
        assert!(!p.is_complete());
        let mut third = Vec::new();
        p.pick(3, &all, 5, &mut third);
        assert_eq!(third.len(), 2);
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let mut a = Vec::new();
        p.pick(1, &all, 10, &mut a);
        let mut b = Vec::new();
        p.pick(2, &all, 10, &mut b);
        assert_eq!(b, a, "endgame asks the second peer for the same blocks");
        let mut c = Vec::new();
        p.pick(3, &all, 10, &mut c);
        assert!(c.is_empty(), "at most {ENDGAME_DUPLICATES} peers per block");
        let BlockOutcome::Stored { cancel, .. } =
            p.on_block(2, a[0], &vec![0; a[0].length as usize])
        else {
            panic!("stored")
        };
        assert_eq!(cancel, vec![1]);
        assert!(matches!(
            p.on_block(1, a[0], &vec![0; a[0].length as usize]),
            BlockOutcome::Unwanted
        ));
    }

    #[test]
    fn a_piece_left_by_a_vanished_peer_does_not_hold_the_budget() {
        // Budget for one piece. Peer 1 starts piece A, sends half of it and vanishes; peer 2
        // does not have A. Peer 2 must still get a piece to fetch.
        let mut p = Picker::new(2, PIECE, PIECE * 2, PIECE);
        let mut only_a = Bitfield::new(2);
        let mut out = Vec::new();
        p.add_availability(&Bitfield::full(2));
        let mut first = Vec::new();
        p.pick(1, &Bitfield::full(2), 1, &mut first);
        let a = first[0].index;
        only_a.set(a);
        let _ = p.on_block(1, first[0], &vec![0; first[0].length as usize]);
        p.pick(1, &only_a, 10, &mut out);
        p.release(1, out.drain(..));
        let mut b_only = Bitfield::full(2);
        b_only.clear(a);
        p.remove_availability(&Bitfield::full(2));
        p.pick(2, &b_only, 10, &mut out);
        assert_eq!(out.len(), 2, "piece {} started for peer 2", 1 - a);
        assert!(out.iter().all(|b| b.index != a));
        assert_eq!(p.buffered_bytes(), PIECE, "the idle piece was given up");
    }

    #[test]
    fn pieces_in_flight_are_not_reclaimed() {
        let mut p = Picker::new(2, PIECE, PIECE * 2, PIECE);
        let mut first = Vec::new();
        p.pick(1, &Bitfield::full(2), 1, &mut first);
        let a = first[0].index;
        let mut others = Bitfield::full(2);
        others.clear(a);
        let mut out = Vec::new();
        p.pick(2, &others, 10, &mut out);
        assert!(
            out.is_empty(),
            "the budget is held by a piece being fetched"
        );
    }

    #[test]
    fn budget_limits_new_pieces() {
        let mut p = Picker::new(8, PIECE, PIECE * 8, PIECE * 2);
        let all = Bitfield::full(8);
        let mut out = Vec::new();
        p.pick(1, &all, 100, &mut out);
        assert_eq!(out.len(), 4, "two pieces of two blocks fit the budget");
        assert_eq!(p.buffered_bytes(), PIECE * 2);
    }

    /// Picks whole pieces one at a time from a peer that has everything, completing each.
    fn pick_order(p: &mut Picker, count: u32) -> Vec<u32> {
        let all = Bitfield::full(count);
        let mut order = Vec::new();
        loop {
            let mut out = Vec::new();
            p.pick(1, &all, 2, &mut out);
            let Some(first) = out.first() else {
                return order;
            };
            let index = first.index;
            for block in out {
                let data = vec![0u8; block.length as usize];
                if let BlockOutcome::Stored {
                    complete: Some(done),
                    ..
                } = p.on_block(1, block, &data)
                {
                    p.piece_verified(done.index, true);
                }
            }
            order.push(index);
        }
    }

    #[test]
    fn skipped_pieces_are_never_picked_and_higher_priorities_come_first() {
        let mut p = picker(6);
        p.set_plan(vec![1, 0, 3, 2, 0, 3], false);
        assert_eq!(p.wanted_bytes(), (4 * PIECE - 100, 0));
        let mut skipped_only = Bitfield::new(6);
        skipped_only.set(1);
        skipped_only.set(4);
        assert!(
            !p.wants_any_of(&skipped_only),
            "no interest in skipped pieces"
        );
        let order = pick_order(&mut p, 6);
        assert_eq!(order.len(), 4);
        let mut high: Vec<u32> = order[..2].to_vec();
        high.sort_unstable();
        assert_eq!(high, vec![2, 5], "high first");
        assert_eq!(&order[2..], &[3, 0], "then normal, then low");
        assert!(p.is_finished() && !p.is_complete());
        assert_eq!(p.wanted_bytes(), (4 * PIECE - 100, 4 * PIECE - 100));

        // Wanted again: not finished until it comes.
        p.set_plan(vec![1, 2, 3, 2, 0, 3], false);
        assert!(!p.is_finished());
        assert_eq!(pick_order(&mut p, 6), vec![1]);
        assert!(p.is_finished());
    }

    #[test]
    fn sequential_order_goes_window_by_window() {
        let count = SEQUENTIAL_WINDOW * 4;
        let mut p = Picker::new(count, PIECE, PIECE * count as u64, u64::MAX);
        p.set_plan(vec![NORMAL; count as usize], true);
        let mut common = Bitfield::full(count);
        common.clear(5);
        common.clear(SEQUENTIAL_WINDOW * 3);
        p.add_availability(&common);
        let order = pick_order(&mut p, count);
        assert_eq!(order.len(), count as usize);
        for (n, &index) in order.iter().enumerate() {
            assert_eq!(
                index / SEQUENTIAL_WINDOW,
                n as u32 / SEQUENTIAL_WINDOW,
                "piece {index} came {n}th: {order:?}"
            );
        }
        assert_eq!(order[0], 5, "rarest first within the window");
        let late = SEQUENTIAL_WINDOW * 3;
        assert_eq!(
            order[late as usize], late,
            "the rarest piece of a later window waits for it, then comes first"
        );
    }
}
