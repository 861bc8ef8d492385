//! Seeding goals: a share ratio and a seeding time after which a seeding torrent is paused or
//! removed. The session has global goals; each torrent follows them, has none, or has its own.
//! The session looks at every seeding torrent once a second.

use std::time::Duration;

/// What happens to a torrent that reached its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoalAction {
    #[default]
    Pause,
    /// Removed from the list; its data stays on disk.
    Remove,
}

/// The session's goals (none by default).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SeedGoals {
    pub ratio: Option<f32>,
    pub seeding_time: Option<Duration>,
    pub action: GoalAction,
}

/// One goal of a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Limit<T> {
    /// The session's.
    #[default]
    Global,
    Unlimited,
    Value(T),
}

impl<T: Copy> Limit<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Limit<U> {
        match self {
            Limit::Global => Limit::Global,
            Limit::Unlimited => Limit::Unlimited,
            Limit::Value(v) => Limit::Value(f(v)),
        }
    }

    /// The limit that applies, given the session's.
    pub fn resolve(self, global: Option<T>) -> Option<T> {
        match self {
            Limit::Global => global,
            Limit::Unlimited => None,
            Limit::Value(v) => Some(v),
        }
    }
}

/// A torrent's own goals.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TorrentGoals {
    pub ratio: Limit<f32>,
    pub seeding_time: Limit<Duration>,
}

impl TorrentGoals {
    /// Which goal a torrent that seeds with this ratio for this long has reached, if any.
    pub fn reached(
        &self,
        global: &SeedGoals,
        ratio: f32,
        seeding_time: Duration,
    ) -> Option<String> {
        if let Some(limit) = self.ratio.resolve(global.ratio)
            && ratio >= limit
        {
            return Some(format!("ratio {ratio:.2} reached its limit of {limit:.2}"));
        }
        if let Some(limit) = self.seeding_time.resolve(global.seeding_time)
            && seeding_time >= limit
        {
            return Some(format!(
                "seeded for {}, its limit",
                crate::units::duration(limit)
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torrents_own_goal_replaces_the_sessions_and_unlimited_has_none() {
        let global = SeedGoals {
            ratio: Some(2.0),
            seeding_time: Some(Duration::from_secs(3600)),
            action: GoalAction::Pause,
        };
        let follows = TorrentGoals::default();
        assert!(follows.reached(&global, 1.9, Duration::ZERO).is_none());
        assert!(follows.reached(&global, 2.0, Duration::ZERO).is_some());
        assert!(
            follows
                .reached(&global, 0.0, Duration::from_secs(3600))
                .is_some()
        );
        let own = TorrentGoals {
            ratio: Limit::Value(0.5),
            seeding_time: Limit::Unlimited,
        };
        assert!(own.reached(&global, 0.5, Duration::ZERO).is_some());
        assert!(
            own.reached(&global, 0.1, Duration::from_secs(99_999))
                .is_none()
        );
        assert!(
            TorrentGoals::default()
                .reached(&SeedGoals::default(), 100.0, Duration::MAX)
                .is_none(),
            "no goals by default"
        );
    }
}
