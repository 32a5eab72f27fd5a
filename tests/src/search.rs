//! `GET /skills-search`: validation, result orders cached per filter set, and
//! pages serialised straight from pre-rendered records.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use crate::catalogue::{Category, TrustTier};
use crate::reply::{Params, Reply};
use crate::store::{Rec, Store};

/// The record the `BadRecord` fault puts in place of a real one: no `id`,
/// wrong types everywhere else.
pub(crate) const BAD_RECORD: &str = r#"{"name":12345,"description":["not","a","string"],"quality_score":"high","trust_tier":7,"tags":"oops","updated_at":false}"#;

/// The filters of a search; the cache key of a filter-only result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Filters {
    category: Option<Category>,
    tier: Option<TrustTier>,
    min_score: Option<u8>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.category.is_none() && self.tier.is_none() && self.min_score.is_none()
    }

    fn matches(&self, rec: &Rec) -> bool {
        self.tier.is_none_or(|t| rec.skill.trust_tier == t)
            && self.category.is_none_or(|c| rec.skill.categories.contains(&c))
            // A null score never satisfies a minimum, not even 0.
            && self.min_score.is_none_or(|m| rec.pct.is_some_and(|p| p >= m))
    }
}

/// A validated search request.
pub(crate) struct SearchParams {
    query: Option<String>,
    filters: Filters,
    limit: usize,
    offset: usize,
    /// The offset the page is served from (0 for a registry that ignores
    /// `offset`; `meta.offset` still echoes the request).
    served_from: usize,
}

impl SearchParams {
    /// Serves the first page whatever `offset` says.
    pub(crate) fn ignore_offset(&mut self) {
        self.served_from = 0;
    }
}

/// Validates the query string per the OpenAPI file; `Err` is the 400 reply.
pub(crate) fn parse(params: &Params) -> Result<SearchParams, Reply> {
    let bad = |parameter: &str, received: &str, msg: &str| {
        Reply::error(
            400,
            msg,
            json!({"parameter": parameter, "received": received}),
        )
    };
    let query = params.get("query").map(str::trim).filter(|q| !q.is_empty());
    let category = match params.get("category").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Category::parse(s).ok_or_else(|| {
            bad("category", s, "Invalid category: must be one of Development, Testing, DevOps, Documentation, Productivity, Security")
        })?),
    };
    let tier = match params.get("trust_tier").filter(|s| !s.is_empty()) {
        None => None,
        // Only the OpenAPI enum: a tier skills carry but the enum lacks
        // (`experimental`) is refused, as the live registry refuses it.
        Some(s) => Some(TrustTier::parse(s).filter(|t| t.is_filterable()).ok_or_else(|| {
            bad("trust_tier", s, "Invalid trust_tier: must be one of official, verified, curated, community, unverified")
        })?),
    };
    let int = |name: &str, lo: i64, hi: i64, default: i64| -> Result<i64, Reply> {
        match params.get(name).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(|| {
                    bad(
                        name,
                        s,
                        &format!("Invalid {name}: must be an integer between {lo} and {hi}"),
                    )
                }),
        }
    };
    let min_score = match params.get("min_score").filter(|s| !s.is_empty()) {
        None => None,
        Some(_) => Some(int("min_score", 0, 100, 0)? as u8),
    };
    let limit = int("limit", 1, 100, 20)? as usize;
    let offset = int("offset", 0, i64::MAX, 0)? as usize;
    let filters = Filters {
        category,
        tier,
        min_score,
    };
    match query {
        Some(q) if q.chars().count() < 3 => Err(bad(
            "query",
            q,
            "Search query must be at least 3 characters",
        )),
        None if filters.is_empty() => Err(Reply::error(
            400,
            "Provide a search query or at least one filter (category, trust_tier, min_score)",
            json!({"parameter": "query", "received": params.get("query")}),
        )),
        _ => Ok(SearchParams {
            query: query.map(str::to_string),
            filters,
            limit,
            offset,
            served_from: offset,
        }),
    }
}

/// Result orders, valid for one generation of the store. Filter-only orders
/// survive updates (which change neither membership nor the sort key); query
/// results are dropped on any mutation since descriptions change.
#[derive(Default)]
pub(crate) struct SearchCache {
    membership_gen: u64,
    content_gen: u64,
    /// Live slots by (quality desc nulls last, id asc).
    global: Option<Arc<[u32]>>,
    filtered: HashMap<Filters, Arc<[u32]>>,
    queries: HashMap<(String, Filters), Ranked>,
}

/// Slots with their relevance, best first.
type Ranked = Arc<[(u32, f64)]>;

/// Bound on cached query results, so a client probing many queries cannot
/// grow the cache without limit.
const MAX_CACHED_QUERIES: usize = 256;

enum Hits {
    Ordered(Arc<[u32]>),
    Ranked(Arc<[(u32, f64)]>),
}

impl SearchCache {
    fn refresh(&mut self, store: &Store) {
        if self.membership_gen != store.membership_gen {
            self.global = None;
            self.filtered.clear();
            self.membership_gen = store.membership_gen;
        }
        if self.content_gen != store.content_gen {
            self.queries.clear();
            self.content_gen = store.content_gen;
        }
    }

    fn global(&mut self, store: &Store) -> Arc<[u32]> {
        self.global
            .get_or_insert_with(|| {
                let mut slots: Vec<u32> = store.listed_slots().collect();
                slots.sort_unstable_by(|&a, &b| {
                    let (a, b) = (store.rec(a), store.rec(b));
                    // None < Some(_), so comparing b to a puts nulls last.
                    b.pct.cmp(&a.pct).then_with(|| a.skill.id.cmp(&b.skill.id))
                });
                slots.into()
            })
            .clone()
    }

    fn hits(&mut self, store: &Store, query: Option<&str>, filters: Filters) -> Hits {
        self.refresh(store);
        let global = self.global(store);
        match query {
            None => Hits::Ordered(
                self.filtered
                    .entry(filters)
                    .or_insert_with(|| {
                        global
                            .iter()
                            .copied()
                            .filter(|&s| filters.matches(store.rec(s)))
                            .collect()
                    })
                    .clone(),
            ),
            Some(q) => {
                let key = (q.to_lowercase(), filters);
                if let Some(hit) = self.queries.get(&key) {
                    return Hits::Ranked(hit.clone());
                }
                let mut ranked: Vec<(u32, f64)> = global
                    .iter()
                    .filter_map(|&s| {
                        let rec = store.rec(s);
                        if !filters.matches(rec) {
                            return None;
                        }
                        relevance(rec, &key.0).map(|r| (s, r))
                    })
                    .collect();
                // Stable: equal relevance keeps the (quality, id) order.
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                if self.queries.len() >= MAX_CACHED_QUERIES {
                    self.queries.clear();
                }
                let ranked: Arc<[(u32, f64)]> = ranked.into();
                self.queries.insert(key, ranked.clone());
                Hits::Ranked(ranked)
            }
        }
    }
}

/// Case-insensitive substring relevance: a name hit outranks a tag hit, and so on.
fn relevance(rec: &Rec, q: &str) -> Option<f64> {
    if rec.name_lc.contains(q) {
        Some(1.0)
    } else if rec.tags_lc.contains(q) {
        Some(0.8)
    } else if rec.desc_lc.contains(q) {
        Some(0.6)
    } else if rec.author_lc.contains(q) {
        Some(0.4)
    } else {
        None
    }
}

/// Serves one page. `corrupt` replaces one record with [`BAD_RECORD`].
pub(crate) fn respond(
    store: &Store,
    cache: &std::sync::Mutex<SearchCache>,
    p: &SearchParams,
    corrupt: bool,
) -> Reply {
    let hits =
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hits(store, p.query.as_deref(), p.filters);
    let total = match &hits {
        Hits::Ordered(h) => h.len(),
        Hits::Ranked(h) => h.len(),
    };
    let start = p.served_from.min(total);
    let end = p.served_from.saturating_add(p.limit).min(total);
    let mut out = String::with_capacity(64 + (end - start) * 700);
    out.push_str("{\"data\":[");
    let bad_at = corrupt.then_some((end - start) / 2);
    for (k, i) in (start..end).enumerate() {
        if k > 0 {
            out.push(',');
        }
        if bad_at == Some(k) {
            out.push_str(BAD_RECORD);
            continue;
        }
        match &hits {
            Hits::Ordered(h) => {
                // Filter-only searches have no relevance; the rank is the quality.
                let rank = store.rec(h[i]).skill.quality_score.unwrap_or(0.0);
                store.render(h[i], Some(rank), &mut out);
            }
            Hits::Ranked(h) => store.render(h[i].0, Some(h[i].1), &mut out),
        }
    }
    out.push_str("],\"meta\":");
    let meta = json!({
        "query": p.query.as_deref().unwrap_or(""),
        "total": total,
        "limit": p.limit,
        "offset": p.offset,
        "filters": {
            "category": p.filters.category.map(Category::as_str),
            "trust_tier": p.filters.tier.map(TrustTier::as_str),
            "min_score": p.filters.min_score,
        },
    });
    out.push_str(&meta.to_string());
    out.push('}');
    Reply::json(200, out)
}
