//! `GET /skills-changes`: the keyset-paginated changes feed of
//! `shared/reference/changes-feed.md`, served from the store's change index.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::catalogue::format_rfc3339_ms;
use crate::reply::{Params, Reply};
use crate::search::BAD_RECORD;
use crate::store::{Key, Store};

/// Opaque cursor: base64url of `"{generation}:{updated_at_ms}:{id}"`: the last
/// key served, and how many tombstone discards the registry had made when it
/// issued the cursor. A cursor issued after a discard cannot have missed the
/// discarded tombstones (its listing started later), so only older
/// generations can expire.
pub fn encode_cursor(generation: u64, updated_at_ms: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{generation}:{updated_at_ms}:{id}"))
}

/// Inverse of [`encode_cursor`]: `(generation, key)`; `None` for anything it
/// did not produce.
pub fn decode_cursor(cursor: &str) -> Option<(u64, (i64, String))> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (generation, rest) = raw.split_once(':')?;
    let (ms, id) = rest.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(generation) || !digits(ms) {
        return None;
    }
    Some((generation.parse().ok()?, (ms.parse().ok()?, id.to_string())))
}

/// The ETag of a feed response depends only on where it leaves the client
/// (`next_cursor`) and whether more follows: the caught-up response for a
/// cursor, and every later empty answer for it, share one ETag.
fn etag(next_cursor: &str, has_more: bool) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in next_cursor.bytes().chain([has_more as u8]) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn if_none_match_hits(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    })
}

/// Serves one feed page. `now_ms` is the registry clock; `corrupt` replaces
/// one entry with a malformed record.
pub(crate) fn respond(
    store: &Store,
    params: &Params,
    if_none_match: Option<&str>,
    now_ms: i64,
    corrupt: bool,
) -> Reply {
    let limit = match params.get("limit").filter(|s| !s.is_empty()) {
        None => 100,
        Some(s) => match s.parse::<usize>().ok().filter(|v| (1..=1000).contains(v)) {
            Some(v) => v,
            None => {
                return Reply::error(
                    400,
                    "Invalid limit: must be an integer between 1 and 1000",
                    json!({"parameter": "limit", "received": s}),
                );
            }
        },
    };
    let mut cursor_generation = store.discard_generation();
    let since: Option<Key> = match params.get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match decode_cursor(s) {
            Some((generation, k)) => {
                cursor_generation = generation;
                Some(k)
            }
            None => {
                return Reply::error(
                    400,
                    "invalid_cursor",
                    json!({"parameter": "since", "received": s}),
                );
            }
        },
    };
    if let (Some(since), Some(discarded)) = (&since, store.discard_point())
        && since < discarded
        && cursor_generation < store.discard_generation()
    {
        return Reply::error(
            410,
            "cursor_expired",
            json!({"message": "tombstones newer than this cursor were discarded; run a full resync"}),
        );
    }
    let lower = match &since {
        Some(k) => Bound::Excluded(k.clone()),
        None => Bound::Unbounded,
    };
    let mut entries = store.changes().range((lower, Bound::Unbounded));
    let page: Vec<_> = entries.by_ref().take(limit).collect();
    let has_more = entries.next().is_some();
    let next_key = match page.last() {
        Some((k, _)) => (*k).clone(),
        // Nothing new: the client stays where it is (or at the start).
        None => since
            .clone()
            .or_else(|| store.discard_point().cloned())
            .unwrap_or((0, String::new())),
    };
    let next_cursor = encode_cursor(
        cursor_generation.max(store.discard_generation()),
        next_key.0,
        &next_key.1,
    );
    let tag = etag(&next_cursor, has_more);
    if page.is_empty() && !has_more && if_none_match_hits(if_none_match, &tag) {
        return Reply::empty(304).header("etag", tag);
    }

    let mut out = String::with_capacity(96 + page.len() * 700);
    out.push_str("{\"data\":[");
    let bad_at = corrupt.then_some(page.len() / 2);
    for (i, (key, change)) in page.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if bad_at == Some(i) {
            out.push_str(BAD_RECORD);
        } else {
            store.render_change(key, **change, &mut out);
        }
    }
    out.push_str("],\"meta\":");
    let server_time = format_rfc3339_ms(now_ms.max(store.clock_ms()));
    let meta =
        json!({"next_cursor": next_cursor, "has_more": has_more, "server_time": server_time});
    out.push_str(&meta.to_string());
    out.push('}');
    Reply::json(200, out).header("etag", tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(0, 1_767_225_600_123, "0b1c-id");
        assert_eq!(
            decode_cursor(&c),
            Some((0, (1_767_225_600_123, "0b1c-id".to_string())))
        );
        assert!(!c.contains('=') && !c.contains('+') && !c.contains('/'));
        for bad in [
            "",
            "!!!",
            "bm9jb2xvbg",
            &URL_SAFE_NO_PAD.encode("-5:x"),
            &URL_SAFE_NO_PAD.encode("12a:x"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn etag_matching() {
        let t = etag("abc", false);
        assert_ne!(t, etag("abc", true));
        assert!(if_none_match_hits(Some(&t), &t));
        assert!(if_none_match_hits(Some(&format!("W/{t}, \"x\"")), &t));
        assert!(!if_none_match_hits(Some("\"x\""), &t));
        assert!(!if_none_match_hits(None, &t));
    }
}
