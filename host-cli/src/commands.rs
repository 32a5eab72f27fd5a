//! One function per command: open what it needs, do it, print the result.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use skillsmith_runtime::SyncMode;
use skillsmith_runtime::db::{Database, Frequency, SearchFilter};
use skillsmith_runtime::sync::{Backend, SyncRunner};

use crate::cli::{Cli, Command, ConfigArgs, FrequencyArg, ModeArg, SyncAction, SyncArgs};
use crate::failure::EXIT_CANCELLED;
use crate::{progress, render};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let db_path = match cli.db {
        Some(path) => path,
        None => {
            let default = skillsmith_runtime::location::default_catalogue().context(
                "could not find a home directory for the catalogue; pass --db PATH or set SKILLSMITH_DB",
            )?;
            if let Some(notice) = &default.notice {
                tracing::warn!("{notice}");
            }
            default.path
        }
    };
    match cli.command {
        Command::Sync(args) => match args.action {
            None => sync(&db_path, &cli.registry, &args),
            Some(SyncAction::Status(flag)) => status(&db_path, flag.json),
            Some(SyncAction::History(h)) => history(&db_path, h.limit, h.json),
            Some(SyncAction::Config(c)) => config(&db_path, &c),
        },
        Command::Search(s) => {
            let db = open_for_reading(&db_path)?;
            let filter = SearchFilter {
                trust_tier: s.trust_tier.clone(),
                min_quality: s.min_quality,
                limit: s.limit,
            };
            let hits = db.search(&s.query, &filter)?;
            render::search(&hits, &s.query, s.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Get(g) => {
            let db = open_for_reading(&db_path)?;
            match db.get(&g.id)? {
                Some(skill) => {
                    render::skill(&skill, g.json)?;
                    Ok(ExitCode::SUCCESS)
                }
                None => anyhow::bail!(
                    "no skill {:?} in the local catalogue ({}); run `skillsmith sync` or check the id",
                    g.id,
                    db_path.display()
                ),
            }
        }
    }
}

fn open(path: &PathBuf) -> Result<Database> {
    Database::open(path).with_context(|| format!("cannot open the catalogue {}", path.display()))
}

/// For commands that only read: works on a read-only file or folder and on
/// a full disk too.
fn open_for_reading(path: &PathBuf) -> Result<Database> {
    Database::open_for_reading(path)
        .with_context(|| format!("cannot open the catalogue {}", path.display()))
}

fn sync(db_path: &Path, registry: &str, args: &SyncArgs) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_signals(stop.clone());
    let observer = progress::Observer::new(args.json, stop.clone());
    let started = Instant::now();
    let mut runner = SyncRunner::new(db_path, registry.to_owned())
        .api_key(
            std::env::var("SKILLSMITH_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        )
        .force(args.force)
        .dry_run(args.dry_run)
        .page_size(args.page_size.unwrap_or(0))
        .mode(args.mode.map(|m| match m {
            ModeArg::Feed => SyncMode::ChangesFeed,
            ModeArg::Search => SyncMode::Search,
        }))
        .retry_budget(Duration::from_secs(args.retry_budget))
        .http_timeout(Duration::from_secs(args.timeout))
        .backend(if args.native {
            Backend::Native
        } else {
            Backend::Component
        })
        .observer(Box::new(observer));
    if let Some(secs) = args.wait {
        runner = runner.wait_for_lease(Duration::from_secs(secs));
    }
    let report = runner.run()?;
    render::report(&report, args, registry, started.elapsed())?;
    if report.cancelled {
        return Ok(ExitCode::from(EXIT_CANCELLED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The first Ctrl-C, SIGTERM or SIGHUP (what `timeout`, systemd, Docker
/// and CI send): stop at the next page boundary, commit the page in flight,
/// record the run as cancelled and release the lease; the sync then exits
/// with [`EXIT_CANCELLED`]. The second: leave at once (SQLite's journal keeps
/// the file consistent; the lease expires or is taken over).
fn install_stop_signals(stop: Arc<AtomicBool>) {
    let signals = AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.store(true, Ordering::SeqCst);
            // stderr may be closed; nothing here may panic.
            let _ = writeln!(
                std::io::stderr(),
                "\nstopping after the current page (signal again to quit at once)"
            );
        } else {
            std::process::exit(130);
        }
    });
}

fn status(db_path: &PathBuf, json: bool) -> Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let status = db.status()?;
    render::status(&status, db_path, json)?;
    Ok(ExitCode::SUCCESS)
}

fn history(db_path: &PathBuf, limit: u32, json: bool) -> Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let runs = db.history(limit)?;
    render::history(&runs, json)?;
    Ok(ExitCode::SUCCESS)
}

fn config(db_path: &PathBuf, args: &ConfigArgs) -> Result<ExitCode> {
    let db = open(db_path)?;
    if args.enable {
        db.set_enabled(true)?;
    } else if args.disable {
        db.set_enabled(false)?;
    } else if let Some(f) = args.frequency {
        db.set_frequency(match f {
            FrequencyArg::Daily => Frequency::Daily,
            FrequencyArg::Weekly => Frequency::Weekly,
        })?;
    }
    let config = db.config()?;
    render::config(&config, args.json)?;
    Ok(ExitCode::SUCCESS)
}
