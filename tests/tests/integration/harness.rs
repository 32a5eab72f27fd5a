//! Helpers shared by the integration tests: locate the built binaries, make a
//! fresh catalogue and registry per test, run commands, read the database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use skillsmith_testkit::{RegistryHandle, RegistryServer, ServerConfig, TierMix};
use tempfile::TempDir;

/// `target/<profile>/`, where cargo put the binaries under test.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/integration-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of a workspace binary, checked to be newer than every file it was
/// built from, so that the tests never drive a stale binary. `cargo test`
/// does not build other packages' binaries: `scripts/test.sh` runs
/// `cargo build --workspace --bins` first. (Building them from here would
/// rebuild, under the running `cargo test`, libraries its doctests link.)
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is not built; run `cargo build --workspace --bins` first (scripts/test.sh does)",
                path.display()
            )
        });
    // Cargo's dep-info beside the binary lists exactly the files it was
    // built from (sources, included SQL, manifests, the lock file).
    let deps = std::fs::read_to_string(bin_dir().join(format!("{name}.d"))).unwrap_or_default();
    if let Some(newer) = dep_info_files(&deps).into_iter().find(|file| {
        std::fs::metadata(file)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
    }) {
        panic!(
            "{} is older than {}; run `cargo build --workspace --bins` first (scripts/test.sh does)",
            path.display(),
            newer.display()
        );
    }
    path
}

/// The files a Makefile-style dep-info line names after `target:`
/// (spaces in paths are escaped with a backslash).
fn dep_info_files(text: &str) -> Vec<PathBuf> {
    let Some((_, files)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = files.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

/// The result of one command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The result of a finished process.
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with both streams unless the exit code is 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A fresh catalogue file and a registry.
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
    pub registry: RegistryHandle,
}

impl Env {
    /// A registry of `skills` generated skills (seed 7) with the feed on.
    pub fn new(skills: usize) -> Env {
        Env::with(ServerConfig::new(skills, 7))
    }

    /// A registry serving only the search API.
    pub fn search_only(skills: usize) -> Env {
        Env::with(ServerConfig {
            feed_enabled: false,
            ..ServerConfig::new(skills, 7)
        })
    }

    /// A registry serving only the search API, with tiers in the shares of
    /// `mix` (`tier=weight,...`): tiers outside the OpenAPI enum are served
    /// but cannot be filtered on.
    pub fn mixed(skills: usize, mix: &str) -> Env {
        Env::with(ServerConfig {
            feed_enabled: false,
            tier_mix: TierMix::parse(mix).expect("a valid tier mix"),
            ..ServerConfig::new(skills, 7)
        })
    }

    /// `registry` and a catalogue at `db` (a file system of the test's own,
    /// say), with a fresh home directory.
    pub fn with_db(registry: RegistryHandle, db: PathBuf) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        Env { dir, db, registry }
    }

    /// A registry with this configuration.
    pub fn with(config: ServerConfig) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("skills.db");
        let registry = RegistryServer::start(config).expect("start test registry");
        Env { dir, db, registry }
    }

    /// `skillsmith` with this env's catalogue and registry. The compiled
    /// component is cached in one directory for the whole suite.
    pub fn cmd(&self) -> Command {
        self.command_for("skillsmith")
    }

    /// The workspace binary `name` with this env's catalogue, registry and
    /// component cache, and nothing else from the test's environment.
    pub fn command_for(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SKILLSMITH_DB", &self.db)
            .env("SKILLSMITH_API_URL", self.registry.base_url())
            .env(
                "SKILLSMITH_CACHE_DIR",
                bin_dir().join("test-component-cache"),
            )
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1");
        cmd
    }

    /// Runs `skillsmith ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("spawn skillsmith"))
    }

    /// Runs `skillsmith sync ARGS --json` and expects success.
    #[track_caller]
    pub fn sync(&self, args: &[&str]) -> Value {
        let mut all = vec!["sync", "--json"];
        all.extend_from_slice(args);
        self.run(&all).ok().json()
    }

    /// A read-only connection to the catalogue.
    pub fn conn(&self) -> Connection {
        Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open catalogue")
    }

    /// Registry-sourced rows as (id, updated_at), sorted by id.
    pub fn local_registry_rows(&self) -> Vec<(String, String)> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, updated_at FROM skills WHERE sync_origin = 'registry' ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// One value from the catalogue.
    pub fn scalar<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.conn()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A canonical dump of every table the sync touches, to show "nothing changed".
    pub fn dump(&self) -> String {
        let conn = self.conn();
        let mut text = String::new();
        for (table, order) in [
            ("skills", "id"),
            ("sync_config", "id"),
            ("sync_history", "id"),
            ("sync_state", "id"),
        ] {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut line = String::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!("{v:?}|"));
                    }
                    Ok(line)
                })
                .unwrap();
            for row in rows {
                text.push_str(table);
                text.push(':');
                text.push_str(&row.unwrap());
                text.push('\n');
            }
        }
        text
    }
}

/// The registry's live catalogue as (id, updated_at), sorted by id, in the
/// normalised form the client stores.
pub fn registry_rows(registry: &RegistryHandle) -> Vec<(String, String)> {
    registry.snapshot()
}

/// Asserts the local registry rows equal the registry's catalogue.
#[track_caller]
pub fn assert_same_catalogue(env: &Env) {
    let local = env.local_registry_rows();
    let remote = registry_rows(&env.registry);
    assert_eq!(local.len(), remote.len(), "row counts differ");
    if let Some((i, (l, r))) = local
        .iter()
        .zip(&remote)
        .enumerate()
        .find(|(_, (l, r))| l != r)
    {
        panic!("catalogues differ at row {i}: local {l:?} vs registry {r:?}");
    }
}

impl Env {
    /// A writable connection, for arranging a scenario.
    pub fn conn_rw(&self) -> Connection {
        let conn = Connection::open(&self.db).expect("open catalogue");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }
}
