//! The tools' contract: documented argument structs (their JSON schemas are
//! what clients show the model), structured outputs (with output schemas),
//! and the readable text that goes with each result.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use skillsmith_runtime::db::{HistoryEntry, SkillRecord, Status, SyncConfigView};
use skillsmith_runtime::sync::ReportView;
use skillsmith_runtime::text::{printable, truncated};

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

// The catalogue's own read types (`SkillRecord`, `SyncConfigView`,
// `HistoryEntry`, `Status`, `CoverageView`) are the outputs' parts: the
// catalogue derives `JsonSchema` for them (its `schemars` feature).

/// Result of `search`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// The query as given.
    pub query: String,
    /// Number of results.
    pub count: usize,
    /// The matches, best first.
    pub skills: Vec<SkillRecord>,
}

/// Result of `get_skill`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GetSkillOutput {
    /// The skill.
    pub skill: SkillRecord,
}

/// Result of `sync`.
pub type SyncOutput = ReportView;

/// Result of `sync_config`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigOutput {
    /// Whether this call changed anything.
    pub changed: bool,
    /// The settings after the call.
    pub config: SyncConfigView,
}

/// Result of `sync_history`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryOutput {
    /// Runs, newest first.
    pub runs: Vec<HistoryEntry>,
}

/// What the background scheduler of this session is doing.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct BackgroundStatus {
    /// The scheduler is running in this session.
    pub active: bool,
    /// Background sync was turned off for this session
    /// (`SKILLSMITH_BACKGROUND_SYNC=false`); the `sync` tool still works.
    pub off_in_session: bool,
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
    /// Checks that found a sync due while another process was syncing this catalogue, or had just synced it; skipped quietly.
    pub skipped_busy: u64,
    /// A background sync is running now.
    pub running: bool,
    /// How the last background sync of this session ended.
    pub last_result: Option<String>,
}

/// Result of `sync_status`: the catalogue's status and this session's
/// scheduler.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusOutput {
    /// The catalogue: its file, settings, contents and sync state.
    #[serde(flatten)]
    pub catalogue: Status,
    /// This session's background scheduler.
    pub background: BackgroundStatus,
}

// --------------------------------------------------------------------- text

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// Characters of a description in a result list; `get_skill` shows all.
const LIST_DESCRIPTION_CHARS: usize = 200;

fn who(s: &SkillRecord) -> String {
    // One line each: a name or author with a line break in it could
    // otherwise forge entries of the list.
    match &s.skill.author {
        Some(a) if !a.is_empty() => format!("{}/{}", printable(a), printable(&s.skill.name)),
        _ => printable(&s.skill.name).into_owned(),
    }
}

fn facts(s: &SkillRecord) -> String {
    let mut f = vec![s.skill.trust_tier.as_str().to_owned()];
    if let Some(q) = s.skill.quality_score {
        f.push(format!("quality {q:.2}"));
    }
    if let Some(n) = s.skill.stars {
        f.push(format!("{n} stars"));
    }
    f.join(", ")
}

/// What a search that found the catalogue empty did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmptyCatalogue {
    /// It started a sync in the background.
    SyncStarted,
    /// A sync of this session is already running.
    SyncRunning,
    /// Background sync is off (in this session or in `sync_config`).
    BackgroundOff,
    /// The sync an earlier search started ended so (and left it empty).
    StillEmpty(String),
}

/// Text for `search`; `empty` when the catalogue holds no skill at all.
pub fn search_text(out: &SearchOutput, empty: Option<EmptyCatalogue>) -> String {
    let mut t = String::new();
    if out.skills.is_empty() {
        let _ = write!(t, "No skills match {:?}.", out.query);
        let hint = match &empty {
            Some(EmptyCatalogue::SyncStarted) => {
                " The local catalogue is empty, so a sync with the registry has started in the \
                 background: search again in a minute (`sync_status` shows its progress)."
                    .to_owned()
            }
            Some(EmptyCatalogue::SyncRunning) => {
                " The local catalogue is empty and a sync with the registry is running: search \
                 again in a minute (`sync_status` shows its progress)."
                    .to_owned()
            }
            Some(EmptyCatalogue::StillEmpty(last)) => format!(
                " The local catalogue is still empty after the sync an earlier search started \
                 ({}): call the `sync` tool to see why.",
                printable(last)
            ),
            Some(EmptyCatalogue::BackgroundOff) => {
                " The local catalogue is empty: call the `sync` tool to download the registry's \
                 skills first."
                    .to_owned()
            }
            None => " Try fewer or other words, or drop the filters.".to_owned(),
        };
        t.push_str(&hint);
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
        if let Some(d) = s.skill.description.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(t, "   {}", truncated(&printable(d), LIST_DESCRIPTION_CHARS));
        }
        let _ = writeln!(t, "   id: {}", printable(&s.skill.id));
    }
    t.push_str("Call `get_skill` with an id for the details.");
    t
}

/// Text for `get_skill`.
pub fn skill_text(s: &SkillRecord) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{} [{}]", who(s), facts(s));
    if let Some(d) = &s.skill.description {
        let _ = writeln!(t, "{d}");
    }
    let _ = writeln!(t, "id: {}", s.skill.id);
    if let Some(r) = &s.skill.repo_url {
        let _ = writeln!(t, "repository: {r}");
    }
    if !s.skill.tags.is_empty() {
        let _ = writeln!(t, "tags: {}", s.skill.tags.join(", "));
    }
    if !s.skill.categories.is_empty() {
        let _ = writeln!(t, "categories: {}", s.skill.categories.join(", "));
    }
    if let Some(l) = &s.skill.license {
        let _ = writeln!(t, "license: {l}");
    }
    if let Some(sec) = s.skill.security_score {
        let _ = writeln!(t, "security score: {sec:.2}");
    }
    if s.skill.quarantined == Some(true) {
        let _ = writeln!(t, "QUARANTINED by the registry: do not install.");
    }
    let _ = write!(t, "source: {}; updated {}", s.source, s.skill.updated_at);
    t
}

/// Text for `sync`.
pub fn sync_text(o: &SyncOutput) -> String {
    let verb = if o.dry_run {
        "Dry run: would have"
    } else {
        "Sync"
    };
    let mut t = if o.report.cancelled {
        format!(
            "Sync cancelled after {} pages; what it applied is kept and the next sync carries on. ",
            o.report.pages
        )
    } else if o.dry_run {
        format!("{verb} ")
    } else {
        format!("{verb} complete ({}): ", o.report.mode.as_str())
    };
    let _ = write!(
        t,
        "{} added, {} updated, {} unchanged, {} removed, {} skipped; {} requests in {:.1} s.",
        o.report.added,
        o.report.updated,
        o.report.unchanged,
        o.report.removed,
        o.report.skipped,
        o.report.requests,
        o.duration_ms as f64 / 1000.0
    );
    if let Some(at) = &o.report.last_sync_at {
        let _ = write!(t, " Current as of {at}.");
    }
    if let Some(c) = &o.coverage {
        let _ = write!(t, "\nCoverage: {}.", c.summary);
    }
    for w in &o.report.warnings {
        let _ = write!(t, "\nwarning: {w}");
    }
    t
}

fn config_lines(t: &mut String, c: &SyncConfigView) {
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

fn run_line(r: &HistoryEntry) -> String {
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
pub fn status_text(out: &StatusOutput) -> String {
    let s = &out.catalogue;
    let mut t = String::new();
    let others = match s.other_skills {
        0 => String::new(),
        n => format!(", {n} from other tools"),
    };
    let _ = writeln!(
        t,
        "catalogue: {} ({} registry skills, {} local{others})",
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
    let b = &out.background;
    if b.off_in_session {
        let _ = write!(
            t,
            "this session: background sync is off (SKILLSMITH_BACKGROUND_SYNC=false); call `sync` to sync"
        );
        return t;
    }
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
            ", {} skipped because another process was syncing or had just synced",
            b.skipped_busy
        );
    }
    if let Some(r) = &b.last_result {
        let _ = write!(t, "; last: {r}");
    }
    t
}
