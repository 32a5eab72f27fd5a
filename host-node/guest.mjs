// Runs one call into a loaded component (`engine.run` or `schedule.decide`)
// in a fresh worker (guest-worker.mjs), and serves its imports from the main
// thread: the store and HTTP handlers given, log and progress to the
// caller. The worker gets `resourceLimits` for its JavaScript heap, the
// component's memories were capped when it was compiled, and a watchdog
// (limits.mjs) terminates the worker when a time budget is spent. Every way
// a run can end comes back as one of: the engine's report, its sync-error,
// or a HostFailure that says why the guest was stopped.

import { MessageChannel, Worker } from 'node:worker_threads';

import { HostFailure } from './failure.mjs';
import { DEFAULT_LIMITS, Watchdog, nearMemoryCap, workerResourceLimits } from './limits.mjs';
import { CELL, ServerEnd, sharedCells } from './rpc.mjs';

/** Most bytes of log lines one run forwards from the guest. */
const LOG_BUDGET_BYTES = 1 << 20;

/** Most characters of the guest's stderr a trap's message shows. */
const STDERR_SHOWN_CHARS = 600;

/**
 * @typedef {object} GuestHandlers the imports served on the main thread
 * @property {{ readState: Function, localVersions: Function, registryIds: Function, registryRows: Function, beginRun: Function, applyPage: Function, finishRun: Function }} store
 *   the `store` import; each method returns its `ok` value or throws an ImportFailure
 * @property {{ send: (id: number, request: object) => void, wait: (id: number) => Promise<object>, drop: (id: number) => void, cancelAll: () => void }} http
 */

/**
 * @typedef {object} GuestCall
 * @property {import('./component.mjs').LoadedComponent} component
 * @property {{ kind: 'run', options: object } | { kind: 'decide', args: unknown[] }} task
 * @property {GuestHandlers} handlers
 * @property {Partial<import('./limits.mjs').Limits>} [limits]
 * @property {(level: string, message: string) => void} [onLog]
 * @property {(report: object) => void} [onProgress]
 * @property {AbortSignal} [signal] aborting asks the guest to stop (it then
 *   finishes its run as cancelled); it is cut off if it does not
 */

/**
 * @param {{ message: string, exit: boolean, stderr: string, memoryBytes: number[] }} trap
 * @param {number} capBytes
 */
function trapFailure(trap, capBytes) {
  const mib = (n) => `${Math.round((n / 2 ** 20) * 10) / 10} MiB`;
  // The panic message is at the end; a guest that flooded stderr first
  // gets its last lines shown, not 16 KiB of them.
  const lines = trap.stderr.trim().split('\n').slice(-5).join(' | ');
  const shown = lines.length > STDERR_SHOWN_CHARS ? `…${lines.slice(-STDERR_SHOWN_CHARS)}` : lines;
  const tail = shown ? `; guest stderr: ${shown}` : '';
  let what;
  if (trap.exit) what = `it called wasi:cli/exit, which a sync component may not (${trap.message})`;
  else if (nearMemoryCap(trap.memoryBytes, capBytes)) {
    what = `it ran out of memory at ${mib(Math.max(...trap.memoryBytes))} of its ${mib(capBytes)} limit (${trap.message})`;
  } else what = trap.message;
  return new HostFailure('component', `the sync component crashed: ${what}${tail}`);
}

/**
 * Runs `call` and resolves with `{ report }`, `{ error }` (a sync-error) or
 * `{ decision }`; rejects with a HostFailure when the guest trapped, was
 * stopped by a limit, or the host failed.
 * @param {GuestCall} call
 * @returns {Promise<{ report?: any, error?: any, decision?: any }>}
 */
export function runGuest({ component, task, handlers, limits: given = {}, onLog = () => {}, onProgress = () => {}, signal }) {
  const limits = { ...DEFAULT_LIMITS, ...given };
  const cells = sharedCells();
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve, reject) => {
    let settled = false;
    let worker;
    let watchdog;
    let server;
    const finish = (fn) => {
      if (settled) return;
      settled = true;
      watchdog?.stop();
      signal?.removeEventListener('abort', stop);
      handlers.http.cancelAll();
      server?.close();
      // Whatever the guest is doing, it is over: a finished worker exits by
      // itself, a stopped one is cut off here.
      void worker?.terminate();
      fn();
    };
    const fail = (failure) => finish(() => reject(failure));

    function stop() {
      Atomics.store(cells.ints, CELL.stop, 1);
      Atomics.notify(cells.ints, CELL.stop);
      // Blocking waits answer `cancelled` at once.
      handlers.http.cancelAll();
    }

    server = new ServerEnd(
      port1,
      cells.ints,
      {
        readState: (...a) => handlers.store.readState(...a),
        localVersions: (...a) => handlers.store.localVersions(...a),
        registryIds: (...a) => handlers.store.registryIds(...a),
        registryRows: (...a) => handlers.store.registryRows(...a),
        beginRun: (...a) => handlers.store.beginRun(...a),
        applyPage: (...a) => handlers.store.applyPage(...a),
        finishRun: (...a) => handlers.store.finishRun(...a),
        send: (...a) => handlers.http.send(...a),
        wait: (...a) => handlers.http.wait(...a),
        drop: (...a) => handlers.http.drop(...a),
        log: (level, message) => onLog(level, message),
        progress: (report) => onProgress(report),
        finished: (outcome) => {
          if (outcome.trap) fail(trapFailure(outcome.trap, component.memoryBytes));
          else finish(() => resolve(outcome));
        },
      },
      (method, e) =>
        fail(
          e instanceof HostFailure
            ? e
            : new HostFailure('internal', `the host failed while serving ${method}: ${e?.stack ?? e}`),
        ),
    );

    try {
      worker = new Worker(new URL('./guest-worker.mjs', import.meta.url), {
        workerData: {
          source: component.source,
          modules: component.modules,
          port: port2,
          shared: cells.buffer,
          task,
          logBudgetBytes: LOG_BUDGET_BYTES,
        },
        transferList: [port2],
        resourceLimits: workerResourceLimits(limits),
        // The guest has no business with this process's streams or env.
        stdin: false,
        stdout: true,
        stderr: true,
        env: {},
        argv: [],
      });
    } catch (e) {
      fail(new HostFailure('internal', `cannot start the sync component's worker: ${e?.message ?? e}`));
      return;
    }
    // stdout and stderr piped and never read: nothing of the worker's
    // reaches ours (the guest's own stderr is the bounded tail of wasi.mjs).
    worker.stdout.resume();
    worker.stderr.resume();
    worker.on('error', (e) => {
      if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        fail(
          new HostFailure(
            'component',
            `the sync component was stopped: it used up the ${limits.heapMb} MiB JavaScript heap of its worker (values crossing into the host)`,
          ),
        );
      } else {
        fail(new HostFailure('component', `the sync component's worker failed: ${e?.message ?? e}`));
      }
    });
    worker.on('exit', (code) => {
      server.drain();
      fail(new HostFailure('component', `the sync component's worker ended without an answer (exit code ${code})`));
    });
    watchdog = new Watchdog(cells, limits, (reason) => fail(reason));
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
  });
}
