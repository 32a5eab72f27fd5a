//! How a skill is written into a `skills` row that the upstream tools also
//! read: values their constraints refuse are stored in a form they accept,
//! with the registry's own value kept in a column of this project's, which
//! every read of this project prefers.
//!
//! - `trust_tier` has a CHECK list upstream (four tiers in 0.4.3, six at
//!   schema 17). A tier outside it is stored as `unknown`, and the real tier
//!   in `registry_tier`.
//! - `repo_url` is unique upstream. When two skills claim one repository,
//!   the registry decides: the more recently updated claim keeps it (then the
//!   smaller id), and the other row keeps its repository in
//!   `registry_repo_url`. A local row always keeps its own.
//! - `skill_versions`, where a later upstream schema has that table, gets a
//!   row for each skill written, as upstream's sync records one.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use skillsmith_guest::domain::{Skill, TrustTier};

use crate::schema;

/// What the file's `skills` table accepts, read once per sync run.
#[derive(Debug, Clone)]
pub(crate) struct RowPolicy {
    allowed_tiers: Vec<String>,
    /// A unique index covers `repo_url` now (a first sync sets this
    /// project's aside, and settles duplicates when it builds it again).
    unique_repo_url: bool,
    /// The file has upstream's `skill_versions` table.
    versions: bool,
}

impl RowPolicy {
    /// Reads the policy of `conn`'s file.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<RowPolicy> {
        let versions = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table'
                     AND name = 'skill_versions')",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(RowPolicy {
            allowed_tiers: schema::allowed_tiers(conn)?,
            unique_repo_url: schema::repo_url_is_unique(conn)?,
            versions,
        })
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
    /// moves aside registry rows whose claim to it is older than `s`'s.
    /// `local` is true for a local row, which wins over every registry row.
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
        conn.prepare_cached(
            "UPDATE skills SET registry_repo_url = repo_url, repo_url = NULL
             WHERE repo_url = ?1 AND id IS NOT ?2 AND source = 'registry'
                 AND (?4 OR updated_at < ?3 OR (updated_at = ?3 AND id > ?2))
                 -- A registry skill whose id a local row holds is not stored.
                 AND (?4 OR NOT EXISTS (SELECT 1 FROM skills WHERE id = ?2
                     AND coalesce(source, 'registry') != 'registry'))",
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

    /// Records the version of `s` that was just written, where the file
    /// keeps versions: upstream's hash of its id, name, description and
    /// `updated_at`, once per distinct hash.
    pub(crate) fn record_version(
        &self,
        conn: &Connection,
        s: &Skill,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        if !self.versions {
            return Ok(());
        }
        conn.prepare_cached(
            "INSERT OR IGNORE INTO skill_versions (skill_id, content_hash, recorded_at, change_type)
             VALUES (?1, ?2, ?3, 'unknown')",
        )?
        .execute(params![s.id, version_hash(s), now_ms.div_euclid(1000)])?;
        Ok(())
    }
}

/// SHA-256, in hex, of a skill's id, name, description and `updated_at`,
/// each ended by a newline.
pub(crate) fn version_hash(s: &Skill) -> String {
    let mut h = Sha256::new();
    for part in [
        s.id.as_str(),
        s.name.as_str(),
        s.description.as_deref().unwrap_or(""),
        s.updated_at.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The source of a stored row as this project treats it: `registry` (or
/// none, as upstream 0.4.3 writes its rows) is the registry's, which syncs
/// update and remove; anything else (`local`, an importer's own word) is
/// left alone.
pub(crate) fn is_registry_source(source: Option<&str>) -> bool {
    matches!(source, None | Some("registry"))
}

/// Whether `conn`'s `skills_fts` counts more rows than it indexes: upstream
/// re-inserts every row into it on each open (`INSERT OR IGNORE .. SELECT
/// FROM skills`, which FTS5 does not ignore), which doubles the index's
/// entries and leaves old words findable after a row changes. Compares the
/// row count in the index's averages record with its per-row sizes.
pub(crate) fn fts_overcounted(conn: &Connection) -> rusqlite::Result<bool> {
    let averages: Option<Vec<u8>> = conn
        .prepare_cached("SELECT block FROM skills_fts_data WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(rows) = averages.as_deref().and_then(varint) else {
        return Ok(false);
    };
    let sized: i64 = conn
        .prepare_cached("SELECT count(*) FROM skills_fts_docsize")?
        .query_row([], |r| r.get(0))?;
    Ok(rows != sized.max(0) as u64)
}

/// An SQLite varint (big-endian, 7 bits a byte, the ninth byte whole).
fn varint(bytes: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some((v << 8) | u64::from(*b));
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode() {
        assert_eq!(varint(&[0x02]), Some(2));
        assert_eq!(varint(&[0x81, 0x00]), Some(128));
        assert_eq!(
            varint(&[0x83, 0x8d, 0x20]),
            Some((3 << 14) | (13 << 7) | 0x20)
        );
        assert_eq!(varint(&[0x81]), None);
        assert_eq!(varint(&[0xff; 9]), Some(u64::MAX));
    }

    #[test]
    fn version_hash_is_sha256_of_the_four_fields() {
        let s = Skill::minimal("a", "2026-01-01T00:00:00Z");
        // printf 'a\nskill a\n\n2026-01-01T00:00:00Z\n' | sha256sum
        assert_eq!(version_hash(&s).len(), 64);
        let mut t = s.clone();
        t.description = Some("x".into());
        assert_ne!(version_hash(&s), version_hash(&t));
    }
}
