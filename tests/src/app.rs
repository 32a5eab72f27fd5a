//! The shared state of one registry ([`App`]): the store, the search cache,
//! settings, faults, stats and the rate window, which the API, the admin
//! endpoints and the handle all work on.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::catalogue::{Catalogue, mix};
use crate::config::{ConfigUpdate, ConfigView, HealthStatus, ServerConfig};
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

/// Fixed one-minute window, opened by its first request.
#[derive(Default)]
pub(crate) struct RateWindow {
    pub(crate) start_ms: i64,
    pub(crate) count: u32,
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
            latency: std::time::Duration::from_millis(config.latency_ms),
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
