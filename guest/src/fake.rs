//! A fake host for tests of the engine: a small simulated registry (search,
//! changes feed with tombstones, ETags and cursor expiry) and an in-memory
//! store that enforces what the real one does (local rows untouched, one
//! open run). Compiled for this crate's tests and, with the `fake` feature,
//! for other crates': the sandbox runs the component against it, with
//! neither TCP nor SQLite.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use crate::domain::*;
use crate::engine::{FEED_MAX_LIMIT, STORE_PAGE_ROWS};
use crate::protocol;

pub const DATE: &str = "Wed, 25 Nov 2026 02:00:00 GMT";
pub const NOW: &str = "2026-11-25T02:00:00.000Z";
pub const BASE: &str = "https://reg.example/functions/v1";
pub const TIERS: [&str; 5] = ["official", "verified", "curated", "community", "unverified"];

pub fn ts(n: u64) -> String {
    let dt = chrono::DateTime::from_timestamp(1_795_000_000 + n as i64, 0).unwrap();
    protocol::format_millis(&dt).unwrap()
}

#[derive(Clone)]
pub struct RSkill {
    pub tier: &'static str,
    pub quality: Option<f64>,
    pub categories: Vec<&'static str>,
    pub updated_at: String,
    /// Replaces the JSON of the record (for malformed ones).
    pub raw: Option<String>,
}

#[derive(Default)]
pub struct FakeRegistry {
    pub skills: BTreeMap<String, RSkill>,
    pub tombstones: BTreeMap<String, String>,
    pub feed: bool,
    pub clock: u64,
    /// Cursors issued before this generation have expired (410): the
    /// registry discarded tombstones after issuing them.
    pub horizon: u64,
    pub generation: u64,
    /// Expire every cursor below the newest entry at discard time, even
    /// those of a later pass (a registry that expires by position).
    pub by_position: Option<String>,
    /// Serve `/stats` (the default); without it, a 404.
    pub stats: bool,
    /// Serve the newest copy of these ids plus an older one (`updated_at`
    /// one tick earlier, quality 0.99 so that it sorts first).
    pub stale_copies: Vec<String>,
}

impl FakeRegistry {
    pub fn with(n: usize, feed: bool) -> FakeRegistry {
        let mut r = FakeRegistry {
            feed,
            stats: true,
            ..FakeRegistry::default()
        };
        for i in 0..n {
            r.put(
                &format!("s{i:05}"),
                TIERS[i % 5],
                Some((i % 10) as f64 / 10.0),
            );
        }
        r
    }

    pub fn tick(&mut self) -> String {
        self.clock += 1;
        ts(self.clock)
    }

    pub fn put(&mut self, id: &str, tier: &'static str, quality: Option<f64>) {
        let updated_at = self.tick();
        self.tombstones.remove(id);
        self.skills.insert(
            id.into(),
            RSkill {
                tier,
                quality,
                categories: Vec::new(),
                updated_at,
                raw: None,
            },
        );
    }

    pub fn touch(&mut self, id: &str) {
        let t = self.tick();
        self.skills.get_mut(id).unwrap().updated_at = t;
    }

    /// Discards all tombstones, expiring every cursor issued so far.
    pub fn discard_tombstones(&mut self) {
        self.tombstones.clear();
        self.generation += 1;
        self.horizon = self.generation;
    }

    pub fn delete(&mut self, id: &str) {
        self.skills.remove(id);
        let t = self.tick();
        self.tombstones.insert(id.into(), t);
    }

    pub fn json(id: &str, s: &RSkill) -> String {
        if let Some(raw) = &s.raw {
            return raw.clone();
        }
        let q = s.quality.map_or("null".to_string(), |q| q.to_string());
        let categories: Vec<String> = s.categories.iter().map(|c| format!("\"{c}\"")).collect();
        format!(
            r#"{{"id":"{id}","name":"name {id}","description":null,"author":"a","trust_tier":"{}","quality_score":{q},"tags":["t"],"categories":[{}],"stars":3,"created_at":"{}","updated_at":"{}","rank":0.5}}"#,
            s.tier,
            categories.join(","),
            s.updated_at,
            s.updated_at
        )
    }

    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let rest = req
            .url
            .strip_prefix(BASE)
            .expect("request to another origin");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let q: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), decode(v))
            })
            .collect();
        match path {
            "/health" => {
                let caps = if self.feed {
                    r#"["skills-changes"]"#
                } else {
                    "[]"
                };
                ok(&format!(
                    r#"{{"status":"healthy","version":"1","capabilities":{caps}}}"#
                ))
            }
            "/skills-get" => match self.skills.get(&q["id"]) {
                Some(s) => ok(&format!(r#"{{"data":{}}}"#, Self::json(&q["id"], s))),
                None => status(404, r#"{"error":"Skill not found"}"#),
            },
            "/stats" => {
                if !self.stats {
                    return status(404, r#"{"error":"not found"}"#);
                }
                let mut by_tier: BTreeMap<&str, u64> = BTreeMap::new();
                for s in self.skills.values() {
                    *by_tier.entry(s.tier).or_default() += 1;
                }
                let by_tier: Vec<String> = by_tier
                    .iter()
                    .map(|(t, n)| format!(r#""{t}":{n}"#))
                    .collect();
                ok(&format!(
                    r#"{{"data":{{"skillCount":{},"breakdown":{{"byTier":{{{}}}}}}},"cached":false}}"#,
                    self.skills.len(),
                    by_tier.join(",")
                ))
            }
            "/skills-search" => {
                // As the OpenAPI file: only its enums are accepted.
                let tier = q.get("trust_tier").map(String::as_str);
                if tier.is_some_and(|t| !TIERS.contains(&t)) {
                    return status(400, r#"{"error":"Invalid trust_tier"}"#);
                }
                let category = q.get("category").map(String::as_str);
                if category.is_some_and(|c| !crate::cover::CATEGORIES.contains(&c)) {
                    return status(400, r#"{"error":"Invalid category"}"#);
                }
                let min_score: Option<f64> = q.get("min_score").map(|m| m.parse().unwrap());
                assert!(tier.is_some() || category.is_some() || min_score.is_some());
                let limit: usize = q["limit"].parse().unwrap();
                let offset: usize = q["offset"].parse().unwrap();
                assert!((1..=100).contains(&limit));
                let stale: Vec<(String, RSkill)> = self
                    .stale_copies
                    .iter()
                    .filter_map(|id| {
                        let mut s = self.skills.get(id)?.clone();
                        s.updated_at = ts(self.clock.saturating_sub(1000));
                        s.quality = Some(0.99);
                        Some((id.clone(), s))
                    })
                    .collect();
                let mut rows: Vec<(&String, &RSkill)> = self
                    .skills
                    .iter()
                    .chain(stale.iter().map(|(id, s)| (id, s)))
                    .filter(|(_, s)| {
                        tier.is_none_or(|t| s.tier == t)
                            && category.is_none_or(|c| s.categories.contains(&c))
                            && min_score.is_none_or(|m| s.quality.is_some_and(|q| q * 100.0 >= m))
                    })
                    .collect();
                rows.sort_by(|a, b| {
                    let qa = a.1.quality.unwrap_or(-1.0);
                    let qb = b.1.quality.unwrap_or(-1.0);
                    qb.partial_cmp(&qa).unwrap().then(a.0.cmp(b.0))
                });
                let data: Vec<String> = rows
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(|(id, s)| Self::json(id, s))
                    .collect();
                ok(&format!(
                    r#"{{"data":[{}],"meta":{{"total":{},"limit":{limit},"offset":{offset},"query":null}}}}"#,
                    data.join(","),
                    rows.len()
                ))
            }
            "/skills-changes" => {
                if !self.feed {
                    return status(404, r#"{"error":"not found"}"#);
                }
                let limit: usize = q.get("limit").map_or(100, |l| l.parse().unwrap());
                assert!((1..=1000).contains(&limit));
                let since = match q.get("since") {
                    None => None,
                    Some(c) => match c.split('|').collect::<Vec<_>>()[..] {
                        [t, id, generation] => {
                            if generation.parse::<u64>().unwrap() < self.horizon
                                || self.by_position.as_deref().is_some_and(|p| t < p)
                            {
                                return status(410, r#"{"error":"cursor_expired"}"#);
                            }
                            Some((t.to_string(), id.to_string()))
                        }
                        _ => return status(400, r#"{"error":"invalid_cursor"}"#),
                    },
                };
                let mut entries: Vec<(String, String, String)> = self
                    .skills
                    .iter()
                    .map(|(id, s)| (s.updated_at.clone(), id.clone(), Self::json(id, s)))
                    .chain(self.tombstones.iter().map(|(id, t)| {
                        (
                            t.clone(),
                            id.clone(),
                            format!(r#"{{"id":"{id}","updated_at":"{t}","deleted":true}}"#),
                        )
                    }))
                    .filter(|(t, id, _)| since.as_ref().is_none_or(|(st, sid)| (t, id) > (st, sid)))
                    .collect();
                entries.sort();
                let has_more = entries.len() > limit;
                entries.truncate(limit);
                let next = match (entries.last(), &since) {
                    (Some((t, id, _)), _) => format!("{t}|{id}|{}", self.generation),
                    (None, Some((t, id))) => format!("{t}|{id}|{}", self.generation),
                    (None, None) => format!("||{}", self.generation),
                };
                let etag = format!("\"{next}\"");
                if !has_more
                    && entries.is_empty()
                    && req
                        .headers
                        .iter()
                        .any(|(k, v)| k == "if-none-match" && *v == etag)
                {
                    let mut r = status(304, "");
                    r.headers.push(("etag".into(), etag));
                    return r;
                }
                let data: Vec<&str> = entries.iter().map(|(_, _, j)| j.as_str()).collect();
                let mut r = ok(&format!(
                    r#"{{"data":[{}],"meta":{{"next_cursor":"{next}","has_more":{has_more},"server_time":"2026-11-25T02:00:00Z"}}}}"#,
                    data.join(",")
                ));
                r.headers.push(("etag".into(), etag));
                r
            }
            other => panic!("unexpected path {other}"),
        }
    }
}

pub fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

pub fn status(code: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status: code,
        headers: vec![
            ("date".into(), DATE.into()),
            ("x-ratelimit-limit".into(), "600".into()),
            ("x-ratelimit-remaining".into(), "599".into()),
            ("x-ratelimit-reset".into(), "1795572060".into()),
        ],
        body: body.as_bytes().to_vec(),
        sent_at_ms: 0,
        received_at_ms: 0,
    }
}

pub fn ok(body: &str) -> HttpResponse {
    status(200, body)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub updated_at: String,
    pub source: Source,
    pub skill: Option<Skill>,
}

#[derive(Default)]
pub struct FakeStore {
    pub rows: BTreeMap<String, Row>,
    pub mode: Option<SyncMode>,
    pub cursor: Option<String>,
    pub etag: Option<String>,
    pub resync_pending: bool,
    pub last_sync_at: Option<String>,
    pub open_run: Option<u64>,
    pub runs: Vec<(SyncMode, Option<RunOutcome>)>,
    /// (upserts, removals, checkpoint) of every applied page.
    pub pages: Vec<(usize, usize, Checkpoint)>,
}

pub type Hook =
    Box<dyn FnMut(usize, &HttpRequest) -> Option<Result<HttpResponse, HttpError>> + Send>;

#[derive(Default)]
pub struct Fake {
    pub reg: FakeRegistry,
    pub store: FakeStore,
    pub requests: Vec<HttpRequest>,
    pub events: Vec<String>,
    pub hook: Option<Hook>,
    pub stop_after_pages: Option<u32>,
    /// The n-th `apply-page` (from 1) is acknowledged but not written, and
    /// the next store call reports its failure, as a store that writes
    /// behind does (`wit/store.wit`).
    pub fail_page_behind: Option<usize>,
    pub applies: usize,
    pub failure_behind: Option<StoreError>,
    pub progress: Vec<Progress>,
    pub slept: Vec<u64>,
    pub logs: Vec<String>,
}

impl Fake {
    pub fn new(reg: FakeRegistry) -> Fake {
        Fake {
            reg,
            ..Fake::default()
        }
    }

    /// A failure of a page written behind, reported once.
    pub fn behind(&mut self) -> Result<(), StoreError> {
        self.failure_behind.take().map_or(Ok(()), Err)
    }

    pub fn local(&mut self, id: &str, updated_at: &str) {
        self.store.rows.insert(
            id.into(),
            Row {
                updated_at: updated_at.into(),
                source: Source::Local,
                skill: None,
            },
        );
    }

    /// The registry's skills as the store should hold them.
    pub fn in_sync(&self) -> bool {
        let registry_rows: BTreeMap<_, _> = self
            .store
            .rows
            .iter()
            .filter(|(_, r)| r.source == Source::Registry)
            .map(|(id, r)| (id.clone(), r.updated_at.clone()))
            .collect();
        let want: BTreeMap<_, _> = self
            .reg
            .skills
            .iter()
            .filter(|(id, _)| {
                self.store
                    .rows
                    .get(*id)
                    .is_none_or(|r| r.source == Source::Registry)
            })
            .map(|(id, s)| (id.clone(), s.updated_at.clone()))
            .collect();
        registry_rows == want
    }
}

impl Host for Fake {
    type Pending = Result<HttpResponse, HttpError>;

    fn http_send(&mut self, request: HttpRequest) -> Self::Pending {
        let n = self.requests.len();
        self.events.push(format!("send {}", request.url));
        let hooked = self.hook.as_mut().and_then(|h| h(n, &request));
        let resp = hooked.unwrap_or_else(|| Ok(self.reg.respond(&request)));
        self.requests.push(request);
        resp
    }

    fn http_wait(&mut self, pending: Self::Pending) -> Result<HttpResponse, HttpError> {
        pending
    }

    fn read_state(&mut self) -> Result<SyncState, StoreError> {
        Ok(SyncState {
            last_sync_at: self.store.last_sync_at.clone(),
            mode: self.store.mode,
            cursor: self.store.cursor.clone(),
            etag: self.store.etag.clone(),
            resync_pending: self.store.resync_pending,
            registry_skills: self
                .store
                .rows
                .values()
                .filter(|r| r.source == Source::Registry)
                .count() as u64,
        })
    }

    fn local_versions(&mut self, ids: &[String]) -> Result<Vec<Option<LocalVersion>>, StoreError> {
        self.behind()?;
        self.events.push("local_versions".into());
        Ok(ids
            .iter()
            .map(|id| {
                self.store.rows.get(id).map(|r| LocalVersion {
                    updated_at: r.updated_at.clone(),
                    source: r.source,
                })
            })
            .collect())
    }

    fn registry_ids(&mut self, after: Option<&str>, limit: u32) -> Result<Vec<String>, StoreError> {
        self.behind()?;
        Ok(self
            .store
            .rows
            .iter()
            .filter(|(id, r)| r.source == Source::Registry && after.is_none_or(|a| id.as_str() > a))
            .take(limit as usize)
            .map(|(id, _)| id.clone())
            .collect())
    }

    fn registry_rows(&mut self, ids: &[String]) -> Result<Vec<Option<RegistryRow>>, StoreError> {
        self.behind()?;
        self.events.push(format!("registry_rows {}", ids.len()));
        Ok(ids
            .iter()
            .map(|id| {
                let r = self
                    .store
                    .rows
                    .get(id)
                    .filter(|r| r.source == Source::Registry)?;
                Some(RegistryRow {
                    id: id.clone(),
                    trust_tier: r
                        .skill
                        .as_ref()
                        .map_or(TrustTier::Unknown, |s| s.trust_tier),
                    scored: r.skill.as_ref().is_some_and(|s| s.quality_score.is_some()),
                    categories: r
                        .skill
                        .as_ref()
                        .map_or(Vec::new(), |s| s.categories.clone()),
                })
            })
            .collect())
    }

    fn begin_run(&mut self, mode: SyncMode) -> Result<u64, StoreError> {
        if let Some(open) = self.store.open_run {
            return Err(StoreError::RunOpen(format!("run {open} is still open")));
        }
        self.store.runs.push((mode, None));
        let id = self.store.runs.len() as u64;
        self.store.open_run = Some(id);
        Ok(id)
    }

    fn apply_page(&mut self, run: u64, page: Page) -> Result<(), StoreError> {
        self.behind()?;
        assert_eq!(self.store.open_run, Some(run), "apply outside the open run");
        self.events.push("apply".into());
        self.applies += 1;
        if self.fail_page_behind == Some(self.applies) {
            self.failure_behind = Some(StoreError::NoSpace);
            return Ok(());
        }
        assert!(page.upserts.len() <= STORE_PAGE_ROWS.max(FEED_MAX_LIMIT as usize));
        self.store.pages.push((
            page.upserts.len(),
            page.removals.len(),
            page.checkpoint.clone(),
        ));
        for id in &page.removals {
            if self
                .store
                .rows
                .get(id)
                .is_some_and(|r| r.source == Source::Registry)
            {
                self.store.rows.remove(id);
            }
        }
        for skill in page.upserts {
            assert!(protocol::is_normalized(&skill.updated_at));
            if self
                .store
                .rows
                .get(&skill.id)
                .is_none_or(|r| r.source == Source::Registry)
            {
                self.store.rows.insert(
                    skill.id.clone(),
                    Row {
                        updated_at: skill.updated_at.clone(),
                        source: Source::Registry,
                        skill: Some(skill),
                    },
                );
            }
        }
        let cp = page.checkpoint;
        self.store.mode = Some(cp.mode);
        self.store.cursor = cp.cursor;
        self.store.etag = cp.etag;
        self.store.resync_pending = cp.resync_pending;
        Ok(())
    }

    fn finish_run(&mut self, run: u64, outcome: RunOutcome) -> Result<(), StoreError> {
        self.behind()?;
        assert_eq!(self.store.open_run, Some(run));
        self.store.open_run = None;
        if outcome.status == RunStatus::Success {
            if outcome.last_sync_at.is_some() {
                self.store.last_sync_at.clone_from(&outcome.last_sync_at);
            }
        } else {
            assert!(outcome.last_sync_at.is_none());
            assert!(outcome.error.is_some());
        }
        self.store.runs[run as usize - 1].1 = Some(outcome);
        Ok(())
    }

    fn log(&mut self, _: Level, message: &str) {
        self.logs.push(message.into());
    }

    fn progress(&mut self, report: Progress) -> Directive {
        self.progress.push(report);
        match self.stop_after_pages {
            Some(n) if report.pages >= n && report.waiting_ms == 0 => Directive::Stop,
            _ => Directive::Proceed,
        }
    }

    fn sleep(&mut self, ms: u64) -> Directive {
        self.slept.push(ms);
        Directive::Proceed
    }

    fn random(&mut self) -> u64 {
        0x5eed
    }
}

/// Options of a differential sync of the fake registry, 100 skills a page.
pub fn options() -> SyncOptions {
    SyncOptions {
        registry: BASE.into(),
        force: false,
        dry_run: false,
        page_size: 100,
        mode: None,
        now_ms: 0,
        retry_budget_ms: 10_000,
    }
}
