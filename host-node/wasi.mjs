// The WASI 0.2 interfaces the component imports (docs/embedding.md §2),
// with nothing in them: an empty environment and argument list, no initial
// directory, a closed stdin, stdout discarded, stderr kept as a bounded
// tail (it carries the panic message when the guest traps), no terminals,
// and an `exit` that traps the guest instead of ending the process. Every
// stream is always ready, so polls never block.
//
// Written here rather than taken from @bytecodealliance/preview2-shim,
// whose stdio are the process's own: a sandbox must not share them.

/** Bytes of stderr kept (the Rust host keeps 16 KiB too). */
export const STDERR_TAIL_BYTES = 16 * 1024;

/** The guest asked `wasi:cli/exit` to end the process: a trap instead. */
export class GuestExit extends Error {}

/** A `stream-error.closed`, as jco expects an `err` to be thrown. */
function closed() {
  const e = new Error('stream closed');
  e.payload = { tag: 'closed' };
  return e;
}

/** `wasi:io/error.error`: never produced, but the type must exist. */
class IoError {
  toDebugString() {
    return 'no error';
  }
}

/** `wasi:io/poll.pollable`: always ready. */
class Pollable {
  ready() {
    return true;
  }

  block() {}
}

/** `wasi:io/streams.input-stream`: at its end from the start. */
class InputStream {
  read() {
    throw closed();
  }

  blockingRead() {
    throw closed();
  }

  skip() {
    throw closed();
  }

  blockingSkip() {
    throw closed();
  }

  subscribe() {
    return new Pollable();
  }
}

/** How much one `check-write` lets the guest write. */
const WRITE_BUDGET = 1n << 20n;

/** `wasi:io/streams.output-stream` over a sink function. */
class OutputStream {
  #sink;

  /** @param {(bytes: Uint8Array) => void} sink */
  constructor(sink) {
    this.#sink = sink;
  }

  checkWrite() {
    return WRITE_BUDGET;
  }

  write(contents) {
    this.#sink(contents);
  }

  blockingWriteAndFlush(contents) {
    this.#sink(contents);
  }

  flush() {}

  blockingFlush() {}

  writeZeroes(n) {
    this.#sink(new Uint8Array(Number(n > WRITE_BUDGET ? WRITE_BUDGET : n)));
  }

  blockingWriteZeroesAndFlush(n) {
    this.writeZeroes(n);
  }

  splice() {
    throw closed();
  }

  blockingSplice() {
    throw closed();
  }

  subscribe() {
    return new Pollable();
  }
}

class TerminalInput {}
class TerminalOutput {}

/** The last `STDERR_TAIL_BYTES` written to the guest's stderr. */
class StderrTail {
  #buf = new Uint8Array(STDERR_TAIL_BYTES);
  #len = 0;

  /** @param {Uint8Array} bytes */
  push(bytes) {
    if (bytes.length >= STDERR_TAIL_BYTES) {
      this.#buf.set(bytes.subarray(bytes.length - STDERR_TAIL_BYTES));
      this.#len = STDERR_TAIL_BYTES;
      return;
    }
    const keep = Math.min(this.#len, STDERR_TAIL_BYTES - bytes.length);
    this.#buf.copyWithin(0, this.#len - keep, this.#len);
    this.#buf.set(bytes, keep);
    this.#len = keep + bytes.length;
  }

  text() {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.#buf.subarray(0, this.#len));
  }
}

/**
 * The WASI part of the import object, and the stderr tail it fills.
 * @returns {{ imports: Record<string, object>, stderrTail: () => string }}
 */
export function emptyWasi() {
  const stderr = new StderrTail();
  const stdin = new InputStream();
  const stdout = new OutputStream(() => {});
  const stderrStream = new OutputStream((bytes) => stderr.push(bytes));
  const imports = {
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': {
      Pollable,
      poll: (list) => Uint32Array.from(list.keys()),
    },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:cli/environment': {
      getEnvironment: () => [],
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status) => {
        throw new GuestExit(`the sync component called wasi:cli/exit (${status?.tag ?? status})`);
      },
      exitWithCode: (code) => {
        throw new GuestExit(`the sync component called wasi:cli/exit with code ${code}`);
      },
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderrStream },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
  };
  return { imports, stderrTail: () => stderr.text() };
}
