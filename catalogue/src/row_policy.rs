//! How a skill is written into a `skills` row that the upstream tools also
//! read: values their constraints refuse are stored in a form they accept,
//! with the registry's own value kept in a column of this project's, which
//! every read of this project prefers; and whose each row is.
//!
//! - `sync_origin` says whose a row is (`schema::SKILL_COLUMNS`): a sync
//!   writes `registry` rows and claims rows another tool wrote (NULL) once a
//!   listing shows them, and removes only `registry` rows; `local` rows are
//!   never touched.
//! - `trust_tier` has a CHECK list upstream (four tiers in 0.4.3, six at
//!   schema 17). A tier outside it is stored as `unknown`, and the real tier
//!   in `registry_tier`.
//! - `repo_url` is unique upstream. When two skills claim one repository,
//!   the registry decides: its claim beats a row no sync has listed, and
//!   between two registry rows the more recently updated keeps it (then the
//!   smaller id). The other row keeps its repository in `registry_repo_url`,
//!   and gets it back when it is free again. A local row keeps its own.
//! - `skill_versions`, where a later upstream schema has that table, gets a
//!   row for each skill written, as upstream's sync records one.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};
use skillsmith_guest::domain::{Skill, TrustTier};

use crate::{constraints, schema};

/// What the file's `skills` table accepts, read once per sync run.
#[derive(Debug, Clone)]
pub(crate) struct RowPolicy {
    allowed_tiers: Vec<String>,
    /// A unique index covers `repo_url` now (a first sync sets this
    /// project's aside, and settles duplicates when it builds it again).
    unique_repo_url: bool,
    /// The file has upstream's `skill_versions` table.
    versions: bool,
    /// The file has upstream's `source` column (its migration 16).
    has_source: bool,
    /// Every CHECK of `skills` is one the store enforces itself
    /// (`constraints.rs`), so its INSERT may leave them to [`RowPolicy::admit`].
    checks_here: bool,
}

impl RowPolicy {
    /// Reads the policy of `conn`'s file.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<RowPolicy> {
        let versions: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table'
                     AND name = 'skill_versions')",
            )?
            .query_row([], |r| r.get(0))?;
        let declaration = schema::skills_declaration(conn)?;
        let allowed_tiers = schema::allowed_tiers(declaration.as_deref());
        // Upstream's `skill_versions` has CHECKs of its own.
        let checks_here = !versions
            && declaration
                .as_deref()
                .is_some_and(|sql| constraints::enforceable(sql, &allowed_tiers));
        Ok(RowPolicy {
            allowed_tiers,
            unique_repo_url: schema::repo_url_is_unique(conn)?,
            versions,
            has_source: schema::has_source_column(conn)?,
            checks_here,
        })
    }

    /// Whether the store checks rows against the file's CHECKs itself
    /// ([`RowPolicy::admit`]) rather than SQLite.
    pub(crate) fn checks_here(&self) -> bool {
        self.checks_here
    }

    /// Refuses, as the file's CHECKs would, a row to be inserted with
    /// `tier` and `quality` where [`RowPolicy::checks_here`].
    pub(crate) fn admit(&self, tier: &str, quality: Option<f64>) -> rusqlite::Result<()> {
        constraints::admit(tier, quality, &self.allowed_tiers)
    }

    /// The tier to store in `trust_tier`, and the one for `registry_tier`
    /// when they differ.
    pub(crate) fn tier(&self, tier: TrustTier) -> (&'static str, Option<&'static str>) {
        let real = tier.as_str();
        if self.allowed_tiers.iter().any(|t| t == real) {
            (real, None)
        } else {
            ("unknown", Some(real))
        }
    }

    /// The repository to store in `repo_url`, and the one for
    /// `registry_repo_url` when they differ, for registry skill `s`; first
    /// moves aside the rows whose claim to it loses to `s`'s. `local` is
    /// true for a local row, which wins over every row but another local one.
    pub(crate) fn repo(
        &self,
        conn: &Connection,
        s: &Skill,
        local: bool,
    ) -> rusqlite::Result<(Option<String>, Option<String>)> {
        let Some(repo) = s.repo_url.as_deref() else {
            return Ok((None, None));
        };
        if !self.unique_repo_url {
            return Ok((Some(repo.to_owned()), None));
        }
        // Timestamps are compared as times: upstream writes
        // `YYYY-MM-DD HH:MM:SS`, the registry ISO 8601.
        conn.prepare_cached(
            "UPDATE skills SET registry_repo_url = repo_url, repo_url = NULL
             WHERE repo_url = ?1 AND id IS NOT ?2 AND sync_origin IS NOT 'local'
                 AND (?4 OR sync_origin IS NULL
                     OR julianday(updated_at) < julianday(?3)
                     OR (julianday(updated_at) = julianday(?3) AND id > ?2))
                 -- A registry skill whose id a local row holds is not stored.
                 AND (?4 OR NOT EXISTS (SELECT 1 FROM skills WHERE id = ?2
                     AND sync_origin IS 'local'))",
        )?
        .execute(params![repo, s.id, s.updated_at, local])?;
        let held: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM skills WHERE repo_url = ?1 AND id IS NOT ?2)",
            )?
            .query_row(params![repo, s.id], |r| r.get(0))?;
        Ok(if held {
            (None, Some(repo.to_owned()))
        } else {
            (Some(repo.to_owned()), None)
        })
    }

    /// Marks local skill `id` as local for upstream too, where the file has
    /// upstream's `source` column.
    pub(crate) fn mark_local(&self, conn: &Connection, id: &str) -> rusqlite::Result<()> {
        if self.has_source {
            conn.prepare_cached("UPDATE skills SET source = 'local' WHERE id = ?1")?
                .execute([id])?;
        }
        Ok(())
    }

    /// Records the version of `s` that was just written, where the file
    /// keeps versions, as upstream's sync records one: the hash of
    /// [`version_proxy`], once per distinct hash, and the newest
    /// [`VERSIONS_KEPT`] per skill.
    pub(crate) fn record_version(
        &self,
        conn: &Connection,
        s: &Skill,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        if !self.versions {
            return Ok(());
        }
        let hash = hex_sha256(version_proxy(s).as_bytes());
        conn.prepare_cached(
            "INSERT OR IGNORE INTO skill_versions (skill_id, content_hash, recorded_at)
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![s.id, hash, now_ms.div_euclid(1000)])?;
        conn.prepare_cached(
            "DELETE FROM skill_versions WHERE skill_id = ?1 AND id NOT IN (
                 SELECT id FROM skill_versions WHERE skill_id = ?1
                 ORDER BY recorded_at DESC, id DESC LIMIT ?2)",
        )?
        .execute(params![s.id, VERSIONS_KEPT])?;
        Ok(())
    }
}

/// Versions upstream keeps per skill (`SkillVersionRepository`).
pub(crate) const VERSIONS_KEPT: i64 = 50;

/// What upstream's sync (schema 17) hashes for a skill's version: the JSON
/// of its id, name, description and `updated_at`, in that order, as
/// `JSON.stringify` writes it (which `serde_json` matches).
pub(crate) fn version_proxy(s: &Skill) -> String {
    #[derive(serde::Serialize)]
    struct Proxy<'a> {
        id: &'a str,
        name: &'a str,
        description: Option<&'a str>,
        updated_at: &'a str,
    }
    serde_json::to_string(&Proxy {
        id: &s.id,
        name: &s.name,
        description: s.description.as_deref(),
        updated_at: &s.updated_at,
    })
    .expect("strings serialise")
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Gives each repository no row holds any more back to one row waiting for
/// it (`registry_repo_url`), chosen as `schema::settle_repo_urls` would.
pub(crate) fn give_back_repos(conn: &Connection) -> rusqlite::Result<usize> {
    // Shared with the hosts outside Rust.
    conn.prepare_cached(crate::shared_sql::statement("skills_give_back_repos"))?
        .execute([])
}

/// The source of a stored row by its `sync_origin`: only `local` rows are
/// local; a row another tool wrote is the registry's to update once listed.
pub(crate) fn source_of(origin: Option<&str>) -> skillsmith_guest::domain::Source {
    match origin {
        Some("local") => skillsmith_guest::domain::Source::Local,
        _ => skillsmith_guest::domain::Source::Registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_proxy_is_upstreams_json_and_hash() {
        let mut s = Skill::minimal("a", "x");
        s.name = "n \"q\"\u{1}".into();
        // node -e 'console.log(JSON.stringify({id:"a",name:"n \"q\"\u0001",
        //   description:null,updated_at:"x"}))'
        assert_eq!(
            version_proxy(&s),
            r#"{"id":"a","name":"n \"q\"\u0001","description":null,"updated_at":"x"}"#
        );
        // node -e 'console.log(require("crypto").createHash("sha256").update(
        //   JSON.stringify({id:"a",name:"b",description:null,updated_at:"c"})).digest("hex"))'
        let mut t = Skill::minimal("a", "c");
        t.name = "b".into();
        assert_eq!(
            hex_sha256(version_proxy(&t).as_bytes()),
            "7a52bd9d58c176813d1153333e7f89617cd173d4a20a679a400436b2a2e2e173"
        );
    }
}
