//! Command-line flags and environment: the same database and registry
//! settings as the `skillsmith` CLI, plus the background-sync check interval.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// MCP server over stdio for the local Skillsmith catalogue: search and get
/// skills, sync with the registry, and keep the catalogue current in the
/// background while the session lasts.
///
/// stdout carries only the MCP protocol; logs go to stderr (`RUST_LOG`).
#[derive(Debug, Clone, Parser)]
#[command(name = "skillsmith-mcp", version, about, long_about = None)]
pub struct Settings {
    /// SQLite catalogue to use [default: ~/.skillsmith/skills.db, shared with the upstream
    /// Skillsmith tools].
    #[arg(long, env = "SKILLSMITH_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Base URL of the registry API.
    #[arg(
        long,
        env = "SKILLSMITH_API_URL",
        value_name = "URL",
        default_value = skillsmith_runtime::DEFAULT_REGISTRY_URL
    )]
    pub registry: String,

    /// How often the background scheduler checks whether a sync is due, in milliseconds.
    #[arg(
        long = "sync-check-interval-ms",
        env = "SKILLSMITH_SYNC_CHECK_INTERVAL_MS",
        value_name = "MS",
        default_value_t = 60_000,
        value_parser = clap::value_parser!(u64).range(10..=86_400_000)
    )]
    pub check_interval_ms: u64,

    /// Run the background scheduler in this session. The environment's
    /// `SKILLSMITH_BACKGROUND_SYNC=false` (or `0`, `no`, `off`) turns it off
    /// too, as it does the upstream MCP server's; any other value of the
    /// variable leaves it on. The catalogue's own setting (`sync_config`)
    /// is left as it is.
    #[arg(
        long = "background-sync",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub background_sync: bool,

    /// Give up retrying a failing registry after this many seconds of waiting (per sync).
    #[arg(
        long,
        env = "SKILLSMITH_SYNC_RETRY_BUDGET_SECS",
        value_name = "SECONDS",
        default_value_t = 120
    )]
    pub retry_budget: u64,

    /// API key, sent as `X-API-Key` to the registry's origin only. Read from
    /// `SKILLSMITH_API_KEY` and never taken as a flag, so that it does not
    /// show in process listings.
    #[arg(skip)]
    pub api_key: Option<String>,
}

impl Settings {
    /// Parses the command line and reads `SKILLSMITH_API_KEY`.
    pub fn from_env_and_args() -> Settings {
        let mut settings = Settings::parse();
        settings.api_key = std::env::var("SKILLSMITH_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        if std::env::var("SKILLSMITH_BACKGROUND_SYNC").is_ok_and(|v| turns_off(&v)) {
            settings.background_sync = false;
        }
        settings
    }

    /// Settings for a catalogue and registry, with defaults for the rest
    /// (tests and benchmarks).
    pub fn new(db: impl Into<PathBuf>, registry: impl Into<String>) -> Settings {
        Settings {
            db: Some(db.into()),
            registry: registry.into(),
            check_interval_ms: 60_000,
            background_sync: true,
            retry_budget: 120,
            api_key: None,
        }
    }

    /// The catalogue path, or a message saying how to set one.
    pub fn db_path(&self) -> Result<PathBuf, String> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => match skillsmith_runtime::location::default_catalogue() {
                Some(default) => {
                    if let Some(notice) = &default.notice {
                        tracing::warn!("{notice}");
                    }
                    Ok(default.path)
                }
                None => Err(
                    "no home directory for the catalogue; set SKILLSMITH_DB or pass --db PATH"
                        .to_owned(),
                ),
            },
        }
    }

    /// The background check interval.
    pub fn check_interval(&self) -> Duration {
        Duration::from_millis(self.check_interval_ms)
    }
}

/// Whether a `SKILLSMITH_BACKGROUND_SYNC` value turns background sync off.
/// Lenient, as upstream's: a value it does not know never stops the server
/// from starting.
fn turns_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Settings::command().debug_assert();
    }

    #[test]
    fn interval_flag_parses_and_is_bounded() {
        let s = Settings::try_parse_from(["x", "--sync-check-interval-ms", "200"]).unwrap();
        assert_eq!(s.check_interval(), Duration::from_millis(200));
        assert!(Settings::try_parse_from(["x", "--sync-check-interval-ms", "0"]).is_err());
    }

    #[test]
    fn background_sync_is_on_unless_turned_off() {
        assert!(Settings::try_parse_from(["x"]).unwrap().background_sync);
        for off in ["false", "0", "no", "off"] {
            let s = Settings::try_parse_from(["x", "--background-sync", off]).unwrap();
            assert!(!s.background_sync, "{off}");
        }
        assert!(Settings::try_parse_from(["x", "--background-sync", "maybe"]).is_err());
        assert!(turns_off("FALSE") && turns_off(" off ") && turns_off("0"));
        assert!(!turns_off("disabled") && !turns_off("true") && !turns_off(""));
    }
}
