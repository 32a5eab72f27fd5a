// The call channel between the guest's worker and the main thread.
//
// The component's imports are synchronous (`store.apply-page` and
// `pending.wait()` must return their result), while the authority behind
// them, the SQLite catalogue and `fetch`, lives on the main thread, outside
// the worker that runs untrusted code. So a call from the worker posts a
// message and blocks in `Atomics.wait`; the main thread answers on the same
// MessagePort and bumps a shared counter; the worker reads the answer with
// `receiveMessageOnPort`, which needs no event loop. One-way notes (`send`
// of a request, log lines, progress) are posted without waiting.
//
// The same SharedArrayBuffer carries the clock cells the main thread's
// watchdog reads (limits.mjs): when the guest last came back from an
// import, how much guest time it has used, and whether it is inside one.

import { receiveMessageOnPort } from 'node:worker_threads';

/** Cells of the shared Int32 view. */
export const CELL = Object.freeze({
  /** Bumped by the main thread after each answer. */
  answered: 0,
  /** 1 once the host asks the guest to stop (sleep wakes on it). */
  stop: 1,
  /** 1 while the guest is inside an import. */
  inImport: 2,
});

/** Cells of the shared BigInt64 view, in microseconds on `monotonicUs()`. */
export const TIME = Object.freeze({
  /** When the guest last resumed (run start, or return from an import). */
  resumedAt: 0,
  /** Guest time used before `resumedAt`. */
  guestUsed: 1,
  /** When an import first answered `stop` or `cancelled`; 0 before. */
  stopSeenAt: 2,
});

const INT_CELLS = 4;
const TIME_CELLS = 4;

/**
 * Microseconds on a clock every thread of this process shares and that
 * never goes back: each thread's `performance.now()` counts from its own
 * start, and `timeOrigin` places that start on one common scale.
 * @returns {bigint}
 */
export function monotonicUs() {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/**
 * The shared memory of one run: created by the main thread, handed to the
 * worker in `workerData`.
 * @returns {{ ints: Int32Array, times: BigInt64Array, buffer: SharedArrayBuffer }}
 */
export function sharedCells(buffer = new SharedArrayBuffer(INT_CELLS * 4 + TIME_CELLS * 8)) {
  return {
    buffer,
    ints: new Int32Array(buffer, 0, INT_CELLS),
    times: new BigInt64Array(buffer, INT_CELLS * 4, TIME_CELLS),
  };
}

/**
 * The worker's end: blocking calls and one-way notes.
 */
export class CallerEnd {
  #port;
  #ints;
  #nextId = 1;

  /**
   * @param {MessagePort} port
   * @param {Int32Array} ints the shared Int32 view
   */
  constructor(port, ints) {
    this.#port = port;
    this.#ints = ints;
  }

  /**
   * Calls `method` on the main thread and blocks until it answers.
   * Returns the answer's `ok` value or throws its `err` as a payload-bearing
   * error (so that jco turns it into the import's `err` case).
   * @param {string} method
   * @param {unknown[]} args
   */
  call(method, args) {
    const id = this.#nextId++;
    this.#port.postMessage({ id, method, args });
    for (;;) {
      // Read the counter before looking, so an answer posted in between is
      // not slept through.
      const seen = Atomics.load(this.#ints, CELL.answered);
      const m = receiveMessageOnPort(this.#port);
      if (m) {
        const answer = m.message;
        if (answer.id !== id) throw new Error(`host answered call ${answer.id} while call ${id} was waiting`);
        if ('err' in answer) throw new ImportFailure(answer.err);
        return answer.ok;
      }
      Atomics.wait(this.#ints, CELL.answered, seen);
    }
  }

  /**
   * Posts a one-way note; nothing comes back.
   * @param {string} method
   * @param {unknown[]} args
   */
  note(method, args) {
    this.#port.postMessage({ id: 0, method, args });
  }
}

/**
 * An import's `err` case: jco turns an exception with an own `payload`
 * into the `err` of the import's `result`; any other exception traps.
 */
export class ImportFailure extends Error {
  /** @param {{ tag: string, val?: unknown }} payload */
  constructor(payload) {
    super(payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

/**
 * The main thread's end: dispatches calls to `handlers` and answers them.
 * A handler may be async (an HTTP wait); it returns the `ok` value or
 * throws an `ImportFailure` for an `err`. Anything else it throws is a host
 * fault, passed to `onFault` (the run is then ended).
 */
export class ServerEnd {
  #port;
  #ints;
  #handlers;
  #onFault;
  #closed = false;

  /**
   * @param {MessagePort} port
   * @param {Int32Array} ints
   * @param {Record<string, (...args: any[]) => unknown>} handlers
   * @param {(method: string, error: unknown) => void} onFault
   */
  constructor(port, ints, handlers, onFault) {
    this.#port = port;
    this.#ints = ints;
    this.#handlers = handlers;
    this.#onFault = onFault;
    port.on('message', (message) => void this.#dispatch(message));
  }

  /**
   * Handles what the worker posted and has not been delivered yet: its
   * `exit` event can overtake the last messages on the port.
   */
  drain() {
    for (let m; !this.#closed && (m = receiveMessageOnPort(this.#port)); ) void this.#dispatch(m.message);
  }

  async #dispatch({ id, method, args }) {
    const handler = Object.hasOwn(this.#handlers, method) ? this.#handlers[method] : undefined;
    if (!handler) {
      this.#onFault(method, new Error(`the guest's worker called an unknown host method ${JSON.stringify(method)}`));
      return;
    }
    let answer;
    try {
      answer = { id, ok: await handler(...args) };
    } catch (e) {
      if (!(e instanceof ImportFailure)) {
        this.#onFault(method, e);
        return;
      }
      answer = { id, err: e.payload };
    }
    if (id !== 0) this.#answer(answer);
  }

  #answer(answer) {
    if (this.#closed) return;
    // A response body goes across without a copy.
    const body = answer.ok?.body;
    const own = body instanceof Uint8Array && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    this.#port.postMessage(answer, own ? [body.buffer] : []);
    Atomics.add(this.#ints, CELL.answered, 1);
    Atomics.notify(this.#ints, CELL.answered);
  }

  close() {
    this.#closed = true;
    this.#port.close();
  }
}
