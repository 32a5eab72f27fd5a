//! The HTTP server: configuration, the request pipeline every API call goes
//! through (stats, faults, auth, rate limit, common headers), `/health`,
//! `/skills-get`, and the handle tests drive it with.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use futures_util::StreamExt as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::catalogue::{Catalogue, TierMix, format_rfc3339_ms, mix, uuid_from};
use crate::faults::{Fault, FaultKind, FaultSet};
use crate::search::SearchCache;
use crate::stats::{Recorder, Stats};
use crate::store::Store;

/// Where the API lives, as on the live service.
pub const API_PREFIX: &str = "/functions/v1";

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
    fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
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

struct Settings {
    feed_enabled: bool,
    stats_enabled: bool,
    ignore_offset: bool,
    api_key: Option<String>,
    rate_limit: u32,
    clock_offset_ms: i64,
    health: HealthStatus,
}

/// Fixed one-minute window, opened by its first request.
#[derive(Default)]
struct RateWindow {
    start_ms: i64,
    count: u32,
}

/// Shared state of one registry; the handle, the API and the admin endpoints
/// all work on it.
pub(crate) struct App {
    store: RwLock<Store>,
    cache: Mutex<SearchCache>,
    settings: RwLock<Settings>,
    faults: Mutex<FaultSet>,
    stats: Mutex<Recorder>,
    rate: Mutex<RateWindow>,
    started: Instant,
    nonce: u64,
}

// A panicking test thread must not turn every later request into a poison error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl App {
    fn new(config: ServerConfig) -> Self {
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
        lock(&self.stats).snapshot()
    }

    pub fn reset_stats(&self) {
        lock(&self.stats).reset();
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

/// Query parameters in order of appearance; the first occurrence wins.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .and_then(|q| {
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                    &format!("/?{q}").parse().ok()?,
                )
                .ok()
            })
            .map(|q| q.0)
            .unwrap_or_default();
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response before the common headers are added.
pub(crate) struct Reply {
    status: u16,
    body: Option<String>,
    content_type: &'static str,
    headers: Vec<(HeaderName, String)>,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Self {
        Reply {
            status,
            body: Some(body),
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Reply {
            content_type: "text/html; charset=utf-8",
            ..Reply::json(status, body)
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            body: None,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    /// The OpenAPI Error shape; `details` is left out when null.
    pub fn error(status: u16, error: &str, details: serde_json::Value) -> Self {
        let body = if details.is_null() {
            json!({"error": error})
        } else {
            json!({"error": error, "details": details})
        };
        Reply::json(status, body.to_string())
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }
}

fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Every API request: stats, faults, auth, rate limit, then the endpoint.
async fn api(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let full = parts.uri.path();
    let path = full
        .strip_prefix(API_PREFIX)
        .filter(|p| !p.is_empty())
        .unwrap_or(full)
        .to_string();
    let query = parts.uri.query();
    let seq = lock(&app.stats).begin(parts.method.as_str(), &path, query, &parts.headers);
    let now = app.now_ms();
    let (limit, api_key, feed_enabled, stats_enabled, ignore_offset, health) = {
        let s = read(&app.settings);
        (
            s.rate_limit,
            s.api_key.clone(),
            s.feed_enabled,
            s.stats_enabled,
            s.ignore_offset,
            s.health,
        )
    };
    let (count, window_start) = {
        let mut w = lock(&app.rate);
        if now >= w.start_ms + 60_000 || w.count == 0 {
            *w = RateWindow {
                start_ms: now,
                count: 0,
            };
        }
        w.count += 1;
        (w.count, w.start_ms)
    };
    let mut remaining = limit.saturating_sub(count);
    let mut reset_ms = window_start + 60_000;

    let fault = lock(&app.faults).take(&path);
    let (mut corrupt, mut truncate) = (false, false);
    let reply = 'reply: {
        match fault {
            None => {}
            Some(FaultKind::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultKind::Hang) => std::future::pending::<()>().await,
            Some(FaultKind::Truncate) => truncate = true,
            Some(FaultKind::BadRecord) => corrupt = true,
            Some(FaultKind::Status { code, body }) => {
                let body = body.unwrap_or_else(|| json!({"error": reason(code)}));
                break 'reply Reply::json(code, body.to_string());
            }
            Some(FaultKind::Malformed) => {
                break 'reply Reply::json(200, "{\"data\":[{\"id\":\"trunc".to_string());
            }
            Some(FaultKind::RateLimit { retry_after_secs }) => {
                remaining = 0;
                reset_ms = now + retry_after_secs as i64 * 1000;
                break 'reply Reply::error(
                    429,
                    "Too many requests. Please try again later.",
                    serde_json::Value::Null,
                )
                .header("retry-after", retry_after_secs.to_string());
            }
            Some(FaultKind::Quota) => {
                break 'reply Reply::error(429, "monthly_quota_exceeded", serde_json::Value::Null);
            }
            Some(FaultKind::Redirect { location }) => {
                break 'reply Reply::error(302, "Found", serde_json::Value::Null)
                    .header("location", location);
            }
            Some(FaultKind::Html { code }) => {
                break 'reply Reply::html(
                    code,
                    "<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>\
                     <body><form action=\"/login\">Guest Wi-Fi: accept the terms to continue\
                     </form></body></html>"
                        .to_string(),
                );
            }
            Some(FaultKind::Huge { bytes }) => {
                let mut body = String::from("{\"data\":[],\"meta\":{\"total\":0}");
                body.extend(std::iter::repeat_n(
                    ' ',
                    bytes.saturating_sub(body.len() + 1),
                ));
                body.push('}');
                break 'reply Reply::json(200, body);
            }
            Some(FaultKind::Unauthorized) => {
                break 'reply Reply::error(
                    401,
                    "Unauthorized",
                    json!({"reason": "invalid API key"}),
                );
            }
        }
        if let Some(key) = &api_key {
            let sent = parts
                .headers
                .get("x-api-key")
                .map(|v| v.as_bytes())
                .or_else(|| {
                    parts
                        .headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                });
            if sent != Some(key.as_bytes()) {
                let why = if sent.is_some() {
                    "invalid API key"
                } else {
                    "missing API key"
                };
                break 'reply Reply::error(401, "Unauthorized", json!({"reason": why}));
            }
        }
        if count > limit {
            let secs = ((reset_ms - now).max(0) + 999) / 1000;
            break 'reply Reply::error(
                429,
                "Too many requests. Please try again later.",
                serde_json::Value::Null,
            )
            .header("retry-after", secs.to_string());
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            // The OpenAPI file gives `/stats` a 405 of its own; the other
            // read endpoints answer the same way here.
            break 'reply Reply::error(405, "Method not allowed", serde_json::Value::Null)
                .header("allow", "GET");
        }
        let params = Params::parse(query);
        match path.as_str() {
            "/health" => health_reply(&app, health, feed_enabled, now),
            "/skills-search" => match crate::search::parse(&params) {
                Ok(mut p) => {
                    if ignore_offset {
                        p.ignore_offset();
                    }
                    crate::search::respond(&read(&app.store), &app.cache, &p, corrupt)
                }
                Err(e) => e,
            },
            "/skills-get" => get_reply(&app, &params, corrupt),
            "/stats" if stats_enabled => stats_reply(&app, &params, now),
            "/skills-changes" if feed_enabled => {
                let inm = parts
                    .headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                crate::feed::respond(&read(&app.store), &params, inm, now, corrupt)
            }
            _ => Reply::error(404, "Not found", json!({"path": path})),
        }
    };
    lock(&app.stats).finish(seq, reply.status);
    let rate = RateHeaders {
        limit,
        remaining,
        reset_secs: (reset_ms + 999) / 1000,
    };
    finish(&app, seq, reply, rate, truncate)
}

/// The `X-RateLimit-*` values of one response.
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset_secs: i64,
}

/// Adds the headers every API response carries and builds the response.
fn finish(app: &App, seq: u64, reply: Reply, rate: RateHeaders, truncate: bool) -> Response {
    // A fault may ask for any code; an impossible one becomes a 500.
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    let h = builder.headers_mut().expect("fresh builder");
    let mut set = |name: HeaderName, value: String| {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(name, v);
        }
    };
    set(
        HeaderName::from_static("x-ratelimit-limit"),
        rate.limit.to_string(),
    );
    set(
        HeaderName::from_static("x-ratelimit-remaining"),
        rate.remaining.to_string(),
    );
    set(
        HeaderName::from_static("x-ratelimit-reset"),
        rate.reset_secs.to_string(),
    );
    set(
        HeaderName::from_static("x-request-id"),
        uuid_from(mix(app.nonce ^ seq), mix(seq)),
    );
    // Taken now rather than on arrival, so a Delay fault shows in it.
    set(header::DATE, http_date(app.now_ms()));
    for (name, value) in reply.headers {
        set(name, value);
    }
    let Some(body) = reply.body else {
        return builder.body(Body::empty()).expect("valid response");
    };
    set(header::CONTENT_TYPE, reply.content_type.to_string());
    if truncate {
        // Announce the whole body, send half, then fail the stream: hyper
        // closes the connection and the client sees a body cut short.
        let full = Bytes::from(body);
        set(header::CONTENT_LENGTH, full.len().to_string());
        let half = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
            full.slice(..full.len() / 2),
        )));
        // Fail only after hyper has flushed head and half body; an immediate
        // error would drop the buffered bytes and look like no response.
        let cut = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::other("truncated by fault"))
        });
        return builder
            .body(Body::from_stream(half.chain(cut)))
            .expect("valid response");
    }
    builder.body(Body::from(body)).expect("valid response")
}

/// IMF-fixdate, e.g. `Wed, 25 Nov 2026 03:36:48 GMT`.
fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn health_reply(app: &App, health: HealthStatus, feed: bool, now: i64) -> Reply {
    let check = |name: &str, status: HealthStatus| json!({"name": name, "status": status.as_str(), "latencyMs": 1});
    let checks = [
        check(
            "database",
            if health == HealthStatus::Unhealthy {
                health
            } else {
                HealthStatus::Healthy
            },
        ),
        check("skills_data", HealthStatus::Healthy),
        check(
            "search",
            if health == HealthStatus::Degraded {
                health
            } else {
                HealthStatus::Healthy
            },
        ),
    ];
    let n = |s: HealthStatus| checks.iter().filter(|c| c["status"] == s.as_str()).count();
    let mut body = json!({
        "status": health.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": format_rfc3339_ms(now),
        "uptime": app.started.elapsed().as_secs(),
        "checks": checks,
        "summary": {
            "total": checks.len(),
            "healthy": n(HealthStatus::Healthy),
            "degraded": n(HealthStatus::Degraded),
            "unhealthy": n(HealthStatus::Unhealthy),
        },
    });
    if feed {
        body["capabilities"] = json!(["skills-changes"]);
    }
    Reply::json(
        if health == HealthStatus::Unhealthy {
            503
        } else {
            200
        },
        body.to_string(),
    )
}

/// `/stats` as the OpenAPI file has it: `skillCount` and friends, and with
/// `detailed=true` the breakdown by state and tier and the quality buckets.
fn stats_reply(app: &App, params: &Params, now: i64) -> Reply {
    let store = read(&app.store);
    let count = store.live_count();
    let mut data = json!({
        "skillCount": count,
        "githubTotal": count + count / 50,
        "lastUpdated": format_rfc3339_ms(now),
    });
    let detailed = params.get("detailed") == Some("true");
    if detailed {
        let by_tier: serde_json::Map<String, serde_json::Value> = store
            .count_by_tier()
            .into_iter()
            .map(|(t, n)| (t.as_str().to_owned(), json!(n)))
            .collect();
        let [high, medium, low, _] = store.count_by_quality();
        data["breakdown"] = json!({"active": count, "quarantined": 0, "byTier": by_tier});
        data["qualityDistribution"] = json!({"high": high, "medium": medium, "low": low});
        data["recentIndexerRuns"] = json!([]);
        data["recentRefreshSummary"] = json!({});
        data["netGrowth72h"] = json!({});
    }
    Reply::json(200, json!({"data": data, "cached": false}).to_string())
}

fn get_reply(app: &App, params: &Params, corrupt: bool) -> Reply {
    let Some(id) = params.get("id").filter(|s| !s.is_empty()) else {
        return Reply::error(
            400,
            "Missing required parameter: id",
            json!({"parameter": "id", "received": null}),
        );
    };
    let store = read(&app.store);
    let Some(slot) = store.lookup(id) else {
        return Reply::error(404, "Skill not found", json!({"id": id}));
    };
    let mut out = String::from("{\"data\":");
    if corrupt {
        out.push_str(crate::search::BAD_RECORD);
    } else {
        store.render(slot, None, &mut out);
    }
    out.push('}');
    Reply::json(200, out)
}

/// Starts registries.
pub struct RegistryServer;

impl RegistryServer {
    /// Binds 127.0.0.1 (`config.port`, 0 = any free port) and serves on a
    /// runtime of its own, on its own thread, so sync tests can use it. The
    /// server stops when the handle is dropped.
    pub fn start(config: ServerConfig) -> anyhow::Result<RegistryHandle> {
        let listener = StdListener::bind(("127.0.0.1", config.port))
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App::new(config));
        let router = router(app.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skillsmith-registry")
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("skillsmith-registry".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return tracing::error!("registry listener: {e}"),
                    };
                    // Small request/response exchanges: Nagle would add latency.
                    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let server = axum::serve(listener, router);
                    tokio::select! {
                        r = server => if let Err(e) = r { tracing::error!("registry server: {e}") },
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task, including
                // hanging ones, so shutdown never waits for a client.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        tracing::debug!("registry listening on {addr}");
        Ok(RegistryHandle {
            app,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(&format!("{API_PREFIX}/{{*rest}}"), any(api))
        .nest("/_admin", crate::admin::router())
        .with_state(app)
}

/// A running registry. Dropping it stops the server.
pub struct RegistryHandle {
    app: Arc<App>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RegistryHandle {
    /// `http://127.0.0.1:PORT/functions/v1`, the base URL clients use.
    pub fn base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.origin())
    }

    /// `http://127.0.0.1:PORT` (admin endpoints live under `/_admin`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry clock (wall clock plus offset), Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.app.now_ms()
    }

    /// Updates `count` live skills spread over the catalogue: new description,
    /// `updated_at` set to one registry time above every existing timestamp.
    /// Returns their ids.
    pub fn update(&self, count: usize) -> Vec<String> {
        self.app.update(count)
    }

    /// Updates these skills (unknown ids are skipped); returns the updated ids.
    pub fn update_ids<S: AsRef<str>>(&self, ids: &[S]) -> Vec<String> {
        self.app.update_ids(ids)
    }

    /// Deletes `count` live skills, leaving tombstones for the feed.
    pub fn delete(&self, count: usize) -> Vec<String> {
        self.app.delete(count)
    }

    /// Deletes these skills (unknown ids are skipped); returns the deleted ids.
    pub fn delete_ids<S: AsRef<str>>(&self, ids: &[S]) -> Vec<String> {
        self.app.delete_ids(ids)
    }

    /// Inserts `count` new skills (generated from the seed, continuing the
    /// numbering), created and updated at a new registry time.
    pub fn insert(&self, count: usize) -> Vec<String> {
        self.app.insert(count)
    }

    /// Adds a fault; faults stay until spent or cleared, first match applies.
    pub fn set_fault(&self, fault: Fault) {
        self.app.add_fault(fault);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.app.clear_faults();
    }

    /// The faults not yet spent.
    pub fn faults(&self) -> Vec<Fault> {
        self.app.faults()
    }

    /// Applies a settings change; returns the resulting settings.
    pub fn set_config(&self, update: ConfigUpdate) -> ConfigView {
        self.app.set_config(update)
    }

    /// The current settings.
    pub fn config(&self) -> ConfigView {
        self.app.config()
    }

    /// Serves `/skills-changes` (and advertises it) or answers it with 404.
    pub fn set_feed_enabled(&self, enabled: bool) {
        self.app.set_config(ConfigUpdate {
            feed_enabled: Some(enabled),
            ..Default::default()
        });
    }

    /// Requires this API key (or none).
    pub fn set_api_key(&self, key: Option<&str>) {
        self.app.set_config(ConfigUpdate {
            api_key: Some(key.map(str::to_string)),
            ..Default::default()
        });
    }

    /// Requests per minute before `429`.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.app.set_config(ConfigUpdate {
            rate_limit_per_minute: Some(per_minute),
            ..Default::default()
        });
    }

    /// Answers every search as if `offset` were 0 (a registry that lies).
    pub fn set_ignore_offset(&self, ignore: bool) {
        self.set_config(ConfigUpdate {
            ignore_offset: Some(ignore),
            ..Default::default()
        });
    }

    /// Serves `/stats`, or answers it 404.
    pub fn set_stats_enabled(&self, enabled: bool) {
        self.set_config(ConfigUpdate {
            stats_enabled: Some(enabled),
            ..Default::default()
        });
    }

    /// Discards all tombstones; cursors behind the newest change then get 410.
    pub fn expire_tombstones(&self) {
        self.app.set_config(ConfigUpdate {
            expire_tombstones: true,
            ..Default::default()
        });
    }

    /// What `/health` reports.
    pub fn set_health(&self, status: HealthStatus) {
        self.app.set_config(ConfigUpdate {
            health: Some(status),
            ..Default::default()
        });
    }

    /// Registry clock offset relative to the wall clock.
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.app.set_config(ConfigUpdate {
            clock_offset_ms: Some(offset_ms),
            ..Default::default()
        });
    }

    /// Request counters and recent request headers.
    pub fn stats(&self) -> Stats {
        self.app.stats()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.app.reset_stats();
    }

    /// `(id, updated_at)` of every live skill, sorted by id; `updated_at` as
    /// sent on the wire.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        self.app.snapshot()
    }

    /// A live skill exactly as the API presents it (without `rank`).
    pub fn skill_json(&self, id: &str) -> Option<serde_json::Value> {
        self.app.skill_json(id)
    }

    /// The live skills as a catalogue (e.g. for
    /// [`Catalogue::unreachable_by_upstream_words`] after mutations).
    pub fn catalogue(&self) -> Catalogue {
        self.app.catalogue()
    }

    /// Stops the server and waits for its thread; idempotent (drop calls it).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RegistryHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for RegistryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
