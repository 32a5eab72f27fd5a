//! Deterministic skill catalogues: the data the test registry serves.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The eight fixed search words of the upstream TypeScript client. A skill
/// containing none of them (case-insensitively, as substrings of name,
/// description, tags or author) is never seen by that client.
pub const UPSTREAM_SEARCH_WORDS: [&str; 8] =
    ["git", "code", "dev", "test", "npm", "api", "cli", "doc"];

/// Unix milliseconds of 2026-01-01T00:00:00Z, the `created_at` of skill 0.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// A skill's trust tier: the five of the OpenAPI enum, which the search API
/// can filter on, and the ones the live registry also serves, which it
/// cannot (`experimental` appears in `/stats`; `unknown` on old rows;
/// `preview` stands for a tier a registry adds later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustTier {
    /// `official`
    Official,
    /// `verified`
    Verified,
    /// `curated`
    Curated,
    /// `community`
    Community,
    /// `unverified`
    Unverified,
    /// `experimental`: live, but not in the OpenAPI enum.
    Experimental,
    /// `unknown`: not in the OpenAPI enum.
    Unknown,
    /// `preview`: a tier added after the OpenAPI file was written.
    Preview,
}

impl TrustTier {
    /// The tiers `trust_tier=` accepts, in the order of the OpenAPI enum.
    pub const FILTERABLE: [TrustTier; 5] = [
        TrustTier::Official,
        TrustTier::Verified,
        TrustTier::Curated,
        TrustTier::Community,
        TrustTier::Unverified,
    ];

    /// Every tier a skill can have.
    pub const ALL: [TrustTier; 8] = [
        TrustTier::Official,
        TrustTier::Verified,
        TrustTier::Curated,
        TrustTier::Community,
        TrustTier::Unverified,
        TrustTier::Experimental,
        TrustTier::Unknown,
        TrustTier::Preview,
    ];

    /// The wire value, e.g. `"community"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustTier::Official => "official",
            TrustTier::Verified => "verified",
            TrustTier::Curated => "curated",
            TrustTier::Community => "community",
            TrustTier::Unverified => "unverified",
            TrustTier::Experimental => "experimental",
            TrustTier::Unknown => "unknown",
            TrustTier::Preview => "preview",
        }
    }

    /// Parses a wire value; exact match only.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the search API's `trust_tier=` accepts this tier.
    pub fn is_filterable(self) -> bool {
        Self::FILTERABLE.contains(&self)
    }
}

/// Relative weights of the tiers in a generated catalogue, e.g.
/// `verified=1,community=6,experimental=3`. The default is the five
/// filterable tiers in equal shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierMix(Vec<(TrustTier, u32)>);

impl Default for TierMix {
    fn default() -> Self {
        TierMix(TrustTier::FILTERABLE.map(|t| (t, 1)).to_vec())
    }
}

impl TierMix {
    /// Parses `tier=weight,...`.
    pub fn parse(s: &str) -> Result<TierMix, String> {
        let mut mix = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (tier, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not tier=weight"))?;
            let tier = TrustTier::parse(tier.trim())
                .ok_or_else(|| format!("unknown tier {:?}", tier.trim()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight is not a whole number"))?;
            mix.push((tier, weight));
        }
        if mix.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("a tier mix needs a positive weight".into());
        }
        Ok(TierMix(mix))
    }

    /// The tier for hash `h`: weights in order, as shares of their sum.
    fn pick(&self, h: u64) -> TrustTier {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut at = h % total;
        for (tier, weight) in &self.0 {
            if at < u64::from(*weight) {
                return *tier;
            }
            at -= u64::from(*weight);
        }
        unreachable!("h % total falls within the weights")
    }
}

/// The category enum of the OpenAPI file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// `Development`
    Development,
    /// `Testing`
    Testing,
    /// `DevOps`
    DevOps,
    /// `Documentation`
    Documentation,
    /// `Productivity`
    Productivity,
    /// `Security`
    Security,
}

impl Category {
    /// All categories, in the order of the OpenAPI enum.
    pub const ALL: [Category; 6] = [
        Category::Development,
        Category::Testing,
        Category::DevOps,
        Category::Documentation,
        Category::Productivity,
        Category::Security,
    ];

    /// The wire value, e.g. `"DevOps"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Development => "Development",
            Category::Testing => "Testing",
            Category::DevOps => "DevOps",
            Category::Documentation => "Documentation",
            Category::Productivity => "Productivity",
            Category::Security => "Security",
        }
    }

    /// Parses a wire value; exact match only, as the registry validates.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One skill as the registry stores it. Timestamps are Unix milliseconds; the
/// wire form is RFC 3339 with milliseconds (`2026-01-01T00:00:00.000Z`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// UUID-formatted id.
    pub id: String,
    /// Unique name, `{adjective}-{noun}-{i}` for generated skills.
    pub name: String,
    /// Free text; sometimes null.
    pub description: Option<String>,
    /// Author handle; sometimes null.
    pub author: Option<String>,
    /// `https://github.com/{author}/{name}`; sometimes null.
    pub repo_url: Option<String>,
    /// 0..=1 with two decimals; null for about 5 % of skills.
    pub quality_score: Option<f64>,
    /// The tier, sent as `trust_tier` and matched by the filter (when the
    /// filter accepts it).
    pub trust_tier: TrustTier,
    /// One to four lowercase words.
    pub tags: Vec<String>,
    /// Zero to two categories.
    pub categories: Vec<Category>,
    /// GitHub stars; sometimes null.
    pub stars: Option<u32>,
    /// SPDX licence id; sometimes null.
    pub license: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl Skill {
    /// `created_at` as sent on the wire.
    pub fn created_at(&self) -> String {
        format_rfc3339_ms(self.created_at_ms)
    }

    /// `updated_at` as sent on the wire.
    pub fn updated_at(&self) -> String {
        format_rfc3339_ms(self.updated_at_ms)
    }

    /// Whether one of [`UPSTREAM_SEARCH_WORDS`] occurs in the searchable fields,
    /// i.e. whether the upstream client's fixed queries can find this skill.
    pub fn reachable_by_upstream_words(&self) -> bool {
        let fields = std::iter::once(self.name.as_str())
            .chain(self.description.as_deref())
            .chain(self.author.as_deref())
            .chain(self.tags.iter().map(String::as_str));
        let mut hay = String::new();
        for f in fields {
            hay.push_str(&f.to_lowercase());
            // A separator keeps words of adjacent fields from forming a match.
            hay.push('\n');
        }
        UPSTREAM_SEARCH_WORDS.iter().any(|w| hay.contains(w))
    }

    /// Quality as an integer percentage, the scale `min_score` compares with.
    pub(crate) fn quality_pct(&self) -> Option<u8> {
        self.quality_score
            .map(|q| (q * 100.0).round().clamp(0.0, 100.0) as u8)
    }
}

/// A deterministic set of skills: the same `(n, seed)` always yields the same
/// skills, so out-of-process tests can predict what a registry serves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalogue {
    seed: u64,
    next_index: u64,
    mix: TierMix,
    skills: Vec<Skill>,
}

impl Catalogue {
    /// Generates skills `0..n` for `seed`, `created_at` = 2026-01-01 + `i` seconds.
    pub fn generate(n: usize, seed: u64) -> Self {
        Self::generate_mixed(n, seed, TierMix::default())
    }

    /// As [`Catalogue::generate`], with tiers in the shares of `mix`; skills
    /// inserted later follow the same mix.
    pub fn generate_mixed(n: usize, seed: u64, mix: TierMix) -> Self {
        let skills = (0..n as u64)
            .map(|i| Self::skill_with(seed, i, EPOCH_MS + i as i64 * 1000, &mix))
            .collect();
        Catalogue {
            seed,
            next_index: n as u64,
            mix,
            skills,
        }
    }

    /// A catalogue of the given skills; skills inserted later are generated
    /// from `seed` starting at index `skills.len()`.
    pub fn from_skills(seed: u64, skills: Vec<Skill>) -> Self {
        Catalogue {
            seed,
            next_index: skills.len() as u64,
            mix: TierMix::default(),
            skills,
        }
    }

    /// Skill number `i` of `seed`, created (and last updated) at `created_at_ms`.
    pub fn skill_at(seed: u64, i: u64, created_at_ms: i64) -> Skill {
        Self::skill_with(seed, i, created_at_ms, &TierMix::default())
    }

    /// Skill number `i` of `seed` with its tier drawn from `mix`.
    pub fn skill_with(seed: u64, i: u64, created_at_ms: i64, mix: &TierMix) -> Skill {
        let h = |salt: u64| hash3(seed, i, salt);
        let adjective = pick(ADJECTIVES, h(10));
        let noun = pick(NOUNS, h(11));
        let name = format!("{adjective}-{noun}-{i}");
        let description = (h(20) % 10 != 0).then(|| {
            format!(
                "{} {} with a {} touch.",
                pick(VERBS, h(21)),
                pick(OBJECTS, h(22)),
                pick(TOUCHES, h(23))
            )
        });
        let author = (h(30) % 12 != 0).then(|| pick(AUTHORS, h(31)).to_string());
        let repo_url = match &author {
            Some(a) if h(32) % 10 != 0 => Some(format!("https://github.com/{a}/{name}")),
            _ => None,
        };
        let quality_score = (h(40) % 20 != 0).then(|| (h(41) % 101) as f64 / 100.0);
        let trust_tier = mix.pick(h(50));
        let mut tags: Vec<String> = Vec::new();
        for k in 0..1 + h(60) % 4 {
            let tag = pick(TAGS, h(61 + k));
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
        let mut categories = Vec::new();
        for k in 0..h(70) % 3 {
            let c = Category::ALL[(h(71 + k) % 6) as usize];
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
        let stars = (h(80) % 33 != 0).then(|| (h(81) % 5000) as u32);
        let license = match h(90) % 4 {
            0 => None,
            1 => Some("Apache-2.0".to_string()),
            _ => Some("MIT".to_string()),
        };
        Skill {
            id: uuid_from(h(1), h(2)),
            name,
            description,
            author,
            repo_url,
            quality_score,
            trust_tier,
            tags,
            categories,
            stars,
            license,
            created_at_ms,
            updated_at_ms: created_at_ms,
        }
    }

    pub(crate) fn set_next_index(&mut self, next: u64) {
        self.next_index = next;
    }

    /// The seed the skills were generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The tier mix inserted skills follow.
    pub fn mix(&self) -> &TierMix {
        &self.mix
    }

    pub(crate) fn set_mix(&mut self, mix: TierMix) {
        self.mix = mix;
    }

    /// The generation index the next inserted skill will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// All skills, in generation order.
    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    /// Consumes the catalogue, returning its skills.
    pub fn into_skills(self) -> Vec<Skill> {
        self.skills
    }

    /// Number of skills.
    pub fn len(&self) -> usize {
        self.skills.len()
    }

    /// Whether there are no skills.
    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// The skill with this id, if any (linear scan; for tests).
    pub fn get(&self, id: &str) -> Option<&Skill> {
        self.skills.iter().find(|s| s.id == id)
    }

    /// Ids of the skills the upstream client's eight search words cannot find
    /// (see [`UPSTREAM_SEARCH_WORDS`]); a correct sync still gets them.
    pub fn unreachable_by_upstream_words(&self) -> Vec<String> {
        self.skills
            .iter()
            .filter(|s| !s.reachable_by_upstream_words())
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// SplitMix64 finaliser: a cheap, well-mixed hash (no rand crate needed).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash3(seed: u64, i: u64, salt: u64) -> u64 {
    mix(mix(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)) ^ i)
}

/// A version-4-shaped UUID string from 128 hashed bits.
pub(crate) fn uuid_from(a: u64, b: u64) -> String {
    let mut s = String::with_capacity(36);
    let _ = write!(
        s,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        0x4000 | (a & 0x0fff),
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    );
    s
}

fn pick(list: &'static [&'static str], h: u64) -> &'static str {
    list[(h % list.len() as u64) as usize]
}

// Word lists. Roughly a quarter of each list contains one of the upstream
// search words; the rest is chosen to contain none (beware of "rapid", "latest",
// "client", "encode", "digital" ...), so that several percent of the skills are
// reachable only by a real enumeration. `catalogue::tests` checks the share.
const ADJECTIVES: &[&str] = &[
    "amber",
    "brisk",
    "calm",
    "crisp",
    "eager",
    "fluent",
    "gentle",
    "hazy",
    "jolly",
    "keen",
    "lunar",
    "mellow",
    "nimble",
    "polar",
    "quiet",
    "rustic",
    "silent",
    "swift",
    "tidy",
    "vivid",
    "witty",
    "zesty",
    "bold",
    "sunny",
    "git-aware",
    "code-first",
    "dev-ready",
    "test-driven",
    "npm-native",
    "api-first",
    "cli-savvy",
    "doc-friendly",
];
const NOUNS: &[&str] = &[
    "falcon",
    "harbor",
    "lantern",
    "meadow",
    "orbit",
    "pebble",
    "quill",
    "river",
    "saddle",
    "tundra",
    "walnut",
    "willow",
    "beacon",
    "canyon",
    "ember",
    "glacier",
    "island",
    "juniper",
    "kettle",
    "mosaic",
    "nebula",
    "prism",
    "summit",
    "voyager",
    "githooks",
    "codegen",
    "devtools",
    "tester",
    "npm-publisher",
    "api-mocker",
    "cli-wizard",
    "docs-writer",
];
const VERBS: &[&str] = &[
    "Organises",
    "Summarises",
    "Translates",
    "Schedules",
    "Tracks",
    "Polishes",
    "Sorts",
    "Drafts",
    "Reviews",
    "Plans",
    "Tests",
    "Documents",
];
const OBJECTS: &[&str] = &[
    "meeting notes",
    "travel plans",
    "recipes",
    "spreadsheets",
    "invoices",
    "poems",
    "photo albums",
    "budgets",
    "essays",
    "calendars",
    "reading lists",
    "workout logs",
    "git branches",
    "source code",
    "npm packages",
    "REST APIs",
    "CLI flags",
    "dev servers",
];
const TOUCHES: &[&str] = &[
    "light", "careful", "friendly", "thorough", "playful", "precise", "coder's", "tester's",
];
const TAGS: &[&str] = &[
    "writing",
    "travel",
    "finance",
    "music",
    "health",
    "cooking",
    "design",
    "research",
    "planning",
    "photos",
    "notes",
    "language",
    "markdown",
    "typescript",
    "git",
    "testing",
    "api",
    "docs",
];
const AUTHORS: &[&str] = &[
    "anthropic",
    "acme",
    "lumen-labs",
    "northwind",
    "skillsmith",
    "community",
    "orchard",
    "devtools-inc",
    "gitfans",
    "codecraft",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_ids_unique() {
        let a = Catalogue::generate(2000, 7);
        assert_eq!(a, Catalogue::generate(2000, 7));
        assert_ne!(a.skills()[0].id, Catalogue::generate(1, 8).skills()[0].id);
        let ids: std::collections::HashSet<_> = a.skills().iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), 2000);
        let s = &a.skills()[3];
        assert_eq!(s.id.len(), 36);
        assert_eq!(&s.id[14..15], "4");
        assert_eq!(s.created_at(), "2026-01-01T00:00:03.000Z");
        assert_eq!(s.updated_at_ms, s.created_at_ms);
        assert!(s.name.ends_with("-3"));
    }

    #[test]
    fn fields_are_spread() {
        let c = Catalogue::generate(10_000, 1);
        let n = c.len() as f64;
        let share =
            |f: &dyn Fn(&Skill) -> bool| c.skills().iter().filter(|s| f(s)).count() as f64 / n;
        let null_q = share(&|s| s.quality_score.is_none());
        assert!((0.03..0.08).contains(&null_q), "null quality {null_q}");
        assert!(share(&|s| s.description.is_none()) > 0.05);
        assert!(share(&|s| s.author.is_none()) > 0.05);
        assert!(share(&|s| s.repo_url.is_none()) > 0.1);
        for t in TrustTier::FILTERABLE {
            assert!(share(&|s| s.trust_tier == t) > 0.15);
        }
        assert!(share(&|s| s.categories.is_empty()) > 0.2);
        assert!(c.skills().iter().all(|s| (1..=4).contains(&s.tags.len())));
        assert!(
            c.skills()
                .iter()
                .all(|s| s.quality_score.is_none_or(|q| (0.0..=1.0).contains(&q)))
        );
    }

    #[test]
    fn a_tier_mix_sets_the_shares() {
        let mix = TierMix::parse("verified=1, community=6,experimental=3").unwrap();
        let c = Catalogue::generate_mixed(10_000, 2, mix);
        let n = |t| c.skills().iter().filter(|s| s.trust_tier == t).count();
        assert!((800..1200).contains(&n(TrustTier::Verified)));
        assert!((5700..6300).contains(&n(TrustTier::Community)));
        assert!((2700..3300).contains(&n(TrustTier::Experimental)));
        assert_eq!(n(TrustTier::Official), 0);
        assert!(TierMix::parse("gold=1").is_err());
        assert!(TierMix::parse("verified=0").is_err());
        // The default mix draws what generation always drew.
        assert_eq!(
            Catalogue::generate(50, 9).skills(),
            Catalogue::generate_mixed(50, 9, TierMix::default()).skills()
        );
    }

    #[test]
    fn many_skills_are_unreachable_by_upstream_words() {
        let c = Catalogue::generate(10_000, 3);
        let unreachable = c.unreachable_by_upstream_words();
        let share = unreachable.len() as f64 / c.len() as f64;
        assert!(share >= 0.03, "only {share} unreachable");
        // And the check really is a substring check over all four fields.
        for id in &unreachable {
            let s = c.get(id).unwrap();
            let text = format!(
                "{} {} {} {}",
                s.name,
                s.description.as_deref().unwrap_or(""),
                s.author.as_deref().unwrap_or(""),
                s.tags.join(" ")
            )
            .to_lowercase();
            assert!(
                UPSTREAM_SEARCH_WORDS.iter().all(|w| !text.contains(w)),
                "{text}"
            );
        }
    }
}
