// The cross-process sync lease (`sync_lease`, the Rust host's `lock.rs`):
// at most one sync per catalogue at a time, whichever host runs it. Its
// holder text names this machine and process (`pid <pid> on <host> #<16
// hex>`), so any host can tell a holder killed on this machine from a live
// one and take its lease over at once; anything uncertain counts as alive,
// and the lease frees itself 60 s after its last renewal.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** How long a lease lasts without a renewal (ms). */
export const LEASE_TTL_MS = 60_000;

/** How often a running sync renews it between pages (ms): a quarter of the TTL. */
export const RENEW_EVERY_MS = 15_000;

/** History text of runs a dead holder left `running` (lock.rs INTERRUPTED_MESSAGE). */
export const INTERRUPTED_MESSAGE =
  'interrupted: the process running this sync stopped before it finished (killed or crashed); the next sync resumes from the last committed page';

/** A fresh holder id for this process. */
export function newHolder() {
  return `pid ${process.pid} on ${hostname()} #${randomBytes(8).toString('hex')}`;
}

/**
 * Whether process `pid` is known not to exist on this machine.
 * @param {number} pid
 */
function processIsGone(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    // Signal 0 checks existence and permission without sending anything.
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e?.code === 'ESRCH';
  }
}

/**
 * Whether the lease's holder is a process of this machine that no longer
 * exists (killed, crashed).
 * @param {{ holder: string, pid: number }} lease
 */
export function holderIsGone(lease) {
  const m = / on (.*) #[0-9a-f]+$/.exec(lease.holder);
  const sameHost = m !== null && m[1] === hostname();
  const pid = Number(lease.pid);
  return sameHost && pid !== process.pid && processIsGone(pid);
}
