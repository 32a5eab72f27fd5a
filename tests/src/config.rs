//! How a registry is started and changed: [`ServerConfig`], the runtime
//! settings tests change through the handle or `/_admin/config`
//! ([`ConfigUpdate`]) and what they read back ([`ConfigView`]).

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalogue::{Catalogue, TierMix};

/// The rate limit a registry has unless told otherwise: effectively none.
pub const UNLIMITED: u32 = 1_000_000;

/// Overall status `/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// `200`, all checks healthy.
    #[default]
    Healthy,
    /// `200`, one check degraded.
    Degraded,
    /// `503`, one check unhealthy.
    Unhealthy,
}

impl HealthStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// Where the rate limit's windows lie on the clock, and how
/// `X-RateLimit-Reset` tells their end (the OpenAPI file: "Unix timestamp
/// when limit resets").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RateWindows {
    /// Back to back from the Unix epoch, as Upstash's limiter (which the
    /// upstream registry's edge functions used) lays them: a window of
    /// whole seconds ends on a whole second, so the reset is exact.
    Aligned,
    /// Each opened by the first request after the last one closed, its end
    /// rounded up to the second: honest, but up to a second late. Tests
    /// use it because where its windows fall does not depend on the time
    /// of day.
    #[default]
    FirstRequest,
    /// Opened as [`RateWindows::FirstRequest`], its end rounded down, as
    /// upstream's in-memory fallback does: the reset it announces comes up
    /// to a second before the window really ends, and a 429 then says
    /// `Retry-After: 0`. A registry whose headers are not quite honest.
    FirstRequestRoundedDown,
}

/// How to start a registry.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Skills to generate (ignored when `catalogue` is set).
    pub skills: usize,
    /// Seed for generated and inserted skills.
    pub seed: u64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Serve `/skills-changes` and advertise it in `/health`.
    pub feed_enabled: bool,
    /// When set, API requests need this `X-API-Key` (or `Authorization: Bearer`).
    pub api_key: Option<String>,
    /// Requests per minute before `429`.
    pub rate_limit_per_minute: u32,
    /// Added to the wall clock for the registry clock (`Date`, `server_time`,
    /// mutation timestamps), to model client/server clock skew.
    pub clock_offset_ms: i64,
    /// What `/health` reports.
    pub health: HealthStatus,
    /// Serve these skills instead of generating `skills` from `seed`.
    pub catalogue: Option<Catalogue>,
    /// Tier shares of generated and inserted skills.
    pub tier_mix: TierMix,
    /// When non-zero, every `n`-th skill also has a stale copy that search
    /// listings serve beside it (`Store::add_stale_copies`).
    pub stale_copy_every: usize,
    /// Serve `/stats`; without it, a 404 (a registry that does not say how
    /// many skills it has).
    pub stats_enabled: bool,
    /// Encode responses with gzip, brotli or zstd when the request's
    /// `Accept-Encoding` asks, as a hosted API does.
    pub compression: bool,
    /// Length of the rate limit's fixed window (the live registry's is a
    /// minute).
    pub rate_window_ms: u64,
    /// Where those windows lie and how their reset is told.
    pub rate_windows: RateWindows,
    /// Send `X-RateLimit-Reset` in Unix milliseconds, as Upstash's limiter
    /// reports it and upstream's edge functions passed it on.
    pub rate_reset_millis: bool,
    /// Added before every API response, as a slow network's round trip.
    pub latency_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            skills: 1000,
            seed: 1,
            port: 0,
            feed_enabled: true,
            api_key: None,
            rate_limit_per_minute: UNLIMITED,
            clock_offset_ms: 0,
            health: HealthStatus::Healthy,
            catalogue: None,
            tier_mix: TierMix::default(),
            stale_copy_every: 0,
            stats_enabled: true,
            compression: true,
            rate_window_ms: 60_000,
            rate_windows: RateWindows::default(),
            rate_reset_millis: false,
            latency_ms: 0,
        }
    }
}

impl ServerConfig {
    /// `skills` generated skills from `seed`, defaults otherwise.
    pub fn new(skills: usize, seed: u64) -> Self {
        ServerConfig {
            skills,
            seed,
            ..Default::default()
        }
    }
}

/// A change of settings at run time (`POST /_admin/config`). Absent fields
/// stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigUpdate {
    /// Turn the feed on or off.
    pub feed_enabled: Option<bool>,
    /// `Some(None)` (JSON `null`) removes the key requirement.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Option<String>>,
    /// Requests per minute.
    pub rate_limit_per_minute: Option<u32>,
    /// Serve `/stats` or answer it 404.
    pub stats_enabled: Option<bool>,
    /// Lie about paging: answer every search as if `offset` were 0.
    pub ignore_offset: Option<bool>,
    /// Discard all tombstones; older cursors then get `410`.
    pub expire_tombstones: bool,
    /// What `/health` reports.
    pub health: Option<HealthStatus>,
    /// Registry clock offset in milliseconds.
    pub clock_offset_ms: Option<i64>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The current settings, as `GET/POST /_admin/config` returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigView {
    /// Whether the feed is served.
    pub feed_enabled: bool,
    /// Required API key, if any.
    pub api_key: Option<String>,
    /// Requests per minute.
    pub rate_limit_per_minute: u32,
    /// Whether `/stats` is served.
    pub stats_enabled: bool,
    /// Whether searches ignore `offset`.
    pub ignore_offset: bool,
    /// What `/health` reports.
    pub health: HealthStatus,
    /// Registry clock offset in milliseconds.
    pub clock_offset_ms: i64,
    /// Live skills.
    pub live_skills: usize,
    /// Tombstones in the change index.
    pub tombstones: usize,
}
