//! Pagination state: the offset walk over one `/skills-search` listing (with
//! the checks that tell a complete listing from one that only looked
//! complete), the id sets that de-duplicate across listings and decide what a
//! prune may remove, and the changes-feed cursor.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use crate::protocol::ProtocolError;

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

/// The latest version seen of each id during one enumeration, by keyed
/// 64-bit hash: 16 bytes an id, so 100,000 skills cost under 3 MB under the
/// component's memory limit. A collision (odds about 10^-9 at a million ids,
/// and a hostile registry cannot aim for one: the key is the host's random)
/// would only make two ids count as one.
#[derive(Debug)]
pub struct Versions {
    hasher: KeyedHash,
    latest: HashMap<u64, u64, Identity>,
}

/// What [`Versions::offer`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// First time this id was listed.
    New,
    /// Listed before with an older `updated_at`: this copy wins.
    Newer,
    /// Listed before with this `updated_at` or a newer one: drop this copy.
    Stale,
}

impl Versions {
    /// An empty set hashing with `hasher`.
    pub fn new(hasher: KeyedHash) -> Versions {
        Versions {
            hasher,
            latest: HashMap::with_hasher(Identity),
        }
    }

    /// Records a listed copy of `id` last updated at `updated_at`
    /// (normalised RFC 3339, as the protocol module produces).
    pub fn offer(&mut self, id: &str, updated_at: &str) -> Offer {
        let version = instant_key(updated_at);
        match self.latest.entry(self.hasher.hash_one(id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(version);
                Offer::New
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if version > *o.get() {
                    o.insert(version);
                    Offer::Newer
                } else {
                    Offer::Stale
                }
            }
        }
    }

    /// Whether `id` was listed.
    pub fn contains(&self, id: &str) -> bool {
        self.latest.contains_key(&self.hasher.hash_one(id))
    }

    /// Distinct ids listed.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether nothing was listed.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// The digits of a normalised timestamp (`2026-11-20T10:00:00.123Z`) as one
/// number, `20261120100000123`: ordered as the instants are, and 8 bytes
/// instead of 24. Anything else counts as the oldest possible.
fn instant_key(ts: &str) -> u64 {
    let mut key: u64 = 0;
    let mut digits = 0;
    for b in ts.bytes() {
        if b.is_ascii_digit() {
            digits += 1;
            if digits > 19 {
                return 0;
            }
            key = key * 10 + u64::from(b - b'0');
        }
    }
    key
}

/// Hashes that are already keyed hashes need no second hashing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

/// The [`Hasher`] of [`Identity`]: passes a `u64` through.
#[derive(Debug, Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in for correctness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;

    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher::default()
    }
}

/// The largest `limit` `/skills-search` accepts.
pub const SEARCH_MAX_LIMIT: u32 = 100;

/// One page of a walk: what to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// `offset`.
    pub offset: u64,
    /// `limit`.
    pub limit: u32,
}

/// What a walk learned from one page, for [`Walk::record`].
#[derive(Debug, Clone, Default)]
pub struct PageFacts<'a> {
    /// `meta.total`.
    pub total: u64,
    /// Elements of `data`, valid or not: the offset advance.
    pub returned: usize,
    /// `(id, updated_at)` of the page's records, valid or malformed (where
    /// they had an id; their `updated_at` is then empty). A record listed
    /// twice is the same pair twice; two copies of a skill that differ in
    /// `updated_at` are two records of the listing, as its total counts them.
    pub keys: Vec<(&'a str, &'a str)>,
    /// Some valid record had a quality score.
    pub any_scored: bool,
    /// Records without a usable id, or otherwise unreadable.
    pub unreadable: usize,
}

/// How a walk goes on after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask for [`Walk::next_request`].
    More,
    /// The walk is over; [`Walk::is_complete`] says whether it saw it all.
    Done,
    /// A walk of the unscored block met a scored record: the block is not
    /// where it was looked for. Nothing it read is wrong, but the block must
    /// be read another way.
    Misplaced,
}

/// Walks one listing, or one block of it, with `offset` paging.
///
/// The offset advances by the records a page actually held, so a registry
/// that serves fewer than `limit` never makes us skip any. The walk ends at
/// the end of its block (for a whole listing, the latest `meta.total`), on an
/// empty page, or when the offset passes twice the first total (a listing
/// that doubles while we page cannot be enumerated; this bound guarantees
/// termination against any sequence of answers). A page that lists only ids
/// this walk has already seen means the registry ignores `offset`: that is a
/// protocol error, not something to page through a thousand times.
///
/// Complete means: every page came back with the total the walk started
/// with, no page came back empty before the end, every record was readable,
/// and the walk saw as many distinct records (id and `updated_at`) as its
/// block holds: a record served twice while another was skipped, as an
/// unstable order does, leaves it short. For a block of
/// unscored records, every record also had no score. Then, on a quiet
/// catalogue, the walk has seen exactly its block's members (a block of `k`
/// positions holding `k` distinct unscored ids, when the listing holds `k`
/// unscored skills, holds all of them).
#[derive(Debug, Clone)]
pub struct Walk {
    limit: u32,
    start: u64,
    /// Exclusive end of the block; `None` for a whole listing whose total is
    /// not known yet.
    end: Option<u64>,
    whole: bool,
    unscored_only: bool,
    offset: u64,
    /// Records the registry put in the last page that was not the walk's
    /// last: what a page holds here (a registry may serve fewer than
    /// `limit`), and so how far apart the pages asked for ahead are.
    stride: Option<u64>,
    first_total: Option<u64>,
    /// The listing total the block's positions were planned from.
    planned_total: Option<u64>,
    /// Records (id and `updated_at`) seen, for the count and progress.
    ids: HashSet<u64, Identity>,
    /// Ids seen, to notice one skill listed twice in different versions.
    skills: HashSet<u64, Identity>,
    hasher: KeyedHash,
    complete: bool,
    done: bool,
    note: Option<String>,
}

impl Walk {
    /// A walk of a whole listing; `limit` is clamped to 1..=100, and 0 means
    /// 100.
    pub fn whole(limit: u32, hasher: KeyedHash) -> Walk {
        Walk::new(limit, hasher, 0, None, true, false)
    }

    /// A walk of positions `start..end` of a listing whose total was
    /// `total` when the block was planned, expecting only unscored records
    /// there. A page with another total means the block has moved.
    pub fn unscored_block(limit: u32, hasher: KeyedHash, start: u64, end: u64, total: u64) -> Walk {
        let mut walk = Walk::new(limit, hasher, start, Some(end), false, true);
        walk.planned_total = Some(total);
        walk
    }

    /// Marks the walk as not complete, saying why (a check made after it).
    pub fn mark_incomplete(&mut self, why: String) {
        self.complete = false;
        self.note.get_or_insert(why);
    }

    fn new(
        limit: u32,
        hasher: KeyedHash,
        start: u64,
        end: Option<u64>,
        whole: bool,
        unscored_only: bool,
    ) -> Walk {
        let limit = if limit == 0 {
            SEARCH_MAX_LIMIT
        } else {
            limit.min(SEARCH_MAX_LIMIT)
        };
        Walk {
            limit,
            start,
            end,
            whole,
            unscored_only,
            offset: start,
            stride: None,
            first_total: None,
            planned_total: None,
            ids: HashSet::with_hasher(Identity),
            skills: HashSet::with_hasher(Identity),
            hasher,
            complete: true,
            done: end.is_some_and(|e| e <= start),
            note: None,
        }
    }

    /// The page to ask for next; `None` once the walk is over.
    pub fn next_request(&self) -> Option<PageRequest> {
        if self.done {
            return None;
        }
        // A block must not ask past its end: the records after it are of
        // another kind and would read as a misplaced block.
        let limit = match self.end {
            Some(end) if !self.whole => {
                end.saturating_sub(self.offset).min(u64::from(self.limit)) as u32
            }
            _ => self.limit,
        };
        Some(PageRequest {
            offset: self.offset,
            limit: limit.max(1),
        })
    }

    /// Spaces the pages asked for ahead `stride` records apart, until a page
    /// of this walk shows its own (what the registry served another walk).
    pub fn assume_stride(&mut self, stride: u64) {
        self.stride.get_or_insert(stride);
    }

    /// Records per page the registry served this walk, once known.
    pub fn stride(&self) -> Option<u64> {
        self.stride
    }

    /// The page `k` requests after [`Walk::next_request`] (`k = 0` is that
    /// one), if every page until then comes back full: what can be asked for
    /// ahead while earlier pages are in flight. `None` past the end, and for
    /// `k > 0` while the end is not known (a whole listing before its first
    /// page).
    pub fn request_ahead(&self, k: u64) -> Option<PageRequest> {
        let next = self.next_request()?;
        if k == 0 {
            return Some(next);
        }
        let end = self.end?;
        let stride = self.stride.unwrap_or(u64::from(self.limit)).max(1);
        let offset = self.offset.checked_add(k.checked_mul(stride)?)?;
        if offset >= end {
            return None;
        }
        let limit = if self.whole {
            self.limit
        } else {
            end.saturating_sub(offset).min(u64::from(self.limit)) as u32
        };
        Some(PageRequest {
            offset,
            limit: limit.max(1),
        })
    }

    /// Records a page; `Err` when the registry makes no progress.
    pub fn record(&mut self, page: &PageFacts<'_>) -> Result<Step, ProtocolError> {
        if self.done {
            return Ok(Step::Done);
        }
        let first = *self.first_total.get_or_insert(page.total);
        if let Some(planned) = self.planned_total
            && page.total != planned
            && self.note.is_none()
        {
            self.note = Some(format!(
                "its count changed from {planned} to {} since the block was planned",
                page.total
            ));
            self.complete = false;
        }
        if page.total != first && self.note.is_none() {
            self.note = Some(format!(
                "its count changed from {first} to {} while it was read",
                page.total
            ));
            self.complete = false;
        }
        if self.whole {
            self.end = Some(page.total);
        }
        if self.unscored_only && page.any_scored {
            self.done = true;
            self.complete = false;
            return Ok(Step::Misplaced);
        }
        if page.unreadable > 0 {
            self.complete = false;
        }
        let mut fresh = 0;
        for key in &page.keys {
            if self.ids.insert(self.hasher.hash_one(key)) {
                fresh += 1;
                // A second version of a skill already listed: a copy the
                // registry serves twice, or a skill updated while it was
                // listed, which may stand in for a record skipped past.
                if !self.skills.insert(self.hasher.hash_one(key.0)) && self.note.is_none() {
                    self.note = Some(format!("it listed skill {:?} in two versions", key.0));
                    self.complete = false;
                }
            }
        }
        if page.returned > 0 && fresh == 0 && page.unreadable < page.returned {
            return Err(ProtocolError(format!(
                "/skills-search answered offset {} with only records it had already listed at \
                 lower offsets; the registry seems to ignore `offset`, so the listing cannot be \
                 read to its end",
                self.offset
            )));
        }
        let end = self.end.unwrap_or(page.total);
        let ceiling = first
            .saturating_mul(2)
            .saturating_add(u64::from(self.limit));
        if page.returned == 0 {
            if self.offset < end {
                self.note.get_or_insert_with(|| {
                    format!("it returned no records at offset {} of {end}", self.offset)
                });
                self.complete = false;
            }
            self.done = true;
            return Ok(Step::Done);
        }
        self.offset = self.offset.saturating_add(page.returned as u64);
        self.stride = Some(page.returned as u64);
        if self.offset >= end {
            self.done = true;
            if (self.ids.len() as u64) < end.saturating_sub(self.start) {
                self.note.get_or_insert_with(|| {
                    format!(
                        "it listed {} distinct records where it counts {}",
                        self.ids.len(),
                        end.saturating_sub(self.start)
                    )
                });
                self.complete = false;
            }
            return Ok(Step::Done);
        }
        if self.offset > ceiling {
            self.note = Some(format!(
                "it kept growing (past {} of an initial {first})",
                self.offset
            ));
            self.complete = false;
            self.done = true;
            return Ok(Step::Done);
        }
        Ok(Step::More)
    }

    /// The walk is over.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The walk is over and saw every member of its block (see [`Walk`]).
    pub fn is_complete(&self) -> bool {
        self.done && self.complete
    }

    /// Why the walk is not complete, for a warning.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The positions the walk covers, as far as known: `end - start`.
    pub fn span(&self) -> Option<u64> {
        self.end.map(|e| e.saturating_sub(self.start))
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

    fn facts(total: u64, ids: &[String], any_scored: bool) -> PageFacts<'_> {
        PageFacts {
            total,
            returned: ids.len(),
            keys: ids
                .iter()
                .map(|id| (id.as_str(), "2026-01-01T00:00:00.000Z"))
                .collect(),
            any_scored,
            unreadable: 0,
        }
    }

    fn ids(range: std::ops::Range<u64>) -> Vec<String> {
        range.map(|i| format!("id-{i}")).collect()
    }

    #[test]
    fn a_whole_listing_is_walked_to_its_total() {
        let mut w = Walk::whole(500, KeyedHash::new(1, 2));
        let mut requests = vec![];
        while let Some(r) = w.next_request() {
            requests.push((r.offset, r.limit));
            let end = (r.offset + u64::from(r.limit)).min(250);
            w.record(&facts(250, &ids(r.offset..end), true)).unwrap();
        }
        assert_eq!(requests, [(0, 100), (100, 100), (200, 100)]);
        assert!(w.is_complete());
    }

    #[test]
    fn pages_ahead_follow_the_page_size_the_registry_serves() {
        let mut w = Walk::whole(100, KeyedHash::new(1, 2));
        let at = |w: &Walk, k| w.request_ahead(k).map(|r| (r.offset, r.limit));
        // Before the first page the end is unknown: nothing ahead.
        assert_eq!((at(&w, 0), at(&w, 1)), (Some((0, 100)), None));
        w.record(&facts(250, &ids(0..100), true)).unwrap();
        assert_eq!(
            [at(&w, 0), at(&w, 1), at(&w, 2)],
            [Some((100, 100)), Some((200, 100)), None]
        );
        // A registry that serves 20 a page: the pages ahead are 20 apart.
        w.record(&facts(250, &ids(100..120), true)).unwrap();
        assert_eq!(
            [at(&w, 0), at(&w, 1), at(&w, 6), at(&w, 7)],
            [Some((120, 100)), Some((140, 100)), Some((240, 100)), None]
        );
        // A block asks ahead within its end.
        let mut b = Walk::unscored_block(100, KeyedHash::new(1, 2), 0, 150, 150);
        b.record(&facts(150, &ids(0..100), false)).unwrap();
        assert_eq!((at(&b, 0), at(&b, 1)), (Some((100, 50)), None));
    }

    #[test]
    fn a_block_never_asks_past_its_end() {
        let mut w = Walk::unscored_block(100, KeyedHash::new(1, 2), 950, 1010, 1010);
        assert_eq!(
            w.next_request(),
            Some(PageRequest {
                offset: 950,
                limit: 60
            })
        );
        assert_eq!(
            w.record(&facts(1010, &ids(950..1010), false)),
            Ok(Step::Done)
        );
        assert!(w.is_complete());
    }

    #[test]
    fn a_block_whose_listing_changed_since_it_was_planned_is_incomplete() {
        // One unscored skill was added after the probe: the block [950,
        // 1010) no longer holds all of them.
        let mut w = Walk::unscored_block(100, KeyedHash::new(1, 2), 950, 1010, 1010);
        assert_eq!(
            w.record(&facts(1011, &ids(950..1010), false)),
            Ok(Step::Done)
        );
        assert!(!w.is_complete());
        assert!(w.note().unwrap().contains("since the block was planned"));
    }

    #[test]
    fn a_scored_record_in_the_block_means_it_is_elsewhere() {
        let mut w = Walk::unscored_block(100, KeyedHash::new(1, 2), 0, 50, 1010);
        assert_eq!(
            w.record(&facts(1010, &ids(0..50), true)),
            Ok(Step::Misplaced)
        );
        assert!(w.is_done() && !w.is_complete());
    }

    #[test]
    fn a_registry_that_ignores_offset_is_a_protocol_error() {
        let mut w = Walk::whole(100, KeyedHash::new(1, 2));
        let page = ids(0..100);
        assert_eq!(w.record(&facts(5000, &page, true)), Ok(Step::More));
        assert!(w.record(&facts(5000, &page, true)).is_err());
    }

    #[test]
    fn repeats_that_leave_the_count_short_are_incomplete() {
        let mut w = Walk::whole(10, KeyedHash::new(1, 2));
        w.record(&facts(20, &ids(0..10), true)).unwrap();
        // Half the second page repeats the first: unstable order.
        let mut second = ids(5..10);
        second.extend(ids(10..15));
        assert_eq!(w.record(&facts(20, &second, true)), Ok(Step::Done));
        assert!(!w.is_complete());
        assert!(w.note().unwrap().contains("15 distinct"));
        // Two versions of one skill are two records, but one may stand in
        // for a record skipped past: not complete either.
        let mut w = Walk::whole(10, KeyedHash::new(1, 2));
        let page = PageFacts {
            total: 2,
            returned: 2,
            keys: vec![
                ("a", "2026-01-01T00:00:00.000Z"),
                ("a", "2026-01-02T00:00:00.000Z"),
            ],
            ..PageFacts::default()
        };
        assert_eq!(w.record(&page), Ok(Step::Done));
        assert!(!w.is_complete());
        assert!(w.note().unwrap().contains("two versions"));
    }

    #[test]
    fn changing_total_is_incomplete() {
        let mut w = Walk::whole(10, KeyedHash::new(1, 2));
        w.record(&facts(25, &ids(0..10), true)).unwrap();
        w.record(&facts(24, &ids(10..20), true)).unwrap();
        w.record(&facts(24, &ids(20..24), true)).unwrap();
        assert!(w.is_done() && !w.is_complete());
    }

    #[test]
    fn empty_page_before_total_is_incomplete() {
        let mut w = Walk::whole(10, KeyedHash::new(1, 2));
        w.record(&facts(25, &ids(0..10), true)).unwrap();
        assert_eq!(w.record(&facts(25, &[], true)), Ok(Step::Done));
        assert!(!w.is_complete());
    }

    #[test]
    fn versions_keep_the_newest() {
        let mut v = Versions::new(KeyedHash::new(3, 4));
        assert_eq!(v.offer("a", "2026-01-01T00:00:00.000Z"), Offer::New);
        assert_eq!(v.offer("a", "2025-12-31T23:59:59.999Z"), Offer::Stale);
        assert_eq!(v.offer("a", "2026-01-01T00:00:00.000Z"), Offer::Stale);
        assert_eq!(v.offer("a", "2026-01-01T00:00:00.001Z"), Offer::Newer);
        assert!(v.contains("a") && !v.contains("b"));
        assert_eq!(v.len(), 1);
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
        /// Against any sequence of answers (totals, page sizes and ids drawn
        /// at random), a walk visits each offset at most once, never asks
        /// past the latest total, and ends.
        #[test]
        fn a_walk_terminates(
            limit in 1u32..120,
            answers in proptest::collection::vec((0u64..400, 0usize..130, 0u64..3), 1..64),
        ) {
            let mut w = Walk::whole(limit, KeyedHash::new(5, 6));
            let mut visited = HashSet::new();
            let mut latest_total: Option<u64> = None;
            let mut steps = 0u64;
            let mut next_id = 0u64;
            while let Some(r) = w.next_request() {
                prop_assert!(r.limit >= 1 && r.limit <= SEARCH_MAX_LIMIT);
                prop_assert!(visited.insert(r.offset), "offset visited twice");
                if let Some(t) = latest_total {
                    prop_assert!(r.offset < t, "offset {} past total {}", r.offset, t);
                }
                let (total, returned, repeat) = answers[steps as usize % answers.len()];
                // Mostly fresh ids, sometimes a page of repeats.
                let page: Vec<String> = (0..returned as u64)
                    .map(|k| if repeat == 0 { format!("r{k}") } else { next_id += 1; format!("f{next_id}") })
                    .collect();
                if w.record(&facts(total, &page, true)).is_err() {
                    break;
                }
                latest_total = Some(total);
                steps += 1;
                prop_assert!(steps <= 2 * 400 + 120 + 130 + 2, "no termination");
            }
        }

        /// A quiet listing is walked completely, in whole and as a block.
        #[test]
        fn a_quiet_listing_is_complete(limit in 1u32..150, total in 0u64..500, cut in 0u64..500) {
            let mut w = Walk::whole(limit, KeyedHash::new(7, 8));
            let mut listed = 0;
            while let Some(r) = w.next_request() {
                let end = (r.offset + u64::from(r.limit)).min(total);
                listed += end - r.offset;
                w.record(&facts(total, &ids(r.offset..end), true)).unwrap();
            }
            prop_assert_eq!(listed, total);
            prop_assert!(w.is_complete());

            let start = cut.min(total);
            let mut b = Walk::unscored_block(limit, KeyedHash::new(7, 8), start, total, total);
            let mut listed = 0;
            while let Some(r) = b.next_request() {
                let end = (r.offset + u64::from(r.limit)).min(total);
                prop_assert!(end <= total);
                listed += end - r.offset;
                b.record(&facts(total, &ids(r.offset..end), false)).unwrap();
            }
            prop_assert_eq!(listed, total - start);
            prop_assert!(b.is_complete());
        }
    }
}
