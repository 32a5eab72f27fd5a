//! The CHECK constraints of a file's `skills` table, read from its
//! declaration, and whether the store may enforce them itself.
//!
//! SQLite evaluates upstream's `trust_tier IN ('verified', ..)` by building a
//! temporary index of the list, once per execution of a statement: once per
//! row for the store's single-row INSERT. At 100,000 rows that was a sixth
//! of a first sync's inserting (1.96 against 1.62 s, docs/PERFORMANCE.md).
//! When every CHECK the table declares is one listed here, the store checks
//! the values it writes against them in Rust and writes a page's skills with
//! SQLite's checks off ([`without_sqlite_checks`]). A file with any other
//! CHECK, or one this module cannot read, keeps SQLite's.

use rusqlite::Connection;

/// The CHECK bodies the store enforces itself, normalised ([`normalise`]),
/// as upstream 0.4.3 declares them; the tier list is matched apart.
const KNOWN: [&str; 2] = [
    "quality_scoreisnullor(quality_score>=0andquality_score<=1)",
    // The store never writes `risk_score`: a NULL passes.
    "risk_scoreisnullor(risk_score>=0andrisk_score<=100)",
];

/// Whether every CHECK in `sql` (a `CREATE TABLE skills` statement) is one
/// the store enforces itself: one of [`KNOWN`], or the list of `tiers`.
pub(crate) fn enforceable(sql: &str, tiers: &[String]) -> bool {
    let list = tiers
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",");
    let tier_check = format!("trust_tierin({list})");
    declared_checks(sql).is_some_and(|checks| {
        checks
            .iter()
            .all(|c| KNOWN.contains(&c.as_str()) || *c == tier_check)
    })
}

/// The values a row of the store must have where [`enforceable`] holds, as
/// SQLite would refuse them: the error of a failed CHECK.
pub(crate) fn admit(tier: &str, quality: Option<f64>, tiers: &[String]) -> rusqlite::Result<()> {
    let refused = match quality {
        _ if !tiers.iter().any(|t| t == tier) => {
            format!("trust_tier {tier:?} is not in the file's list")
        }
        Some(q) if !(0.0..=1.0).contains(&q) => format!("quality_score {q} is outside 0..=1"),
        _ => return Ok(()),
    };
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_CHECK),
        Some(format!("CHECK constraint failed: {refused}")),
    ))
}

/// Runs `write` with SQLite's CHECKs off on `conn`, and turns them back on
/// whatever it returns. SQLite reads the flag when it compiles a statement,
/// and changing it expires every statement the connection has prepared: the
/// ones run inside are compiled again without checks, and those after it with
/// them. `write` must write only values it has checked ([`admit`]).
pub(crate) fn without_sqlite_checks<T>(
    conn: &Connection,
    write: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.pragma_update(None, "ignore_check_constraints", true)?;
    let written = write();
    conn.pragma_update(None, "ignore_check_constraints", false)?;
    written
}

/// The body of every `CHECK (..)` in `sql`, normalised; `None` where the
/// statement cannot be read to its end (an unclosed quote or bracket).
fn declared_checks(sql: &str) -> Option<Vec<String>> {
    let mut checks = Vec::new();
    let mut rest = sql;
    loop {
        // Skip quoted text and comments whole: a word inside is no keyword.
        let Some(at) = rest.find(|c: char| is_word(c) || "'\"`[-/".contains(c)) else {
            return Some(checks);
        };
        rest = &rest[at..];
        if let Some(after) = skip_inert(rest) {
            rest = after?;
            continue;
        }
        let word_end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        if word_end == 0 {
            // A lone `-` or `/`.
            rest = &rest[1..];
            continue;
        }
        let (word, after) = rest.split_at(word_end);
        rest = after;
        if !word.eq_ignore_ascii_case("check") {
            continue;
        }
        let body = rest.trim_start().strip_prefix('(')?;
        let (inner, after) = balanced(body)?;
        checks.push(normalise(inner));
        rest = after;
    }
}

/// Where `s` opens a quoted string or identifier, or a comment: what
/// follows its close, or `Some(None)` when it never closes. `None` when `s`
/// opens none of them.
fn skip_inert(s: &str) -> Option<Option<&str>> {
    if let Some(line) = s.strip_prefix("--") {
        return Some(Some(line.find('\n').map_or("", |at| &line[at..])));
    }
    if let Some(block) = s.strip_prefix("/*") {
        // SQLite lets a block comment run to the end of the text.
        return Some(Some(block.find("*/").map_or("", |at| &block[at + 2..])));
    }
    let close = match s.chars().next()? {
        '\'' => '\'',
        '"' => '"',
        '`' => '`',
        '[' => ']',
        _ => return None,
    };
    let mut i = 1;
    Some(loop {
        let Some(at) = s[i..].find(close) else {
            break None;
        };
        i += at + 1;
        // A quote inside is doubled (not so for brackets).
        if close != ']' && s[i..].starts_with(close) {
            i += 1;
            continue;
        }
        break Some(&s[i..]);
    })
}

/// Whether `s` opens a comment.
fn is_comment(s: &str) -> bool {
    s.starts_with("--") || s.starts_with("/*")
}

/// A character of an unquoted identifier (or number).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The text up to the `)` that closes an already opened bracket, and what
/// follows it.
fn balanced(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(after) = skip_inert(rest) {
            i = s.len() - after?.len();
            continue;
        }
        let c = rest.chars().next()?;
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some((&s[..i], &s[i + 1..])),
            ')' => depth -= 1,
            _ => {}
        }
        i += c.len_utf8();
    }
    None
}

/// `body` with whitespace and comments dropped and ASCII lowercased, all
/// outside quotes: two spellings of one expression compare equal.
fn normalise(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if let Some(Some(after)) = skip_inert(rest) {
            if !is_comment(rest) {
                out.push_str(&rest[..rest.len() - after.len()]);
            }
            rest = after;
            continue;
        }
        if !c.is_whitespace() {
            out.push(c.to_ascii_lowercase());
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    const V043: [&str; 4] = ["verified", "community", "experimental", "unknown"];

    #[test]
    fn upstreams_checks_are_enforced_by_the_store() {
        let shared = include_str!("../../migrations/shared/catalogue.sql");
        let create = &shared[shared.find("CREATE TABLE skills").unwrap()..];
        let create = &create[..create.find(");").unwrap() + 2];
        assert!(enforceable(create, &tiers(&V043)), "{create}");
        // Spelled otherwise, and the checks as table constraints.
        let odd = "create table skills (\"trust_tier\" text, quality_score real,
            check(  TRUST_TIER in ('verified','community' , 'experimental','unknown')),
            CHECK (quality_score is null OR (quality_score>=0 and quality_score <= 1)))";
        assert!(enforceable(odd, &tiers(&V043)));
    }

    /// The `CREATE TABLE skills` statement of a script.
    fn skills_table(script: &str) -> &str {
        let create = &script[script.find("CREATE TABLE IF NOT EXISTS skills (").unwrap()..];
        &create[..create.find(");").unwrap() + 2]
    }

    /// As upstream's own client declares its table: 0.4.3 (schema 4) is
    /// the store's to check; schema 17's `source` CHECK is SQLite's.
    #[test]
    fn upstreams_own_files() {
        let v4 = include_str!("../../tests/fixtures/upstream-schema-4.sql");
        assert!(enforceable(skills_table(v4), &tiers(&V043)));
        let v17 = include_str!("../../tests/fixtures/upstream-schema-17.sql");
        let six = tiers(&[
            "verified",
            "curated",
            "community",
            "experimental",
            "unknown",
            "local",
        ]);
        assert!(declared_checks(skills_table(v17)).unwrap().len() == 4);
        assert!(!enforceable(skills_table(v17), &six));
    }

    #[test]
    fn any_other_check_is_left_to_sqlite() {
        let base = "CREATE TABLE skills (id TEXT, trust_tier TEXT CHECK (trust_tier IN ('verified', 'community', 'experimental', 'unknown'))";
        for extra in [
            // Upstream's schema 17.
            ", source TEXT NOT NULL DEFAULT 'registry' CHECK(source IN ('registry', 'local'))",
            ", name TEXT CHECK (length(name) < 40)",
            ", quality_score REAL CHECK (quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 2))",
            ", x TEXT, CHECK (x <> 'check')",
        ] {
            let sql = format!("{base}{extra})");
            assert!(!enforceable(&sql, &tiers(&V043)), "{sql}");
        }
        // The tier list must be the one the policy read.
        assert!(!enforceable(&format!("{base})"), &tiers(&V043[..3])));
        // A declaration that cannot be read.
        assert!(!enforceable(
            &format!("{base}, x CHECK (x <> 'open)"),
            &tiers(&V043)
        ));
        assert!(!enforceable(
            "CREATE TABLE skills (x CHECK (x > (1)",
            &tiers(&V043)
        ));
    }

    #[test]
    fn words_inside_quotes_are_not_keywords() {
        let sql =
            "CREATE TABLE skills (\"check\" TEXT DEFAULT 'CHECK (1)', [check] INT, `a``check` INT)";
        assert_eq!(declared_checks(sql).unwrap(), Vec::<String>::new());
        let sql = "CREATE TABLE skills (x TEXT CHECK (x IN ('a )', 'it''s')))";
        assert_eq!(declared_checks(sql).unwrap(), ["xin('a )','it''s')"]);
        // Comments, with quotes in them, are skipped; inside a check too.
        let sql = "CREATE TABLE skills (-- the project's: CHECK (no)
            x INT /* don't CHECK (this) */ CHECK (x /* it's */ > 0 -- isn't
            ), y INT)";
        assert_eq!(declared_checks(sql).unwrap(), ["x>0"]);
        // A minus is no comment.
        assert_eq!(
            declared_checks("CREATE TABLE skills (x INT CHECK (x > -1))").unwrap(),
            ["x>-1"]
        );
    }

    #[test]
    fn admit_refuses_what_the_checks_refuse() {
        let list = tiers(&V043);
        assert!(admit("verified", Some(0.0), &list).is_ok());
        assert!(admit("unknown", Some(1.0), &list).is_ok());
        assert!(admit("unknown", None, &list).is_ok());
        for (tier, q) in [
            ("curated", None),
            ("Verified", None),
            ("verified", Some(1.5)),
            ("verified", Some(-0.1)),
            ("verified", Some(f64::NAN)),
        ] {
            let err = admit(tier, q, &list).unwrap_err();
            assert_eq!(
                err.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation),
                "{tier} {q:?}"
            );
        }
    }
}
