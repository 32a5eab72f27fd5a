//! The tools' contract: documented argument structs (their JSON schemas are
//! what clients show the model), structured outputs (with output schemas),
//! and the readable text that goes with each result.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use skillsmith_runtime::db::{HistoryEntry, SkillRecord, Status, SyncConfigView};
use skillsmith_runtime::text::{printable, truncated};
use skillsmith_runtime::{Coverage, SyncOutcome};

// ---------------------------------------------------------------- arguments

/// Arguments of `search`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Words to look for in skill names, descriptions, tags and authors (full-text, ranked by relevance; the last word also matches as a prefix). An empty query lists the best-rated skills.
    pub query: String,
    /// Only skills of this trust tier: official, verified, curated, community, unverified, experimental or unknown.
    #[serde(default)]
    pub trust_tier: Option<String>,
    /// Only skills whose quality score is at least this, from 0 to 1.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_quality: Option<f64>,
    /// At most this many results, 1 to 100. Default 10.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// Arguments of `get_skill`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GetSkillArgs {
    /// The skill's id as returned by `search`, or `author/name`, or a bare name (the best-rated skill of that name).
    pub id: String,
}

/// Arguments of `sync`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SyncArgs {
    /// Full resync: download everything again and remove skills the registry no longer has. Default false (a differential sync).
    #[serde(default)]
    pub force: bool,
    /// Only report what would change; write nothing, not even history. Default false.
    #[serde(default)]
    pub dry_run: bool,
}

/// Arguments of `sync_history`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct HistoryArgs {
    /// How many runs to return, newest first, 1 to 100. Default 10.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// Background-sync frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FrequencyArg {
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
}

/// Arguments of `sync_config`. With neither field, the configuration is
/// only shown.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ConfigArgs {
    /// Turn background sync on (true) or off (false). It runs in MCP sessions like this one; `skillsmith sync config` changes the same setting from a terminal.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How often background sync runs: daily or weekly.
    #[serde(default)]
    pub frequency: Option<FrequencyArg>,
}

// ------------------------------------------------------------------ outputs

/// One skill in the local catalogue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkillOut {
    /// Registry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Source repository.
    pub repo_url: Option<String>,
    /// Quality score, 0 to 1.
    pub quality_score: Option<f64>,
    /// Trust tier (official, verified, curated, community, ...).
    pub trust_tier: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// GitHub stars.
    pub stars: Option<i64>,
    /// Content hash.
    pub content_hash: Option<String>,
    /// Licence.
    pub license: Option<String>,
    /// Security score.
    pub security_score: Option<f64>,
    /// Whether it can be installed.
    pub installable: Option<bool>,
    /// Whether the registry quarantined it.
    pub quarantined: Option<bool>,
    /// `registry` (synced) or `local` (imported from disk).
    pub source: String,
    /// Creation time (registry's).
    pub created_at: String,
    /// Last change (registry's).
    pub updated_at: String,
    /// Search relevance (bm25; lower is better); only in search results with a query.
    pub rank: Option<f64>,
}

impl From<SkillRecord> for SkillOut {
    fn from(s: SkillRecord) -> SkillOut {
        SkillOut {
            id: s.id,
            name: s.name,
            description: s.description,
            author: s.author,
            repo_url: s.repo_url,
            quality_score: s.quality_score,
            trust_tier: s.trust_tier,
            tags: s.tags,
            categories: s.categories,
            stars: s.stars,
            content_hash: s.content_hash,
            license: s.license,
            security_score: s.security_score,
            installable: s.installable,
            quarantined: s.quarantined,
            source: s.source,
            created_at: s.created_at,
            updated_at: s.updated_at,
            rank: s.rank,
        }
    }
}

/// Result of `search`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// The query as given.
    pub query: String,
    /// Number of results.
    pub count: usize,
    /// The matches, best first.
    pub skills: Vec<SkillOut>,
}

/// Result of `get_skill`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GetSkillOutput {
    /// The skill.
    pub skill: SkillOut,
}

/// Result of `sync`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SyncOutput {
    /// `success`, or `cancelled` when it was stopped (what it applied is kept).
    pub status: String,
    /// Protocol used: `changes-feed` or `search`.
    pub mode: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Skills added (or that would be, in a dry run).
    pub added: u64,
    /// Skills changed.
    pub updated: u64,
    /// Skills already current.
    pub unchanged: u64,
    /// Skills removed because the registry no longer has them.
    pub removed: u64,
    /// Records skipped as invalid.
    pub skipped: u64,
    /// Pages fetched.
    pub pages: u32,
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// Non-fatal problems.
    pub warnings: Vec<String>,
    /// Registry time the catalogue is now current as of.
    pub last_sync_at: Option<String>,
    /// Stopped before it finished.
    pub cancelled: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Search mode: how much of the registry the listings reached.
    pub coverage: Option<CoverageOut>,
}

/// How much of the registry a search-mode run reached. The search API lists
/// only what its filters match: a skill in a tier it cannot filter on, with
/// neither a quality score nor a category, is in no listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CoverageOut {
    /// Skills the registry says it has; null when it does not say, so
    /// completeness was not checked.
    pub registry_total: Option<u64>,
    /// Distinct skills the listings reached.
    pub reached: u64,
    /// Skills the registry counts that the search API cannot reach; null
    /// when completeness was not checked.
    pub unreachable: Option<u64>,
    /// Trust tiers the search API cannot filter on.
    pub unfilterable_tiers: Vec<String>,
    /// The same in one sentence.
    pub summary: String,
}

impl From<&Coverage> for CoverageOut {
    fn from(c: &Coverage) -> CoverageOut {
        CoverageOut {
            registry_total: c.registry_total,
            reached: c.reached,
            unreachable: c.unreachable(),
            unfilterable_tiers: c.unfilterable_tiers.clone(),
            summary: c.summary(),
        }
    }
}

impl From<&SyncOutcome> for SyncOutput {
    fn from(o: &SyncOutcome) -> SyncOutput {
        let r = &o.report;
        SyncOutput {
            status: if r.cancelled { "cancelled" } else { "success" }.to_owned(),
            mode: r.mode.as_str().to_owned(),
            dry_run: o.dry_run,
            added: r.added,
            updated: r.updated,
            unchanged: r.unchanged,
            removed: r.removed,
            skipped: r.skipped,
            pages: r.pages,
            requests: r.requests,
            warnings: r.warnings.clone(),
            last_sync_at: r.last_sync_at.clone(),
            cancelled: r.cancelled,
            duration_ms: o.duration.as_millis().min(u128::from(u64::MAX)) as u64,
            coverage: r.coverage.as_ref().map(CoverageOut::from),
        }
    }
}

/// The background-sync settings (`sync_config`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigOut {
    /// Background sync on.
    pub enabled: bool,
    /// `daily` or `weekly`.
    pub frequency: String,
    /// The interval in milliseconds.
    pub interval_ms: i64,
    /// Registry time of the last fully successful sync.
    pub last_sync_at: Option<String>,
    /// When the next background sync is due; null when disabled.
    pub next_sync_at: Option<String>,
    /// Skills written by the last successful sync.
    pub last_sync_count: i64,
    /// Why the last attempt failed; cleared by a success.
    pub last_sync_error: Option<String>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<String>,
    /// When the last success ended.
    pub last_success_at: Option<String>,
    /// Failed attempts since the last success (drives the backoff).
    pub consecutive_failures: u32,
    /// Last change to the settings.
    pub updated_at: String,
}

impl From<SyncConfigView> for ConfigOut {
    fn from(c: SyncConfigView) -> ConfigOut {
        ConfigOut {
            enabled: c.enabled,
            frequency: c.frequency.as_str().to_owned(),
            interval_ms: c.interval_ms,
            last_sync_at: c.last_sync_at,
            next_sync_at: c.next_sync_at,
            last_sync_count: c.last_sync_count,
            last_sync_error: c.last_sync_error,
            last_attempt_at: c.last_attempt_at,
            last_success_at: c.last_success_at,
            consecutive_failures: c.consecutive_failures,
            updated_at: c.updated_at,
        }
    }
}

/// Result of `sync_config`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigOutput {
    /// Whether this call changed anything.
    pub changed: bool,
    /// The settings after the call.
    pub config: ConfigOut,
}

/// One sync run from history.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunOut {
    /// Run id.
    pub id: i64,
    /// When it started.
    pub started_at: String,
    /// When it ended; null while running.
    pub completed_at: Option<String>,
    /// `running`, `success`, `partial` or `failed`.
    pub status: String,
    /// Skills added.
    pub skills_added: u64,
    /// Skills changed.
    pub skills_updated: u64,
    /// Skills already current.
    pub skills_unchanged: u64,
    /// Skills removed.
    pub skills_removed: u64,
    /// Records skipped.
    pub skills_skipped: u64,
    /// What went wrong, for `partial` and `failed`.
    pub error_message: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<i64>,
    /// Protocol: `changes-feed` or `search`.
    pub mode: Option<String>,
    /// Process that ran it.
    pub pid: Option<u32>,
    /// Search mode: how much of the registry the listings reached.
    pub coverage: Option<CoverageOut>,
}

impl From<HistoryEntry> for RunOut {
    fn from(h: HistoryEntry) -> RunOut {
        RunOut {
            coverage: h.coverage().as_ref().map(CoverageOut::from),
            id: h.id,
            started_at: h.started_at,
            completed_at: h.completed_at,
            status: h.status,
            skills_added: h.skills_added,
            skills_updated: h.skills_updated,
            skills_unchanged: h.skills_unchanged,
            skills_removed: h.skills_removed,
            skills_skipped: h.skills_skipped,
            error_message: h.error_message,
            duration_ms: h.duration_ms,
            mode: h.mode,
            pid: h.pid,
        }
    }
}

/// Result of `sync_history`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryOutput {
    /// Runs, newest first.
    pub runs: Vec<RunOut>,
}

/// What the background scheduler of this session is doing.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct BackgroundStatus {
    /// The scheduler is running in this session.
    pub active: bool,
    /// How often it checks whether a sync is due, in milliseconds.
    pub check_interval_ms: u64,
    /// Checks made since the session started.
    pub checks: u64,
    /// When it last checked.
    pub last_check_at: Option<String>,
    /// Whether background sync was enabled at the last check.
    pub enabled: Option<bool>,
    /// When it will sync next, as decided at the last check (after a failure this includes the backoff).
    pub next_sync_at: Option<String>,
    /// Background syncs run in this session (not counting skipped ones).
    pub syncs_started: u64,
    /// Checks that found a sync due while another process was syncing this catalogue; skipped quietly.
    pub skipped_busy: u64,
    /// A background sync is running now.
    pub running: bool,
    /// How the last background sync of this session ended.
    pub last_result: Option<String>,
}

/// Result of `sync_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusOutput {
    /// The catalogue file.
    pub path: String,
    /// Its schema version.
    pub schema_version: u32,
    /// Background-sync settings and scheduling facts.
    pub config: ConfigOut,
    /// Skills from the registry.
    pub registry_skills: u64,
    /// Skills imported from disk.
    pub local_skills: u64,
    /// Protocol of the stored checkpoint.
    pub mode: Option<String>,
    /// A changes-feed cursor is stored (the next sync resumes from it).
    pub has_cursor: bool,
    /// A full resync started and has not finished.
    pub resync_pending: bool,
    /// The first sync builds the search index at its end; until then
    /// `search` does not see the skills it added.
    pub search_index_pending: bool,
    /// Process running a sync now, if any (any process).
    pub running_pid: Option<u32>,
    /// Since when.
    pub running_since: Option<String>,
    /// The newest history row.
    pub last_run: Option<RunOut>,
    /// This session's background scheduler.
    pub background: BackgroundStatus,
}

impl StatusOutput {
    /// Combines the database's status with the scheduler's.
    pub fn new(s: Status, background: BackgroundStatus) -> StatusOutput {
        StatusOutput {
            path: s.path,
            schema_version: s.schema_version,
            config: s.config.into(),
            registry_skills: s.registry_skills,
            local_skills: s.local_skills,
            mode: s.mode,
            has_cursor: s.has_cursor,
            resync_pending: s.resync_pending,
            search_index_pending: s.search_index_pending,
            running_pid: s.running_pid,
            running_since: s.running_since,
            last_run: s.last_run.map(Into::into),
            background,
        }
    }
}

// --------------------------------------------------------------------- text

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// Characters of a description in a result list; `get_skill` shows all.
const LIST_DESCRIPTION_CHARS: usize = 200;

fn who(s: &SkillOut) -> String {
    // One line each: a name or author with a line break in it could
    // otherwise forge entries of the list.
    match &s.author {
        Some(a) if !a.is_empty() => format!("{}/{}", printable(a), printable(&s.name)),
        _ => printable(&s.name).into_owned(),
    }
}

fn facts(s: &SkillOut) -> String {
    let mut f = vec![printable(&s.trust_tier).into_owned()];
    if let Some(q) = s.quality_score {
        f.push(format!("quality {q:.2}"));
    }
    if let Some(n) = s.stars {
        f.push(format!("{n} stars"));
    }
    f.join(", ")
}

/// Text for `search`.
pub fn search_text(out: &SearchOutput, catalogue_empty: bool) -> String {
    let mut t = String::new();
    if out.skills.is_empty() {
        let _ = write!(t, "No skills match {:?}.", out.query);
        if catalogue_empty {
            t.push_str(
                " The local catalogue is empty: call the `sync` tool to download the registry's skills first.",
            );
        } else {
            t.push_str(" Try fewer or other words, or drop the filters.");
        }
        return t;
    }
    let _ = writeln!(
        t,
        "{} skill{} for {:?}, best first:",
        out.count,
        if out.count == 1 { "" } else { "s" },
        out.query
    );
    for (i, s) in out.skills.iter().enumerate() {
        let _ = writeln!(t, "{}. {} [{}]", i + 1, who(s), facts(s));
        if let Some(d) = s.description.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(t, "   {}", truncated(&printable(d), LIST_DESCRIPTION_CHARS));
        }
        let _ = writeln!(t, "   id: {}", printable(&s.id));
    }
    t.push_str("Call `get_skill` with an id for the details.");
    t
}

/// Text for `get_skill`.
pub fn skill_text(s: &SkillOut) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{} [{}]", who(s), facts(s));
    if let Some(d) = &s.description {
        let _ = writeln!(t, "{d}");
    }
    let _ = writeln!(t, "id: {}", s.id);
    if let Some(r) = &s.repo_url {
        let _ = writeln!(t, "repository: {r}");
    }
    if !s.tags.is_empty() {
        let _ = writeln!(t, "tags: {}", s.tags.join(", "));
    }
    if !s.categories.is_empty() {
        let _ = writeln!(t, "categories: {}", s.categories.join(", "));
    }
    if let Some(l) = &s.license {
        let _ = writeln!(t, "license: {l}");
    }
    if let Some(sec) = s.security_score {
        let _ = writeln!(t, "security score: {sec:.2}");
    }
    if s.quarantined == Some(true) {
        let _ = writeln!(t, "QUARANTINED by the registry: do not install.");
    }
    let _ = write!(t, "source: {}; updated {}", s.source, s.updated_at);
    t
}

/// Text for `sync`.
pub fn sync_text(o: &SyncOutput) -> String {
    let verb = if o.dry_run {
        "Dry run: would have"
    } else {
        "Sync"
    };
    let mut t = if o.cancelled {
        format!(
            "Sync cancelled after {} pages; what it applied is kept and the next sync carries on. ",
            o.pages
        )
    } else if o.dry_run {
        format!("{verb} ")
    } else {
        format!("{verb} complete ({}): ", o.mode)
    };
    let _ = write!(
        t,
        "{} added, {} updated, {} unchanged, {} removed, {} skipped; {} requests in {:.1} s.",
        o.added,
        o.updated,
        o.unchanged,
        o.removed,
        o.skipped,
        o.requests,
        o.duration_ms as f64 / 1000.0
    );
    if let Some(at) = &o.last_sync_at {
        let _ = write!(t, " Current as of {at}.");
    }
    if let Some(c) = &o.coverage {
        let _ = write!(t, "\nCoverage: {}.", c.summary);
    }
    for w in &o.warnings {
        let _ = write!(t, "\nwarning: {w}");
    }
    t
}

fn config_lines(t: &mut String, c: &ConfigOut) {
    let _ = writeln!(
        t,
        "background sync: {} ({}); next: {}",
        if c.enabled { "enabled" } else { "disabled" },
        c.frequency,
        or_dash(&c.next_sync_at)
    );
    let _ = writeln!(
        t,
        "last success: {}; current as of: {}",
        or_dash(&c.last_success_at),
        or_dash(&c.last_sync_at)
    );
    if let Some(e) = &c.last_sync_error {
        let _ = writeln!(
            t,
            "last attempt failed ({} in a row): {e}",
            c.consecutive_failures
        );
    }
}

/// Text for `sync_config`.
pub fn config_text(o: &ConfigOutput) -> String {
    let mut t = String::new();
    if o.changed {
        t.push_str("Updated. ");
    }
    config_lines(&mut t, &o.config);
    t.trim_end().to_owned()
}

fn run_line(r: &RunOut) -> String {
    let mut line = format!(
        "#{} {} {}: +{} ~{} ={} -{}",
        r.id,
        r.started_at,
        r.status,
        r.skills_added,
        r.skills_updated,
        r.skills_unchanged,
        r.skills_removed
    );
    if let Some(ms) = r.duration_ms {
        let _ = write!(line, " in {:.1} s", ms as f64 / 1000.0);
    }
    if let Some(e) = &r.error_message {
        let _ = write!(line, " ({e})");
    }
    if let Some(c) = &r.coverage {
        let _ = write!(line, "; {}", c.summary);
    }
    line
}

/// Text for `sync_history`.
pub fn history_text(o: &HistoryOutput) -> String {
    if o.runs.is_empty() {
        return "No sync has run yet. Call the `sync` tool to run one.".to_owned();
    }
    let mut t = String::from("Sync runs, newest first (+added ~updated =unchanged -removed):\n");
    for r in &o.runs {
        t.push_str(&run_line(r));
        t.push('\n');
    }
    t.trim_end().to_owned()
}

/// Text for `sync_status`.
pub fn status_text(s: &StatusOutput) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "catalogue: {} ({} registry skills, {} local)",
        s.path, s.registry_skills, s.local_skills
    );
    config_lines(&mut t, &s.config);
    if let Some(pid) = s.running_pid {
        let _ = writeln!(
            t,
            "a sync is running now (process {pid}, since {})",
            or_dash(&s.running_since)
        );
    }
    if let Some(r) = &s.last_run {
        let _ = writeln!(t, "last run: {}", run_line(r));
    }
    let b = &s.background;
    let _ = write!(
        t,
        "this session: {} checks every {} ms, {} background syncs{}",
        b.checks,
        b.check_interval_ms,
        b.syncs_started,
        if b.running { ", one running now" } else { "" }
    );
    if b.skipped_busy > 0 {
        let _ = write!(
            t,
            ", {} skipped while another process was syncing",
            b.skipped_busy
        );
    }
    if let Some(r) = &b.last_result {
        let _ = write!(t, "; last: {r}");
    }
    t
}
