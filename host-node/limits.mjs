// The sandbox's bounds on memory and time (docs/embedding.md §7), and how
// each is enforced:
//
// - linear memory: V8's `resourceLimits` count only the JavaScript heap,
//   not WebAssembly memories. So before a core module is compiled, its
//   memory section is rewritten to declare a maximum (`capMemories`); a
//   `memory.grow` past it fails inside the guest, whose allocator then
//   aborts: a trap, whatever the guest does, with or without calling us;
// - the JavaScript heap of the guest's worker (jco's glue, the values
//   crossing the WIT boundary): `resourceLimits` (`workerResourceLimits`);
// - time: a watchdog on the main thread (`Watchdog`) reads the clock cells
//   the worker's import wrappers keep (rpc.mjs) every 100 ms, like
//   wasmtime's epoch interruption, and `terminate()`s the worker when the
//   guest has run too long between two imports, too long over the run, when
//   the whole run is too long, or when it ignores a stop it has seen.

import { HostFailure } from './failure.mjs';
import { CELL, TIME, monotonicUs } from './rpc.mjs';

/**
 * @typedef {object} Limits
 * @property {number} memoryBytes most linear memory of each guest memory
 *   (applied when the component is compiled: `loadComponent`'s option)
 * @property {number} heapMb most JavaScript heap (old generation) of the worker
 * @property {number} betweenImportsMs most guest time between two imports
 * @property {number} guestMs most guest time over one run (stops a guest
 *   looping through cheap imports)
 * @property {number} runMs most wall time of one run
 * @property {number} stopGraceMs how long a guest may go on after an import
 *   told it to stop
 */

/** The Rust host's defaults (`sandbox/src/budget.rs`, `StoreLimits`). @type {Limits} */
export const DEFAULT_LIMITS = Object.freeze({
  memoryBytes: 128 * 2 ** 20,
  heapMb: 256,
  betweenImportsMs: 10_000,
  guestMs: 120_000,
  runMs: 6 * 3600_000,
  stopGraceMs: 5_000,
});

const WASM_PAGE = 65536;
const WATCH_EVERY_MS = 100;

// ---- linear memory ------------------------------------------------------------

/** Reads an unsigned LEB128 at `at`; returns [value, next offset]. */
function readLeb(bytes, at) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    if (at >= bytes.length) throw new RangeError('truncated LEB128');
    const b = bytes[at++];
    value |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) return [value, at];
  }
}

/** Encodes an unsigned LEB128. */
function leb(value) {
  const out = [];
  let v = BigInt(value);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

/**
 * A copy of core module `bytes` whose every defined memory declares at
 * most `maxBytes` (rounded down to whole pages). Imported memories are left
 * alone: they are some module's definition, which gets the same cap.
 * Throws when a memory needs more than the cap from the start.
 * @param {Uint8Array} bytes
 * @param {number} maxBytes
 * @returns {Uint8Array}
 */
export function capMemories(bytes, maxBytes) {
  const capPages = BigInt(Math.floor(maxBytes / WASM_PAGE));
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new HostFailure('component', 'a core module of the sync component is not WebAssembly');
  }
  const parts = [bytes.subarray(0, 8)];
  let at = 8;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++];
    const [size, body] = readLeb(bytes, at);
    const end = body + Number(size);
    if (end > bytes.length) throw new HostFailure('component', 'a core module of the sync component is truncated');
    if (id !== 5) {
      parts.push(bytes.subarray(start, end));
    } else {
      const content = rewriteMemorySection(bytes.subarray(body, end), capPages);
      parts.push(Uint8Array.of(5, ...leb(content.length)), content);
    }
    at = end;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The memory section `section` with each memory's maximum at most `capPages`. */
function rewriteMemorySection(section, capPages) {
  let [count, at] = readLeb(section, 0);
  const out = [...leb(count)];
  for (let i = 0n; i < count; i++) {
    const flags = section[at++];
    // Bit 0: has a maximum; bit 1: shared; bit 2: 64-bit. Anything else
    // (custom page sizes) is an encoding this rewrite does not know.
    if (flags & ~0x07) {
      throw new HostFailure('component', `a memory of the sync component uses limits this host cannot bound (flags 0x${flags.toString(16)})`);
    }
    let min;
    [min, at] = readLeb(section, at);
    let max = capPages;
    if (flags & 0x01) {
      let declared;
      [declared, at] = readLeb(section, at);
      if (declared < max) max = declared;
    }
    if (min > capPages) {
      throw new HostFailure(
        'component',
        `the sync component needs ${Number(min) / 16} MiB of memory to start, over this host's limit of ${Number(capPages) / 16} MiB`,
      );
    }
    out.push(flags | 0x01, ...leb(min), ...leb(max));
  }
  if (at !== section.length) throw new HostFailure('component', 'a memory section of the sync component has trailing bytes');
  return Uint8Array.from(out);
}

/**
 * Whether a trap looks like the memory cap: a memory within one eighth of
 * it (a failed `memory.grow` leaves the guest near its cap, whatever it
 * asked for). Wording only: either way the run failed as `component`.
 * @param {number[]} memoryBytes sizes of the guest's memories at the trap
 * @param {number} capBytes
 */
export function nearMemoryCap(memoryBytes, capBytes) {
  return memoryBytes.some((n) => n >= capBytes - capBytes / 8);
}

/**
 * `resourceLimits` for the guest's worker: the JavaScript heap only.
 * @param {Limits} limits
 */
export function workerResourceLimits(limits) {
  return { maxOldGenerationSizeMb: limits.heapMb, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };
}

// ---- time ---------------------------------------------------------------------

/**
 * Watches a running guest's time through the shared clock cells and calls
 * `expire` once, with the reason, when a budget is spent.
 */
export class Watchdog {
  #ints;
  #times;
  #limits;
  #startedUs;
  #timer;

  /**
   * @param {{ ints: Int32Array, times: BigInt64Array }} cells
   * @param {Limits} limits
   * @param {(reason: HostFailure) => void} expire
   */
  constructor(cells, limits, expire) {
    this.#ints = cells.ints;
    this.#times = cells.times;
    this.#limits = limits;
    this.#startedUs = monotonicUs();
    Atomics.store(this.#times, TIME.resumedAt, this.#startedUs);
    this.#timer = setInterval(() => {
      const reason = this.check();
      if (reason) {
        this.stop();
        expire(reason);
      }
    }, WATCH_EVERY_MS);
  }

  /** Guest time used so far, and since the last import, in ms. */
  usage() {
    const now = monotonicUs();
    const inImport = Atomics.load(this.#ints, CELL.inImport) === 1;
    const used = Atomics.load(this.#times, TIME.guestUsed);
    const since = inImport ? 0n : now - Atomics.load(this.#times, TIME.resumedAt);
    return { guestMs: Number(used + since) / 1000, sinceImportMs: Number(since) / 1000, wallMs: Number(now - this.#startedUs) / 1000 };
  }

  /** The budget that is spent, as the failure to report, or null. */
  check() {
    const { guestMs, sinceImportMs, wallMs } = this.usage();
    const l = this.#limits;
    const seconds = (ms) => `${Math.round(ms / 100) / 10} s`;
    const spent = (what) =>
      new HostFailure('component', `the sync component was stopped: ${what}`, {
        action: 'sync again; if it happens again, the component is faulty: rebuild it with scripts/build-component.sh, and report it',
      });
    if (sinceImportMs > l.betweenImportsMs) {
      return spent(`it ran ${seconds(sinceImportMs)} without calling the host (the limit is ${seconds(l.betweenImportsMs)})`);
    }
    if (guestMs > l.guestMs) {
      return spent(`its code ran ${seconds(guestMs)} over this sync (the limit is ${seconds(l.guestMs)})`);
    }
    if (wallMs > l.runMs) {
      return spent(`the sync took longer than ${seconds(l.runMs)}`);
    }
    const stopSeen = Atomics.load(this.#times, TIME.stopSeenAt);
    if (stopSeen !== 0n) {
      const ignoredMs = Number(monotonicUs() - stopSeen) / 1000;
      if (ignoredMs > l.stopGraceMs) {
        return spent(`it went on ${seconds(ignoredMs)} after the host asked it to stop (the limit is ${seconds(l.stopGraceMs)})`);
      }
    }
    return null;
  }

  stop() {
    clearInterval(this.#timer);
  }
}
