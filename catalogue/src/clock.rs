//! Host time: history timestamps, lease expiry and the scheduler's `now`.
//!
//! All host times go through [`Clock`] so that tests can simulate a skewed or
//! jumping clock with `SKILLSMITH_CLOCK_OFFSET_MS` (a signed number of
//! milliseconds added to the system clock). It is a testing knob: nothing in
//! a normal installation sets it. Registry time (`last_sync_at`) never comes
//! from here; it comes from the registry through the guest.

use chrono::{DateTime, SecondsFormat, Utc};

/// Environment variable read by [`Clock::from_env`].
pub const CLOCK_OFFSET_ENV: &str = "SKILLSMITH_CLOCK_OFFSET_MS";

/// The host clock, possibly shifted by a fixed offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// The system clock shifted by `SKILLSMITH_CLOCK_OFFSET_MS` when it is set
    /// to an integer. An unparsable value is ignored (with a warning) rather
    /// than failing: it is a testing knob, not configuration.
    pub fn from_env() -> Clock {
        let offset_ms = match std::env::var(CLOCK_OFFSET_ENV) {
            Ok(v) => match v.trim().parse::<i64>() {
                Ok(ms) => ms,
                Err(_) => {
                    tracing::warn!("ignoring {CLOCK_OFFSET_ENV}={v:?}: not an integer");
                    0
                }
            },
            Err(_) => 0,
        };
        Clock { offset_ms }
    }

    /// The system clock shifted by `offset_ms`.
    pub fn with_offset(offset_ms: i64) -> Clock {
        Clock { offset_ms }
    }

    /// The configured offset.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis().saturating_add(self.offset_ms)
    }

    /// Now, as stored in the database (`2026-11-20T10:00:00.123Z`).
    pub fn now_text(&self) -> String {
        format_ms(self.now_ms())
    }
}

/// Formats Unix milliseconds the way every host timestamp is stored: RFC 3339,
/// UTC, millisecond precision, `Z`, so that timestamps compare as strings.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp into Unix milliseconds; `None` when it is not
/// one (a hand-edited or legacy row must not break scheduling).
pub fn parse_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        let ms = 1_795_000_000_123;
        let text = format_ms(ms);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(parse_ms(&text), Some(ms));
        assert_eq!(parse_ms("yesterday"), None);
    }

    #[test]
    fn offset_shifts_now() {
        let a = Clock::with_offset(0).now_ms();
        let b = Clock::with_offset(3_600_000).now_ms();
        assert!(b - a >= 3_600_000 && b - a < 3_700_000);
    }
}
