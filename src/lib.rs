//! Rivulet: a BitTorrent client, as one library under one binary (`src/main.rs`).
//!
//! A map of the major components, from the wire up:
//!
//! - **Protocol**, pure and synchronous: [`bencode`] (the strict decoder and the encoder),
//!   [`metainfo`] (.torrent files, the info hash, [`metainfo::read_torrent_file`]),
//!   [`magnet`] (magnet links),
//!   [`bitfield`], [`ids`], [`wire`] (handshake, messages, BEP 6 and BEP 10), and [`create`]
//!   (making a .torrent from files).
//! - **Trackers**: [`tracker::client`] announces and scrapes over HTTP and UDP;
//!   [`tracker::server`] is Rivulet's own tracker.
//! - **Storage**: [`storage`] maps a torrent's pieces onto its files, checks what is on disk,
//!   and runs hashing and I/O on the blocking pool.
//! - **Engine**: [`engine`] runs on tokio: a session owns the listen socket and one actor per
//!   torrent, which owns its peers, its trackers and its life cycle. Front ends reach it only
//!   through [`engine::SessionHandle`]: [`engine::Command`]s in, snapshots and events out, and a
//!   wake-up callback.
//! - **Front ends**: [`gui`] (the egui desktop app) and [`cli`] (the same engine, headless);
//!   [`instance`] hands a second start's arguments to the running app.
//!
//! The protocol, storage and engine never touch egui. ARCHITECTURE.md tells how the parts fit.

pub mod bencode;
pub mod bitfield;
pub mod cli;
pub mod create;
pub mod dht;
pub mod engine;
#[cfg(feature = "gui")]
pub mod gui;
pub mod ids;
pub mod instance;
pub mod lsd;
pub mod magnet;
pub mod metainfo;
pub mod mse;
pub mod net;
pub mod percent;
pub mod portmap;
pub mod storage;
mod sync;
pub mod tracker;
pub mod units;
pub mod utp;
pub mod wire;
