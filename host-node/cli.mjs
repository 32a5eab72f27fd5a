#!/usr/bin/env node
// `node host-node/cli.mjs sync ...`: the command line of the Node host.
// Parses the flags (the Rust CLI's names, defaults and environment
// variables), runs one sync (sync.mjs), prints the report (or with --json
// one JSON document on stdout), and ends with the Rust CLI's exit codes: 0
// on success, 9 when stopped by a signal (what was applied is kept), and
// the failure kind's code otherwise, after one message saying what
// happened and one thing to do. A closed stdout (`| head`) is not a
// failure.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { EXIT_CANCELLED, HostFailure, actionFor, exitCode } from './failure.mjs';
import { WIT_PACKAGE } from './grants.mjs';
import { sync } from './sync.mjs';

const DEFAULT_REGISTRY = 'https://api.skillsmith.app/functions/v1';

const USAGE = `Usage: node host-node/cli.mjs sync [OPTIONS]

Sync the local Skillsmith catalogue with the registry, running the sync
component (${WIT_PACKAGE}) in a sandboxed worker.

Options:
  --db PATH             SQLite catalogue [env SKILLSMITH_DB; default ~/.skillsmith/skills.db,
                        the file the skillsmith CLI uses]
  --registry URL        base URL of the registry API [env SKILLSMITH_API_URL;
                        default ${DEFAULT_REGISTRY}]
  --api-key KEY         sent as X-API-Key, to the registry only [env SKILLSMITH_API_KEY]
  --force               full resync: refetch everything, remove what the registry dropped
  --dry-run             show what a sync would change without writing anything
  --json                print the report (or the error) as JSON on stdout
  --mode feed|search    protocol to use instead of discovering it
  --page-size N         skills per request (search: at most 100; feed: at most 1000)
  --retry-budget SECS   give up retrying a failing registry after this much waiting [120]
  --timeout SECS        give up on a single request after this long [30]
  --component PATH      the sync component to run [default: target/skillsmith-sync.wasm
                        of this checkout]
  -v, --verbose         log more of the component's messages (-v info, -vv debug)
  -h, --help            print this help
  -V, --version         print the version

Exit codes: 0 success, 1 other error, 2 usage error, 3 registry unreachable or failing,
4 not authorised or quota used up, 5 registry sent invalid data, 6 local database error,
7 another sync is in progress, 8 sync component failed, 9 sync cancelled.`;

// ---- output --------------------------------------------------------------------

/**
 * Text from the registry or the component, safe on a terminal: control
 * characters (escape sequences among them) are shown escaped.
 * @param {string} s
 */
function printable(s) {
  // eslint-disable-next-line no-control-regex
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

/** BigInts (the WIT u64s) as numbers, for JSON. */
const plain = (_, v) => (typeof v === 'bigint' ? Number(v) : v);

/** Writes to stdout; a reader that went away (`| head`) ends us quietly. */
function out(text) {
  process.stdout.write(`${text}\n`);
}

process.stdout.on('error', (e) => {
  if (e?.code === 'EPIPE') process.exit(0);
  throw e;
});

/** The coverage line of a search-mode report (the Rust host's `Coverage::summary`). */
function coverageSummary(c) {
  const reached = Number(c.reached);
  if (c.registryTotal === undefined) {
    return `the search API reached ${reached} skills; the registry does not say how many it has, so completeness was not checked`;
  }
  const total = Number(c.registryTotal);
  const missing = Math.max(0, total - reached);
  if (missing === 0) return `the search API reached all ${total} skills the registry counts`;
  const why = c.unfilterableTiers.length ? ` (no score, no category, and a tier it cannot filter on: ${c.unfilterableTiers.join(', ')})` : '';
  return `the search API reached ${reached} of the registry's ${total} skills; ${missing} cannot be reached through it${why}`;
}

/** The report as the Rust CLI's `--json` prints it, with this host's facts. */
function reportJson(result, args) {
  const r = result.report;
  const c = r.coverage;
  return {
    status: r.cancelled ? 'cancelled' : 'success',
    backend: 'component',
    host: 'node',
    dry_run: result.dryRun,
    forced: args.force,
    mode: r.mode,
    added: r.added,
    updated: r.updated,
    unchanged: r.unchanged,
    removed: r.removed,
    skipped: r.skipped,
    pages: r.pages,
    requests: r.requests,
    warnings: r.warnings,
    last_sync_at: r.lastSyncAt ?? null,
    cancelled: r.cancelled,
    coverage: c
      ? {
          registry_total: c.registryTotal ?? null,
          reached: c.reached,
          unreachable: c.registryTotal === undefined ? null : Math.max(0, Number(c.registryTotal) - Number(c.reached)),
          unfilterable_tiers: c.unfilterableTiers,
          summary: coverageSummary(c),
        }
      : null,
    duration_ms: result.durationMs,
    sqlite: result.binding,
    component: result.component,
  };
}

/** The report for people (the Rust CLI's wording). */
function reportText(result, args, registry) {
  const r = result.report;
  const lines = [];
  const verb = result.dryRun ? 'Dry run against' : 'Synced from';
  lines.push(`${verb} ${registry} (${r.mode} mode) in ${(result.durationMs / 1000).toFixed(2)} s`);
  const would = result.dryRun ? ' (would be)' : '';
  lines.push(`  added ${r.added}, updated ${r.updated}, unchanged ${r.unchanged}, removed ${r.removed}, skipped ${r.skipped}${would}`);
  lines.push(`  ${r.pages} pages, ${r.requests} requests`);
  if (r.coverage) lines.push(`  ${printable(coverageSummary(r.coverage))}`);
  if (r.lastSyncAt && !result.dryRun && !r.cancelled) lines.push(`  catalogue current as of ${r.lastSyncAt} (registry time)`);
  if (r.cancelled) lines.push('  cancelled: pages applied so far are kept; run the sync again to finish');
  if (r.warnings.length) {
    lines.push(`  ${r.warnings.length} warning(s):`);
    for (const w of r.warnings.slice(0, 20)) lines.push(`    - ${printable(w)}`);
    if (r.warnings.length > 20) lines.push(`    ... and ${r.warnings.length - 20} more (--json lists them all)`);
  }
  return lines.join('\n');
}

/**
 * Prints a failure: `error:` and `to fix:` on stderr, and with --json the
 * document on stdout too. Returns the exit code.
 * @param {HostFailure} failure
 * @param {boolean} json
 */
function reportFailure(failure, json) {
  const code = exitCode(failure.kind);
  if (json) {
    out(JSON.stringify({ error: { kind: failure.kind, message: failure.message, action: failure.action, exit_code: code } }, null, 2));
  }
  process.stderr.write(`error: ${printable(failure.message)}\n  to fix: ${printable(failure.action)}\n`);
  return code;
}

// ---- progress --------------------------------------------------------------------

/** Plain progress lines are written at most this often when stderr is not a terminal. */
const LINE_INTERVAL_MS = 2000;

/** Progress on stderr: one line kept current on a terminal, a line every 2 s elsewhere. */
function progressPrinter() {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  const show = (p) => {
    const total = p.total === undefined ? '' : ` of ${p.total}`;
    const wait = Number(p.waitingMs) > 0 ? `, waiting ${(Number(p.waitingMs) / 1000).toFixed(1)} s (${p.waitingFor})` : '';
    return `${p.phase}: ${p.done}${total} skills, ${p.pages} pages${wait}`;
  };
  return {
    progress(p) {
      const now = Date.now();
      if (tty) {
        process.stderr.write(`\r\x1b[2K${show(p)}`);
        shown = true;
      } else if (now - last >= LINE_INTERVAL_MS || Number(p.waitingMs) > 0) {
        process.stderr.write(`${show(p)}\n`);
        last = now;
      }
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[2K');
      shown = false;
    },
  };
}

// ---- the command -----------------------------------------------------------------

/** @param {string[]} argv */
function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      db: { type: 'string' },
      registry: { type: 'string' },
      'api-key': { type: 'string' },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      mode: { type: 'string' },
      'page-size': { type: 'string' },
      'retry-budget': { type: 'string', default: '120' },
      timeout: { type: 'string', default: '30' },
      component: { type: 'string' },
      verbose: { type: 'boolean', short: 'v', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'V', default: false },
    },
  });
  return { values, positionals };
}

const usage = (message) => new HostFailure('usage', message, { action: 'run with --help to see the flags' });

/** A whole number in `min..=max`, from flag `name`. */
function integer(name, text, min, max) {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw usage(`--${name} takes a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** The catalogue path: --db, SKILLSMITH_DB, or the Rust CLI's default. */
function catalogueFile(flag) {
  const given = flag ?? process.env.SKILLSMITH_DB;
  if (given) return resolve(given);
  const home = homedir();
  if (!home) throw usage('no home directory for the default catalogue; pass --db PATH or set SKILLSMITH_DB');
  return join(home, '.skillsmith', 'skills.db');
}

async function main(argv) {
  const wantsJson = argv.includes('--json');
  let parsed;
  try {
    parsed = parse(argv);
  } catch (e) {
    // parseArgs explains how to pass a positional that starts with '-' too;
    // its first sentence is what went wrong.
    return reportFailure(usage(String(e.message).split('. ')[0]), wantsJson);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
    out(`skillsmith-host-node ${pkg.version} (${WIT_PACKAGE}, Node ${process.version})`);
    return 0;
  }
  const json = values.json;
  let registry;
  try {
    if (positionals.length !== 1 || positionals[0] !== 'sync') {
      throw usage(positionals.length === 0 ? 'no command given: the command is `sync`' : `unknown command ${JSON.stringify(positionals.join(' '))}: the command is \`sync\``);
    }
    const mode = { feed: 'changes-feed', search: 'search', undefined }[values.mode];
    if (values.mode !== undefined && mode === undefined) throw usage(`--mode takes feed or search, not ${JSON.stringify(values.mode)}`);
    registry = values.registry ?? process.env.SKILLSMITH_API_URL ?? DEFAULT_REGISTRY;
    const request = {
      dbPath: catalogueFile(values.db),
      registry,
      apiKey: values['api-key'] ?? process.env.SKILLSMITH_API_KEY ?? undefined,
      force: values.force,
      dryRun: values['dry-run'],
      mode,
      pageSize: values['page-size'] === undefined ? 0 : integer('page-size', values['page-size'], 1, 1000),
      retryBudgetMs: integer('retry-budget', values['retry-budget'], 0, 86_400) * 1000,
      timeoutMs: integer('timeout', values.timeout, 1, 3600) * 1000,
      componentPath: values.component === undefined ? undefined : resolve(values.component),
    };
    const verbosity = values.verbose.length;
    const shown = ['warn', 'error', ...(verbosity >= 1 ? ['info'] : []), ...(verbosity >= 2 ? ['debug'] : []), ...(verbosity >= 3 ? ['trace'] : [])];
    const progress = json ? null : progressPrinter();
    const stop = stopOnSignals(progress);
    let result;
    try {
      result = await sync({
        ...request,
        signal: stop,
        onProgress: (p) => progress?.progress(p),
        onLog: (level, message) => {
          if (!shown.includes(level)) return;
          progress?.done();
          process.stderr.write(`[component ${level}] ${printable(message)}\n`);
        },
      });
    } finally {
      progress?.done();
    }
    out(json ? JSON.stringify(reportJson(result, values), plain, 2) : reportText(result, values, registry));
    return result.report.cancelled ? EXIT_CANCELLED : 0;
  } catch (e) {
    const failure =
      e instanceof HostFailure
        ? e
        : new HostFailure('internal', `the Node host failed: ${e?.stack ?? e}`, { action: actionFor('internal') });
    return reportFailure(failure, json);
  }
}

/**
 * The first SIGINT, SIGTERM or SIGHUP stops the sync at the next page
 * boundary (what was applied is kept, the run is recorded as cancelled);
 * the second leaves at once (SQLite keeps the file consistent; the lease
 * is taken over by the next sync).
 */
function stopOnSignals(progress) {
  const controller = new AbortController();
  let signals = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (++signals === 1) {
        progress?.done();
        process.stderr.write('\nstopping after the current page (signal again to quit at once)\n');
        controller.abort();
      } else {
        process.exit(130);
      }
    });
  }
  return controller.signal;
}

// Exit at once: idle keep-alive connections need not hold the process (stdout and
// stderr are synchronous for files and pipes on Linux, so nothing is lost).
process.exit(await main(process.argv.slice(2)));
