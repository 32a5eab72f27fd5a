//! Turns results into text for people or JSON for programs. Everything for
//! people is plain text; colour only in the progress bar, and never with
//! `NO_COLOR` set.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use skillsmith_runtime::db::{HistoryEntry, SkillRecord, Status, SyncConfigView};
use skillsmith_runtime::text::{printable, printable_lines, truncated};
use skillsmith_runtime::{SyncOutcome, SyncReport};

/// Characters of a description shown in a result list; `get` shows all.
const LIST_DESCRIPTION_CHARS: usize = 200;

use crate::cli::SyncArgs;

/// True when colour may be used on stderr (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// `error: what happened: why` on one line.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The report of one sync run.
pub fn report(
    outcome: &SyncOutcome,
    args: &SyncArgs,
    registry: &str,
    elapsed: Duration,
) -> Result<()> {
    let r: &SyncReport = outcome;
    if args.json {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        let host = &outcome.host;
        // Where the time went: SQLite, waiting for the registry, and the
        // rest of the run (guest code and the WIT boundary, or the native
        // engine).
        let engine = outcome
            .guest
            .map_or(outcome.duration, |g| g.call)
            .saturating_sub(host.store_time + host.http_wait_time);
        // The runner's report (what `SyncOutcome` serialises to), with
        // the flags and the time split of this run.
        let mut doc = serde_json::to_value(outcome)?;
        doc["forced"] = json!(args.force);
        doc["duration_ms"] = json!(elapsed.as_millis() as u64);
        doc["timings"] = json!({
            "backend": outcome.backend,
            "sync_ms": ms(outcome.duration),
            "store_ms": ms(host.store_time),
            "http_wait_ms": ms(host.http_wait_time),
            "engine_ms": ms(engine),
            "instantiate_ms": outcome.guest.map(|g| ms(g.instantiate)),
            "imports": host.imports,
        });
        return print_json(&doc);
    }
    let mut out = std::io::stdout().lock();
    let verb = if args.dry_run {
        "Dry run against"
    } else {
        "Synced from"
    };
    writeln!(
        out,
        "{verb} {registry} ({} mode) in {:.2} s",
        r.mode.as_str(),
        elapsed.as_secs_f64()
    )?;
    let would = if args.dry_run { " (would be)" } else { "" };
    writeln!(
        out,
        "  added {}, updated {}, unchanged {}, removed {}, skipped {}{would}",
        r.added, r.updated, r.unchanged, r.removed, r.skipped
    )?;
    writeln!(out, "  {} pages, {} requests", r.pages, r.requests)?;
    if let Some(c) = &r.coverage {
        writeln!(out, "  {}", printable(&c.summary()))?;
    }
    if let Some(at) = &r.last_sync_at
        && !args.dry_run
        && !r.cancelled
    {
        writeln!(out, "  catalogue current as of {at} (registry time)")?;
    }
    if r.cancelled {
        writeln!(
            out,
            "  cancelled: pages applied so far are kept; run `skillsmith sync` again to finish"
        )?;
    }
    if !r.warnings.is_empty() {
        writeln!(out, "  {} warning(s):", r.warnings.len())?;
        for w in r.warnings.iter().take(20) {
            writeln!(out, "    - {}", printable(w))?;
        }
        if r.warnings.len() > 20 {
            writeln!(
                out,
                "    ... and {} more (use --json to see all)",
                r.warnings.len() - 20
            )?;
        }
    }
    Ok(())
}

fn or_never(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("never")
}

/// `sync config --show` and after a change.
pub fn config(c: &SyncConfigView, json: bool) -> Result<()> {
    if json {
        return print_json(c);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "background sync: {}",
        if c.enabled { "enabled" } else { "disabled" }
    )?;
    writeln!(
        out,
        "frequency:       {} (every {} h)",
        c.frequency,
        c.interval_ms / 3_600_000
    )?;
    writeln!(out, "last sync:       {}", or_never(&c.last_sync_at))?;
    writeln!(
        out,
        "next sync:       {}",
        c.next_sync_at
            .as_deref()
            .unwrap_or("at the next MCP session")
    )?;
    if let Some(e) = &c.last_sync_error {
        writeln!(out, "last error:      {}", printable(e))?;
    }
    Ok(())
}

/// `sync status`.
pub fn status(s: &Status, db_path: &Path, json: bool) -> Result<()> {
    if json {
        return print_json(s);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "catalogue:       {}", db_path.display())?;
    write!(
        out,
        "skills:          {} from the registry, {} local",
        s.registry_skills, s.local_skills
    )?;
    if s.other_skills > 0 {
        // Rows the upstream tools (or another program) wrote that no sync
        // of ours has listed: kept, never removed.
        write!(out, ", {} from other tools", s.other_skills)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "protocol:        {}",
        s.mode.map_or("not yet synced", |m| m.as_str())
    )?;
    if let Some(pid) = s.running_pid {
        writeln!(out, "sync running:    yes (process {pid})")?;
    }
    if s.search_index_pending {
        writeln!(
            out,
            "search index:    not built yet: the first sync builds it when it ends; if no sync is running, run `skillsmith sync`"
        )?;
    }
    drop(out);
    config(&s.config, false)?;
    if let Some(run) = &s.last_run {
        let mut out = std::io::stdout().lock();
        writeln!(out, "last run:")?;
        history_line(&mut out, run)?;
    }
    Ok(())
}

fn history_line(out: &mut impl Write, h: &HistoryEntry) -> Result<()> {
    writeln!(
        out,
        "  #{} {} {:<8} +{} ~{} ={} -{} skipped {}{}{}",
        h.id,
        h.started_at,
        h.status,
        h.skills_added,
        h.skills_updated,
        h.skills_unchanged,
        h.skills_removed,
        h.skills_skipped,
        h.duration_ms
            .map(|d| format!(" in {:.1} s", d as f64 / 1000.0))
            .unwrap_or_default(),
        h.error_message
            .as_deref()
            .map(|e| format!("\n      {}", printable(e)))
            .unwrap_or_default(),
    )?;
    if let Some(c) = h.coverage() {
        writeln!(out, "      {}", printable(&c.summary()))?;
    }
    Ok(())
}

/// `sync history`.
pub fn history(runs: &[HistoryEntry], json: bool) -> Result<()> {
    if json {
        return print_json(runs);
    }
    let mut out = std::io::stdout().lock();
    if runs.is_empty() {
        writeln!(out, "no sync has run yet; run `skillsmith sync`")?;
        return Ok(());
    }
    writeln!(
        out,
        "runs, newest first (+added ~updated =unchanged -removed):"
    )?;
    for run in runs {
        history_line(&mut out, run)?;
    }
    Ok(())
}

/// `search`.
pub fn search(hits: &[SkillRecord], query: &str, json: bool) -> Result<()> {
    if json {
        return print_json(hits);
    }
    let mut out = std::io::stdout().lock();
    if hits.is_empty() {
        writeln!(
            out,
            "no local skill matches \"{}\"; run `skillsmith sync` if the catalogue is stale",
            printable(query)
        )?;
        return Ok(());
    }
    for s in hits {
        let score = s
            .skill
            .quality_score
            .map(|q| format!(" q={q:.2}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}  {}/{}  [{}{score}]",
            printable(&s.skill.id),
            printable(s.skill.author.as_deref().unwrap_or("-")),
            printable(&s.skill.name),
            s.skill.trust_tier.as_str()
        )?;
        if let Some(d) = &s.skill.description {
            writeln!(
                out,
                "    {}",
                truncated(&printable(d), LIST_DESCRIPTION_CHARS)
            )?;
        }
    }
    Ok(())
}

/// `get`.
pub fn skill(s: &SkillRecord, json: bool) -> Result<()> {
    if json {
        return print_json(s);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} ({})",
        printable(&s.skill.name),
        printable(&s.skill.id)
    )?;
    writeln!(
        out,
        "author:      {}",
        printable(s.skill.author.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "trust tier:  {}", s.skill.trust_tier.as_str())?;
    if let Some(q) = s.skill.quality_score {
        writeln!(out, "quality:     {q:.2}")?;
    }
    if let Some(r) = &s.skill.repo_url {
        writeln!(out, "repository:  {}", printable(r))?;
    }
    if !s.skill.tags.is_empty() {
        writeln!(out, "tags:        {}", printable(&s.skill.tags.join(", ")))?;
    }
    writeln!(out, "source:      {}", s.source.as_str())?;
    writeln!(out, "updated:     {}", printable(&s.skill.updated_at))?;
    if let Some(d) = &s.skill.description {
        writeln!(out, "\n{}", printable_lines(d))?;
    }
    Ok(())
}
