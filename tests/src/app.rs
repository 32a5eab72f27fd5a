//! The shared state of one registry ([`App`]): the store, the search cache,
//! settings, faults, stats and the rate window, which the API, the admin
//! endpoints and the handle all work on.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::catalogue::{Catalogue, mix};
use crate::config::{ConfigUpdate, ConfigView, HealthStatus, RateWindows, ServerConfig};
use crate::faults::{Fault, FaultSet};
use crate::search::SearchCache;
use crate::stats::{Recorder, Stats};
use crate::store::Store;
use crate::wire::WireCounters;

pub(crate) struct Settings {
    pub(crate) feed_enabled: bool,
    pub(crate) stats_enabled: bool,
    pub(crate) ignore_offset: bool,
    pub(crate) api_key: Option<String>,
    pub(crate) rate_limit: u32,
    pub(crate) clock_offset_ms: i64,
    pub(crate) health: HealthStatus,
}

/// The rate limit's current window: where it began and what it counted.
#[derive(Default)]
pub(crate) struct RateWindow {
    start_ms: i64,
    count: u32,
}

impl RateWindow {
    /// Counts a request that arrived at `now` (registry ms) in windows of
    /// `len_ms` laid out as `windows` says; returns its number in its
    /// window and the instant the window ends.
    pub(crate) fn count(&mut self, now: i64, len_ms: i64, windows: RateWindows) -> (u32, i64) {
        let start = match windows {
            RateWindows::Aligned => now - now.rem_euclid(len_ms),
            RateWindows::FirstRequest | RateWindows::FirstRequestRoundedDown => {
                if self.count == 0 || now >= self.start_ms + len_ms {
                    now
                } else {
                    self.start_ms
                }
            }
        };
        if self.count == 0 || start != self.start_ms {
            *self = RateWindow {
                start_ms: start,
                count: 0,
            };
        }
        self.count += 1;
        (self.count, start + len_ms)
    }
}

/// Shared state of one registry; the handle, the API and the admin endpoints
/// all work on it.
pub(crate) struct App {
    pub(crate) store: RwLock<Store>,
    pub(crate) cache: Mutex<SearchCache>,
    pub(crate) settings: RwLock<Settings>,
    pub(crate) faults: Mutex<FaultSet>,
    pub(crate) stats: Mutex<Recorder>,
    pub(crate) rate: Mutex<RateWindow>,
    pub(crate) started: Instant,
    pub(crate) nonce: u64,
    pub(crate) wire: std::sync::Arc<WireCounters>,
    /// Encode responses as the client's `Accept-Encoding` asks.
    pub(crate) compression: bool,
    pub(crate) rate_window_ms: i64,
    pub(crate) rate_windows: RateWindows,
    pub(crate) rate_reset_millis: bool,
    pub(crate) latency: std::time::Duration,
}

// A panicking test thread must not turn every later request into a poison error.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl App {
    pub(crate) fn new(config: ServerConfig) -> Self {
        let catalogue = config.catalogue.unwrap_or_else(|| {
            Catalogue::generate_mixed(config.skills, config.seed, config.tier_mix)
        });
        let mut store = Store::new(catalogue);
        if config.stale_copy_every > 0 {
            store.add_stale_copies(config.stale_copy_every);
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        App {
            store: RwLock::new(store),
            cache: Mutex::default(),
            settings: RwLock::new(Settings {
                feed_enabled: config.feed_enabled,
                stats_enabled: config.stats_enabled,
                ignore_offset: false,
                api_key: config.api_key,
                rate_limit: config.rate_limit_per_minute,
                clock_offset_ms: config.clock_offset_ms,
                health: config.health,
            }),
            faults: Mutex::default(),
            stats: Mutex::default(),
            rate: Mutex::default(),
            started: Instant::now(),
            nonce: mix(wall.as_nanos() as u64),
            wire: std::sync::Arc::default(),
            compression: config.compression,
            rate_window_ms: config.rate_window_ms.clamp(1, i64::MAX as u64) as i64,
            rate_windows: config.rate_windows,
            rate_reset_millis: config.rate_reset_millis,
            latency: std::time::Duration::from_millis(config.latency_ms),
        }
    }

    /// `X-RateLimit-Reset` for a window ending at `end_ms`: whole seconds,
    /// rounded up (never early) unless the windows round down, or
    /// milliseconds.
    pub(crate) fn announced_reset(&self, end_ms: i64) -> i64 {
        if self.rate_reset_millis {
            end_ms
        } else if self.rate_windows == RateWindows::FirstRequestRoundedDown {
            end_ms.div_euclid(1000)
        } else {
            (end_ms + 999).div_euclid(1000)
        }
    }

    /// `Retry-After` of a 429 at `now` in a window ending at `end_ms`:
    /// the whole seconds left, rounded up; rounded-down windows count from
    /// their announced reset to the current second, as upstream's fallback
    /// does, which says 0 once that reset has passed.
    pub(crate) fn retry_after_secs(&self, end_ms: i64, now: i64) -> i64 {
        if self.rate_windows == RateWindows::FirstRequestRoundedDown {
            (end_ms.div_euclid(1000) - now.div_euclid(1000)).max(0)
        } else {
            ((end_ms - now).max(0) + 999) / 1000
        }
    }

    /// The registry clock: wall clock plus the configured offset.
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        wall + read(&self.settings).clock_offset_ms
    }

    pub fn update(&self, count: usize) -> Vec<String> {
        let now = self.now_ms();
        write(&self.store).update(count, now)
    }

    pub fn update_ids(&self, ids: &[impl AsRef<str>]) -> Vec<String> {
        let now = self.now_ms();
        write(&self.store).update_ids(ids, now)
    }

    pub fn delete(&self, count: usize) -> Vec<String> {
        let now = self.now_ms();
        write(&self.store).delete(count, now)
    }

    pub fn delete_ids(&self, ids: &[impl AsRef<str>]) -> Vec<String> {
        let now = self.now_ms();
        write(&self.store).delete_ids(ids, now)
    }

    pub fn insert(&self, count: usize) -> Vec<String> {
        let now = self.now_ms();
        write(&self.store).insert(count, now)
    }

    pub fn add_fault(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.faults).list()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = lock(&self.stats).snapshot();
        stats.wire_bytes = self.wire.sent.load(std::sync::atomic::Ordering::Relaxed);
        stats.body_bytes = self.wire.bodies.load(std::sync::atomic::Ordering::Relaxed);
        stats
    }

    pub fn reset_stats(&self) {
        lock(&self.stats).reset();
        self.wire.reset();
    }

    pub fn snapshot(&self) -> Vec<(String, String)> {
        read(&self.store).snapshot()
    }

    pub fn skill_json(&self, id: &str) -> Option<serde_json::Value> {
        read(&self.store)
            .skill_json(id)
            .map(|s| serde_json::from_str(&s).expect("rendered JSON parses"))
    }

    pub fn catalogue(&self) -> Catalogue {
        read(&self.store).catalogue()
    }

    pub fn set_config(&self, update: ConfigUpdate) -> ConfigView {
        {
            let mut s = write(&self.settings);
            if let Some(v) = update.feed_enabled {
                s.feed_enabled = v;
            }
            if let Some(v) = update.api_key {
                s.api_key = v;
            }
            if let Some(v) = update.rate_limit_per_minute {
                s.rate_limit = v;
            }
            if let Some(v) = update.stats_enabled {
                s.stats_enabled = v;
            }
            if let Some(v) = update.ignore_offset {
                s.ignore_offset = v;
            }
            if let Some(v) = update.health {
                s.health = v;
            }
            if let Some(v) = update.clock_offset_ms {
                s.clock_offset_ms = v;
            }
        }
        if update.expire_tombstones {
            write(&self.store).expire_tombstones();
        }
        self.config()
    }

    pub fn config(&self) -> ConfigView {
        let s = read(&self.settings);
        let store = read(&self.store);
        ConfigView {
            feed_enabled: s.feed_enabled,
            api_key: s.api_key.clone(),
            rate_limit_per_minute: s.rate_limit,
            stats_enabled: s.stats_enabled,
            ignore_offset: s.ignore_offset,
            health: s.health,
            clock_offset_ms: s.clock_offset_ms,
            live_skills: store.live_count(),
            tombstones: store.tombstone_count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_open_where_their_kind_says_and_end_one_length_later() {
        // 1_795_572_001_300 ms is 1.3 s into a second.
        let t = 1_795_572_001_300;
        let mut w = RateWindow::default();
        assert_eq!(
            w.count(t, 3_000, RateWindows::Aligned),
            (1, 1_795_572_003_000)
        );
        assert_eq!(
            w.count(t + 1_600, 3_000, RateWindows::Aligned),
            (2, 1_795_572_003_000)
        );
        assert_eq!(
            w.count(t + 1_700, 3_000, RateWindows::Aligned),
            (1, 1_795_572_006_000)
        );
        let mut w = RateWindow::default();
        let first = RateWindows::FirstRequest;
        assert_eq!(w.count(t, 3_000, first), (1, t + 3_000));
        assert_eq!(w.count(t + 2_999, 3_000, first), (2, t + 3_000));
        assert_eq!(w.count(t + 3_000, 3_000, first), (1, t + 6_000));
    }

    #[test]
    fn resets_are_announced_rounded_as_the_windows_say() {
        let app = |windows, millis| {
            App::new(ServerConfig {
                skills: 0,
                rate_windows: windows,
                rate_reset_millis: millis,
                ..ServerConfig::default()
            })
        };
        let end = 1_795_572_004_300;
        let up = app(RateWindows::FirstRequest, false);
        assert_eq!(up.announced_reset(end), 1_795_572_005);
        assert_eq!(up.retry_after_secs(end, end - 1_000), 1);
        assert_eq!(up.retry_after_secs(end, end - 1_001), 2);
        let down = app(RateWindows::FirstRequestRoundedDown, false);
        assert_eq!(down.announced_reset(end), 1_795_572_004);
        // After the announced reset, before the end: "retry now".
        assert_eq!(down.retry_after_secs(end, end - 200), 0);
        assert_eq!(
            app(RateWindows::Aligned, false).announced_reset(1_795_572_006_000),
            1_795_572_006
        );
        assert_eq!(
            app(RateWindows::FirstRequest, true).announced_reset(end),
            end
        );
    }
}
