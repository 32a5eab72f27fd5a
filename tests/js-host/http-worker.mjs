// The HTTP side of the JavaScript host, on a worker thread.
//
// The component's imports are synchronous (`pending.wait()` must return the
// response), but `fetch` is asynchronous. The main thread therefore blocks
// in `Atomics.wait` while this worker, which has its own event loop, runs
// the fetches. Each result is posted on a MessagePort that the main thread
// drains with `receiveMessageOnPort` (which needs no event loop), and then
// announced by bumping a shared counter and `Atomics.notify`.
//
// Policy (origin, forbidden headers) is checked on the main thread before a
// request gets here; this side enforces what needs the response: no
// redirects, the body cap, and the timeout.

import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ port: MessagePort, signal: Int32Array }} */
const { port, signal } = workerData;

/** In-flight requests by id, so that a dropped `pending` can abort its own. */
const inFlight = new Map();

parentPort.on('message', (msg) => {
  if (msg.abort !== undefined) {
    inFlight.get(msg.abort)?.abort();
    return;
  }
  void perform(msg);
});

/**
 * Runs one request and reports its result, whatever happens.
 * @param {{ id: number, url: string, headers: [string, string][], timeoutMs: number, maxBodyBytes: number }} req
 */
async function perform(req) {
  const controller = new AbortController();
  inFlight.set(req.id, controller);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, req.timeoutMs);
  let result;
  try {
    result = { ok: await fetchCapped(req, controller) };
  } catch (e) {
    result = { err: timedOut ? { tag: 'timeout' } : classify(e) };
  } finally {
    clearTimeout(timer);
    inFlight.delete(req.id);
  }
  port.postMessage({ id: req.id, ...result });
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

/** Thrown when the body exceeds the cap. */
class TooLarge extends Error {}

async function fetchCapped(req, controller) {
  // The contract's monotonic clock (`sent-at-ms`, `received-at-ms`): this
  // worker's `performance.now()`, whose origin is the worker's start.
  const sentAtMs = BigInt(Math.floor(performance.now()));
  const res = await fetch(req.url, {
    method: 'GET',
    headers: req.headers,
    // A 3xx goes back to the guest as it is: following it could leave the
    // allowed origin, with the API key.
    redirect: 'manual',
    signal: controller.signal,
  });
  const receivedAtMs = BigInt(Math.floor(performance.now()));
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > req.maxBodyBytes) {
    controller.abort();
    throw new TooLarge();
  }
  // Read with a running total, so an undeclared or lying length cannot make
  // us buffer more than the cap.
  const chunks = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > req.maxBodyBytes) {
        controller.abort();
        throw new TooLarge();
      }
      chunks.push(chunk);
    }
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.byteLength;
  }
  // `Headers` iterates with lower-case names, as the contract wants.
  return { status: res.status, headers: [...res.headers], body, sentAtMs, receivedAtMs };
}

/** Maps a fetch failure onto the closed `http-error` variants. */
function classify(e) {
  if (e instanceof TooLarge) return { tag: 'too-large', val: 'cap' };
  // undici: `TypeError: fetch failed` with the socket error as `cause`.
  const causes = [];
  for (let c = e; c; c = c.cause) causes.push(c.code ? `${c.message} (${c.code})` : String(c.message ?? c));
  const text = causes.join(': ');
  if (e?.name === 'AbortError') return { tag: 'other', val: `abandoned: ${text}` };
  // No connection at all (refused, unresolvable): the guest retries these
  // only twice, quickly. Anything else broke an open connection.
  const codes = [];
  for (let c = e; c; c = c.cause) if (c.code) codes.push(c.code);
  if (codes.some((c) => ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(c))) {
    return { tag: 'refused', val: text };
  }
  if (codes.some((c) => c.startsWith('ERR_SSL') || c.startsWith('ERR_TLS') || c === 'EPROTO')) {
    return { tag: 'tls', val: text };
  }
  return { tag: 'connection', val: text };
}
