//! Pagination state: the offset walk over the search partitions (with the
//! seen-set that de-duplicates across them and decides what a prune may
//! remove), and the changes-feed cursor.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::domain::TrustTier;
use crate::protocol::ProtocolError;

/// The search partitions: the trust tiers `/skills-search` can filter on.
/// Together they cover every skill whose tier the registry lets us filter;
/// skills with other tiers cannot be enumerated through search at all.
pub const PARTITIONS: [TrustTier; 5] = [
    TrustTier::Official,
    TrustTier::Verified,
    TrustTier::Curated,
    TrustTier::Community,
    TrustTier::Unverified,
];

/// Keyed SipHash for the seen-set. std's `RandomState` would do, but on
/// `wasm32-wasip2` it makes the component import `wasi:random/insecure-seed`,
/// which nothing else needs; the key comes from `Host::random` instead, so ids
/// chosen by a hostile registry still cannot be made to collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedHash {
    k0: u64,
    k1: u64,
}

impl KeyedHash {
    /// A hasher family with this key.
    pub fn new(k0: u64, k1: u64) -> KeyedHash {
        KeyedHash { k0, k1 }
    }
}

impl BuildHasher for KeyedHash {
    #[allow(deprecated)] // the only keyed SipHash in std; deprecated in name only
    type Hasher = std::hash::SipHasher;

    #[allow(deprecated)]
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::SipHasher::new_with_keys(self.k0, self.k1)
    }
}

/// Ids seen during one enumeration. Only ids are kept, boxed without spare
/// capacity: the catalogue can exceed 100k skills and the component runs
/// under a memory limit, so records themselves are dropped after each page.
#[derive(Debug)]
pub struct SeenSet {
    ids: HashSet<Box<str>, KeyedHash>,
}

impl SeenSet {
    /// An empty set hashing with `hasher`.
    pub fn new(hasher: KeyedHash) -> SeenSet {
        SeenSet {
            ids: HashSet::with_hasher(hasher),
        }
    }

    /// Adds `id`; `false` when it was already there.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.into())
    }

    /// Whether `id` was seen.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Forgets every id, keeping the allocation.
    pub fn clear(&mut self) {
        self.ids.clear();
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id was seen.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One `/skills-search` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchRequest {
    /// Partition.
    pub tier: TrustTier,
    /// `offset`.
    pub offset: u64,
    /// `limit`.
    pub limit: u32,
}

/// The largest `limit` `/skills-search` accepts.
pub const SEARCH_MAX_LIMIT: u32 = 100;

/// Walks the partitions with `offset` paging up to each partition's
/// `meta.total`.
///
/// The offset advances by the number of records a page actually held, so a
/// registry that silently serves fewer than `limit` never makes us skip any.
/// A partition ends when the offset reaches the latest total, when a page is
/// empty, or when the offset passes twice the first total (a partition that
/// doubles while we page cannot be enumerated; this bound is what guarantees
/// termination against any sequence of answers).
#[derive(Debug, Clone)]
pub struct SearchCursor {
    limit: u32,
    partition: usize,
    offset: u64,
    first_total: Option<u64>,
    totals: [Option<u64>; PARTITIONS.len()],
    trustworthy: bool,
}

impl SearchCursor {
    /// Starts at the first partition; `limit` is clamped to 1..=100, and 0
    /// means 100.
    pub fn new(limit: u32) -> SearchCursor {
        SearchCursor {
            limit: if limit == 0 {
                SEARCH_MAX_LIMIT
            } else {
                limit.min(SEARCH_MAX_LIMIT)
            },
            partition: 0,
            offset: 0,
            first_total: None,
            totals: [None; PARTITIONS.len()],
            trustworthy: true,
        }
    }

    /// The request to make next; `None` once every partition is done.
    pub fn next_request(&self) -> Option<SearchRequest> {
        PARTITIONS.get(self.partition).map(|&tier| SearchRequest {
            tier,
            offset: self.offset,
            limit: self.limit,
        })
    }

    /// Records the answer to [`SearchCursor::next_request`]: the page's
    /// `meta.total` and how many records its `data` held. Returns a warning
    /// when the enumeration stopped being trustworthy for a prune.
    pub fn record(&mut self, total: u64, returned: usize) -> Option<String> {
        let &tier = PARTITIONS.get(self.partition)?;
        let mut warning = None;
        let first = *self.first_total.get_or_insert(total);
        if total != first && self.totals[self.partition] != Some(total) {
            warning = Some(format!(
                "the registry's count of {} skills changed from {first} to {total} while they \
                 were listed; skills deleted from the registry will be removed on a later sync",
                tier.as_str()
            ));
            self.trustworthy = false;
        }
        self.totals[self.partition] = Some(total);
        let returned = returned as u64;
        let ceiling = first
            .saturating_mul(2)
            .saturating_add(u64::from(self.limit));
        if returned == 0 {
            if self.offset < total {
                warning = Some(format!(
                    "the registry returned no {} skills at offset {} of {total}; the listing \
                     is incomplete, so no skills are removed this time",
                    tier.as_str(),
                    self.offset
                ));
                self.trustworthy = false;
            }
            self.next_partition();
        } else {
            self.offset = self.offset.saturating_add(returned);
            if self.offset >= total {
                self.next_partition();
            } else if self.offset > ceiling {
                warning = Some(format!(
                    "the registry kept growing its {} listing (past {} of an initial {first}); \
                     stopped listing it, and no skills are removed this time",
                    tier.as_str(),
                    self.offset
                ));
                self.trustworthy = false;
                self.next_partition();
            }
        }
        warning
    }

    fn next_partition(&mut self) {
        self.partition += 1;
        self.offset = 0;
        self.first_total = None;
    }

    /// Every partition has been walked to its end.
    pub fn is_complete(&self) -> bool {
        self.partition >= PARTITIONS.len()
    }

    /// No partition's total changed and no page came back short of its
    /// total: the ids seen are the whole catalogue, so a prune is safe.
    pub fn is_trustworthy(&self) -> bool {
        self.trustworthy
    }

    /// Sum of the latest totals of the partitions started so far.
    pub fn known_total(&self) -> u64 {
        self.totals.iter().flatten().sum()
    }
}

/// The changes-feed position during one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCursor {
    cursor: Option<String>,
    done: bool,
}

impl FeedCursor {
    /// Starts at `cursor` (`None`: the beginning of the feed).
    pub fn new(cursor: Option<String>) -> FeedCursor {
        FeedCursor {
            cursor,
            done: false,
        }
    }

    /// The `since` value of the next request.
    pub fn current(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The feed has said `has_more: false`.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Moves past a page. With `has_more` the page must name a new cursor,
    /// or the pass could never end; when caught up, an absent cursor keeps
    /// the current one.
    pub fn advance(
        &mut self,
        next_cursor: Option<String>,
        has_more: bool,
    ) -> Result<(), ProtocolError> {
        if has_more {
            let next = next_cursor
                .ok_or_else(|| ProtocolError("feed page has has_more but no next_cursor".into()))?;
            if self.cursor.as_deref() == Some(next.as_str()) {
                return Err(ProtocolError(format!(
                    "feed cursor {next:?} did not advance although has_more is true"
                )));
            }
            self.cursor = Some(next);
        } else {
            if next_cursor.is_some() {
                self.cursor = next_cursor;
            }
            self.done = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walks_partitions() {
        let mut c = SearchCursor::new(500);
        let mut requests = vec![];
        // Every partition holds 250 skills.
        while let Some(r) = c.next_request() {
            requests.push((r.tier, r.offset, r.limit));
            let returned = (250 - r.offset).min(u64::from(r.limit)) as usize;
            assert_eq!(c.record(250, returned), None);
        }
        assert_eq!(requests.len(), 15);
        assert_eq!(requests[0], (TrustTier::Official, 0, 100));
        assert_eq!(requests[2], (TrustTier::Official, 200, 100));
        assert_eq!(requests[3], (TrustTier::Verified, 0, 100));
        assert!(c.is_complete() && c.is_trustworthy());
        assert_eq!(c.known_total(), 1250);
    }

    #[test]
    fn changing_total_is_untrustworthy() {
        let mut c = SearchCursor::new(10);
        assert!(c.record(25, 10).is_none());
        assert!(c.record(24, 10).is_some());
        // Reported once per change, not once per page.
        assert!(c.record(24, 4).is_none());
        while c.next_request().is_some() {
            c.record(0, 0);
        }
        assert!(c.is_complete() && !c.is_trustworthy());
    }

    #[test]
    fn empty_page_before_total_is_untrustworthy() {
        let mut c = SearchCursor::new(10);
        c.record(25, 10);
        assert!(c.record(25, 0).is_some());
        assert_eq!(c.next_request().unwrap().tier, TrustTier::Verified);
        assert!(!c.is_trustworthy());
    }

    #[test]
    fn feed_cursor() {
        let mut f = FeedCursor::new(Some("a".into()));
        assert!(f.advance(Some("a".into()), true).is_err());
        assert!(f.advance(None, true).is_err());
        f.advance(Some("b".into()), true).unwrap();
        assert_eq!(f.current(), Some("b"));
        f.advance(None, false).unwrap();
        assert!(f.is_done());
        assert_eq!(f.current(), Some("b"));
    }

    #[test]
    fn seen_set() {
        let mut s = SeenSet::new(KeyedHash::new(1, 2));
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        assert!(s.contains("a") && !s.contains("b"));
        assert_eq!(s.len(), 1);
    }

    proptest! {
        /// Against any sequence of answers (totals and page sizes drawn at
        /// random, changing at will), the walk visits each offset of a
        /// partition at most once, never asks past the latest total, and ends.
        #[test]
        fn search_walk_terminates(
            limit in 1u32..120,
            answers in proptest::collection::vec((0u64..400, 0usize..130), 1..64),
        ) {
            let mut c = SearchCursor::new(limit);
            let mut visited = HashSet::new();
            let mut latest_total: Option<u64> = None;
            let mut steps = 0u64;
            let mut last_tier = None;
            while let Some(r) = c.next_request() {
                if last_tier != Some(r.tier) {
                    latest_total = None;
                    last_tier = Some(r.tier);
                }
                prop_assert!(r.limit >= 1 && r.limit <= SEARCH_MAX_LIMIT);
                prop_assert!(visited.insert((r.tier, r.offset)), "offset visited twice");
                if let Some(t) = latest_total {
                    prop_assert!(r.offset < t, "offset {} past total {}", r.offset, t);
                }
                let (total, returned) = answers[steps as usize % answers.len()];
                c.record(total, returned);
                latest_total = Some(total);
                steps += 1;
                // Bound: each partition ends by offset 2*first_total + limit + one page.
                prop_assert!(steps <= 5 * (2 * 400 + 120 + 130 + 2), "no termination");
            }
            prop_assert!(c.is_complete());
        }

        /// A quiet catalogue is enumerated completely and trustworthily.
        #[test]
        fn quiet_catalogue_is_complete(
            limit in 1u32..150,
            totals in proptest::array::uniform5(0u64..500),
        ) {
            let mut c = SearchCursor::new(limit);
            let mut listed = [0u64; 5];
            while let Some(r) = c.next_request() {
                let p = PARTITIONS.iter().position(|t| *t == r.tier).unwrap();
                let returned = totals[p].saturating_sub(r.offset).min(u64::from(r.limit));
                listed[p] += returned;
                c.record(totals[p], returned as usize);
            }
            prop_assert_eq!(listed, totals);
            prop_assert!(c.is_trustworthy());
        }
    }
}
