//! The HTTP server: the request pipeline every API call goes through (stats,
//! faults, auth, rate limit, common headers), `/health`, `/stats`,
//! `/skills-get`, and the handle tests drive it with.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use futures_util::StreamExt as _;
use serde_json::json;

use crate::app::{App, lock, read};
use crate::catalogue::{Catalogue, format_rfc3339_ms, mix, uuid_from};
pub use crate::config::{
    ConfigUpdate, ConfigView, HealthStatus, RateWindows, ServerConfig, UNLIMITED,
};
use crate::faults::{Fault, FaultKind};
pub use crate::reply::API_PREFIX;
use crate::reply::{Params, Reply, reason};
use crate::stats::Stats;

/// Every API request: stats, faults, auth, rate limit, then the endpoint.
async fn api(State(app): State<Arc<App>>, req: Request) -> Response {
    if !app.latency.is_zero() {
        // A slow network's round trip (a simulation, not synchronisation).
        tokio::time::sleep(app.latency).await;
    }
    let (parts, _) = req.into_parts();
    let full = parts.uri.path();
    let path = full
        .strip_prefix(API_PREFIX)
        .filter(|p| !p.is_empty())
        .unwrap_or(full)
        .to_string();
    let query = parts.uri.query();
    let now = app.now_ms();
    let seq = lock(&app.stats).begin(parts.method.as_str(), &path, query, &parts.headers, now);
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
    let (count, mut reset_ms) = lock(&app.rate).count(now, app.rate_window_ms, app.rate_windows);
    let mut remaining = limit.saturating_sub(count);

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
            Some(FaultKind::GzipBomb { decoded_bytes }) => {
                break 'reply Reply::gzip_bomb(decoded_bytes);
            }
            Some(FaultKind::Huge { bytes }) => {
                let mut body = String::from("{\"data\":[],\"meta\":{\"total\":0}");
                body.extend(std::iter::repeat_n(
                    ' ',
                    bytes.saturating_sub(body.len() + 1),
                ));
                body.push('}');
                break 'reply Reply {
                    compress: false,
                    ..Reply::json(200, body)
                };
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
            let secs = app.retry_after_secs(reset_ms, now);
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
        reset: app.announced_reset(reset_ms),
    };
    finish(&app, seq, reply, rate, truncate)
}

/// The `X-RateLimit-*` values of one response.
struct RateHeaders {
    limit: u32,
    remaining: u32,
    /// `X-RateLimit-Reset` as sent ([`App::announced_reset`]).
    reset: i64,
}

/// Adds the headers every API response carries and builds the response.
fn finish(app: &App, seq: u64, reply: Reply, rate: RateHeaders, truncate: bool) -> Response {
    // A fault may ask for any code; an impossible one becomes a 500.
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    if truncate || !reply.compress {
        builder = builder.extension(Uncompressed);
    }
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
        rate.reset.to_string(),
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
    if reply.content_encoding.is_none() {
        app.wire
            .bodies
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
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
        let counters = app.wire.clone();
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
                    let listener = crate::wire::CountingListener::new(listener, counters);
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
    let mut api_routes = Router::new().route(&format!("{API_PREFIX}/{{*rest}}"), any(api));
    if app.compression {
        // gzip, br or zstd as `Accept-Encoding` asks; a body that already
        // has a `Content-Encoding` (the bomb fault's) is left as it is.
        use tower_http::compression::predicate::{DefaultPredicate, Predicate as _};
        let wanted = |_: StatusCode, _: axum::http::Version, _: &HeaderMap, x: &Extensions| {
            x.get::<Uncompressed>().is_none()
        };
        api_routes = api_routes.layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(wanted)),
        );
    }
    api_routes
        .nest("/_admin", crate::admin::router())
        .with_state(app)
}

/// Marks a response the compression layer must leave as it is: the faults
/// whose point is what the body's bytes and `Content-Length` say.
#[derive(Debug, Clone, Copy)]
struct Uncompressed;

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
