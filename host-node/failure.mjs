// How a sync fails, as one closed kind: the CLI's exit code, the thing the
// user should do and the history's failure kind all derive from it, never
// from a message's text. The kinds, codes and actions are the Rust host's
// (`guest/src/domain.rs` FailureKind, `host-cli/src/failure.rs`), so that
// both CLIs on one catalogue answer alike.

/**
 * @typedef {'usage' | 'unreachable' | 'tls' | 'redirected' | 'not-a-registry' | 'unauthorised'
 *   | 'quota' | 'rate-limited' | 'protocol' | 'too-large' | 'store-busy' | 'store-corrupt'
 *   | 'no-space' | 'read-only' | 'busy' | 'superseded' | 'cancelled' | 'component' | 'internal'} FailureKind
 */

/** @type {Record<FailureKind, { exit: number, action: string }>} */
const KINDS = {
  usage: { exit: 2, action: 'correct the command as the message says, and run it again' },
  unreachable: { exit: 3, action: 'check the network connection, then try again later' },
  tls: { exit: 3, action: 'check that the registry URL is right and the system clock is correct' },
  redirected: {
    exit: 3,
    action: 'check the registry URL; a redirect to a sign-in page means the network wants a login first',
  },
  'not-a-registry': { exit: 3, action: 'check the registry URL: it ends in /functions/v1 on the live registry' },
  unauthorised: { exit: 4, action: 'set SKILLSMITH_API_KEY to a valid API key' },
  quota: { exit: 4, action: 'wait until the quota resets, or move to a plan with a larger one' },
  'rate-limited': { exit: 4, action: 'try again later, or use an API key with a higher rate limit' },
  protocol: { exit: 5, action: "try again later, and tell the registry's operators if it persists" },
  'too-large': { exit: 5, action: "tell the registry's operators; the cap protects this machine's memory" },
  'store-busy': { exit: 7, action: 'try again once the other program has finished with the catalogue' },
  'store-corrupt': { exit: 6, action: 'restore a backup of the catalogue, or delete it and sync again' },
  'no-space': { exit: 6, action: 'free disk space, then sync again' },
  'read-only': { exit: 6, action: 'make the catalogue and its folder writable' },
  busy: { exit: 7, action: 'wait for the other sync to finish' },
  superseded: { exit: 7, action: 'nothing: the catalogue is current' },
  cancelled: { exit: 9, action: 'sync again to finish; what was applied is kept' },
  component: { exit: 8, action: 'rebuild the component with scripts/build-component.sh, and report it if it persists' },
  internal: { exit: 1, action: 'try again, and report it if it persists' },
};

/** Exit code of a failure without a kind. */
export const EXIT_OTHER = 1;

/** Exit code of a sync stopped by a signal (its committed pages are kept). */
export const EXIT_CANCELLED = KINDS.cancelled.exit;

/**
 * @param {FailureKind} kind
 * @returns {number}
 */
export function exitCode(kind) {
  return KINDS[kind]?.exit ?? EXIT_OTHER;
}

/**
 * The one thing for the user to do.
 * @param {FailureKind} kind
 */
export function actionFor(kind) {
  return KINDS[kind]?.action ?? KINDS.internal.action;
}

/**
 * Whether a run that ended this way counts as a failed attempt for the
 * schedule (a stopped run, or one that found another at work, does not).
 * @param {FailureKind} kind
 */
export function countsAsFailure(kind) {
  return !['cancelled', 'busy', 'superseded'].includes(kind);
}

/**
 * A failure of this host, with its kind. `action` replaces the kind's
 * when this failure has a more precise way out.
 */
export class HostFailure extends Error {
  /**
   * @param {FailureKind} kind
   * @param {string} message what happened
   * @param {{ action?: string, cause?: unknown }} [more]
   */
  constructor(kind, message, { action, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'HostFailure';
    this.kind = kind;
    this.action = action ?? actionFor(kind);
  }
}

// ---- the guest's own errors (WIT `sync-error`, `http-error`, `store-error`) ----

/**
 * @param {{ tag: string, val?: unknown }} e an `http-error`
 * @returns {FailureKind}
 */
function httpErrorKind(e) {
  switch (e.tag) {
    case 'tls':
      return 'tls';
    case 'too-large':
      return 'too-large';
    // The guest asked for something the host does not grant: a bug in the
    // component, not in the network.
    case 'denied':
      return 'component';
    case 'cancelled':
      return 'cancelled';
    default:
      return 'unreachable';
  }
}

/**
 * @param {{ tag: string, val?: unknown }} e a `store-error`
 * @returns {FailureKind}
 */
export function storeErrorKind(e) {
  switch (e.tag) {
    case 'busy':
      return 'store-busy';
    case 'run-open':
      return 'busy';
    case 'no-space':
      return 'no-space';
    case 'read-only':
      return 'read-only';
    // An invalid request is the component's bug.
    case 'invalid':
      return 'component';
    default:
      return 'store-corrupt';
  }
}

/**
 * The kind of a `sync-error`.
 * @param {{ tag: string, val?: any }} e
 * @returns {FailureKind}
 */
export function syncErrorKind(e) {
  switch (e.tag) {
    case 'unreachable':
      return httpErrorKind(e.val);
    case 'unauthorized':
      return 'unauthorised';
    case 'quota-exceeded':
      return 'quota';
    case 'rate-limited':
      return 'rate-limited';
    case 'registry':
      return 'unreachable';
    case 'redirected':
      return 'redirected';
    case 'not-a-registry':
      return 'not-a-registry';
    case 'protocol':
      return 'protocol';
    case 'store':
      return storeErrorKind(e.val);
    case 'busy':
      return 'busy';
    default:
      return 'component';
  }
}

/** @param {{ tag: string, val?: any }} e */
function describeHttpError(e) {
  switch (e.tag) {
    case 'timeout':
      return 'the request timed out';
    case 'refused':
      return `no connection could be made (${e.val})`;
    case 'tls':
      return `the TLS handshake failed (${e.val})`;
    case 'connection':
      return `the connection broke (${e.val})`;
    case 'too-large':
      return `a response was larger than ${Math.ceil(Number(e.val) / 2 ** 20)} MiB`;
    case 'denied':
      return `the host refused the request: ${e.val}`;
    case 'cancelled':
      return 'the request was abandoned: the sync is stopping';
    default:
      return String(e.val ?? e.tag);
  }
}

/** @param {{ tag: string, val?: any }} e */
export function describeStoreError(e) {
  switch (e.tag) {
    case 'busy':
      return 'the catalogue stayed locked by another program';
    case 'run-open':
      return `another sync is running on this catalogue (${e.val})`;
    case 'invalid':
      return `invalid store request: ${e.val}`;
    case 'no-space':
      return 'the disk holding the catalogue is full';
    case 'read-only':
      return 'the catalogue or its folder is read-only';
    case 'corrupt':
      return `the catalogue is damaged (${e.val})`;
    default:
      return String(e.val ?? e.tag);
  }
}

/**
 * What happened, for people (the Rust host's `SyncError` texts).
 * @param {{ tag: string, val?: any }} e a `sync-error`
 */
export function describeSyncError(e) {
  switch (e.tag) {
    case 'unreachable':
      return ['too-large', 'tls'].includes(e.val.tag)
        ? describeHttpError(e.val)
        : `could not reach the registry: ${describeHttpError(e.val)}`;
    case 'redirected':
      return `the registry URL answered with a redirect to ${e.val}, and redirects are not followed`;
    case 'protocol':
      return `the registry broke the protocol: ${e.val}`;
    case 'store':
      return `the local catalogue failed: ${describeStoreError(e.val)}`;
    case 'busy':
      return 'another sync is already running on this catalogue';
    default:
      return String(e.val ?? e.tag);
  }
}

/**
 * A `sync-error` as a failure of this host.
 * @param {{ tag: string, val?: any }} e
 */
export function fromSyncError(e) {
  return new HostFailure(syncErrorKind(e), describeSyncError(e));
}
