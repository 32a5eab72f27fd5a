// The worker thread that runs one sync component instance: the only place
// its code executes. It holds no authority of its own: every `store` and
// `http` import is a call to the main thread (rpc.mjs), `host.sleep` waits
// on a shared cell the main thread can wake, and WASI is empty (wasi.mjs).
// The main thread bounds its JavaScript heap (`resourceLimits`), its
// linear memory (capped at compile time) and its time (a watchdog that
// `terminate()`s this worker), see limits.mjs.
//
// Each import is wrapped so that the shared clock cells say when the guest
// is inside the host and how much guest time it has used: what the
// watchdog reads.

import { randomFillSync } from 'node:crypto';
import { workerData } from 'node:worker_threads';

import { CELL, CallerEnd, ImportFailure, TIME, monotonicUs, sharedCells } from './rpc.mjs';
import { GuestExit, emptyWasi } from './wasi.mjs';

/**
 * @type {{
 *   source: string,
 *   modules: Record<string, WebAssembly.Module>,
 *   port: MessagePort,
 *   shared: SharedArrayBuffer,
 *   task: { kind: 'run', options: object } | { kind: 'decide', args: unknown[] },
 *   logBudgetBytes: number,
 * }}
 */
const { source, modules, port, shared, task, logBudgetBytes } = workerData;
const { ints, times } = sharedCells(shared);
const host = new CallerEnd(port, ints);

// ---- the clock cells ---------------------------------------------------------------

function enter() {
  const now = monotonicUs();
  Atomics.add(times, TIME.guestUsed, now - Atomics.load(times, TIME.resumedAt));
  Atomics.store(ints, CELL.inImport, 1);
}

function leave() {
  Atomics.store(times, TIME.resumedAt, monotonicUs());
  Atomics.store(ints, CELL.inImport, 0);
}

/** `fn` as an import: its time is the host's, not the guest's. */
function imported(fn) {
  return (...args) => {
    enter();
    try {
      return fn(...args);
    } finally {
      leave();
    }
  };
}

const stopRequested = () => Atomics.load(ints, CELL.stop) === 1;

/** The guest has been told to stop: from now on the grace period runs. */
function stopSeen() {
  Atomics.compareExchange(times, TIME.stopSeenAt, 0n, monotonicUs());
}

// ---- skillsmith:sync/host ----------------------------------------------------------

let logBytes = 0;

function log(level, message) {
  // A guest that floods its log must not flood the main thread's queue.
  if (logBytes > logBudgetBytes) return;
  logBytes += message.length;
  if (logBytes > logBudgetBytes) {
    host.note('log', ['warn', `the sync component logged more than ${logBudgetBytes} bytes; the rest of its log is dropped`]);
    return;
  }
  host.note('log', [level, message]);
}

function progress(report) {
  host.note('progress', [report]);
  if (!stopRequested()) return 'proceed';
  stopSeen();
  return 'stop';
}

function sleep(ms) {
  const end = performance.now() + Number(ms);
  for (;;) {
    if (stopRequested()) {
      stopSeen();
      return 'stop';
    }
    const left = end - performance.now();
    if (left <= 0) return 'proceed';
    // Woken at once when the main thread sets the stop cell.
    Atomics.wait(ints, CELL.stop, 0, left);
  }
}

function random() {
  return randomFillSync(new BigUint64Array(1))[0];
}

// ---- skillsmith:sync/http ------------------------------------------------------------

let nextRequest = 1;

/** The `http.pending` resource: a request the main thread carries out. */
class Pending {
  #id;
  #taken = false;

  /** @param {number} id */
  constructor(id) {
    this.#id = id;
  }

  wait() {
    if (this.#taken) {
      throw new ImportFailure({ tag: 'other', val: 'this response was already taken by an earlier wait' });
    }
    this.#taken = true;
    enter();
    try {
      return host.call('wait', [this.#id]);
    } catch (e) {
      if (e instanceof ImportFailure && e.payload.tag === 'cancelled') stopSeen();
      throw e;
    } finally {
      leave();
    }
  }

  /** The guest dropped the handle: the request is abandoned if it still runs. */
  [Symbol.dispose]() {
    if (!this.#taken) host.note('drop', [this.#id]);
  }
}

function send(request) {
  const id = nextRequest++;
  host.note('send', [id, request]);
  return new Pending(id);
}

// ---- the import object ---------------------------------------------------------------

const storeCall = (method) => imported((...args) => host.call(method, args));

const wasi = emptyWasi();
const imports = {
  'skillsmith:sync/types': {},
  'skillsmith:sync/host': {
    log: imported(log),
    progress: imported(progress),
    sleep: imported(sleep),
    random: imported(random),
  },
  'skillsmith:sync/http': { send: imported(send), Pending },
  'skillsmith:sync/store': {
    readState: storeCall('readState'),
    localVersions: storeCall('localVersions'),
    registryIds: storeCall('registryIds'),
    registryRows: storeCall('registryRows'),
    beginRun: storeCall('beginRun'),
    applyPage: storeCall('applyPage'),
    finishRun: storeCall('finishRun'),
  },
  ...wasi.imports,
};

// ---- the run -------------------------------------------------------------------------

/** Every linear memory of the instance, to tell a memory-cap trap apart. */
const memories = [];
const instantiateCore = (module, importObject) => {
  const instance = new WebAssembly.Instance(module, importObject);
  for (const v of Object.values(instance.exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
  return instance;
};

/** @param {unknown} e */
function trapped(e) {
  return {
    message: e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e),
    exit: e instanceof GuestExit,
    stderr: wasi.stderrTail(),
    memoryBytes: memories.map((m) => m.buffer.byteLength),
  };
}

let outcome;
try {
  const bindings = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
  leave();
  const root = bindings.instantiate((name) => modules[name], imports, instantiateCore);
  if (task.kind === 'run') {
    try {
      outcome = { report: root.engine.run(task.options) };
    } catch (e) {
      // jco throws the export's `err` value itself (it is transpiled with
      // `noComponentErrorWrapping`): a `sync-error`, a plain `{ tag, val }`.
      // A trap, or anything of ours that escaped, is an Error.
      if (!(e instanceof Error) && typeof e?.tag === 'string') outcome = { error: e };
      else outcome = { trap: trapped(e) };
    }
  } else {
    outcome = { decision: root.schedule.decide(...task.args) };
  }
} catch (e) {
  outcome = { trap: trapped(e) };
}
enter();
host.note('finished', [outcome]);
