//! Plain Rust mirrors of the WIT types, and the `Host` trait through which the
//! engine reaches HTTP, the store and the host. The wasm glue implements `Host`
//! with WIT imports; the native runtime implements it directly, so the same
//! engine code runs inside and outside the component.

use serde::Serialize;

/// See `types.trust-tier` in the WIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Skill {
    /// Registry id (a UUID on the live registry).
    pub id: String,
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Author handle.
    pub author: Option<String>,
    /// Source repository.
    pub repo_url: Option<String>,
    /// Quality score, 0 to 1.
    pub quality_score: Option<f64>,
    /// Trust tier: official, verified, curated, community, unverified,
    /// experimental or unknown.
    pub trust_tier: TrustTier,
    /// Tags.
    pub tags: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// GitHub stars.
    pub stars: Option<i64>,
    /// Creation time (the registry's), RFC 3339, UTC, milliseconds.
    pub created_at: String,
    /// Last change (the registry's), RFC 3339, UTC, milliseconds.
    pub updated_at: String,
    /// Content hash, when the registry sends one.
    pub content_hash: Option<String>,
    /// SPDX licence, when sent.
    pub license: Option<String>,
    /// Security score, when sent.
    pub security_score: Option<f64>,
    /// Whether it can be installed, when sent.
    pub installable: Option<bool>,
    /// Whether the registry quarantined it, when sent.
    pub quarantined: Option<bool>,
}

impl Skill {
    /// A skill with its required fields only: tier `community`, created and
    /// updated at `updated_at`, everything optional empty. What the registry
    /// would send for a record with nothing but an id, a name and times.
    pub fn minimal(id: &str, updated_at: &str) -> Skill {
        Skill {
            id: id.into(),
            name: id.into(),
            description: None,
            author: None,
            repo_url: None,
            quality_score: None,
            trust_tier: TrustTier::Community,
            tags: Vec::new(),
            categories: Vec::new(),
            stars: None,
            created_at: updated_at.into(),
            updated_at: updated_at.into(),
            content_hash: None,
            license: None,
            security_score: None,
            installable: None,
            quarantined: None,
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    /// Host monotonic ms when the request was sent (see `http.response`).
    pub sent_at_ms: u64,
    /// Host monotonic ms when the response head arrived.
    pub received_at_ms: u64,
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
    /// No connection could be made (DNS, refused, unroutable).
    Refused(String),
    /// The TLS handshake failed.
    Tls(String),
    /// An open connection broke.
    Connection(String),
    /// Body over the cap (bytes).
    TooLarge(u64),
    /// Refused by the host.
    Denied(String),
    /// Abandoned because the host is stopping the sync.
    Cancelled,
    /// Anything else.
    Other(String),
}

/// See `store.store-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Database busy.
    Busy,
    /// A run is already open.
    RunOpen(String),
    /// Invalid request.
    Invalid(String),
    /// Disk full.
    NoSpace,
    /// The database or its folder cannot be written.
    ReadOnly,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Source {
    /// Written by sync.
    Registry,
    /// Imported from disk; never touched by sync.
    Local,
}

impl Source {
    /// The stored value: `registry` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Registry => "registry",
            Source::Local => "local",
        }
    }
}

/// Each names itself by its wire value.
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    )*};
}
display_as_str!(TrustTier, SyncMode, Source);

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    /// The kind of failure, for partial/failed.
    pub failure: Option<FailureKind>,
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
    /// A wait about to start (ms), else 0.
    pub waiting_ms: u64,
    /// Why it waits.
    pub waiting_for: WaitReason,
}

/// See `host.wait-reason`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitReason {
    /// Not waiting.
    #[default]
    None,
    /// The rate limit is used up until its window resets.
    RateLimit,
    /// A failed request is retried after a backoff.
    Retry,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    /// Reported apart (with what it implies) by the programs' report views.
    #[serde(skip)]
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
    /// A redirect to this location (not followed).
    Redirected(String),
    /// Not a Skillsmith registry API at this URL.
    NotARegistry(String),
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
    /// `store.registry-ids`.
    fn registry_ids(&mut self, after: Option<&str>, limit: u32) -> Result<Vec<String>, StoreError>;
    /// `store.registry-rows`.
    fn registry_rows(&mut self, ids: &[String]) -> Result<Vec<Option<RegistryRow>>, StoreError>;
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

/// See `types.failure-kind`: why a sync did not succeed, as one closed
/// kind. Exit codes, tool errors, history and retry policy derive from it;
/// nothing reads a message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum FailureKind {
    /// A registry URL or argument that cannot work.
    Usage,
    /// No connection, or it kept breaking, timing out or failing (5xx).
    Unreachable,
    /// The TLS handshake failed.
    Tls,
    /// A redirect, which is not followed.
    Redirected,
    /// Not a Skillsmith registry API at that URL.
    NotARegistry,
    /// 401 or 403.
    Unauthorised,
    /// The monthly quota is used up.
    Quota,
    /// Rate limited beyond the retry budget.
    RateLimited,
    /// The registry broke the protocol.
    Protocol,
    /// A response over the size cap.
    TooLarge,
    /// The catalogue stayed locked by another writer.
    StoreBusy,
    /// The catalogue is damaged, of an unknown schema, or failed to read.
    StoreCorrupt,
    /// The disk is full.
    NoSpace,
    /// The catalogue or its folder cannot be written.
    ReadOnly,
    /// Another sync of this catalogue is running.
    Busy,
    /// Another process synced after this sync was scheduled.
    Superseded,
    /// Stopped by a signal, Ctrl-C or the end of the session.
    Cancelled,
    /// The sync component failed, or asked for something it may not.
    Component,
    /// This program could not start a part of itself.
    Internal,
}

impl FailureKind {
    /// Every kind, for tables and tests.
    pub const ALL: [FailureKind; 19] = [
        FailureKind::Usage,
        FailureKind::Unreachable,
        FailureKind::Tls,
        FailureKind::Redirected,
        FailureKind::NotARegistry,
        FailureKind::Unauthorised,
        FailureKind::Quota,
        FailureKind::RateLimited,
        FailureKind::Protocol,
        FailureKind::TooLarge,
        FailureKind::StoreBusy,
        FailureKind::StoreCorrupt,
        FailureKind::NoSpace,
        FailureKind::ReadOnly,
        FailureKind::Busy,
        FailureKind::Superseded,
        FailureKind::Cancelled,
        FailureKind::Component,
        FailureKind::Internal,
    ];

    /// The name in JSON, history and tool errors (`not-a-registry`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Usage => "usage",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Tls => "tls",
            FailureKind::Redirected => "redirected",
            FailureKind::NotARegistry => "not-a-registry",
            FailureKind::Unauthorised => "unauthorised",
            FailureKind::Quota => "quota",
            FailureKind::RateLimited => "rate-limited",
            FailureKind::Protocol => "protocol",
            FailureKind::TooLarge => "too-large",
            FailureKind::StoreBusy => "store-busy",
            FailureKind::StoreCorrupt => "store-corrupt",
            FailureKind::NoSpace => "no-space",
            FailureKind::ReadOnly => "read-only",
            FailureKind::Busy => "busy",
            FailureKind::Superseded => "superseded",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Component => "component",
            FailureKind::Internal => "internal",
        }
    }

    /// Inverse of [`FailureKind::as_str`].
    pub fn parse(s: &str) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether trying again later, with nothing changed, can succeed: what
    /// a scheduler backs off and retries. A user must act on the others.
    pub fn retry_can_help(self) -> bool {
        matches!(
            self,
            FailureKind::Unreachable
                | FailureKind::RateLimited
                | FailureKind::Protocol
                | FailureKind::StoreBusy
                | FailureKind::Busy
                | FailureKind::Superseded
                | FailureKind::Cancelled
        )
    }

    /// Whether a run that ended this way counts as a failed attempt when the
    /// next background sync is scheduled. A stopped run was not a failure
    /// of the sync, and one that found another sync at work did no harm.
    pub fn counts_as_failure(self) -> bool {
        !matches!(
            self,
            FailureKind::Cancelled | FailureKind::Busy | FailureKind::Superseded
        )
    }

    /// The one thing for the user to do. Names no command-line flag: each
    /// program adds its own hints.
    pub fn action(self) -> &'static str {
        match self {
            FailureKind::Usage => "correct the command as the message says, and run it again",
            FailureKind::Unreachable => "check the network connection, then try again later",
            FailureKind::Tls => {
                "check that the registry URL is right and the system clock is correct"
            }
            FailureKind::Redirected => {
                "check the registry URL; a redirect to a sign-in page means the network wants a login first"
            }
            FailureKind::NotARegistry => {
                "check the registry URL: it ends in /functions/v1 on the live registry"
            }
            FailureKind::Unauthorised => "set SKILLSMITH_API_KEY to a valid API key",
            FailureKind::Quota => {
                "wait until the quota resets, or move to a plan with a larger one"
            }
            FailureKind::RateLimited => {
                "try again later, or use an API key with a higher rate limit"
            }
            FailureKind::Protocol => {
                "try again later, and tell the registry's operators if it persists"
            }
            FailureKind::TooLarge => {
                "tell the registry's operators; the cap protects this machine's memory"
            }
            FailureKind::StoreBusy => {
                "try again once the other program has finished with the catalogue"
            }
            FailureKind::StoreCorrupt => {
                "restore a backup of the catalogue, or delete it and sync again"
            }
            FailureKind::NoSpace => "free disk space, then sync again",
            FailureKind::ReadOnly => "make the catalogue and its folder writable",
            FailureKind::Busy => "wait for the other sync to finish",
            FailureKind::Superseded => "nothing: the catalogue is current",
            FailureKind::Cancelled => "sync again to finish; what was applied is kept",
            FailureKind::Component => "reinstall skillsmith, and report it if it persists",
            FailureKind::Internal => "try again, and report it if it persists",
        }
    }
}

impl HttpError {
    /// The kind of a request that failed this way.
    pub fn kind(&self) -> FailureKind {
        match self {
            HttpError::Timeout
            | HttpError::Refused(_)
            | HttpError::Connection(_)
            | HttpError::Other(_) => FailureKind::Unreachable,
            HttpError::Tls(_) => FailureKind::Tls,
            HttpError::TooLarge(_) => FailureKind::TooLarge,
            // The guest asked for something the host does not grant: a bug
            // in the component, not in the network.
            HttpError::Denied(_) => FailureKind::Component,
            HttpError::Cancelled => FailureKind::Cancelled,
        }
    }
}

impl StoreError {
    /// The kind of a store call that failed this way.
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Busy => FailureKind::StoreBusy,
            StoreError::RunOpen(_) => FailureKind::Busy,
            StoreError::NoSpace => FailureKind::NoSpace,
            StoreError::ReadOnly => FailureKind::ReadOnly,
            StoreError::Corrupt(_) | StoreError::Other(_) => FailureKind::StoreCorrupt,
            // An invalid request is the component's bug.
            StoreError::Invalid(_) => FailureKind::Component,
        }
    }
}

impl SyncError {
    /// The kind of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            SyncError::Unreachable(e) => e.kind(),
            SyncError::Unauthorized(_) => FailureKind::Unauthorised,
            SyncError::QuotaExceeded(_) => FailureKind::Quota,
            SyncError::RateLimited(_) => FailureKind::RateLimited,
            SyncError::Registry(_) => FailureKind::Unreachable,
            SyncError::Redirected(_) => FailureKind::Redirected,
            SyncError::NotARegistry(_) => FailureKind::NotARegistry,
            SyncError::Protocol(_) => FailureKind::Protocol,
            SyncError::Store(e) => e.kind(),
            SyncError::Busy => FailureKind::Busy,
        }
    }

    /// What happened and the one thing to do, in one line: the history's
    /// and `last_sync_error`'s text.
    pub fn describe(&self) -> String {
        format!("{self}; {}", self.kind().action())
    }
}

// Human-readable texts. Each says what happened and where; the thing to do
// is the kind's (`FailureKind::action`), added once by whoever shows it.

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("the request timed out"),
            HttpError::Refused(t) => write!(f, "no connection could be made ({t})"),
            HttpError::Tls(t) => write!(f, "the TLS handshake failed ({t})"),
            HttpError::Connection(t) => write!(f, "the connection broke ({t})"),
            HttpError::TooLarge(cap) => {
                write!(
                    f,
                    "a response was larger than {} MiB",
                    cap.div_ceil(1 << 20)
                )
            }
            HttpError::Denied(t) => write!(f, "the host refused the request: {t}"),
            HttpError::Cancelled => f.write_str("the request was abandoned: the sync is stopping"),
            HttpError::Other(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for HttpError {}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Busy => f.write_str("the catalogue stayed locked by another program"),
            StoreError::RunOpen(t) => write!(f, "another sync is running on this catalogue ({t})"),
            StoreError::Invalid(t) => write!(f, "invalid store request: {t}"),
            StoreError::NoSpace => f.write_str("the disk holding the catalogue is full"),
            StoreError::ReadOnly => f.write_str("the catalogue or its folder is read-only"),
            StoreError::Corrupt(t) => write!(f, "the catalogue is damaged ({t})"),
            StoreError::Other(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for StoreError {}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Unreachable(e @ (HttpError::TooLarge(_) | HttpError::Tls(_))) => {
                write!(f, "{e}")
            }
            SyncError::Unreachable(e) => write!(f, "could not reach the registry: {e}"),
            SyncError::Unauthorized(m)
            | SyncError::QuotaExceeded(m)
            | SyncError::RateLimited(m)
            | SyncError::Registry(m)
            | SyncError::NotARegistry(m) => f.write_str(m),
            SyncError::Redirected(location) => write!(
                f,
                "the registry URL answered with a redirect to {location}, and redirects are not followed"
            ),
            SyncError::Protocol(m) => write!(f, "the registry broke the protocol: {m}"),
            SyncError::Store(e) => write!(f, "the local catalogue failed: {e}"),
            SyncError::Busy => f.write_str("another sync is already running on this catalogue"),
        }
    }
}

impl std::error::Error for SyncError {}
