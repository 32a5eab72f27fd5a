// The `http` import (docs/embedding.md §4), on the main thread, outside
// the guest's worker: one allowed origin, no credential or routing headers
// from the guest, the API key added here, no redirects, a cap on the
// DECODED body (the host asks for gzip and brotli, which undici decodes;
// a small gzip body can decode to gigabytes), a timeout per request, and at
// most four requests on the network at once.
//
// `send` starts a request (or queues it behind the four) and returns at
// once; `wait` resolves when the whole body is in; `drop` abandons it;
// `cancelAll` answers every wait with `cancelled` when the sync stops.

import { readFileSync } from 'node:fs';

import { ImportFailure } from './rpc.mjs';

/** Headers the guest may not set: credentials and routing are the host's. */
const FORBIDDEN_HEADERS = new Set(['x-api-key', 'authorization', 'cookie', 'host']);

/** What this host decodes (undici's fetch does both; zstd it cannot). */
const ACCEPT_ENCODING = 'gzip, br';

/** Who is asking, for the registry's logs (the Rust host sends `skillsmith/VERSION`). */
const USER_AGENT = `skillsmith-host-node/${JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).version}`;

/**
 * @typedef {object} HttpPolicy
 * @property {number} maxBodyBytes cap on a decoded body (16 MiB)
 * @property {number} defaultTimeoutMs for `timeout-ms = 0` (30 s)
 * @property {number} maxTimeoutMs the most any request gets (60 s)
 * @property {number} maxInFlight requests on the network at once (4)
 * @property {number} maxOutstanding requests started and not yet taken;
 *   past this `send` fails (a guest that never waits)
 */

/** @type {HttpPolicy} */
export const DEFAULT_HTTP_POLICY = Object.freeze({
  maxBodyBytes: 16 * 2 ** 20,
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 60_000,
  maxInFlight: 4,
  maxOutstanding: 64,
});

/**
 * Scheme, host and port with the default port filled in, or null.
 * @param {URL} url
 */
export function originOf(url) {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return `${url.protocol}//${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * The ports the fetch standard blocks ("bad port"): Node's fetch refuses
 * to connect to them, with an error that names no code.
 */
const BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/**
 * Why `registry` cannot be a registry URL, or null. The reasons of the
 * Rust host's `Policy::for_registry`, and the ports Node's fetch refuses.
 * @param {string} registry
 */
export function registryUrlProblem(registry) {
  let url;
  try {
    url = new URL(registry);
  } catch {
    return `registry URL ${JSON.stringify(registry)} is not a valid URL`;
  }
  if (url.username || url.password) {
    return `registry URL ${JSON.stringify(registry)} is not usable: it carries a user name or password; pass the API key through SKILLSMITH_API_KEY instead`;
  }
  if (!originOf(url) || !url.hostname) {
    return `registry URL ${JSON.stringify(registry)} is not usable: only http:// and https:// URLs with a host are supported`;
  }
  if (BLOCKED_PORTS.has(Number(url.port))) {
    return `registry URL ${JSON.stringify(registry)} is not usable: Node's fetch refuses port ${url.port}, one the fetch standard blocks`;
  }
  return null;
}

const now = () => BigInt(Math.floor(performance.timeOrigin + performance.now()));

/** Thrown when the body exceeds the cap. */
class TooLarge extends Error {}

/**
 * Maps a fetch failure onto the closed `http-error` variants.
 * @param {any} e
 */
function classify(e) {
  // undici: `TypeError: fetch failed` with the socket error as `cause`.
  const causes = [];
  const codes = [];
  for (let c = e; c; c = c.cause) {
    const message = String(c.message ?? c);
    causes.push(c.code && !message.includes(c.code) ? `${message} (${c.code})` : message);
    if (c.code) codes.push(c.code);
  }
  const text = causes.join(': ');
  // No connection at all (refused, unresolvable): the guest retries these
  // only twice, quickly. Anything else broke an open connection.
  if (codes.some((c) => ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(c))) {
    return { tag: 'refused', val: text };
  }
  if (codes.some((c) => c.startsWith('ERR_SSL') || c.startsWith('ERR_TLS') || c === 'EPROTO' || c.startsWith('UNABLE_TO_') || c.startsWith('CERT_') || c === 'DEPTH_ZERO_SELF_SIGNED_CERT' || c === 'SELF_SIGNED_CERT_IN_CHAIN')) {
    return { tag: 'tls', val: text };
  }
  return { tag: 'connection', val: text };
}

/**
 * One request: its body read with a running total, so that neither a
 * lying `Content-Length` nor a compressed body can make us hold more than
 * the cap.
 * @param {{ url: string, headers: [string, string][], maxBodyBytes: number, signal: AbortSignal }} req
 */
async function fetchCapped({ url, headers, maxBodyBytes, signal }) {
  const sentAtMs = now();
  const res = await fetch(url, {
    method: 'GET',
    headers,
    // A 3xx goes back to the guest as it is: following it could leave the
    // allowed origin, with the API key.
    redirect: 'manual',
    signal,
  });
  const receivedAtMs = now();
  const declared = Number(res.headers.get('content-length') ?? NaN);
  // The declared length is the encoded one; over the cap, the decoded body
  // is too (compression does not make bodies longer in practice).
  if (declared > maxBodyBytes) throw new TooLarge();
  const chunks = [];
  let total = 0;
  if (res.body) {
    // Chunks come decoded: the cap bounds what the guest would be handed.
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > maxBodyBytes) throw new TooLarge();
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

/**
 * The `http` import for one sync: the policy, the queue and the requests
 * the guest has started.
 */
export class HttpImport {
  #origin;
  #apiKey;
  #policy;
  /** @type {Map<number, { result: Promise<object>, controller: AbortController, cancel: (r: object) => void }>} */
  #requests = new Map();
  /** Requests waiting for a slot, in order. @type {(() => void)[]} */
  #queue = [];
  #inFlight = 0;
  #stopping = false;
  /** Requests sent to the network, for reports. */
  sent = 0;

  /**
   * @param {{ registry: string, apiKey?: string, policy?: Partial<HttpPolicy> }} options
   */
  constructor({ registry, apiKey, policy = {} }) {
    const problem = registryUrlProblem(registry);
    if (problem) throw new TypeError(problem);
    this.#origin = originOf(new URL(registry));
    this.#apiKey = apiKey || undefined;
    this.#policy = { ...DEFAULT_HTTP_POLICY, ...policy };
    this.#policy.defaultTimeoutMs = Math.min(this.#policy.defaultTimeoutMs, this.#policy.maxTimeoutMs);
  }

  /** Requests on the network now, and waiting for a slot. */
  get load() {
    return { inFlight: this.#inFlight, queued: this.#queue.length };
  }

  /** The origin requests may go to, `http://host:port`. */
  get origin() {
    return this.#origin;
  }

  /**
   * `http.send`: checks the request and starts it; its result is for `wait`.
   * @param {number} id chosen by the worker
   * @param {{ url: string, headers: [string, string][], timeoutMs: number }} request
   */
  send(id, request) {
    let cancel;
    const cancelled = new Promise((r) => (cancel = r));
    const controller = new AbortController();
    const refused = this.#check(request);
    let result;
    if (refused) result = Promise.resolve({ err: { tag: 'denied', val: refused } });
    else if (this.#stopping) result = Promise.resolve({ err: { tag: 'cancelled' } });
    else if (this.#requests.size >= this.#policy.maxOutstanding) {
      result = Promise.resolve({
        err: { tag: 'other', val: `more than ${this.#policy.maxOutstanding} requests started and not waited for` },
      });
    } else result = this.#start(request, controller);
    this.#requests.set(id, { result: Promise.race([result, cancelled]), controller, cancel });
  }

  /**
   * `pending.wait`: the response, or throws the `http-error`.
   * @param {number} id
   */
  async wait(id) {
    const r = this.#requests.get(id);
    if (!r) throw new ImportFailure({ tag: 'other', val: `no request ${id} is pending` });
    const done = await r.result;
    this.#requests.delete(id);
    if (done.err) throw new ImportFailure(done.err);
    return done.ok;
  }

  /** The guest dropped a `pending`: abandon it. */
  drop(id) {
    const r = this.#requests.get(id);
    if (!r) return;
    this.#requests.delete(id);
    r.controller.abort();
  }

  /** The sync is stopping: every wait answers `cancelled`, now and later. */
  cancelAll() {
    this.#stopping = true;
    for (const r of this.#requests.values()) {
      r.cancel({ err: { tag: 'cancelled' } });
      r.controller.abort();
    }
  }

  /** Why the request is refused (the text of `denied`), or null. */
  #check(request) {
    let url;
    try {
      url = new URL(request.url);
    } catch {
      return `malformed URL ${JSON.stringify(request.url)}`;
    }
    if (url.username || url.password) return `URL ${JSON.stringify(request.url)} carries credentials`;
    const origin = originOf(url);
    if (origin !== this.#origin) {
      return origin
        ? `origin ${origin} is not allowed; this sync may only reach ${this.#origin}`
        : `URL ${JSON.stringify(request.url)} is not http(s); this sync may only reach ${this.#origin}`;
    }
    for (const [name] of request.headers) {
      if (FORBIDDEN_HEADERS.has(name.trim().toLowerCase())) {
        return `header ${JSON.stringify(name)} may not be set by the sync component (credentials and routing are the host's)`;
      }
    }
    try {
      new Headers(request.headers);
    } catch (e) {
      return `malformed request header: ${e.message}`;
    }
    return null;
  }

  /** Runs the request once a slot is free; resolves to `{ ok }` or `{ err }`. */
  async #start(request, controller) {
    await this.#acquire();
    if (controller.signal.aborted) {
      this.#release();
      return { err: { tag: 'cancelled' } };
    }
    this.sent++;
    const headers = request.headers
      .map(([n, v]) => [n.trim(), v])
      // The host negotiates the encoding: it must be one it decodes.
      .filter(([n]) => n.toLowerCase() !== 'accept-encoding');
    headers.push(['accept-encoding', ACCEPT_ENCODING]);
    if (!headers.some(([n]) => n.toLowerCase() === 'user-agent')) headers.push(['user-agent', USER_AGENT]);
    if (this.#apiKey) headers.push(['x-api-key', this.#apiKey]);
    const p = this.#policy;
    const timeoutMs = request.timeoutMs === 0 ? p.defaultTimeoutMs : Math.min(request.timeoutMs, p.maxTimeoutMs);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      return { ok: await fetchCapped({ url: request.url, headers, maxBodyBytes: p.maxBodyBytes, signal: controller.signal }) };
    } catch (e) {
      if (timedOut) return { err: { tag: 'timeout' } };
      if (e instanceof TooLarge) return { err: { tag: 'too-large', val: BigInt(p.maxBodyBytes) } };
      if (controller.signal.aborted) return { err: { tag: 'cancelled' } };
      return { err: classify(e) };
    } finally {
      clearTimeout(timer);
      // A body left unread (too large) is abandoned with its connection.
      controller.abort();
      this.#release();
    }
  }

  /** Takes one of the `maxInFlight` slots, waiting in line for it. */
  async #acquire() {
    if (this.#inFlight < this.#policy.maxInFlight) {
      this.#inFlight++;
      return;
    }
    // `#release` hands its slot over: the count stays as it is.
    await new Promise((r) => this.#queue.push(r));
  }

  #release() {
    const next = this.#queue.shift();
    if (next) next();
    else this.#inFlight--;
  }
}
