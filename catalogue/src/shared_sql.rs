//! The store's statements as the hosts outside Rust run them
//! (`migrations/shared/host_store.sql`): the ones this crate runs too, read
//! from that file so that each exists once, and a test that every statement
//! there prepares against the schema this crate writes, so that a schema
//! change that would break those hosts fails here first.

use std::collections::HashMap;
use std::sync::OnceLock;

const HOST_STORE_SQL: &str = include_str!("../../migrations/shared/host_store.sql");

/// Every `-- name: NAME` block of the file, by name.
fn statements() -> &'static HashMap<&'static str, &'static str> {
    static STATEMENTS: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    STATEMENTS.get_or_init(|| {
        HOST_STORE_SQL
            .split("\n-- name: ")
            .skip(1)
            .map(|block| {
                let (name, sql) = block.split_once('\n').unwrap_or((block, ""));
                (name.trim(), sql.trim())
            })
            .collect()
    })
}

/// The statement named `name`. The file is compiled in, and a test reads
/// every name this crate asks for, so a missing one cannot ship.
pub(crate) fn statement(name: &str) -> &'static str {
    statements()
        .get(name)
        .unwrap_or_else(|| panic!("migrations/shared/host_store.sql has no statement {name}"))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn every_statement_prepares_on_a_fresh_catalogue() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&crate::schema::fresh_catalogue_sql().unwrap())
            .unwrap();
        // A later upstream schema's table and column, which three statements
        // name (and a host runs only where they exist).
        conn.execute_batch(
            "CREATE TABLE skill_versions (id INTEGER PRIMARY KEY, skill_id TEXT NOT NULL,
                 content_hash TEXT NOT NULL, recorded_at INTEGER NOT NULL,
                 UNIQUE (skill_id, content_hash));
             ALTER TABLE skills ADD COLUMN source TEXT;",
        )
        .unwrap();
        assert!(statements().len() > 40, "{} statements", statements().len());
        for (name, sql) in statements() {
            conn.prepare(sql)
                .unwrap_or_else(|e| panic!("{name} does not prepare: {e}\n{sql}"));
        }
        // The ones this crate runs itself.
        for name in [
            "skills_repo_urls_shared",
            "skills_repo_urls_settle",
            "skills_give_back_repos",
        ] {
            statement(name);
        }
    }
}
