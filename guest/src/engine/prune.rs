//! The prune: removes the stored registry skills a run proved gone, and only
//! those (a complete feed resync, or search listings that had to show them).

use super::*;

impl<'h, H: Host> Sync<'h, H> {
    /// Removes the stored registry skills this run proved gone: ids `seen`
    /// does not hold, and, when `proof` is given, only those of them that a
    /// complete listing had to show (by their stored copies). Every store
    /// page but the last carries `during`; the last carries `done`. Returns
    /// `false` when the safety valve refused to prune: `listed_nothing` (the
    /// registry listed no skill at all) while registry rows are stored.
    pub(super) fn prune(
        &mut self,
        seen: &dyn Fn(&str) -> bool,
        proof: Option<&Reach>,
        listed_nothing: bool,
        during: &Checkpoint,
        done: &Checkpoint,
    ) -> Result<bool, Halt> {
        self.at.phase = Phase::Prune;
        if listed_nothing {
            let any = self.settled(|h| h.registry_ids(None, 1))?;
            if !any.is_empty() {
                self.warnings.push(
                    "the registry listed no skills at all, yet registry skills are stored; not \
                     removing them (if the registry really is empty, delete the catalogue to start \
                     over)"
                        .into(),
                );
                return Ok(false);
            }
        }
        let mut after: Option<String> = None;
        let mut removals = Vec::new();
        loop {
            let ids = self.settled(|h| h.registry_ids(after.as_deref(), PRUNE_ID_PAGE))?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            if after.as_ref().is_some_and(|a| last <= *a) {
                return Err(SyncError::Store(StoreError::Other(format!(
                    "registry-ids returned {last:?}, not after {after:?}"
                )))
                .into());
            }
            after = Some(last);
            let unseen: Vec<String> = ids.into_iter().filter(|id| !seen(id)).collect();
            match proof {
                None => removals.extend(unseen),
                Some(reach) if !unseen.is_empty() => {
                    // Only skills no listing showed need their stored copies.
                    let rows = self.settled(|h| h.registry_rows(&unseen))?;
                    if rows.len() != unseen.len() {
                        return Err(SyncError::Store(StoreError::Other(format!(
                            "registry-rows answered {} rows for {} ids",
                            rows.len(),
                            unseen.len()
                        )))
                        .into());
                    }
                    removals.extend(
                        rows.into_iter()
                            .flatten()
                            .filter(|row| reach.must_list(row))
                            .map(|row| row.id),
                    );
                }
                Some(_) => {}
            }
            // A feed resync lists everything: what it did not list is gone,
            // and is removed as the scan goes. Search-mode candidates are
            // confirmed first, all together, below.
            while proof.is_none() && removals.len() >= STORE_PAGE_ROWS {
                let rest = removals.split_off(STORE_PAGE_ROWS);
                let chunk = mem::replace(&mut removals, rest);
                self.apply_removals(chunk, during)?;
                self.progress()?;
            }
        }
        if proof.is_some() {
            removals = self.confirm_gone(removals)?;
        }
        while removals.len() > STORE_PAGE_ROWS {
            let rest = removals.split_off(STORE_PAGE_ROWS);
            let chunk = mem::replace(&mut removals, rest);
            self.apply_removals(chunk, during)?;
            self.progress()?;
        }
        self.apply_removals(removals, done)?;
        Ok(true)
    }

    pub(super) fn apply_removals(
        &mut self,
        removals: Vec<String>,
        checkpoint: &Checkpoint,
    ) -> Result<(), Halt> {
        let counts = RunCounts {
            removed: removals.len() as u64,
            ..RunCounts::default()
        };
        self.apply(
            Page {
                upserts: Vec::new(),
                removals,
                checkpoint: checkpoint.clone(),
            },
            counts,
        )
    }
}
