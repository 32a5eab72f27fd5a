//! Search mode: the census of what the registry holds (`/stats` and 1-item
//! probes), the cover of listings planned from it (`cover`), the walks over
//! those listings with de-duplication by newest copy, the coverage report,
//! and the prune of what complete listings proved gone.

use std::collections::VecDeque;

use super::{Buffer, Sync, expect_api, protocol_error, unexpected};
use crate::cover::{CATEGORIES, Census, Filter, Listing, Part, Plan, Reach, Totals};
use crate::cursor::{Offer, PageFacts, PageRequest, SeenSet, Step, Versions, Walk};
use crate::diff::Rule;
use crate::domain::{Checkpoint, Coverage, Host, Page, Phase, RunCounts, SyncMode};
use crate::protocol::{self, Entry, SearchPage};
use crate::retry::{Halt, InFlight};

pub(super) const SEARCH_PATH: &str = "/skills-search";
const STATS_PATH: &str = "/stats";
const GET_PATH: &str = "/skills-get";

/// A run may make this many times the floor of one request per 100 skills
/// (a complete cover of any catalogue needs under 3x; pages smaller than
/// asked for, as a registry that caps `limit` at its default of 20 sends,
/// need 5x), plus [`RUNAWAY_SLACK`] for probes and confirmations.
const RUNAWAY_FACTOR: u64 = 8;
/// See [`RUNAWAY_FACTOR`].
const RUNAWAY_SLACK: u64 = 200;

/// At most this many prune candidates are confirmed with `/skills-get`, one
/// request each; a run that finds more (a registry that dropped thousands of
/// skills at once) removes them on the listings' proof alone.
pub(super) const CONFIRM_MAX: usize = 100;

/// Where a listing keeps its unscored records, as this run has found out.
/// The OpenAPI file does not fix the order of filter-only results; this
/// registry's own protocol says quality descending with nulls last, and an
/// SQL `ORDER BY quality_score DESC` puts them first. Either way they form
/// one block at an end, which a walk can read alone and check (`Walk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NullOrder {
    /// Not seen yet: look at the end first.
    Unknown,
    /// At the end of each listing.
    Last,
    /// At the start of each listing.
    First,
    /// In neither place: read whole listings.
    Scattered,
}

/// The state of one search-mode enumeration.
struct Listed {
    versions: Versions,
    /// Ids of malformed records: they exist, so a prune keeps them.
    protected: SeenSet,
    buffer: Buffer,
    checkpoint: Checkpoint,
    order: NullOrder,
    /// Requests this run may make before the listings count as runaway:
    /// with the registry's own count known, no cover needs more than a few
    /// times one request per 100 skills, so a registry whose totals or page
    /// sizes would take more is stopped with a protocol error.
    /// (cap, the registry's count it came from).
    request_cap: Option<(u32, u64)>,
    /// Records per page the registry serves, once a page has shown it: the
    /// spacing of the pages each walk asks for ahead.
    served: Option<u64>,
}

impl Listed {
    fn contains(&self, id: &str) -> bool {
        self.versions.contains(id) || self.protected.contains(id)
    }

    fn reached(&self) -> u64 {
        (self.versions.len() + self.protected.len()) as u64
    }
}

impl<H: Host> Sync<'_, H> {
    /// Enumerates the registry through `/skills-search`: every skill any
    /// filter reaches arrives, and a stored skill is removed only when a
    /// listing that had to show it was read completely and did not.
    pub(super) fn search(&mut self) -> Result<Option<String>, Halt> {
        self.mode = SyncMode::Search;
        self.at.phase = Phase::Discover;
        let census = self.census()?;
        let (plan, totals) = self.plan(&census)?;
        self.at.phase = Phase::Fetch;
        self.at.total = match &totals {
            Some(totals) => Some(plan.planned_records(totals)),
            None => census.registry_total,
        };
        let mut listed = Listed {
            versions: Versions::new(self.hasher),
            protected: SeenSet::new(self.hasher),
            buffer: Buffer::default(),
            checkpoint: Checkpoint {
                mode: SyncMode::Search,
                cursor: None,
                etag: None,
                resync_pending: false,
            },
            order: NullOrder::Unknown,
            request_cap: census.registry_total.map(|n| {
                let floor = n.div_ceil(u64::from(crate::cursor::SEARCH_MAX_LIMIT));
                let cap = floor.saturating_mul(RUNAWAY_FACTOR) + RUNAWAY_SLACK;
                (u32::try_from(cap).unwrap_or(u32::MAX), n)
            }),
            served: None,
        };
        let mut complete = Vec::with_capacity(plan.listings.len());
        let walked = self.walk_plan(&plan, &mut listed, &mut complete);
        let checkpoint = listed.checkpoint.clone();
        self.keep_fetched(walked, |s| s.flush(&mut listed.buffer, &checkpoint, true))?;

        let coverage = Coverage {
            registry_total: census.registry_total,
            reached: listed.reached(),
            unfilterable_tiers: census.unfilterable.clone(),
        };
        self.warn_coverage(&coverage);
        self.coverage = Some(coverage);

        let reach = Reach::of(&plan, &complete);
        if reach.is_empty() {
            self.warnings.push(
                "no listing was read completely, so skills deleted from the registry are not \
                 removed this time; the next sync will try again"
                    .into(),
            );
        } else {
            let seen = |id: &str| listed.contains(id);
            self.prune(
                &seen,
                Some(&reach),
                listed.versions.is_empty(),
                &checkpoint,
                &checkpoint,
            )?;
        }
        // Record the protocol even when nothing changed, so that a registry
        // that dropped the feed is not asked for it again.
        self.apply(
            Page {
                upserts: Vec::new(),
                removals: Vec::new(),
                checkpoint,
            },
            RunCounts::default(),
        )?;
        self.last_sync_at_from_first_date()
    }

    // --- census and plan ---------------------------------------------------

    /// What the registry says it holds: `/stats?detailed=true`, and which of
    /// the tiers it reports `/skills-search` accepts as a filter.
    fn census(&mut self) -> Result<Census, Halt> {
        let mut census = Census::new();
        let url = self.registry.endpoint(STATS_PATH, &[("detailed", "true")]);
        // Any answer but a 200 means "no count": one try, no retries, since
        // the listings do not depend on it.
        let flight = self.send(url, Vec::new(), &[401, 403, 500, 502, 503, 504])?;
        let resp = self.wait(flight)?;
        let why_not = match resp.status {
            200 if protocol::is_web_page(&resp) => "/stats answered with a web page".to_owned(),
            200 => match protocol::decode_stats(&resp.body) {
                Ok(stats) => {
                    census.registry_total = stats.skill_count;
                    census.by_tier = stats.by_tier;
                    "it sent no skillCount".to_owned()
                }
                Err(e) => e.0,
            },
            status => format!("/stats answered HTTP {status}"),
        };
        if census.registry_total.is_none() {
            self.warnings.push(format!(
                "the registry did not say how many skills it has ({why_not}), so whether the \
                 search API reached every skill could not be checked"
            ));
        }
        let tiers = census.tiers_to_probe();
        let urls = tiers
            .iter()
            .map(|tier| self.search_url(&Filter::tier(tier), probe()))
            .collect();
        for (tier, resp) in tiers.into_iter().zip(self.fetch_all(urls, &[])?) {
            match resp.status {
                200 => {
                    expect_api(&resp, SEARCH_PATH)?;
                    let page = protocol::decode_search_page(&resp.body, &mut self.warnings)
                        .map_err(protocol_error)?;
                    // A filter that answers but does not list the tier's
                    // skills (a spelling it does not match) proves nothing
                    // about them: only one that lists as many as /stats
                    // counts is a listing of the tier.
                    if Some(page.total) == census.count_of(&tier) {
                        census.filterable.push(tier);
                    } else {
                        census.unfilterable.push(tier);
                    }
                }
                400 => census.unfilterable.push(tier),
                _ => return Err(unexpected(&resp, SEARCH_PATH).into()),
            }
        }
        Ok(census)
    }

    /// The cover to read. When the census shows every skill in a filterable
    /// tier, the tiers alone, with no probe; otherwise the full cover, from
    /// the totals of 1-item probes sent together.
    fn plan(&mut self, census: &Census) -> Result<(Plan, Option<Totals>), Halt> {
        if census.outside_filterable_tiers() == Some(0) {
            return Ok((Plan::tiers_only(census), None));
        }
        let mut filters = vec![Filter::scored()];
        for tier in &census.filterable {
            let filter = Filter::tier(tier);
            filters.push(filter.and_scored());
            filters.push(filter);
        }
        for category in CATEGORIES {
            let filter = Filter::category(category);
            filters.push(filter.and_scored());
            filters.push(filter);
        }
        let urls = filters
            .iter()
            .map(|filter| self.search_url(filter, probe()))
            .collect();
        let mut counts = Vec::with_capacity(filters.len());
        for resp in self.fetch_all(urls, &[])? {
            counts.push(self.decode_search(resp)?.total);
        }
        let mut counts = counts.into_iter();
        let mut next = || counts.next().unwrap_or(0);
        let scored = next();
        let tiers = census
            .filterable
            .iter()
            .map(|t| {
                let scored = next();
                (t.clone(), next(), scored)
            })
            .collect();
        let categories = CATEGORIES
            .iter()
            .map(|c| {
                let scored = next();
                (*c, next(), scored)
            })
            .collect();
        let totals = Totals {
            scored,
            tiers,
            categories,
        };
        Ok((Plan::full(census, &totals), Some(totals)))
    }

    // --- walks -------------------------------------------------------------

    /// Reads the plan's listings in order; `complete[i]` says whether
    /// listing `i` was read completely.
    fn walk_plan(
        &mut self,
        plan: &Plan,
        listed: &mut Listed,
        complete: &mut Vec<bool>,
    ) -> Result<(), Halt> {
        for listing in &plan.listings {
            let walk = match listing.part {
                Part::All => {
                    self.walk(
                        listed,
                        &listing.filter,
                        Walk::whole(self.page_size, self.hasher),
                    )?
                    .0
                }
                Part::Unscored { total, scored } => {
                    self.walk_unscored(listed, listing, total, scored)?
                }
            };
            if !walk.is_complete() {
                self.warnings.push(format!(
                    "the listing {} was not read completely ({}); skills it should list are not \
                     removed this time",
                    listing.filter.describe(),
                    walk.note().unwrap_or("it ended early")
                ));
            }
            complete.push(walk.is_complete());
        }
        Ok(())
    }

    /// Reads the unscored records of a listing: the block at its end, or at
    /// its start, or, when they are in neither place, the whole listing.
    fn walk_unscored(
        &mut self,
        listed: &mut Listed,
        listing: &Listing,
        total: u64,
        scored: u64,
    ) -> Result<Walk, Halt> {
        let unscored = total - scored;
        loop {
            let (ps, h) = (self.page_size, self.hasher);
            let walk = match listed.order {
                _ if scored == 0 => Walk::whole(ps, h),
                NullOrder::Unknown | NullOrder::Last => {
                    Walk::unscored_block(ps, h, scored, total, total)
                }
                NullOrder::First => Walk::unscored_block(ps, h, 0, unscored, total),
                NullOrder::Scattered => Walk::whole(ps, h),
            };
            let (mut walk, misplaced) = self.walk(listed, &listing.filter, walk)?;
            if !misplaced {
                if listed.order == NullOrder::Unknown && scored > 0 {
                    listed.order = NullOrder::Last;
                }
                // The block held every unscored skill only if the split it
                // was planned from still holds: a skill that lost its score
                // since would sit just outside it. The walk checked the
                // total; one probe checks the scored count.
                if walk.is_complete() && scored > 0 {
                    let now = self.probe_total(&listing.filter.and_scored())?;
                    if now != scored {
                        walk.mark_incomplete(format!(
                            "its scored count changed from {scored} to {now} while it was read"
                        ));
                    }
                }
                return Ok(walk);
            }
            let before = listed.order;
            listed.order = match before {
                NullOrder::Unknown => NullOrder::First,
                _ => NullOrder::Scattered,
            };
            self.host.log(
                crate::domain::Level::Debug,
                &format!(
                    "the unscored skills of {} are not where {before:?} put them; trying {:?}",
                    listing.filter.describe(),
                    listed.order
                ),
            );
        }
    }

    /// Pages through one walk, with up to [`crate::retry::MAX_IN_FLIGHT`]
    /// pages in flight while earlier ones are written (as many as the rate
    /// limit leaves). Pages are recorded and applied in offset order, as
    /// one at a time would; the pages asked for ahead assume full pages
    /// before them, so a short page drops them and the walk goes on from
    /// where that page ended. `true` with the walk when it found its block
    /// misplaced.
    fn walk(
        &mut self,
        listed: &mut Listed,
        filter: &Filter,
        mut walk: Walk,
    ) -> Result<(Walk, bool), Halt> {
        if let Some(stride) = listed.served {
            walk.assume_stride(stride);
        }
        let mut ahead: VecDeque<(PageRequest, InFlight<H::Pending>)> = VecDeque::new();
        self.top_up(filter, &walk, &mut ahead)?;
        while let Some((_, flight)) = ahead.pop_front() {
            let page = self.search_page(flight)?;
            self.at.pages += 1;
            if let Some((cap, skills)) = listed.request_cap
                && self.client.requests() > cap
            {
                return Err(protocol_error(crate::protocol::ProtocolError(format!(
                    "the search listings would take more than {cap} requests for the {skills} \
                     skills the registry counts (their totals or page sizes do not add up), so \
                     the listing was stopped"
                )))
                .into());
            }
            let step = walk.record(&facts(&page)).map_err(protocol_error)?;
            let aligned = step == Step::More
                && ahead
                    .front()
                    .is_none_or(|(asked, _)| Some(*asked) == walk.next_request());
            if !aligned {
                for (_, flight) in ahead.drain(..) {
                    self.client.abandon(flight);
                }
            }
            if step == Step::More {
                listed.served = walk.stride().or(listed.served);
            }
            self.at.done += page.raw_len as u64;
            // What a misplaced block read is valid all the same. Written
            // before more is sent: a send may first wait out a rate-limit
            // window, and a page should not wait with it.
            self.admit(listed, page)?;
            self.progress()?;
            if step == Step::More {
                self.top_up(filter, &walk, &mut ahead)?;
            }
            if step == Step::Misplaced {
                return Ok((walk, true));
            }
        }
        Ok((walk, false))
    }

    /// Sends the walk's next pages until [`crate::retry::Client::room`] or
    /// the walk runs out (at least the next one, if none is in flight).
    fn top_up(
        &mut self,
        filter: &Filter,
        walk: &Walk,
        ahead: &mut VecDeque<(PageRequest, InFlight<H::Pending>)>,
    ) -> Result<(), Halt> {
        while ahead.is_empty() || self.client.room() > 0 {
            let Some(request) = walk.request_ahead(ahead.len() as u64) else {
                break;
            };
            let flight = self.send_search(filter, request, &[])?;
            ahead.push_back((request, flight));
        }
        Ok(())
    }

    /// De-duplicates a page against everything listed before, the newest
    /// copy of an id winning, and hands what differs from the store to the
    /// buffer.
    fn admit(&mut self, listed: &mut Listed, page: SearchPage) -> Result<(), Halt> {
        for id in &page.malformed.ids {
            listed.protected.insert(id);
        }
        listed.buffer.pending.skipped += page.malformed.count;
        let mut entries: Vec<Entry> = Vec::with_capacity(page.skills.len());
        for skill in page.skills {
            match listed.versions.offer(&skill.id, &skill.updated_at) {
                Offer::New => entries.push(Entry::Upsert(skill)),
                Offer::Stale => {}
                Offer::Newer => {
                    // An older copy may still wait in this page or in the
                    // buffer; this one replaces it. One already written is
                    // simply updated, since the diff sees it in the store.
                    if let Some(e) = entries.iter_mut().find(|e| e.id() == skill.id) {
                        *e = Entry::Upsert(skill);
                    } else {
                        listed.buffer.upserts.retain(|u| u.skill.id != skill.id);
                        entries.push(Entry::Upsert(skill));
                    }
                }
            }
        }
        let diff = self.diff(entries, Rule::Differs)?;
        listed.buffer.push(diff);
        let checkpoint = listed.checkpoint.clone();
        self.flush(&mut listed.buffer, &checkpoint, false)
    }

    /// Of skills the listings proved gone by their stored copies, those the
    /// registry does not have: a stored copy can be stale (a skill that lost
    /// its score, its category or its filterable tier since is live but in
    /// no listing), so `/skills-get` has the last word, `404` meaning gone.
    /// Beyond [`CONFIRM_MAX`] the listings' proof stands alone.
    pub(super) fn confirm_gone(&mut self, candidates: Vec<String>) -> Result<Vec<String>, Halt> {
        if candidates.is_empty() || candidates.len() > CONFIRM_MAX {
            return Ok(candidates);
        }
        let urls = candidates
            .iter()
            .map(|id| self.registry.endpoint(GET_PATH, &[("id", id)]))
            .collect();
        let answers = self.fetch_all(urls, &[404])?;
        let mut gone = Vec::with_capacity(candidates.len());
        let mut live = 0;
        for (id, resp) in candidates.into_iter().zip(answers) {
            if protocol::is_web_page(&resp) {
                // A portal's page proves nothing: keep it.
                continue;
            }
            match resp.status {
                404 => gone.push(id),
                // `/skills-get` also matches names: an answer about another
                // skill says this one is not there.
                200 => match protocol::decode_get_id(&resp.body) {
                    Some(found) if found == id => live += 1,
                    Some(_) => gone.push(id),
                    None => {}
                },
                // Anything else proves nothing: keep it.
                _ => {}
            }
        }
        if live > 0 {
            self.warnings.push(format!(
                "{live} stored skills are in no listing now but the registry still has them \
                 (their tier, score or category changed); they are kept"
            ));
        }
        Ok(gone)
    }

    /// The `meta.total` of a filter set, by a 1-item request.
    fn probe_total(&mut self, filter: &Filter) -> Result<u64, Halt> {
        let flight = self.send_search(filter, probe(), &[])?;
        Ok(self.search_page(flight)?.total)
    }

    /// Waits for a `/skills-search` request and decodes its page; any
    /// answer but a JSON 200 is an error of the kind it shows.
    fn search_page(&mut self, flight: InFlight<H::Pending>) -> Result<SearchPage, Halt> {
        let resp = self.wait(flight)?;
        self.decode_search(resp)
    }

    fn decode_search(&mut self, resp: crate::domain::HttpResponse) -> Result<SearchPage, Halt> {
        if resp.status != 200 {
            return Err(unexpected(&resp, SEARCH_PATH).into());
        }
        expect_api(&resp, SEARCH_PATH)?;
        Ok(protocol::decode_search_page(&resp.body, &mut self.warnings).map_err(protocol_error)?)
    }

    fn send_search(
        &mut self,
        filter: &Filter,
        request: PageRequest,
        final_statuses: &'static [u16],
    ) -> Result<InFlight<H::Pending>, Halt> {
        let url = self.search_url(filter, request);
        // A tier probe's 400 is its answer ("not filterable"); 400 is
        // final for every search request anyway.
        self.send(url, Vec::new(), final_statuses)
    }

    fn search_url(&self, filter: &Filter, request: PageRequest) -> String {
        let limit = request.limit.to_string();
        let offset = request.offset.to_string();
        let mut query = filter.query();
        query.push(("limit", &limit));
        query.push(("offset", &offset));
        self.registry.endpoint(SEARCH_PATH, &query)
    }

    /// Fetches independent requests (probes, confirmations) with as many in
    /// flight as [`crate::retry::Client::room`] allows; the responses come
    /// back in the order asked.
    fn fetch_all(
        &mut self,
        urls: Vec<String>,
        final_statuses: &'static [u16],
    ) -> Result<Vec<crate::domain::HttpResponse>, Halt> {
        let mut out = Vec::with_capacity(urls.len());
        let mut pending = VecDeque::new();
        let mut urls = urls.into_iter().peekable();
        while urls.peek().is_some() || !pending.is_empty() {
            while pending.is_empty() || self.client.room() > 0 {
                let Some(url) = urls.next() else { break };
                pending.push_back(self.send(url, Vec::new(), final_statuses)?);
            }
            if let Some(flight) = pending.pop_front() {
                out.push(self.wait(flight)?);
            }
        }
        Ok(out)
    }

    /// Warns when the registry counts more skills than the listings reached.
    fn warn_coverage(&mut self, coverage: &Coverage) {
        let (Some(total), Some(missing)) = (coverage.registry_total, coverage.unreachable()) else {
            return;
        };
        if missing == 0 {
            return;
        }
        let why = if coverage.unfilterable_tiers.is_empty() {
            "the registry counts more skills than its search listings show".to_owned()
        } else {
            format!(
                "/skills-search cannot filter on the trust tier{} {}, so such skills that have \
                 neither a quality score nor a category are in no listing",
                if coverage.unfilterable_tiers.len() == 1 {
                    ""
                } else {
                    "s"
                },
                coverage.unfilterable_tiers.join(", ")
            )
        };
        self.warnings.push(format!(
            "{missing} of the registry's {total} skills could not be reached through the search \
             API: {why}. They are not removed if stored already, and arrive once the registry \
             offers the changes feed"
        ));
    }
}

/// A 1-item request: its `meta.total` is the answer.
fn probe() -> PageRequest {
    PageRequest {
        offset: 0,
        limit: 1,
    }
}

/// What a walk needs to know of a page.
fn facts(page: &SearchPage) -> PageFacts<'_> {
    PageFacts {
        total: page.total,
        returned: page.raw_len,
        keys: page
            .skills
            .iter()
            .map(|s| (s.id.as_str(), s.updated_at.as_str()))
            .chain(page.malformed.ids.iter().map(|id| (id.as_str(), "")))
            .collect(),
        any_scored: page.skills.iter().any(|s| s.quality_score.is_some()),
        // A malformed record's score is unknown, so a block holding one
        // cannot be checked.
        unreadable: page.malformed.count as usize,
    }
}
