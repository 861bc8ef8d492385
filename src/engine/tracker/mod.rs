//! The engine's side of trackers. The protocol itself is in [`crate::tracker`].
//! - [`announcer`]: an active torrent's announce loop (started, interval, completed, stopped);
//! - [`scraper`]: its periodic scrapes, running or paused;
//! - [`list`]: its tiers, the user's edits, and each tracker's last answer for the snapshot;
//! - [`host`]: Rivulet's own tracker, started and stopped by the settings.

pub(crate) mod announcer;
pub(crate) mod host;
pub(crate) mod list;
pub(crate) mod scraper;
