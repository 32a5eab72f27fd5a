//! The registry's mutable state: live skills, their pre-rendered JSON, the
//! change index behind the feed, tombstones and the registry clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::catalogue::{Catalogue, Skill, TierMix, TrustTier, format_rfc3339_ms, mix};

/// Position in the change index: `(updated_at_ms, id)`, the feed's sort key.
pub(crate) type Key = (i64, String);

/// What the change index holds for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The skill in slot `.0`, in its latest state.
    Live(u32),
    /// A tombstone; the key carries id and deletion time.
    Deleted,
}

/// A live skill with everything a request needs precomputed, so that serving
/// a page is concatenation only.
pub(crate) struct Rec {
    pub skill: Skill,
    /// The record's JSON without the closing brace: `rank` varies per
    /// response and is appended.
    json: String,
    /// Quality as a percentage, for `min_score` and the sort order.
    pub pct: Option<u8>,
    /// Lowercased searchable fields.
    pub name_lc: String,
    pub desc_lc: String,
    pub author_lc: String,
    pub tags_lc: String,
}

#[derive(Serialize)]
struct Wire<'a> {
    id: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    author: Option<&'a str>,
    repo_url: Option<&'a str>,
    quality_score: Option<f64>,
    tags: &'a [String],
    categories: Vec<&'static str>,
    stars: Option<u32>,
    created_at: String,
    updated_at: String,
    license: Option<&'a str>,
    trust_tier: &'static str,
    content_hash: String,
    // Fields the OpenAPI Skill schema does not list: clients must ignore them.
    installable: bool,
    quarantined: bool,
    _links: Links,
}

#[derive(Serialize)]
struct Links {
    #[serde(rename = "self")]
    self_: String,
}

impl Rec {
    pub fn new(skill: Skill) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in skill
            .name
            .bytes()
            .chain(skill.description.as_deref().unwrap_or("").bytes())
        {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        let wire = Wire {
            id: &skill.id,
            name: &skill.name,
            description: skill.description.as_deref(),
            author: skill.author.as_deref(),
            repo_url: skill.repo_url.as_deref(),
            quality_score: skill.quality_score,
            tags: &skill.tags,
            categories: skill.categories.iter().map(|c| c.as_str()).collect(),
            stars: skill.stars,
            created_at: skill.created_at(),
            updated_at: skill.updated_at(),
            license: skill.license.as_deref(),
            trust_tier: skill.trust_tier.as_str(),
            content_hash: format!(
                "{:016x}{:016x}{:016x}{:016x}",
                mix(h),
                mix(h ^ 1),
                mix(h ^ 2),
                mix(h ^ 3)
            ),
            installable: true,
            quarantined: false,
            _links: Links {
                self_: format!("{}/skills-get?id={}", crate::reply::API_PREFIX, skill.id),
            },
        };
        // `rank` is appended per response: drop the closing brace.
        let mut json = serde_json::to_string(&wire).expect("skill serialises");
        json.pop();
        // serde grows the buffer by doubling; 100k records make the slack count.
        json.shrink_to_fit();
        Rec {
            pct: skill.quality_pct(),
            name_lc: skill.name.to_lowercase(),
            desc_lc: skill.description.as_deref().unwrap_or("").to_lowercase(),
            author_lc: skill.author.as_deref().unwrap_or("").to_lowercase(),
            tags_lc: skill.tags.join("\n").to_lowercase(),
            json,
            skill,
        }
    }
}

/// The live registry.
pub(crate) struct Store {
    seed: u64,
    next_index: u64,
    /// Slot per skill ever created; `None` once deleted. Slots never move, so
    /// cached search orders can hold slot numbers.
    recs: Vec<Option<Rec>>,
    by_id: HashMap<String, u32>,
    /// `name`, `author/name` and lowercased `name` lookups for `/skills-get`.
    by_name: HashMap<String, u32>,
    /// Every live skill and tombstone, keyed by `(updated_at, id)`.
    changes: BTreeMap<Key, Change>,
    /// Highest key discarded by `expire_tombstones`; older cursors get 410.
    discard_point: Option<Key>,
    /// How many times tombstones were discarded (see `feed::encode_cursor`).
    discard_generation: u64,
    /// Highest timestamp ever issued; mutations go strictly above it.
    clock_ms: i64,
    /// Bumped on insert/delete: filter-only orders depend on membership only
    /// (updates change neither quality, tier nor categories).
    pub membership_gen: u64,
    /// Bumped on every mutation: query matches depend on descriptions.
    pub content_gen: u64,
    mutations: u64,
    mix: TierMix,
    /// Stale copies: slots that `/skills-search` lists beside the real skill
    /// of the same id (an older `updated_at`, another score), as a search
    /// index lagging behind its table does. Id -> slot.
    stale: HashMap<String, u32>,
    stale_slots: HashSet<u32>,
}

impl Store {
    pub fn new(catalogue: Catalogue) -> Self {
        let seed = catalogue.seed();
        let next_index = catalogue.next_index();
        let tier_mix = catalogue.mix().clone();
        let mut store = Store {
            seed,
            next_index,
            recs: Vec::with_capacity(catalogue.len()),
            by_id: HashMap::with_capacity(catalogue.len()),
            by_name: HashMap::with_capacity(catalogue.len() * 3),
            changes: BTreeMap::new(),
            discard_point: None,
            discard_generation: 0,
            clock_ms: 0,
            membership_gen: 0,
            content_gen: 0,
            mutations: 0,
            mix: tier_mix,
            stale: HashMap::new(),
            stale_slots: HashSet::new(),
        };
        for skill in catalogue.into_skills() {
            store.add(skill);
        }
        store
    }

    fn add(&mut self, skill: Skill) -> u32 {
        let slot = self.recs.len() as u32;
        self.clock_ms = self.clock_ms.max(skill.updated_at_ms);
        self.by_id.insert(skill.id.clone(), slot);
        self.by_name.insert(skill.name.clone(), slot);
        self.by_name
            .entry(skill.name.to_lowercase())
            .or_insert(slot);
        if let Some(a) = &skill.author {
            self.by_name.insert(format!("{a}/{}", skill.name), slot);
        }
        self.changes
            .insert((skill.updated_at_ms, skill.id.clone()), Change::Live(slot));
        self.recs.push(Some(Rec::new(skill)));
        slot
    }

    fn unindex_names(&mut self, skill: &Skill, slot: u32) {
        let mut keys = vec![skill.name.clone(), skill.name.to_lowercase()];
        if let Some(a) = &skill.author {
            keys.push(format!("{a}/{}", skill.name));
        }
        for k in keys {
            if self.by_name.get(&k) == Some(&slot) {
                self.by_name.remove(&k);
            }
        }
    }

    /// A registry time strictly above every existing timestamp, and not
    /// behind the registry clock `now_ms`.
    fn next_time(&mut self, now_ms: i64) -> i64 {
        self.clock_ms = now_ms.max(self.clock_ms + 1);
        self.clock_ms
    }

    /// Highest timestamp issued so far (for `server_time`).
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    pub fn rec(&self, slot: u32) -> &Rec {
        self.recs[slot as usize]
            .as_ref()
            .expect("cached slots are live")
    }

    /// Slots of the live skills, in generation order.
    pub fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.listed_slots()
            .filter(|s| !self.stale_slots.contains(s))
    }

    /// Slots `/skills-search` lists: the live skills and their stale copies.
    pub fn listed_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(i, _)| i as u32)
    }

    /// Adds a stale copy of every `every`-th live skill (by position), one
    /// day older and with another score, so that search listings serve two
    /// copies of it. Returns their ids.
    pub fn add_stale_copies(&mut self, every: usize) -> Vec<String> {
        let picked: Vec<u32> = self.live_slots().step_by(every.max(1)).collect();
        let mut ids = Vec::with_capacity(picked.len());
        for slot in picked {
            let mut copy = self.rec(slot).skill.clone();
            if self.stale.contains_key(&copy.id) {
                continue;
            }
            copy.updated_at_ms -= 86_400_000;
            copy.quality_score = Some(match copy.quality_score {
                Some(q) => ((q * 100.0 + 50.0) % 101.0).round() / 100.0,
                None => 0.5,
            });
            copy.description = Some("A stale copy of this skill.".into());
            let stale_slot = self.recs.len() as u32;
            ids.push(copy.id.clone());
            self.stale.insert(copy.id.clone(), stale_slot);
            self.stale_slots.insert(stale_slot);
            self.recs.push(Some(Rec::new(copy)));
        }
        self.membership_gen += 1;
        self.content_gen += 1;
        ids
    }

    pub fn live_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn tombstone_count(&self) -> usize {
        self.changes.len() - self.by_id.len()
    }

    /// `count` live slots spread evenly over the catalogue, starting at an
    /// offset that moves with every call so repeated calls hit other skills.
    fn pick(&mut self, count: usize) -> Vec<u32> {
        let live: Vec<u32> = self.live_slots().collect();
        self.mutations += 1;
        if count >= live.len() {
            return live;
        }
        let step = live.len() / count.max(1);
        let start = (mix(self.seed ^ self.mutations) % step as u64) as usize;
        (0..count).map(|k| live[start + k * step]).collect()
    }

    fn slots_of(&self, ids: &[impl AsRef<str>]) -> Vec<u32> {
        ids.iter()
            .filter_map(|id| self.by_id.get(id.as_ref()).copied())
            .collect()
    }

    pub fn update(&mut self, count: usize, now_ms: i64) -> Vec<String> {
        let slots = self.pick(count);
        self.update_slots(&slots, now_ms)
    }

    pub fn update_ids(&mut self, ids: &[impl AsRef<str>], now_ms: i64) -> Vec<String> {
        let slots = self.slots_of(ids);
        self.update_slots(&slots, now_ms)
    }

    /// One timestamp for the whole batch: ties on `updated_at` exercise the
    /// feed's `id` tie-break.
    fn update_slots(&mut self, slots: &[u32], now_ms: i64) -> Vec<String> {
        if slots.is_empty() {
            return Vec::new();
        }
        let t = self.next_time(now_ms);
        let mut ids = Vec::with_capacity(slots.len());
        for &slot in slots {
            let rec = self.recs[slot as usize].take().expect("live slot");
            let mut skill = rec.skill;
            self.changes
                .remove(&(skill.updated_at_ms, skill.id.clone()));
            let base = skill
                .description
                .as_deref()
                .and_then(|d| d.split(" (revision ").next())
                .unwrap_or("Revised");
            skill.description = Some(format!("{base} (revision {t})"));
            skill.updated_at_ms = t;
            self.changes
                .insert((t, skill.id.clone()), Change::Live(slot));
            ids.push(skill.id.clone());
            self.recs[slot as usize] = Some(Rec::new(skill));
        }
        self.content_gen += 1;
        ids
    }

    pub fn delete(&mut self, count: usize, now_ms: i64) -> Vec<String> {
        let slots = self.pick(count);
        self.delete_slots(&slots, now_ms)
    }

    pub fn delete_ids(&mut self, ids: &[impl AsRef<str>], now_ms: i64) -> Vec<String> {
        let slots = self.slots_of(ids);
        self.delete_slots(&slots, now_ms)
    }

    fn delete_slots(&mut self, slots: &[u32], now_ms: i64) -> Vec<String> {
        if slots.is_empty() {
            return Vec::new();
        }
        let t = self.next_time(now_ms);
        let mut ids = Vec::with_capacity(slots.len());
        for &slot in slots {
            let skill = self.recs[slot as usize].take().expect("live slot").skill;
            self.changes
                .remove(&(skill.updated_at_ms, skill.id.clone()));
            self.by_id.remove(&skill.id);
            // A deleted skill's stale copy goes with it: listing it would be
            // a registry serving what it deleted.
            if let Some(stale) = self.stale.remove(&skill.id) {
                self.recs[stale as usize] = None;
                self.stale_slots.remove(&stale);
            }
            self.unindex_names(&skill, slot);
            self.changes.insert((t, skill.id.clone()), Change::Deleted);
            ids.push(skill.id);
        }
        self.membership_gen += 1;
        self.content_gen += 1;
        ids
    }

    pub fn insert(&mut self, count: usize, now_ms: i64) -> Vec<String> {
        if count == 0 {
            return Vec::new();
        }
        let t = self.next_time(now_ms);
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let skill = Catalogue::skill_with(self.seed, self.next_index, t, &self.mix);
            self.next_index += 1;
            ids.push(skill.id.clone());
            self.add(skill);
        }
        self.membership_gen += 1;
        self.content_gen += 1;
        ids
    }

    /// Discards all tombstones. Every cursor below the highest key the index
    /// held is refused from now on: it may have missed a discarded deletion.
    pub fn expire_tombstones(&mut self) {
        if let Some((k, _)) = self.changes.last_key_value() {
            let k = k.clone();
            if self.discard_point.as_ref().is_none_or(|d| *d < k) {
                self.discard_point = Some(k);
            }
        }
        self.changes.retain(|_, c| *c != Change::Deleted);
        self.discard_generation += 1;
    }

    pub fn discard_generation(&self) -> u64 {
        self.discard_generation
    }

    pub fn discard_point(&self) -> Option<&Key> {
        self.discard_point.as_ref()
    }

    pub fn changes(&self) -> &BTreeMap<Key, Change> {
        &self.changes
    }

    /// Live skills per tier, for `/stats`.
    pub fn count_by_tier(&self) -> BTreeMap<TrustTier, usize> {
        let mut counts = BTreeMap::new();
        for slot in self.live_slots() {
            *counts.entry(self.rec(slot).skill.trust_tier).or_default() += 1;
        }
        counts
    }

    /// Live skills by quality: high (>= 0.7), medium (>= 0.4), low, unscored.
    pub fn count_by_quality(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for slot in self.live_slots() {
            let i = match self.rec(slot).skill.quality_score {
                Some(q) if q >= 0.7 => 0,
                Some(q) if q >= 0.4 => 1,
                Some(_) => 2,
                None => 3,
            };
            counts[i] += 1;
        }
        counts
    }

    /// Appends the JSON of a live skill, with `rank` when given.
    pub fn render(&self, slot: u32, rank: Option<f64>, out: &mut String) {
        let rec = self.rec(slot);
        out.push_str(&rec.json);
        if let Some(r) = rank {
            let _ = write!(out, ",\"rank\":{r}");
        }
        out.push('}');
    }

    /// Appends a feed entry for a change-index entry.
    pub fn render_change(&self, key: &Key, change: Change, out: &mut String) {
        match change {
            Change::Live(slot) => self.render(slot, None, out),
            Change::Deleted => {
                let _ = write!(
                    out,
                    "{{\"id\":\"{}\",\"updated_at\":\"{}\",\"deleted\":true}}",
                    key.1,
                    format_rfc3339_ms(key.0)
                );
            }
        }
    }

    /// `/skills-get` resolution: UUID, then `author/name`, then name
    /// (exact, then case-insensitive).
    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.by_id
            .get(id)
            .or_else(|| self.by_name.get(id))
            .or_else(|| self.by_name.get(&id.to_lowercase()))
            .copied()
    }

    pub fn snapshot(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .live_slots()
            .map(|s| (self.rec(s).skill.id.clone(), self.rec(s).skill.updated_at()))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn skill_json(&self, id: &str) -> Option<String> {
        let slot = *self.by_id.get(id)?;
        let mut s = String::new();
        self.render(slot, None, &mut s);
        Some(s)
    }

    pub fn catalogue(&self) -> Catalogue {
        let mut c = Catalogue::from_skills(
            self.seed,
            self.live_slots()
                .map(|s| self.rec(s).skill.clone())
                .collect(),
        );
        // Keep insert numbering and tiers consistent with this registry.
        c.set_next_index(self.next_index);
        c.set_mix(self.mix.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Category;

    #[test]
    fn rendered_records_are_valid_json_with_every_field() {
        let mut skill = Catalogue::skill_at(5, 0, 1_767_225_600_000);
        skill.name = "quote\" back\\slash\ttab \u{1} ünï €".into();
        skill.description = None;
        skill.quality_score = Some(0.85);
        skill.categories = vec![Category::DevOps];
        let store = Store::new(Catalogue::from_skills(5, vec![skill.clone()]));
        let mut out = String::new();
        store.render(0, Some(0.5), &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["name"], skill.name.as_str());
        assert_eq!(v["description"], serde_json::Value::Null);
        assert_eq!(v["quality_score"], 0.85);
        assert_eq!(v["categories"], serde_json::json!(["DevOps"]));
        assert_eq!(v["created_at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["rank"], 0.5);
        assert_eq!(v["installable"], true);
        assert_eq!(v["trust_tier"], skill.trust_tier.as_str());
        assert_eq!(v["content_hash"].as_str().unwrap().len(), 64);
        for field in [
            "id",
            "author",
            "repo_url",
            "tags",
            "stars",
            "updated_at",
            "license",
            "_links",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
    }
}
