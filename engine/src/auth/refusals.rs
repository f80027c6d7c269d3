//! Repeated refusals of unauthenticated requests (throttled sign-ins, rejected webhooks) as one
//! audit event per source per minute, with how many there were: a flood cannot grow the audit
//! log, which is append-only, or hold its write lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long refusals from one source are summed into one event.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at once; past it, those whose window is over are forgotten.
const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Default)]
pub struct RefusalLog {
    /// Per source: when its last event was written, and refusals since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RefusalLog {
    /// Counts a refusal from `source`. `Some(n)`: write an event now, for `n` refusals (this
    /// one and those not written since the last event); `None`: counted only.
    pub fn count(&self, source: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_SOURCES && !seen.contains_key(source) {
            seen.retain(|_, (at, _)| now.duration_since(*at) < WINDOW);
            if seen.len() >= MAX_SOURCES {
                // Still full of live sources: count this one with nobody, but write it.
                return Some(1);
            }
        }
        match seen.get_mut(source) {
            Some((at, held)) if now.duration_since(*at) < WINDOW => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held + 1;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                seen.insert(source.to_owned(), (now, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_source_per_minute_with_the_count() {
        let log = RefusalLog::default();
        let t = Instant::now();
        assert_eq!(log.count("a", t), Some(1));
        for i in 1..=30 {
            assert_eq!(log.count("a", t + Duration::from_secs(i)), None);
        }
        assert_eq!(log.count("b", t), Some(1), "another source");
        // The first refusal after the minute writes the 30 held back with it.
        assert_eq!(log.count("a", t + WINDOW), Some(31));
        assert_eq!(log.count("a", t + WINDOW + Duration::from_secs(1)), None);
    }
}
