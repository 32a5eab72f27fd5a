// Host time, as the Rust catalogue keeps it (`catalogue/src/clock.rs`):
// history, lease and scheduling times are this machine's wall clock,
// stored as RFC 3339 UTC with milliseconds and `Z`, so that they compare as
// strings; lease expiry is Unix milliseconds. `SKILLSMITH_CLOCK_OFFSET_MS`
// (an integer) shifts the clock, as it does the Rust host's: a testing
// knob. (HTTP's `sent-at-ms`/`received-at-ms` use a monotonic clock
// instead, see http.mjs.)

const OFFSET_ENV = 'SKILLSMITH_CLOCK_OFFSET_MS';

/** The offset knob; anything but an integer is ignored, as a testing knob should be. */
function offsetMs() {
  const raw = (process.env[OFFSET_ENV] ?? '').trim();
  return /^-?\d+$/.test(raw) ? Number(raw) : 0;
}

/** Host time, Unix milliseconds. */
export function nowMs() {
  return Date.now() + offsetMs();
}

/**
 * `2026-11-20T10:00:00.123Z` for Unix milliseconds `ms`.
 * @param {number} ms
 */
export function formatMs(ms) {
  return new Date(ms).toISOString();
}

/**
 * Unix milliseconds of an RFC 3339 time with a zone, or undefined for
 * anything else (upstream's zone-less `YYYY-MM-DD HH:MM:SS` among them:
 * JavaScript would read it as local time).
 * @param {string | null | undefined} text
 * @returns {number | undefined}
 */
export function parseMs(text) {
  if (typeof text !== 'string' || !/^\d{4}-\d\d-\d\dT.*(?:[zZ]|[+-]\d\d:?\d\d)$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
