//! Plain Rust mirrors of the WIT types, and the `Host` trait through which the
//! engine reaches HTTP, the store and the host. The wasm glue implements `Host`
//! with WIT imports; the native runtime implements it directly, so the same
//! engine code runs inside and outside the component.

/// See `types.trust-tier` in the WIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustTier {
    /// Published by the registry's owners.
    Official,
    /// Verified publisher.
    Verified,
    /// Picked by curators.
    Curated,
    /// Community contribution.
    Community,
    /// Not reviewed.
    Unverified,
    /// Experimental.
    Experimental,
    /// Any value this version does not know.
    Unknown,
}

impl TrustTier {
    /// All tiers, in WIT order.
    pub const ALL: [TrustTier; 7] = [
        TrustTier::Official,
        TrustTier::Verified,
        TrustTier::Curated,
        TrustTier::Community,
        TrustTier::Unverified,
        TrustTier::Experimental,
        TrustTier::Unknown,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::Official => "official",
            TrustTier::Verified => "verified",
            TrustTier::Curated => "curated",
            TrustTier::Community => "community",
            TrustTier::Unverified => "unverified",
            TrustTier::Experimental => "experimental",
            TrustTier::Unknown => "unknown",
        }
    }

    /// Parses a wire value; anything unrecognised is `Unknown`.
    pub fn parse(s: &str) -> TrustTier {
        TrustTier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .unwrap_or(TrustTier::Unknown)
    }
}

/// See `types.skill` in the WIT.
#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    /// Registry id (a UUID on the live registry).
    pub id: String,
    /// Skill name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Author handle.
    pub author: Option<String>,
    /// Source repository.
    pub repo_url: Option<String>,
    /// 0.0 ..= 1.0.
    pub quality_score: Option<f64>,
    /// Trust tier.
    pub trust_tier: TrustTier,
    /// Tags.
    pub tags: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// GitHub stars.
    pub stars: Option<i64>,
    /// Normalised RFC 3339, UTC, milliseconds.
    pub created_at: String,
    /// Normalised RFC 3339, UTC, milliseconds.
    pub updated_at: String,
    /// Content hash, when the registry sends one.
    pub content_hash: Option<String>,
    /// SPDX licence, when sent.
    pub license: Option<String>,
    /// Security score, when sent.
    pub security_score: Option<f64>,
    /// Installable flag, when sent.
    pub installable: Option<bool>,
    /// Quarantined flag, when sent.
    pub quarantined: Option<bool>,
}

/// See `types.coverage`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `/stats` `skillCount`, when the registry says.
    pub registry_total: Option<u64>,
    /// Distinct skills the listings reached.
    pub reached: u64,
    /// Tiers the search API cannot filter on.
    pub unfilterable_tiers: Vec<String>,
}

impl Coverage {
    /// Skills the registry counts that no listing reached; `None` when the
    /// registry gave no count to check against.
    pub fn unreachable(&self) -> Option<u64> {
        self.registry_total
            .map(|total| total.saturating_sub(self.reached))
    }

    /// One line for people: what the listings reached, and what they could
    /// not.
    pub fn summary(&self) -> String {
        match (self.registry_total, self.unreachable()) {
            (Some(total), Some(0)) => {
                format!("the search API reached all {total} skills the registry counts")
            }
            (Some(total), Some(missing)) => {
                let why = if self.unfilterable_tiers.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (no score, no category, and a tier it cannot filter on: {})",
                        self.unfilterable_tiers.join(", ")
                    )
                };
                format!(
                    "the search API reached {} of the registry's {total} skills; {missing} cannot \
                     be reached through it{why}",
                    self.reached
                )
            }
            _ => format!(
                "the search API reached {} skills; the registry does not say how many it has, \
                 so completeness was not checked",
                self.reached
            ),
        }
    }
}

/// See `types.sync-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `/skills-changes`.
    ChangesFeed,
    /// `/skills-search` enumeration.
    Search,
}

impl SyncMode {
    /// Spelling used in the database and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::ChangesFeed => "changes-feed",
            SyncMode::Search => "search",
        }
    }

    /// Inverse of [`SyncMode::as_str`].
    pub fn parse(s: &str) -> Option<SyncMode> {
        match s {
            "changes-feed" => Some(SyncMode::ChangesFeed),
            "search" => Some(SyncMode::Search),
            _ => None,
        }
    }
}

/// See `http.request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Absolute URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// 0 = host default.
    pub timeout_ms: u32,
}

/// See `http.response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// Whole body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// See `http.http-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Timed out.
    Timeout,
    /// Connection failed or broke.
    Connection(String),
    /// Body over the cap (bytes).
    TooLarge(u64),
    /// Refused by the host.
    Denied(String),
    /// Anything else.
    Other(String),
}

/// See `store.store-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Database busy.
    Busy,
    /// Invalid request.
    Invalid(String),
    /// Disk full or read-only.
    NoSpace,
    /// Corrupt database.
    Corrupt(String),
    /// Anything else.
    Other(String),
}

/// See `store.sync-state`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Registry time of the last success.
    pub last_sync_at: Option<String>,
    /// Protocol of the checkpoint.
    pub mode: Option<SyncMode>,
    /// Feed cursor.
    pub cursor: Option<String>,
    /// Feed ETag.
    pub etag: Option<String>,
    /// A full resync is under way.
    pub resync_pending: bool,
    /// Registry-sourced rows.
    pub registry_skills: u64,
}

/// See `store.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Written by sync.
    Registry,
    /// Imported from disk; never touched by sync.
    Local,
}

/// See `store.local-version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVersion {
    /// Stored `updated_at`.
    pub updated_at: String,
    /// Where the row came from.
    pub source: Source,
}

/// See `store.registry-row`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRow {
    /// Registry id.
    pub id: String,
    /// Stored tier.
    pub trust_tier: TrustTier,
    /// The stored copy has a quality score.
    pub scored: bool,
    /// Stored category names.
    pub categories: Vec<String>,
}

/// See `store.checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Protocol.
    pub mode: SyncMode,
    /// Feed cursor after the page.
    pub cursor: Option<String>,
    /// Feed ETag when caught up.
    pub etag: Option<String>,
    /// Full resync under way.
    pub resync_pending: bool,
}

/// See `store.page`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Rows to insert or replace.
    pub upserts: Vec<Skill>,
    /// Ids to delete.
    pub removals: Vec<String>,
    /// Written with the page.
    pub checkpoint: Checkpoint,
}

/// See `store.run-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Whole run succeeded.
    Success,
    /// Some pages applied.
    Partial,
    /// Nothing applied.
    Failed,
}

impl RunStatus {
    /// Spelling in `sync_history.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// See `store.run-counts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// New rows.
    pub added: u64,
    /// Changed rows.
    pub updated: u64,
    /// Rows already current.
    pub unchanged: u64,
    /// Rows deleted.
    pub removed: u64,
    /// Records skipped.
    pub skipped: u64,
}

/// See `store.run-outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Final status.
    pub status: RunStatus,
    /// Counts.
    pub counts: RunCounts,
    /// Error text for partial/failed.
    pub error: Option<String>,
    /// Registry time to record, on success only.
    pub last_sync_at: Option<String>,
    /// Search mode: what the listings reached.
    pub coverage: Option<Coverage>,
}

/// See `host.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// See `host.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking capabilities.
    Discover,
    /// Downloading pages.
    Fetch,
    /// Removing deleted skills.
    Prune,
}

/// See `host.progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Phase.
    pub phase: Phase,
    /// Skills processed.
    pub done: u64,
    /// Expected total.
    pub total: Option<u64>,
    /// Pages fetched.
    pub pages: u32,
    /// Rate-limit wait in progress (ms), else 0.
    pub waiting_ms: u64,
}

/// See `host.directive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Carry on.
    Proceed,
    /// Stop at this page boundary.
    Stop,
}

/// See `engine.sync-options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Registry base URL, no trailing slash.
    pub registry: String,
    /// Full resync.
    pub force: bool,
    /// Write nothing.
    pub dry_run: bool,
    /// Requested page size.
    pub page_size: u32,
    /// Forced protocol, or discover.
    pub mode: Option<SyncMode>,
    /// Host time, Unix ms.
    pub now_ms: i64,
    /// Retry budget (ms).
    pub retry_budget_ms: u64,
}

/// See `engine.sync-report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Protocol used.
    pub mode: SyncMode,
    /// New rows.
    pub added: u64,
    /// Changed rows.
    pub updated: u64,
    /// Current rows.
    pub unchanged: u64,
    /// Deleted rows.
    pub removed: u64,
    /// Skipped records.
    pub skipped: u64,
    /// Pages fetched.
    pub pages: u32,
    /// HTTP requests made (retries included).
    pub requests: u32,
    /// Non-fatal problems.
    pub warnings: Vec<String>,
    /// Registry time now current as of.
    pub last_sync_at: Option<String>,
    /// Stopped early by the host.
    pub cancelled: bool,
    /// Search mode: what the listings reached.
    pub coverage: Option<Coverage>,
}

/// See `engine.sync-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    /// Registry unreachable after retries.
    Unreachable(HttpError),
    /// 401/403.
    Unauthorized(String),
    /// Monthly quota used up.
    QuotaExceeded(String),
    /// Rate limited beyond the retry budget.
    RateLimited(String),
    /// Error status after retries.
    Registry(String),
    /// Protocol violation.
    Protocol(String),
    /// Store failure.
    Store(StoreError),
    /// Another run is open.
    Busy,
}

/// See `schedule.schedule-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Background sync on.
    pub enabled: bool,
    /// Interval (ms).
    pub interval_ms: i64,
    /// Host time the last attempt ended.
    pub last_attempt_ms: Option<i64>,
    /// Host time the last success ended.
    pub last_success_ms: Option<i64>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

/// See `schedule.decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Sync now.
    pub due: bool,
    /// Next sync time, if enabled.
    pub next_ms: Option<i64>,
}

/// Everything the engine can ask of the world. One method per WIT import.
pub trait Host {
    /// A request in flight (`http.pending`).
    type Pending;

    /// `http.send`.
    fn http_send(&mut self, request: HttpRequest) -> Self::Pending;
    /// `http.pending.wait`.
    fn http_wait(&mut self, pending: Self::Pending) -> Result<HttpResponse, HttpError>;

    /// `store.read-state`.
    fn read_state(&mut self) -> Result<SyncState, StoreError>;
    /// `store.local-versions`.
    fn local_versions(&mut self, ids: &[String]) -> Result<Vec<Option<LocalVersion>>, StoreError>;
    /// `store.registry-rows`.
    fn registry_rows(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RegistryRow>, StoreError>;
    /// `store.begin-run`.
    fn begin_run(&mut self, mode: SyncMode) -> Result<u64, StoreError>;
    /// `store.apply-page`.
    fn apply_page(&mut self, run: u64, page: Page) -> Result<(), StoreError>;
    /// `store.finish-run`.
    fn finish_run(&mut self, run: u64, outcome: RunOutcome) -> Result<(), StoreError>;

    /// `host.log`.
    fn log(&mut self, level: Level, message: &str);
    /// `host.progress`.
    fn progress(&mut self, report: Progress) -> Directive;
    /// `host.sleep`.
    fn sleep(&mut self, ms: u64) -> Directive;
    /// `host.random`.
    fn random(&mut self) -> u64;
}

// Human-readable texts. Each says what happened and, where there is
// something to do, what to do: they end up in `sync_history.error_message`
// and on the user's terminal.

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("the request timed out"),
            HttpError::Connection(t) => write!(f, "connection failed: {t}"),
            HttpError::TooLarge(cap) => {
                write!(f, "the response exceeded the host's limit of {cap} bytes")
            }
            HttpError::Denied(t) => write!(f, "the host refused the request: {t}"),
            HttpError::Other(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for HttpError {}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Busy => {
                f.write_str("the database is locked by another process; try again shortly")
            }
            StoreError::Invalid(t) => write!(f, "invalid store request: {t}"),
            StoreError::NoSpace => {
                f.write_str("the disk is full or read-only; free space or fix permissions")
            }
            StoreError::Corrupt(t) => write!(
                f,
                "the database is damaged ({t}); restore a backup, or delete it and sync again"
            ),
            StoreError::Other(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for StoreError {}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Unreachable(e) => write!(
                f,
                "could not reach the registry ({e}); check the network connection and the \
                 registry URL, then try again"
            ),
            SyncError::Unauthorized(m)
            | SyncError::QuotaExceeded(m)
            | SyncError::RateLimited(m)
            | SyncError::Registry(m) => f.write_str(m),
            SyncError::Protocol(m) => write!(
                f,
                "the registry sent a response that breaks the protocol ({m}); try again later, \
                 and report it if it persists"
            ),
            SyncError::Store(e) => write!(f, "the local catalogue failed: {e}"),
            SyncError::Busy => f.write_str(
                "another sync is already running on this catalogue; wait for it to finish, then \
                 try again",
            ),
        }
    }
}

impl std::error::Error for SyncError {}
