// One sync of a catalogue file, end to end (the Rust host's
// `runtime/src/sync.rs` SyncRunner): check the registry URL, load the
// component before touching the catalogue (a component that cannot load
// must leave no trace), open the catalogue (read-only for a dry run), run
// `engine.run` in its worker with the store and HTTP imports, close any run
// the guest left open (it trapped, was stopped by a limit, or forgot), and
// return the report or throw a HostFailure saying what happened.

import { randomFillSync } from 'node:crypto';

import { nowMs } from './clock.mjs';
import { findComponent, loadComponent } from './component.mjs';
import { HostFailure, fromSyncError, describeSyncError, syncErrorKind } from './failure.mjs';
import { runGuest } from './guest.mjs';
import { HttpImport, registryUrlProblem } from './http.mjs';
import { ImportFailure } from './rpc.mjs';
import { openCatalogue } from './schema.mjs';
import { CatalogueStore } from './store.mjs';

/** One jitter seed per process, as the Rust host's `random::jitter_seed`. */
const JITTER_SEED = randomFillSync(new BigUint64Array(1))[0];

/** `schedule.decide` is pure: a second is generous, and it must not hold a sync up. */
const DECIDE_LIMITS = { betweenImportsMs: 2000, guestMs: 2000, runMs: 5000 };

/** Import handlers for a call that makes no import calls. */
function refusingHandlers(what) {
  const refuse = () => {
    throw new ImportFailure({ tag: 'invalid', val: `${what} makes no store calls` });
  };
  return {
    store: {
      readState: refuse,
      localVersions: refuse,
      registryIds: refuse,
      registryRows: refuse,
      beginRun: refuse,
      applyPage: refuse,
      finishRun: refuse,
    },
    http: {
      send() {},
      wait: async () => {
        throw new ImportFailure({ tag: 'denied', val: `${what} makes no requests` });
      },
      drop() {},
      cancelAll() {},
    },
  };
}

/**
 * `schedule.decide` in a fresh instance.
 * @param {import('./component.mjs').LoadedComponent} component
 * @param {object} config a `schedule-config`
 * @param {bigint} now Unix ms
 * @param {bigint} [seed]
 * @returns {Promise<{ due: boolean, nextMs?: bigint }>}
 */
export async function decideSchedule(component, config, now, seed = JITTER_SEED) {
  const out = await runGuest({
    component,
    task: { kind: 'decide', args: [config, now, seed] },
    handlers: refusingHandlers('schedule.decide'),
    limits: DECIDE_LIMITS,
  });
  return out.decision;
}

/**
 * @typedef {object} SyncRequest
 * @property {string} dbPath the catalogue file
 * @property {string} registry base URL of the registry API; also the one
 *   origin requests may go to
 * @property {string} [apiKey] sent as X-API-Key, never shown to the guest
 * @property {boolean} [force]
 * @property {boolean} [dryRun]
 * @property {'changes-feed' | 'search'} [mode] undefined: discover
 * @property {number} [pageSize] 0: each endpoint's largest
 * @property {number} [retryBudgetMs]
 * @property {number} [timeoutMs] the most one request may take (default and cap)
 * @property {import('./component.mjs').LoadedComponent} [component] loaded already
 * @property {string} [componentPath] else loaded from here (default: the checkout's)
 * @property {Partial<import('./limits.mjs').Limits>} [limits]
 * @property {Partial<import('./http.mjs').HttpPolicy>} [httpPolicy]
 * @property {string} [guestRegistry] what the guest gets as `registry`
 *   instead (the hostile test guests read their behaviour from it)
 * @property {'node:sqlite' | 'better-sqlite3'} [binding] force one (tests)
 * @property {(report: object) => void} [onProgress]
 * @property {(level: string, message: string) => void} [onLog]
 * @property {AbortSignal} [signal] stops the sync at the next page boundary
 */

/**
 * @typedef {object} SyncResult
 * @property {any} report the `sync-report`
 * @property {boolean} dryRun
 * @property {number} durationMs
 * @property {string} binding the SQLite binding used
 * @property {{ path: string, sha256: string, cached: boolean }} component
 * @property {number} requests requests this host sent to the network
 */

/**
 * Runs one sync.
 * @param {SyncRequest} request
 * @returns {Promise<SyncResult>}
 */
export async function sync(request) {
  const started = performance.now();
  const registry = request.registry.trim().replace(/\/+$/, '');
  const problem = registryUrlProblem(registry);
  if (problem) throw new HostFailure('usage', problem, { action: 'pass --registry with the registry API base URL, e.g. https://api.skillsmith.app/functions/v1' });
  // Before the catalogue: a component that cannot load leaves no trace.
  const component = request.component ?? (await loadComponent(request.componentPath ?? findComponent()));
  const dryRun = request.dryRun ?? false;
  const catalogue = await openCatalogue(request.dbPath, { readOnly: dryRun, binding: request.binding });
  const store = new CatalogueStore(catalogue, {
    decide: async (config, now) => {
      try {
        return (await decideSchedule(component, config, now)).nextMs;
      } catch {
        // A component that cannot decide leaves next_sync_at empty; the
        // next scheduler to look computes it again.
        return undefined;
      }
    },
  });
  const timeout = request.timeoutMs ? { defaultTimeoutMs: request.timeoutMs, maxTimeoutMs: request.timeoutMs } : {};
  const http = new HttpImport({ registry, apiKey: request.apiKey, policy: { ...timeout, ...request.httpPolicy } });
  try {
    let outcome;
    try {
      outcome = await runGuest({
        component,
        task: {
          kind: 'run',
          options: {
            registry: request.guestRegistry ?? registry,
            force: request.force ?? false,
            dryRun,
            pageSize: request.pageSize ?? 0,
            mode: request.mode,
            nowMs: BigInt(nowMs()),
            retryBudgetMs: BigInt(request.retryBudgetMs ?? 120_000),
          },
        },
        handlers: { store, http },
        limits: request.limits,
        onLog: request.onLog,
        onProgress: request.onProgress,
        signal: request.signal,
      });
    } catch (e) {
      const failure = e instanceof HostFailure ? e : new HostFailure('internal', `the sync failed: ${e?.stack ?? e}`);
      await closeLeftOpen(store, failure.message, failure.kind === 'internal' ? 'internal' : 'component');
      throw failure;
    }
    if (outcome.error) {
      await closeLeftOpen(store, describeSyncError(outcome.error), syncErrorKind(outcome.error));
      const failure = fromSyncError(outcome.error);
      // The guest's `busy` carries no text; the store knows who it was.
      if (outcome.error.tag === 'busy' && store.busyWith) failure.message += ` (${store.busyWith})`;
      throw failure;
    }
    await closeLeftOpen(store, 'the sync engine returned without closing its run', 'component');
    return {
      report: outcome.report,
      dryRun,
      durationMs: Math.round(performance.now() - started),
      binding: catalogue.db.binding,
      component: { path: component.path, sha256: component.sha256, cached: component.cached },
      requests: http.sent,
    };
  } finally {
    store.close();
  }
}

/**
 * Closes the run the guest left open, if any, so history never shows a
 * dead run as `running`; a failure to do so is not the sync's failure (the
 * next sync's lease closes it as interrupted).
 * @param {CatalogueStore} store
 * @param {string} message
 * @param {import('./failure.mjs').FailureKind} kind
 */
async function closeLeftOpen(store, message, kind) {
  try {
    await store.abandonOpenRun(message, kind);
  } catch {
    // Left for the next sync, which closes it as interrupted.
  }
}
