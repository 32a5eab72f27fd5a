//! Classifies a page of remote entries against the local versions of the same
//! ids: what to insert, rewrite, remove, or leave alone. Rows whose source is
//! `local` are never written or removed.

use std::cmp::Ordering;

use crate::domain::{LocalVersion, RunCounts, Skill, Source};
use crate::protocol::{self, Entry};

/// When an existing registry row is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Search mode: whenever `updated_at` differs from the local copy. A
    /// full enumeration shows the registry's current state, so an older
    /// remote timestamp (a rollback) is still the truth.
    Differs,
    /// Feed mode: only when the remote entry is newer than the local copy.
    Newer,
}

/// Whether an upsert inserts or replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertKind {
    /// Not stored yet.
    Added,
    /// Replaces a registry row.
    Updated,
}

/// A skill to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    /// The skill.
    pub skill: Skill,
    /// Insert or replace.
    pub kind: UpsertKind,
}

/// The outcome for one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Rows to write.
    pub upserts: Vec<Upsert>,
    /// Registry rows to delete.
    pub removals: Vec<String>,
    /// `added`, `updated` and `removed` match `upserts` and `removals`;
    /// `unchanged` and `skipped` count the rest.
    pub counts: RunCounts,
}

/// Removes repeated ids from a page, keeping for each id the entry with the
/// latest `updated_at` (the first of equals), in page order. Returns how many
/// were removed. Sorts indices rather than hashing: a page holds at most a
/// thousand entries, and this needs no hasher key.
pub fn dedup(entries: &mut Vec<Entry>) -> u64 {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by(|&a, &b| entries[a].id().cmp(entries[b].id()).then(a.cmp(&b)));
    let mut keep = vec![true; entries.len()];
    let mut duplicates = 0;
    for group in order.chunk_by(|&a, &b| entries[a].id() == entries[b].id()) {
        if group.len() < 2 {
            continue;
        }
        duplicates += group.len() as u64 - 1;
        // Normalised timestamps: string order is time order. `group` is in
        // page order, and only a strictly later timestamp replaces the best so far.
        let best = group
            .iter()
            .copied()
            .reduce(|best, i| {
                if entries[i].updated_at() > entries[best].updated_at() {
                    i
                } else {
                    best
                }
            })
            .unwrap_or(group[0]);
        for &i in group {
            keep[i] = i == best;
        }
    }
    if duplicates > 0 {
        let mut flags = keep.into_iter();
        entries.retain(|_| flags.next().unwrap_or(true));
    }
    duplicates
}

/// Classifies `entries` (already de-duplicated) against `local`, the local
/// versions of the same ids in the same order. With `force`, every existing
/// registry row counts as updated and is rewritten.
pub fn classify(
    entries: Vec<Entry>,
    local: &[Option<LocalVersion>],
    rule: Rule,
    force: bool,
) -> Diff {
    debug_assert_eq!(entries.len(), local.len());
    let mut diff = Diff {
        upserts: Vec::with_capacity(entries.len()),
        ..Diff::default()
    };
    for (entry, local) in entries.into_iter().zip(local) {
        match (entry, local) {
            (Entry::Upsert(_) | Entry::Deleted { .. }, Some(lv)) if lv.source == Source::Local => {
                diff.counts.skipped += 1;
            }
            (Entry::Upsert(skill), None) => {
                diff.counts.added += 1;
                diff.upserts.push(Upsert {
                    skill,
                    kind: UpsertKind::Added,
                });
            }
            (Entry::Upsert(skill), Some(lv)) => {
                let rewrite = force
                    || match compare_instants(&skill.updated_at, &lv.updated_at) {
                        // An unreadable local timestamp cannot prove the row
                        // current; rewriting it repairs it.
                        None => true,
                        Some(order) => match rule {
                            Rule::Differs => order != Ordering::Equal,
                            Rule::Newer => order == Ordering::Greater,
                        },
                    };
                if rewrite {
                    diff.counts.updated += 1;
                    diff.upserts.push(Upsert {
                        skill,
                        kind: UpsertKind::Updated,
                    });
                } else {
                    diff.counts.unchanged += 1;
                }
            }
            (Entry::Deleted { id, .. }, Some(_)) => {
                diff.counts.removed += 1;
                diff.removals.push(id);
            }
            // Deleted remotely and absent locally: already in the right state.
            (Entry::Deleted { .. }, None) => diff.counts.unchanged += 1,
        }
    }
    diff
}

/// Orders a normalised remote timestamp against a stored one by instant.
/// Stored values written by this engine are normalised and compare as
/// strings; anything else is parsed. `None` when the stored value is not a
/// timestamp.
pub fn compare_instants(remote: &str, local: &str) -> Option<Ordering> {
    if protocol::is_normalized(local) {
        return Some(remote.cmp(local));
    }
    let local = protocol::normalize_timestamp(local)?;
    Some(remote.cmp(local.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn skill(id: &str, updated_at: &str) -> Skill {
        Skill::minimal(id, updated_at)
    }

    fn ts(n: u8) -> String {
        format!("2026-01-01T00:00:{:02}.000Z", n % 60)
    }

    fn lv(updated_at: &str, source: Source) -> Option<LocalVersion> {
        Some(LocalVersion {
            updated_at: updated_at.into(),
            source,
        })
    }

    #[test]
    fn classifies() {
        let entries = vec![
            Entry::Upsert(skill("new", &ts(1))),
            Entry::Upsert(skill("same", &ts(1))),
            Entry::Upsert(skill("newer", &ts(2))),
            Entry::Upsert(skill("older", &ts(1))),
            Entry::Upsert(skill("mine", &ts(9))),
            Entry::Deleted {
                id: "gone".into(),
                updated_at: ts(3),
            },
            Entry::Deleted {
                id: "never".into(),
                updated_at: ts(3),
            },
            Entry::Deleted {
                id: "mine2".into(),
                updated_at: ts(3),
            },
        ];
        let local = vec![
            None,
            lv("2026-01-01T00:00:01Z", Source::Registry),
            lv(&ts(1), Source::Registry),
            lv(&ts(2), Source::Registry),
            lv(&ts(1), Source::Local),
            lv(&ts(1), Source::Registry),
            None,
            lv(&ts(1), Source::Local),
        ];
        let d = classify(entries.clone(), &local, Rule::Differs, false);
        assert_eq!(
            d.counts,
            RunCounts {
                added: 1,
                updated: 2,
                unchanged: 2,
                removed: 1,
                skipped: 2
            }
        );
        assert_eq!(d.removals, ["gone"]);
        let d = classify(entries.clone(), &local, Rule::Newer, false);
        assert_eq!((d.counts.updated, d.counts.unchanged), (1, 3));
        let d = classify(entries, &local, Rule::Newer, true);
        assert_eq!((d.counts.updated, d.counts.unchanged), (3, 1));
        assert!(d.upserts.iter().all(|u| u.skill.id != "mine"));
    }

    #[test]
    fn dedup_keeps_latest() {
        let mut entries = vec![
            Entry::Upsert(skill("a", &ts(1))),
            Entry::Upsert(skill("b", &ts(1))),
            Entry::Upsert(skill("a", &ts(3))),
            Entry::Upsert(skill("a", &ts(2))),
        ];
        assert_eq!(dedup(&mut entries), 2);
        let got: Vec<_> = entries.iter().map(|e| (e.id(), e.updated_at())).collect();
        assert_eq!(got, [("b", ts(1).as_str()), ("a", ts(3).as_str())]);
    }

    #[test]
    fn compares_instants_across_formats() {
        assert_eq!(
            compare_instants(&ts(1), "2026-01-01T01:00:01+01:00"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_instants(&ts(1), "2026-01-01T00:00:00Z"),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_instants(&ts(1), "garbage"), None);
    }

    #[derive(Debug, Clone)]
    enum Remote {
        Up(u8, u8),
        Del(u8, u8),
    }

    fn remote() -> impl Strategy<Value = Remote> {
        prop_oneof![
            3 => (0u8..20, 0u8..5).prop_map(|(i, t)| Remote::Up(i, t)),
            1 => (0u8..20, 0u8..5).prop_map(|(i, t)| Remote::Del(i, t)),
        ]
    }

    type Store = BTreeMap<String, (String, Source)>;

    fn store() -> impl Strategy<Value = Store> {
        proptest::collection::btree_map(
            (0u8..20).prop_map(|i| format!("s{i}")),
            (0u8..5, any::<bool>()).prop_map(|(t, local)| {
                (
                    ts(t),
                    if local {
                        Source::Local
                    } else {
                        Source::Registry
                    },
                )
            }),
            0..20,
        )
    }

    fn entries(page: &[Remote]) -> Vec<Entry> {
        page.iter()
            .map(|r| match *r {
                Remote::Up(i, t) => Entry::Upsert(skill(&format!("s{i}"), &ts(t))),
                Remote::Del(i, t) => Entry::Deleted {
                    id: format!("s{i}"),
                    updated_at: ts(t),
                },
            })
            .collect()
    }

    fn lookup(store: &Store, entries: &[Entry]) -> Vec<Option<LocalVersion>> {
        entries
            .iter()
            .map(|e| {
                store.get(e.id()).map(|(u, s)| LocalVersion {
                    updated_at: u.clone(),
                    source: *s,
                })
            })
            .collect()
    }

    /// What the host does with a page: removals then upserts, never
    /// touching local rows.
    fn apply(store: &mut Store, diff: &Diff) {
        for id in &diff.removals {
            if store.get(id).is_some_and(|(_, s)| *s == Source::Registry) {
                store.remove(id);
            }
        }
        for u in &diff.upserts {
            if store
                .get(&u.skill.id)
                .is_none_or(|(_, s)| *s == Source::Registry)
            {
                store.insert(
                    u.skill.id.clone(),
                    (u.skill.updated_at.clone(), Source::Registry),
                );
            }
        }
    }

    proptest! {
        #[test]
        fn diff_properties(
            page in proptest::collection::vec(remote(), 0..40),
            initial in store(),
            newer in any::<bool>(),
            force in any::<bool>(),
        ) {
            let rule = if newer { Rule::Newer } else { Rule::Differs };
            let mut es = entries(&page);
            let dups = dedup(&mut es);
            let local = lookup(&initial, &es);
            let diff = classify(es.clone(), &local, rule, force);
            let c = diff.counts;

            // Counts cover the page exactly, minus duplicates.
            prop_assert_eq!(c.added + c.updated + c.unchanged + c.removed + c.skipped,
                page.len() as u64 - dups);
            prop_assert_eq!(c.added + c.updated, diff.upserts.len() as u64);
            prop_assert_eq!(c.removed, diff.removals.len() as u64);

            // Local rows are never upserted or removed.
            for u in &diff.upserts {
                prop_assert!(initial.get(&u.skill.id).is_none_or(|(_, s)| *s == Source::Registry));
                let is_new = !initial.contains_key(&u.skill.id);
                prop_assert_eq!(u.kind == UpsertKind::Added, is_new);
            }
            for id in &diff.removals {
                prop_assert_eq!(initial.get(id).map(|(_, s)| *s), Some(Source::Registry));
            }

            // Idempotence: applying the page and diffing it again changes nothing.
            let mut after = initial.clone();
            apply(&mut after, &diff);
            let again = classify(es.clone(), &lookup(&after, &es), rule, false);
            prop_assert!(again.upserts.is_empty());
            prop_assert!(again.removals.is_empty());
            prop_assert_eq!(again.counts.unchanged + again.counts.skipped, es.len() as u64);

            // Local rows survive untouched.
            for (id, v) in &initial {
                if v.1 == Source::Local {
                    prop_assert_eq!(after.get(id), Some(v));
                }
            }
        }
    }
}
