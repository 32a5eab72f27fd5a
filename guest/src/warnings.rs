//! Non-fatal problems collected for the sync report: one line each, unknown
//! trust tiers reported once per value, and a cap so that a registry full of
//! malformed records cannot grow the report without bound.

use std::collections::BTreeSet;

/// Lines kept in the report. Further warnings are counted and summarised in
/// one last line: the report crosses the component boundary and is shown to
/// people, and a hundred examples say all there is to say.
pub const MAX_WARNING_LINES: usize = 100;

/// Collects warnings for one run.
#[derive(Debug, Default)]
pub struct Warnings {
    lines: Vec<String>,
    suppressed: u64,
    // Few values; a BTreeSet avoids std's randomly seeded hasher (see
    // `cursor::KeyedHash`).
    unknown_tiers: BTreeSet<String>,
    logged: usize,
}

impl Warnings {
    /// An empty collection.
    pub fn new() -> Warnings {
        Warnings::default()
    }

    /// Adds one line, or counts it once the cap is reached.
    pub fn push(&mut self, line: String) {
        if self.lines.len() < MAX_WARNING_LINES {
            self.lines.push(line);
        } else {
            self.suppressed += 1;
        }
    }

    /// Records an unknown `trust_tier` value; only its first sighting makes a
    /// line.
    pub fn unknown_tier(&mut self, value: &str) {
        if !self.unknown_tiers.contains(value) {
            self.unknown_tiers.insert(value.to_owned());
            self.push(format!(
                "unknown trust_tier {value:?}: such skills are kept with tier \"unknown\""
            ));
        }
    }

    /// Lines added since the last call, for the host log.
    pub fn take_unlogged(&mut self) -> &[String] {
        let start = self.logged;
        self.logged = self.lines.len();
        &self.lines[start..]
    }

    /// Lines so far (without the summary of suppressed lines).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The report's list, with a closing line counting suppressed warnings.
    pub fn into_lines(mut self) -> Vec<String> {
        if self.suppressed > 0 {
            self.lines
                .push(format!("... and {} more warnings", self.suppressed));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_dedups() {
        let mut w = Warnings::new();
        w.unknown_tier("gold");
        w.unknown_tier("gold");
        w.unknown_tier("silver");
        assert_eq!(w.take_unlogged().len(), 2);
        assert!(w.take_unlogged().is_empty());
        for i in 0..MAX_WARNING_LINES + 5 {
            w.push(format!("w{i}"));
        }
        let lines = w.into_lines();
        assert_eq!(lines.len(), MAX_WARNING_LINES + 1);
        assert_eq!(lines.last().unwrap(), "... and 7 more warnings");
    }
}
