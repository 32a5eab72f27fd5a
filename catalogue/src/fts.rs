//! Upkeep of the full-text index that the upstream tools share: noticing
//! when their open has doubled it.

use rusqlite::{Connection, OptionalExtension};

/// Whether `conn`'s `skills_fts` counts more rows than it indexes (read
/// before the transaction writes to the index: FTS5 writes its row count at
/// commit): upstream
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

/// Rebuilds the index when [`fts_overcounted`]; says whether it did.
pub(crate) fn rebuild_if_overcounted(conn: &Connection) -> rusqlite::Result<bool> {
    if !fts_overcounted(conn)? {
        return Ok(false);
    }
    tracing::info!(
        "the search index counts rows twice (the upstream tools re-add every row when they \
         open the catalogue); rebuilding it"
    );
    conn.execute_batch("INSERT INTO skills_fts(skills_fts) VALUES ('rebuild')")?;
    Ok(true)
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
    fn a_doubled_index_is_told_from_an_exact_one() {
        let db = crate::db::Database::open_in_memory().unwrap();
        let conn = db.conn();
        conn.execute_batch(
            "INSERT INTO skills (id, name, created_at, updated_at)
             VALUES ('a', 'alpha', 'x', 'x'), ('b', 'beta', 'x', 'x');",
        )
        .unwrap();
        assert!(!fts_overcounted(conn).unwrap());
        // What upstream's `openDatabase` runs on every open.
        conn.execute_batch(
            "INSERT OR IGNORE INTO skills_fts(rowid, name, description, tags, author)
             SELECT rowid, name, description, tags, author FROM skills",
        )
        .unwrap();
        assert!(fts_overcounted(conn).unwrap());
        assert!(rebuild_if_overcounted(conn).unwrap());
        assert!(!fts_overcounted(conn).unwrap());
    }
}
