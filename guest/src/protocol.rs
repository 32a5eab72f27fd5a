//! Decoding of registry responses: `/health`, `/skills-search` and
//! `/skills-changes` bodies, error bodies, and the rate-limit and date headers.
//! Records are decoded leniently and one by one, so that a malformed record
//! costs a warning and never the page; a page whose envelope is broken is a
//! protocol error.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::{HttpResponse, Skill, TrustTier};
use crate::warnings::Warnings;

/// The body breaks the protocol for the whole page (not JSON, no `data` or
/// `meta`, wrong envelope types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// One decoded entry of a page: a skill in its latest state, or a deletion.
// Nearly every entry is an upsert, so boxing the skill would only add an
// allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Insert or replace.
    Upsert(Skill),
    /// The registry deleted the skill at `updated_at`.
    Deleted {
        /// Skill id.
        id: String,
        /// Deletion time, normalised.
        updated_at: String,
    },
}

impl Entry {
    /// The skill id.
    pub fn id(&self) -> &str {
        match self {
            Entry::Upsert(s) => &s.id,
            Entry::Deleted { id, .. } => id,
        }
    }

    /// The normalised `updated_at`.
    pub fn updated_at(&self) -> &str {
        match self {
            Entry::Upsert(s) => &s.updated_at,
            Entry::Deleted { updated_at, .. } => updated_at,
        }
    }
}

/// Records of one page that failed validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Malformed {
    /// How many were skipped.
    pub count: u64,
    /// Ids of skipped records that had a usable id. They still exist in the
    /// registry, so a prune must not remove them.
    pub ids: Vec<String>,
}

/// A decoded `/skills-search` page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Valid skills, in page order.
    pub skills: Vec<Skill>,
    /// Skipped records.
    pub malformed: Malformed,
    /// Number of elements in `data`, valid or not: the offset advance.
    pub raw_len: usize,
    /// `meta.total`.
    pub total: u64,
}

/// A decoded `/skills-changes` page.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// Valid entries, in page order.
    pub entries: Vec<Entry>,
    /// Skipped records.
    pub malformed: Malformed,
    /// Number of elements in `data`, valid or not.
    pub raw_len: usize,
    /// `meta.next_cursor`.
    pub next_cursor: Option<String>,
    /// `meta.has_more`.
    pub has_more: bool,
    /// `meta.server_time`, normalised; `None` when absent or unreadable (with a
    /// warning).
    pub server_time: Option<String>,
}

/// A decoded `/health` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `status`: healthy, degraded or unhealthy (or anything newer).
    pub status: Option<String>,
    /// `capabilities`; absent means none.
    pub capabilities: Vec<String>,
}

impl Health {
    /// Whether the registry offers `/skills-changes`.
    pub fn has_feed(&self) -> bool {
        self.capabilities.iter().any(|c| c == "skills-changes")
    }
}

/// Decodes a `/health` body (200 or 503).
pub fn decode_health(body: &[u8]) -> Result<Health, ProtocolError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json_error("/health", &e))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ProtocolError("/health body is not a JSON object".into()))?;
    let status = obj
        .get("status")
        .and_then(|s| s.as_str())
        .map(str::to_owned);
    let capabilities = obj
        .get("capabilities")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Health {
        status,
        capabilities,
    })
}

/// A body that did not decode, said in the protocol's terms rather than the
/// parser's (no "expected struct Envelope").
fn json_error(path: &str, e: &serde_json::Error) -> ProtocolError {
    use serde_json::error::Category;
    ProtocolError(match e.classify() {
        Category::Syntax | Category::Io => format!(
            "{path} answered with a body that is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
        Category::Eof => format!("{path} answered with JSON that ends early"),
        Category::Data => format!(
            "{path} answered with JSON of another shape than the API's (near line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

/// Whether a response is a web page rather than an API answer: what a
/// captive portal, a login wall or a wrong URL sends.
pub fn is_web_page(resp: &HttpResponse) -> bool {
    let html_type = resp
        .header("content-type")
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let starts_with_tag = resp
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<');
    html_type || starts_with_tag
}

/// The `data.id` of a `/skills-get` 200 body, if it has one.
pub fn decode_get_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("data")?.get("id")?.as_str().map(str::to_owned)
}

/// What `/stats` says about the catalogue's size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `data.skillCount`.
    pub skill_count: Option<u64>,
    /// `data.breakdown.byTier`, in the order sent; entries that are not
    /// non-negative integers are left out.
    pub by_tier: Option<Vec<(String, u64)>>,
}

/// Decodes a `/stats` 200 body. Only a body that is no JSON object at all is
/// an error: every field is optional.
pub fn decode_stats(body: &[u8]) -> Result<Stats, ProtocolError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ProtocolError("/stats did not answer with JSON".into()))?;
    let data = value
        .get("data")
        .and_then(|d| d.as_object())
        .ok_or_else(|| ProtocolError("/stats answered without a `data` object".into()))?;
    let by_tier = data
        .get("breakdown")
        .and_then(|b| b.get("byTier"))
        .and_then(|t| t.as_object())
        .map(|tiers| {
            tiers
                .iter()
                .filter_map(|(tier, n)| n.as_u64().map(|n| (tier.clone(), n)))
                .collect()
        });
    Ok(Stats {
        skill_count: data.get("skillCount").and_then(|n| n.as_u64()),
        by_tier,
    })
}

#[derive(Deserialize)]
struct Envelope<'a, M> {
    #[serde(borrow)]
    data: Vec<RawRecord<'a>>,
    meta: M,
}

#[derive(Deserialize)]
struct SearchMeta {
    total: u64,
}

#[derive(Deserialize)]
struct FeedMeta {
    #[serde(default)]
    next_cursor: Option<String>,
    has_more: bool,
    #[serde(default)]
    server_time: Option<String>,
}

/// Decodes a `/skills-search` 200 body.
pub fn decode_search_page(
    body: &[u8],
    warnings: &mut Warnings,
) -> Result<SearchPage, ProtocolError> {
    let env: Envelope<'_, SearchMeta> =
        serde_json::from_slice(body).map_err(|e| json_error("/skills-search", &e))?;
    let raw_len = env.data.len();
    let mut skills = Vec::with_capacity(raw_len);
    let mut malformed = Malformed::default();
    for (index, raw) in env.data.into_iter().enumerate() {
        // `deleted` has no meaning in search results, so it is not honoured
        // here: a tombstone there would be a registry bug we do not act on.
        match validate(raw, index, false, warnings) {
            Ok(Entry::Upsert(skill)) => skills.push(skill),
            Ok(Entry::Deleted { .. }) => unreachable!("tombstones are only decoded in feed pages"),
            Err(bad) => malformed.note(bad, warnings),
        }
    }
    Ok(SearchPage {
        skills,
        malformed,
        raw_len,
        total: env.meta.total,
    })
}

/// Decodes a `/skills-changes` 200 body.
pub fn decode_feed_page(body: &[u8], warnings: &mut Warnings) -> Result<FeedPage, ProtocolError> {
    let env: Envelope<'_, FeedMeta> =
        serde_json::from_slice(body).map_err(|e| json_error("/skills-changes", &e))?;
    let raw_len = env.data.len();
    let mut entries = Vec::with_capacity(raw_len);
    let mut malformed = Malformed::default();
    for (index, raw) in env.data.into_iter().enumerate() {
        match validate(raw, index, true, warnings) {
            Ok(entry) => entries.push(entry),
            Err(bad) => malformed.note(bad, warnings),
        }
    }
    let server_time = match env.meta.server_time {
        None => None,
        Some(t) => {
            let normalised = normalize_timestamp(&t);
            if normalised.is_none() {
                warnings.push(format!("unreadable meta.server_time {t:?}"));
            }
            normalised
        }
    };
    Ok(FeedPage {
        entries,
        malformed,
        raw_len,
        next_cursor: env.meta.next_cursor,
        has_more: env.meta.has_more,
        server_time,
    })
}

/// The `error` member of an error body, as text; `None` when the body is
/// not a JSON object with one.
pub fn error_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: serde_json::Value,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    match parsed.error {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The `X-RateLimit-*` headers of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// Requests left in this window.
    pub remaining: Option<u64>,
    /// When the window resets: Unix milliseconds on the registry's clock
    /// (see [`reset_ms`]).
    pub reset_ms: Option<i64>,
}

/// Reads the `X-RateLimit-*` headers; unreadable values count as absent.
pub fn rate_limit(resp: &HttpResponse) -> RateLimit {
    let num = |name| resp.header(name).and_then(|v| v.trim().parse::<u64>().ok());
    RateLimit {
        limit: num("x-ratelimit-limit"),
        remaining: num("x-ratelimit-remaining"),
        reset_ms: reset_ms(resp),
    }
}

/// Below this, an `X-RateLimit-Reset` cannot be a Unix time in seconds
/// (it would be before September 2001): it counts seconds from the
/// response, the delta form of the IETF RateLimit header fields.
const RESET_DELTA_BELOW: f64 = 1e9;
/// From here on it cannot be seconds either (it would be after the year
/// 5000): it is milliseconds. Upstash's limiter, which the upstream
/// registry's edge functions used, reports its reset that way, and
/// upstream's `rate-limiter.ts` passed it through unconverted.
const RESET_MILLIS_FROM: f64 = 1e11;

/// `X-RateLimit-Reset` in Unix milliseconds. The OpenAPI file says a Unix
/// timestamp, in seconds by its example (`1704672000`); fractions of a
/// second are kept. The two forms other limiters send are told apart by
/// size ([`RESET_DELTA_BELOW`], [`RESET_MILLIS_FROM`]); the delta form is
/// counted from the end of the response's `Date` second, so that it is
/// never early.
pub fn reset_ms(resp: &HttpResponse) -> Option<i64> {
    let value: f64 = resp.header("x-ratelimit-reset")?.trim().parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(if value >= RESET_MILLIS_FROM {
        value.ceil() as i64
    } else if value >= RESET_DELTA_BELOW {
        (value * 1000.0).ceil() as i64
    } else {
        let date = response_date(resp)?.timestamp_millis();
        date.saturating_add(999)
            .saturating_add((value * 1000.0).ceil() as i64)
    })
}

/// The response's `Date` header, parsed.
pub fn response_date(resp: &HttpResponse) -> Option<DateTime<Utc>> {
    resp.header("date").and_then(parse_http_date)
}

/// How long `Retry-After` asks to wait, in ms. The HTTP-date form is
/// measured against the same response's `Date`, so both instants are on the
/// registry's clock; without a `Date` it cannot be used.
pub fn retry_after_ms(resp: &HttpResponse) -> Option<u64> {
    let value = resp.header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = parse_http_date(value)?;
    let now = response_date(resp)?;
    Some(u64::try_from((at - now).num_milliseconds()).unwrap_or(0))
}

/// Parses an HTTP-date: IMF-fixdate, and the obsolete RFC 850 and asctime
/// forms that RFC 9110 requires recipients to accept.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(dt.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .into_iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .map(|n| n.and_utc())
}

/// Whether `s` is already in the normalised form `YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// in which string order is time order.
pub fn is_normalized(s: &str) -> bool {
    const PATTERN: &[u8; 24] = b"0000-00-00T00:00:00.000Z";
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().zip(PATTERN).all(|(&c, &p)| {
            if p == b'0' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
}

/// Normalises an RFC 3339 timestamp to UTC with millisecond precision
/// (`2026-11-20T10:00:00.123Z`); finer digits are truncated. `None` when it
/// is not RFC 3339 or falls outside years 0000..=9999 in UTC.
pub fn normalize_timestamp(s: &str) -> Option<String> {
    let dt = DateTime::parse_from_rfc3339(s).ok()?;
    if is_normalized(s) {
        // The common case: the registry already sends this form, and the
        // parse above has checked that it is a real instant.
        return Some(s.to_owned());
    }
    format_millis(&dt.with_timezone(&Utc))
}

/// Formats an instant in the normalised form.
pub fn format_millis(dt: &DateTime<Utc>) -> Option<String> {
    let year = u32::try_from(dt.year()).ok().filter(|y| *y <= 9999)?;
    // A leap second shows as 1000+ ms; clamp it into the second.
    let millis = dt.timestamp_subsec_millis().min(999);
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, dt.month(), 2);
    out.push('-');
    push_digits(&mut out, dt.day(), 2);
    out.push('T');
    push_digits(&mut out, dt.hour(), 2);
    out.push(':');
    push_digits(&mut out, dt.minute(), 2);
    out.push(':');
    push_digits(&mut out, dt.second(), 2);
    out.push('.');
    push_digits(&mut out, millis, 3);
    out.push('Z');
    Some(out)
}

fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + ((value / div) % 10) as u8));
        div /= 10;
    }
}

// ---------------------------------------------------------------------------
// Lenient record decoding. Each field is decoded as "any JSON value" and
// checked afterwards, so that one wrong type rejects the record, not the
// page, while the page is still parsed in a single pass.

/// Any JSON value, keeping only what record validation needs.
enum Field<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Strs(Vec<String>),
    Other(&'static str),
}

impl Field<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Field::Null => "null",
            Field::Bool(_) => "a boolean",
            Field::Int(_) | Field::Float(_) => "a number",
            Field::Str(_) => "a string",
            Field::Strs(_) => "an array",
            Field::Other(kind) => kind,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(PhantomData))
    }
}

struct FieldVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
    type Value = Field<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Field<'a>, E> {
        Ok(Field::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Field<'a>, E> {
        Ok(Field::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Field<'a>, E> {
        Ok(i64::try_from(v).map_or(Field::Float(v as f64), Field::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Field<'a>, E> {
        Ok(Field::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Field<'a>, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Field<'a>, E> {
        Ok(Field::Null)
    }
    fn visit_none<E>(self) -> Result<Field<'a>, E> {
        Ok(Field::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Field<'a>, D::Error> {
        Field::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        let mut all_strings = true;
        while let Some(item) = seq.next_element::<Field<'a>>()? {
            match item {
                Field::Str(s) if all_strings => items.push(s.into_owned()),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            Field::Strs(items)
        } else {
            Field::Other("an array with non-string items")
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other("an object"))
    }
}

/// The members of a record object that the guest reads.
#[derive(Default)]
struct RawFields<'a> {
    id: Option<Field<'a>>,
    name: Option<Field<'a>>,
    description: Option<Field<'a>>,
    author: Option<Field<'a>>,
    repo_url: Option<Field<'a>>,
    quality_score: Option<Field<'a>>,
    trust_tier: Option<Field<'a>>,
    tags: Option<Field<'a>>,
    categories: Option<Field<'a>>,
    stars: Option<Field<'a>>,
    created_at: Option<Field<'a>>,
    updated_at: Option<Field<'a>>,
    content_hash: Option<Field<'a>>,
    license: Option<Field<'a>>,
    security_score: Option<Field<'a>>,
    installable: Option<Field<'a>>,
    quarantined: Option<Field<'a>>,
    deleted: Option<Field<'a>>,
}

/// One element of `data`. Lives only while its page is validated; boxing
/// the (common) object case would add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum RawRecord<'a> {
    Object(RawFields<'a>),
    NotObject(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawRecord<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor(PhantomData))
    }
}

struct RecordVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RecordVisitor<'a> {
    type Value = RawRecord<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a skill object")
    }
    fn visit_bool<E>(self, _: bool) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("a string"))
    }
    fn visit_unit<E>(self) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("null"))
    }
    fn visit_none<E>(self) -> Result<RawRecord<'a>, E> {
        Ok(RawRecord::NotObject("null"))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawRecord<'a>, D::Error> {
        RawRecord::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawRecord<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawRecord::NotObject("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord<'a>, A::Error> {
        let mut f = RawFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Id => &mut f.id,
                Key::Name => &mut f.name,
                Key::Description => &mut f.description,
                Key::Author => &mut f.author,
                Key::RepoUrl => &mut f.repo_url,
                Key::QualityScore => &mut f.quality_score,
                Key::TrustTier => &mut f.trust_tier,
                Key::Tags => &mut f.tags,
                Key::Categories => &mut f.categories,
                Key::Stars => &mut f.stars,
                Key::CreatedAt => &mut f.created_at,
                Key::UpdatedAt => &mut f.updated_at,
                Key::ContentHash => &mut f.content_hash,
                Key::License => &mut f.license,
                Key::SecurityScore => &mut f.security_score,
                Key::Installable => &mut f.installable,
                Key::Quarantined => &mut f.quarantined,
                Key::Deleted => &mut f.deleted,
                Key::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Field<'a>>()?);
        }
        Ok(RawRecord::Object(f))
    }
}

/// A record member name. Decoded from any string form (escaped or not)
/// without allocating.
enum Key {
    Id,
    Name,
    Description,
    Author,
    RepoUrl,
    QualityScore,
    TrustTier,
    Tags,
    Categories,
    Stars,
    CreatedAt,
    UpdatedAt,
    ContentHash,
    License,
    SecurityScore,
    Installable,
    Quarantined,
    Deleted,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "id" => Key::Id,
                    "name" => Key::Name,
                    "description" => Key::Description,
                    "author" => Key::Author,
                    "repo_url" => Key::RepoUrl,
                    "quality_score" => Key::QualityScore,
                    "trust_tier" => Key::TrustTier,
                    "tags" => Key::Tags,
                    "categories" => Key::Categories,
                    "stars" => Key::Stars,
                    "created_at" => Key::CreatedAt,
                    "updated_at" => Key::UpdatedAt,
                    "content_hash" => Key::ContentHash,
                    "license" => Key::License,
                    "security_score" => Key::SecurityScore,
                    "installable" => Key::Installable,
                    "quarantined" => Key::Quarantined,
                    "deleted" => Key::Deleted,
                    _ => Key::Unknown,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Why one record was rejected.
struct Rejected {
    index: usize,
    id: Option<String>,
    reason: String,
}

impl Malformed {
    fn note(&mut self, bad: Rejected, warnings: &mut Warnings) {
        self.count += 1;
        let which = match &bad.id {
            Some(id) => format!("id {id:?}"),
            None => format!("at index {}", bad.index),
        };
        warnings.push(format!("skipped malformed record {which}: {}", bad.reason));
        if let Some(id) = bad.id {
            self.ids.push(id);
        }
    }
}

fn validate(
    raw: RawRecord<'_>,
    index: usize,
    tombstones: bool,
    warnings: &mut Warnings,
) -> Result<Entry, Rejected> {
    let f = match raw {
        RawRecord::Object(f) => f,
        RawRecord::NotObject(kind) => {
            return Err(Rejected {
                index,
                id: None,
                reason: format!("expected an object, found {kind}"),
            });
        }
    };
    let id = match f.id {
        Some(Field::Str(s)) if !s.is_empty() => s.into_owned(),
        Some(Field::Str(_)) => return Err(rejected(index, None, "empty id".into())),
        None | Some(Field::Null) => return Err(rejected(index, None, "missing id".into())),
        Some(other) => {
            return Err(rejected(index, None, format!("id is {}", other.kind())));
        }
    };
    // From here on the id is known, so a rejection keeps it (see
    // `Malformed::ids`).
    let reject = |reason: String| Rejected {
        index,
        id: Some(id.clone()),
        reason,
    };
    let updated_at = timestamp(f.updated_at, "updated_at").map_err(&reject)?;
    let updated_at = updated_at.ok_or_else(|| reject("missing updated_at".into()))?;

    let deleted = match f.deleted {
        None | Some(Field::Null) => false,
        Some(Field::Bool(b)) => b,
        Some(other) => return Err(reject(format!("deleted is {}", other.kind()))),
    };
    if deleted && tombstones {
        return Ok(Entry::Deleted { id, updated_at });
    }

    let name = match f.name {
        Some(Field::Str(s)) => s.into_owned(),
        None | Some(Field::Null) => return Err(reject("missing name".into())),
        Some(other) => return Err(reject(format!("name is {}", other.kind()))),
    };
    // `created_at` is required by the spec, but a registry that forgets it
    // still tells us a usable skill; its last update is the best stand-in.
    let created_at = timestamp(f.created_at, "created_at")
        .map_err(&reject)?
        .unwrap_or_else(|| updated_at.clone());
    let trust_tier = match f.trust_tier {
        Some(Field::Str(s)) => {
            let tier = TrustTier::parse(&s);
            if tier == TrustTier::Unknown && s != "unknown" {
                warnings.unknown_tier(&s);
            }
            tier
        }
        None | Some(Field::Null) => {
            warnings.unknown_tier("(missing)");
            TrustTier::Unknown
        }
        Some(other) => return Err(reject(format!("trust_tier is {}", other.kind()))),
    };
    let quality_score = number(f.quality_score, "quality_score").map_err(&reject)?;
    if let Some(q) = quality_score
        && !(0.0..=1.0).contains(&q)
    {
        return Err(reject(format!("quality_score {q} is outside 0..=1")));
    }
    let skill = Skill {
        name,
        description: text(f.description, "description").map_err(&reject)?,
        author: text(f.author, "author").map_err(&reject)?,
        repo_url: text(f.repo_url, "repo_url").map_err(&reject)?,
        quality_score,
        trust_tier,
        tags: strings(f.tags, "tags").map_err(&reject)?,
        categories: strings(f.categories, "categories").map_err(&reject)?,
        stars: integer(f.stars, "stars").map_err(&reject)?,
        created_at,
        updated_at,
        content_hash: text(f.content_hash, "content_hash").map_err(&reject)?,
        license: text(f.license, "license").map_err(&reject)?,
        security_score: number(f.security_score, "security_score").map_err(&reject)?,
        installable: boolean(f.installable, "installable").map_err(&reject)?,
        quarantined: boolean(f.quarantined, "quarantined").map_err(&reject)?,
        id,
    };
    Ok(Entry::Upsert(skill))
}

fn rejected(index: usize, id: Option<String>, reason: String) -> Rejected {
    Rejected { index, id, reason }
}

fn text(field: Option<Field<'_>>, name: &str) -> Result<Option<String>, String> {
    match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s.into_owned())),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

fn number(field: Option<Field<'_>>, name: &str) -> Result<Option<f64>, String> {
    match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Float(v)) => Ok(Some(v)),
        Some(Field::Int(v)) => Ok(Some(v as f64)),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

fn integer(field: Option<Field<'_>>, name: &str) -> Result<Option<i64>, String> {
    match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Int(v)) => Ok(Some(v)),
        // Some JSON producers write every number as a double; 150.0 is 150.
        Some(Field::Float(v)) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(v as i64)),
        Some(Field::Float(v)) => Err(format!("{name} {v} is not an integer")),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

fn boolean(field: Option<Field<'_>>, name: &str) -> Result<Option<bool>, String> {
    match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

fn strings(field: Option<Field<'_>>, name: &str) -> Result<Vec<String>, String> {
    match field {
        None | Some(Field::Null) => Ok(Vec::new()),
        Some(Field::Strs(v)) => Ok(v),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

fn timestamp(field: Option<Field<'_>>, name: &str) -> Result<Option<String>, String> {
    match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) => normalize_timestamp(&s)
            .map(Some)
            .ok_or_else(|| format!("{name} {s:?} is not an RFC 3339 timestamp")),
        Some(other) => Err(format!("{name} is {}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resp(headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            sent_at_ms: 0,
            received_at_ms: 0,
        }
    }

    #[test]
    fn timestamps_normalise() {
        let cases = [
            ("2026-11-20T10:00:00.123Z", "2026-11-20T10:00:00.123Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00.000Z"),
            ("2026-11-20T11:00:00.5+01:00", "2026-11-20T10:00:00.500Z"),
            ("2026-11-20T10:00:00.123456789Z", "2026-11-20T10:00:00.123Z"),
            ("2026-11-20t10:00:00z", "2026-11-20T10:00:00.000Z"),
            ("2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00.000Z"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_timestamp(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-20",
            "2026-02-30T00:00:00.000Z",
        ] {
            assert_eq!(normalize_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        let want = "1994-11-06T08:49:37.000Z";
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let dt = parse_http_date(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(format_millis(&dt).unwrap(), want);
        }
        assert!(parse_http_date("not a date").is_none());
    }

    #[test]
    fn retry_after_and_reset() {
        let date = "Wed, 25 Nov 2026 02:00:00 GMT";
        assert_eq!(retry_after_ms(&resp(&[("retry-after", "7")])), Some(7000));
        assert_eq!(
            retry_after_ms(&resp(&[
                ("date", date),
                ("retry-after", "Wed, 25 Nov 2026 02:00:30 GMT")
            ])),
            Some(30_000)
        );
        // An HTTP-date without a Date header has no registry "now".
        assert_eq!(
            retry_after_ms(&resp(&[("retry-after", "Wed, 25 Nov 2026 02:00:30 GMT")])),
            None
        );
        // 2026-11-25T02:00:00Z is 1795572000.
        let r = resp(&[
            ("date", date),
            ("x-ratelimit-reset", "1795572045"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "30"),
        ]);
        assert_eq!(
            rate_limit(&r),
            RateLimit {
                limit: Some(30),
                remaining: Some(0),
                reset_ms: Some(1_795_572_045_000)
            }
        );
        // The other forms: milliseconds (Upstash's), a fraction, seconds
        // from the response (from the end of its `Date` second).
        let reset = |value: &str| reset_ms(&resp(&[("date", date), ("x-ratelimit-reset", value)]));
        assert_eq!(reset("1795572045123"), Some(1_795_572_045_123));
        assert_eq!(reset("1795572045.25"), Some(1_795_572_045_250));
        assert_eq!(reset("30"), Some(1_795_572_030_999));
        assert_eq!(reset("0"), Some(1_795_572_000_999));
        for nonsense in ["-1", "soon", "NaN", "inf", ""] {
            assert_eq!(reset(nonsense), None, "{nonsense}");
        }
        // The delta form needs the response's `Date`.
        assert_eq!(reset_ms(&resp(&[("x-ratelimit-reset", "30")])), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_code(br#"{"error":"cursor_expired","details":{}}"#).as_deref(),
            Some("cursor_expired")
        );
        assert_eq!(
            error_code(br#"{"error":{"code":1}}"#).as_deref(),
            Some(r#"{"code":1}"#)
        );
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn health() {
        let h =
            decode_health(br#"{"status":"healthy","capabilities":["skills-changes"],"checks":[]}"#)
                .unwrap();
        assert!(h.has_feed());
        let h = decode_health(br#"{"status":"degraded"}"#).unwrap();
        assert!(!h.has_feed());
        assert!(decode_health(b"nope").is_err());
    }

    const GOOD: &str = r#"{"id":"a","name":"alpha","description":null,"author":"me",
        "repo_url":"https://github.com/x/a","quality_score":0.5,"trust_tier":"verified",
        "tags":["x","y"],"categories":["Testing"],"stars":150.0,"created_at":"2026-01-01T00:00:00Z",
        "updated_at":"2026-11-20T10:00:00.123Z","rank":1,"extra":{"nested":[1,2]},
        "installable":true}"#;

    #[test]
    fn search_page_lenient() {
        let body = format!(
            r#"{{"data":[{GOOD},
              {{"name":"no id","updated_at":"2026-01-01T00:00:00Z"}},
              {{"id":"b","name":"bad ts","updated_at":"soon"}},
              {{"id":"c","name":"bad score","quality_score":1.5,"updated_at":"2026-01-01T00:00:00Z"}},
              {{"id":"d","name":"tier","trust_tier":"platinum","updated_at":"2026-01-01T00:00:00Z"}},
              {{"id":"e","name":"tier","trust_tier":"platinum","updated_at":"2026-01-01T00:00:00Z"}},
              {{"id":"f","name":"wrong tags","tags":[1],"updated_at":"2026-01-01T00:00:00Z"}},
              {{"id":"g\u00e9","name":"escaped id","trust_tier":"official","updated_at":"2026-01-01T00:00:00Z"}},
              42, null, "str"
            ],"meta":{{"total":1234,"limit":100,"offset":0,"query":null,"filters":{{}}}}}}"#
        );
        let mut w = Warnings::new();
        let page = decode_search_page(body.as_bytes(), &mut w).unwrap();
        assert_eq!(page.total, 1234);
        assert_eq!(page.raw_len, 11);
        let ids: Vec<_> = page.skills.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "d", "e", "gé"]);
        assert_eq!(page.malformed.count, 7);
        assert_eq!(page.malformed.ids, ["b", "c", "f"]);
        let a = &page.skills[0];
        assert_eq!(a.stars, Some(150));
        assert_eq!(a.created_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(a.trust_tier, TrustTier::Verified);
        assert_eq!(a.tags, ["x", "y"]);
        assert_eq!(a.installable, Some(true));
        assert_eq!(page.skills[1].trust_tier, TrustTier::Unknown);
        let platinum = w.lines().iter().filter(|l| l.contains("platinum")).count();
        assert_eq!(platinum, 1, "{:?}", w.lines());
    }

    #[test]
    fn envelope_errors() {
        let mut w = Warnings::new();
        for body in [
            "",
            "not json",
            r#"{"data":[]}"#,
            r#"{"meta":{"total":0}}"#,
            r#"{"data":null,"meta":{"total":0}}"#,
            r#"{"data":[],"meta":{"total":-1}}"#,
            r#"{"data":[],"meta":{"total":1}"#,
        ] {
            assert!(
                decode_search_page(body.as_bytes(), &mut w).is_err(),
                "{body}"
            );
        }
        assert!(decode_feed_page(br#"{"data":[],"meta":{"next_cursor":"x"}}"#, &mut w).is_err());
    }

    #[test]
    fn feed_page_with_tombstones() {
        let body = format!(
            r#"{{"data":[{GOOD},{{"id":"z","updated_at":"2026-11-20T10:00:01Z","deleted":true}},
                {{"deleted":true,"updated_at":"2026-11-20T10:00:01Z"}}],
               "meta":{{"next_cursor":"c2","has_more":false,"server_time":"2026-11-25T02:00:00Z"}}}}"#
        );
        let mut w = Warnings::new();
        let page = decode_feed_page(body.as_bytes(), &mut w).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(
            page.entries[1],
            Entry::Deleted {
                id: "z".into(),
                updated_at: "2026-11-20T10:00:01.000Z".into()
            }
        );
        assert_eq!(page.malformed.count, 1);
        assert_eq!(page.next_cursor.as_deref(), Some("c2"));
        assert!(!page.has_more);
        assert_eq!(
            page.server_time.as_deref(),
            Some("2026-11-25T02:00:00.000Z")
        );
    }

    proptest! {
        #[test]
        fn normalised_order_is_time_order(a in -2_000_000_000_000i64..250_000_000_000_000, b in -2_000_000_000_000i64..250_000_000_000_000) {
            let da = DateTime::from_timestamp_millis(a).unwrap();
            let db = DateTime::from_timestamp_millis(b).unwrap();
            let sa = format_millis(&da).unwrap();
            let sb = format_millis(&db).unwrap();
            prop_assert!(is_normalized(&sa));
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(normalize_timestamp(&sa), Some(sa.clone()));
            let offset = da.with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap()).to_rfc3339();
            prop_assert_eq!(normalize_timestamp(&offset), Some(sa));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut w = Warnings::new();
            let _ = decode_search_page(&body, &mut w);
            let _ = decode_feed_page(&body, &mut w);
            let _ = decode_health(&body);
            let _ = error_code(&body);
        }
    }
}
