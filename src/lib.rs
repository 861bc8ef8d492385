//! Rivulet: a BitTorrent client.
//!
//! The protocol (`bencode`, `metainfo`, `wire`, `tracker`), storage and the `engine` form the
//! core and never touch egui; `gui` (the desktop app) and `cli` are front ends over
//! [`engine::SessionHandle`].
//! See ARCHITECTURE.md for how the parts fit together.

pub mod bencode;
pub mod bitfield;
pub mod cli;
pub mod create;
pub mod engine;
#[cfg(feature = "gui")]
pub mod gui;
pub mod ids;
pub mod instance;
pub mod metainfo;
pub mod storage;
pub mod tracker;
pub mod units;
pub mod wire;
