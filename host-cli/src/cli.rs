//! Command-line flags, parsed by clap. Defaults and environment variables
//! are the same as the MCP server's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keep the local Skillsmith skill catalogue in sync with the registry, and
/// search it offline.
#[derive(Debug, Parser)]
#[command(name = "skillsmith", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 other error, 2 usage error, 3 registry unreachable \
or failing, 4 not authorised or quota used up, 5 registry sent invalid data, 6 local database \
error, 7 another sync is in progress, 8 sync component failed, 9 sync cancelled."
)]
pub struct Cli {
    /// SQLite catalogue to use [default: ~/.skillsmith/skills.db, shared with the upstream
    /// Skillsmith tools].
    #[arg(long, global = true, env = "SKILLSMITH_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Base URL of the registry API.
    #[arg(
        long,
        global = true,
        env = "SKILLSMITH_API_URL",
        value_name = "URL",
        default_value = skillsmith_runtime::DEFAULT_REGISTRY_URL
    )]
    pub registry: String,

    /// Log more (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sync the local catalogue with the registry (differential by default).
    Sync(SyncArgs),
    /// Search the local catalogue (full-text, offline).
    Search(SearchArgs),
    /// Show one skill from the local catalogue, by id or author/name.
    Get(GetArgs),
}

/// `skillsmith sync ...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    /// Status, history or configuration instead of a sync.
    #[command(subcommand)]
    pub action: Option<SyncAction>,

    /// Full resync: refetch everything and remove skills the registry no longer has.
    #[arg(long)]
    pub force: bool,

    /// Show what a sync would change without writing anything (not even history).
    #[arg(long)]
    pub dry_run: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Skills per request (search API: at most 100; changes feed: at most 1000). Default: the most each accepts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,

    /// Protocol to use instead of discovering it from the registry.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,

    /// If another process is syncing this catalogue, wait for it (up to this many seconds) instead of failing.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "300")]
    pub wait: Option<u64>,

    /// Give up retrying a failing registry after this many seconds of waiting.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub retry_budget: u64,

    /// Give up on a single request after this many seconds (it is then retried).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Run the sync logic natively instead of in the WebAssembly component (for comparison).
    #[arg(long, hide = true)]
    pub native: bool,
}

/// Protocol choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The changes feed (`/skills-changes`).
    Feed,
    /// Enumeration through `/skills-search`.
    Search,
}

/// `skillsmith sync <action>`
#[derive(Debug, Subcommand)]
pub enum SyncAction {
    /// Show the sync configuration, the catalogue and the last run.
    Status(JsonFlag),
    /// Show past sync runs, newest first.
    History(HistoryArgs),
    /// Show or change background-sync settings.
    Config(ConfigArgs),
}

impl Cli {
    /// Whether the command asked for JSON on stdout (then a failure is a
    /// JSON document there too).
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::Sync(s) => match &s.action {
                None => s.json,
                Some(SyncAction::Status(f)) => f.json,
                Some(SyncAction::History(h)) => h.json,
                Some(SyncAction::Config(c)) => c.json,
            },
            Command::Search(s) => s.json,
            Command::Get(g) => g.json,
        }
    }
}

/// A lone `--json` flag.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `skillsmith sync history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many runs to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `skillsmith sync config`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").args(["enable", "disable", "frequency", "show"]).multiple(false)))]
pub struct ConfigArgs {
    /// Turn background sync on (in MCP server sessions).
    #[arg(long)]
    pub enable: bool,
    /// Turn background sync off.
    #[arg(long)]
    pub disable: bool,
    /// How often background sync runs.
    #[arg(long, value_enum)]
    pub frequency: Option<FrequencyArg>,
    /// Show the configuration (the default).
    #[arg(long)]
    pub show: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Background-sync frequency.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FrequencyArg {
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
}

/// `skillsmith search`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for in names, descriptions, tags and authors.
    pub query: String,
    /// At most this many results.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Only skills of this trust tier.
    #[arg(long, value_name = "TIER")]
    pub trust_tier: Option<String>,
    /// Only skills with at least this quality score (0 to 1).
    #[arg(long, value_name = "SCORE")]
    pub min_quality: Option<f64>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `skillsmith get`
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Skill id, or `author/name`.
    pub id: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sync_subcommands_and_flags_parse() {
        let cli = Cli::try_parse_from(["skillsmith", "sync", "--force", "--dry-run"]).unwrap();
        let Command::Sync(args) = cli.command else {
            panic!("not sync")
        };
        assert!(args.force && args.dry_run && args.action.is_none());

        let cli =
            Cli::try_parse_from(["skillsmith", "sync", "config", "--frequency", "weekly"]).unwrap();
        let Command::Sync(SyncArgs {
            action: Some(SyncAction::Config(c)),
            ..
        }) = cli.command
        else {
            panic!("not config")
        };
        assert!(matches!(c.frequency, Some(FrequencyArg::Weekly)));

        assert!(
            Cli::try_parse_from(["skillsmith", "sync", "config", "--enable", "--disable"]).is_err()
        );
        assert!(Cli::try_parse_from(["skillsmith", "sync", "--force", "status"]).is_err());
    }
}
