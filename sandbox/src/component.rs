//! Loading and running the sync component under wasmtime, confined.
//!
//! One process-wide [`Engine`] with epoch interruption, ticked by a thread
//! that runs only while guest code may be executing. The embedded component
//! is compiled once per machine and cached as
//! `<cache dir>/skillsmith-sync-<sha256(wasm + engine hash)>.cwasm`, written
//! atomically. Each run gets a fresh [`Store`] with:
//! - WASI with nothing in it: no preopens, env, args, sockets or inherited
//!   stdio; the guest's stderr goes to a bounded in-memory tail that is shown
//!   when the guest traps (a panic message);
//! - a memory cap ([`ComponentLimits::memory_bytes`]);
//! - time budgets ([`crate::budget`]): on guest code between two imports,
//!   on guest code over the whole run, on the whole run, and on the time a
//!   guest keeps going after the host asked it to stop; time spent in the
//!   host (HTTP, SQLite, sleeps) counts only towards the whole run;
//! - only the WASI the standard library needs to start ([`crate::grants`]):
//!   a component importing clocks, random, files or sockets is refused.
//!
//! A trap is a typed [`ComponentError::Trap`]; the store keeps its last
//! committed page (the caller closes the history run).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use skillsmith_guest::domain::{
    self, Decision, ScheduleConfig, SyncError, SyncOptions, SyncReport,
};
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::skillsmith::sync::{
    host as wit_host, http as wit_http, store as wit_store, types as wit_types,
};
use crate::bindings::{Sync as SyncWorld, SyncPre};
use crate::budget::{Budgets, Exceeded, RunBudget};
use crate::grants;
use crate::pending::PendingSlot;
use skillsmith_guest::convert::Convert;

/// The WIT package (and so interface versions) this host implements.
pub const WIT_PACKAGE: &str = "skillsmith:sync@0.2.0";

/// The export a component must have to be run by this host.
pub const ENGINE_EXPORT: &str = "skillsmith:sync/engine@0.2.0";

/// Environment variable naming the compiled-component cache directory.
pub const CACHE_DIR_ENV: &str = "SKILLSMITH_CACHE_DIR";

/// The component built from `guest/` by `build.rs` (empty when that build
/// failed; see [`ComponentError::NotEmbedded`]).
static EMBEDDED_WASM: &[u8] = include_bytes!(env!("SKILLSMITH_GUEST_WASM"));

/// Epoch tick period: the resolution of the guest run-time cap.
const TICK: Duration = Duration::from_millis(10);

/// Deadline checks happen every this many ticks (100 ms).
const TICKS_PER_CHECK: u64 = 10;

/// Resource limits of one component run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentLimits {
    /// Most linear memory the guest may have, in bytes.
    pub memory_bytes: usize,
    /// Most wall time the guest may run without calling an import.
    pub max_guest_run: Duration,
    /// Most wall time the guest may spend in its own code over a whole run
    /// (imports excluded): stops a guest that loops through cheap imports.
    pub max_guest_total: Duration,
    /// Most wall time a whole run may take, imports included.
    pub max_run: Duration,
    /// How much of the guest's stderr is kept (its tail) for error messages.
    pub stderr_tail_bytes: usize,
}

impl Default for ComponentLimits {
    fn default() -> Self {
        ComponentLimits {
            memory_bytes: 128 * 1024 * 1024,
            max_guest_run: Duration::from_secs(10),
            // The real guest computes for about a second per 100,000 skills.
            max_guest_total: Duration::from_secs(120),
            // A search-API sync of 100,000 skills paced at the community
            // rate limit takes about 35 minutes.
            max_run: Duration::from_secs(6 * 3600),
            stderr_tail_bytes: 16 * 1024,
        }
    }
}

impl ComponentLimits {
    fn budgets(&self) -> Budgets {
        Budgets {
            max_guest_run: self.max_guest_run,
            max_guest_total: self.max_guest_total,
            max_run: self.max_run,
        }
    }
}

/// What stopped the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// It panicked or aborted (`unreachable`).
    Panic,
    /// It exceeded one of its time budgets ([`ComponentLimits`]): ran too
    /// long without calling the host, computed too long in total, ran too
    /// long as a whole, or kept going after being asked to stop.
    Deadline,
    /// It tried to grow its memory past [`ComponentLimits::memory_bytes`].
    MemoryLimit,
    /// It exhausted its stack.
    StackOverflow,
    /// The host failed in a way that must stop the guest (a bug).
    HostFault,
    /// Any other trap (out-of-bounds access, bad conversion, ...).
    Other,
}

impl TrapKind {
    fn describe(self) -> &'static str {
        match self {
            TrapKind::Panic => "it panicked",
            TrapKind::Deadline => "it exceeded its time budget",
            TrapKind::MemoryLimit => "it exceeded its memory limit",
            TrapKind::StackOverflow => "it exhausted its stack",
            TrapKind::HostFault => "the host failed",
            TrapKind::Other => "it trapped",
        }
    }
}

/// Why the component could not be loaded or run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComponentError {
    /// This binary was built without the component (the guest did not build).
    #[error(
        "this skillsmith was built without its sync component ({reason}); install the target with `rustup target add wasm32-wasip2` (or scripts/wasm-target.sh) and rebuild, or use the native backend"
    )]
    NotEmbedded {
        /// The build error, as far as known.
        reason: String,
    },
    /// The wasmtime engine could not be created.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    /// The bytes are not a valid component for this engine.
    #[error("cannot compile the sync component: {0}")]
    Compile(String),
    /// The component was built for another version of the WIT interfaces.
    #[error(
        "the sync component does not match this host: the host implements {expected} and needs the export {ENGINE_EXPORT}; {detail}"
    )]
    Incompatible {
        /// [`WIT_PACKAGE`].
        expected: &'static str,
        /// What the component has instead.
        detail: String,
    },
    /// The component imports interfaces this host does not grant (clocks,
    /// random, files, sockets, ...): it is not a pure sync component.
    #[error(
        "the sync component asks for {}, which this host does not grant: a sync component may import only skillsmith:sync@0.2.0, wasi:io and wasi:cli (see docs/embedding.md); rebuild it without them",
        imports.join(", ")
    )]
    Ungranted {
        /// The imports refused, as the component names them.
        imports: Vec<String>,
    },
    /// Instantiation failed (the guest's start code trapped, limits).
    #[error("cannot instantiate the sync component: {0}")]
    Instantiate(String),
    /// The guest trapped while running. The catalogue keeps every page
    /// committed before the trap.
    #[error("the sync component crashed ({}): {message}{}", kind.describe(), fmt_stderr(stderr))]
    Trap {
        /// What kind of trap.
        kind: TrapKind,
        /// The root cause, as wasmtime describes it.
        message: String,
        /// The tail of what the guest wrote to stderr (its panic message).
        stderr: String,
        /// The guest's call stack at the trap, when known (for bug reports;
        /// not part of the message).
        backtrace: String,
    },
}

fn fmt_stderr(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("; guest stderr: {s}")
    }
}

/// How the compiled component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled in memory (no cache configured or usable).
    Compiled,
    /// Compiled, and written to the cache for next time.
    CompiledAndCached,
    /// Loaded from the cache.
    CacheHit,
}

/// Where loading the component spent its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTimings {
    /// Compiled or cached.
    pub source: LoadSource,
    /// Compiling, or deserialising the cache file.
    pub load: Duration,
    /// Linking: type-checking imports and exports (`instantiate_pre`).
    pub link: Duration,
    /// Size of the component.
    pub wasm_bytes: usize,
    /// The cache file used or written.
    pub cache_file: Option<PathBuf>,
}

/// Counts of one component run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestStats {
    /// Instantiation time.
    pub instantiate: Duration,
    /// The `run` call, guest and host time together.
    pub call: Duration,
    /// Import calls the guest made.
    pub imports: u64,
}

/// What a native host gives the sandbox: the engine's imports, as the
/// engine's own trait ([`domain::Host`], so the same host also runs the
/// engine natively and tests need neither TCP nor SQLite), and whether the
/// program running the sync wants it to stop. The sandbox asks that after
/// every import, to cut off a guest that ignores `stop` directives.
pub trait Embedder: domain::Host<Pending: Send + 'static> + Send + 'static {
    /// True once the program wants the sync to stop.
    fn should_stop(&self) -> bool;
}

/// The result of [`ComponentRuntime::run`]: the engine's answer (or why
/// there is none), and the host back, for closing an open run.
#[derive(Debug)]
pub struct ComponentRun<H> {
    /// The engine's result, or the trap/instantiation failure.
    pub result: Result<Result<SyncReport, SyncError>, ComponentError>,
    /// The host, with its store.
    pub host: H,
    /// Timings and counts.
    pub stats: GuestStats,
}

/// A failure of the host that must trap the guest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HostFault(String);

/// The data of a component [`Store`].
pub(crate) struct ComponentState<H> {
    /// `None` in stores that only run `schedule.decide` or measure
    /// instantiation: an import call then traps as a host fault.
    host: Option<H>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: StderrTail,
    budget: RunBudget,
    imports: u64,
}

impl<H: Embedder> WasiView for ComponentState<H> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs `f` on the host, counting the import and keeping the run's time
/// budgets: an import made, or returning, over budget traps the guest.
fn on_host<H: Embedder, R>(
    state: &mut ComponentState<H>,
    f: impl FnOnce(&mut H) -> R,
) -> wasmtime::Result<R> {
    state.imports += 1;
    state.budget.enter_host(Instant::now())?;
    let host = state.host.as_mut().ok_or_else(|| {
        wasmtime::Error::new(HostFault(
            "the guest called a sync import where none is available (only `schedule.decide` may be called here)".into(),
        ))
    })?;
    let r = f(host);
    let stop = host.should_stop();
    state.budget.leave_host(Instant::now(), stop)?;
    Ok(r)
}

// ---- the engine and its ticker ------------------------------------------

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
static ACTIVE_CALLS: AtomicUsize = AtomicUsize::new(0);
static TICKER: OnceLock<Option<std::thread::Thread>> = OnceLock::new();

/// The process-wide engine.
pub fn engine() -> Result<&'static Engine, ComponentError> {
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            Engine::new(&config).map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| ComponentError::Engine(e.clone()))
}

/// Keeps the epoch ticking while guest code may run; the ticker thread
/// parks otherwise, so an idle MCP server does not wake 100 times a second.
struct Ticking;

impl Ticking {
    fn start(engine: &'static Engine) -> Ticking {
        ACTIVE_CALLS.fetch_add(1, Ordering::SeqCst);
        let ticker = TICKER.get_or_init(|| {
            std::thread::Builder::new()
                .name("skillsmith-epoch".into())
                .spawn(move || {
                    loop {
                        if ACTIVE_CALLS.load(Ordering::SeqCst) == 0 {
                            std::thread::park();
                            continue;
                        }
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map(|h| h.thread().clone())
                .map_err(|e| tracing::warn!("no epoch ticker ({e}): guest run time is not capped"))
                .ok()
        });
        if let Some(t) = ticker {
            t.unpark();
        }
        Ticking
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        ACTIVE_CALLS.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---- the guest's stderr -----------------------------------------------

/// The guest's stderr: keeps the last `cap` bytes, never blocks or fails
/// (wasmtime's `MemoryOutputPipe` traps the guest once full).
#[derive(Clone)]
struct StderrTail {
    buf: Arc<Mutex<VecDeque<u8>>>,
    cap: usize,
}

impl StderrTail {
    fn new(cap: usize) -> StderrTail {
        StderrTail {
            buf: Arc::new(Mutex::new(VecDeque::with_capacity(cap.min(4096)))),
            cap,
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = &bytes[bytes.len().saturating_sub(self.cap)..];
        let excess = (buf.len() + bytes.len()).saturating_sub(self.cap);
        buf.drain(..excess);
        buf.extend(bytes);
    }

    fn text(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = buf.as_slices();
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---- loading ----------------------------------------------------------

/// Feeds `Hash` output into SHA-256, to turn the engine's compatibility hash
/// (an `impl Hash`) into a stable cache key.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn finish(&self) -> u64 {
        0 // unused: the digest is read from the Sha256
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(wasm);
    engine
        .precompile_compatibility_hash()
        .hash(&mut ShaHasher(&mut sha));
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache directory: `SKILLSMITH_CACHE_DIR`, else the platform's cache
/// directory, else none (compile in memory every time).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("app", "skillsmith", "skillsmith")
        .map(|d| d.cache_dir().to_owned())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // A uniquely named file beside the target, removed unless persisted.
    let mut tmp = tempfile::Builder::new()
        .prefix(".cwasm.")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Rename is atomic: readers see the old file or the whole new one, and
    // a reader that mapped the old one keeps its (unlinked) inode.
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, ComponentError> {
    if wasm.is_empty() {
        return Err(ComponentError::NotEmbedded {
            reason: option_env!("SKILLSMITH_GUEST_BUILD_ERROR")
                .filter(|r| !r.is_empty())
                .unwrap_or("the component is empty")
                .to_owned(),
        });
    }
    Component::new(engine, wasm).map_err(|e| ComponentError::Compile(format!("{e:#}")))
}

/// Compiles `wasm` or loads it from `cache_dir`.
fn load_component(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> Result<(Component, LoadSource, Option<PathBuf>), ComponentError> {
    let Some(dir) = cache_dir else {
        return Ok((compile(engine, wasm)?, LoadSource::Compiled, None));
    };
    if wasm.is_empty() {
        compile(engine, wasm)?;
    }
    let file = dir.join(format!("skillsmith-sync-{}.cwasm", cache_key(engine, wasm)));
    if file.is_file() {
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
        // compiled code. It is: only `write_atomically` below writes these
        // files, each named by the SHA-256 of the component and of this
        // engine's compatibility hash, and written to a temporary name then
        // renamed, so no partial or foreign-engine file can carry this name
        // (wasmtime also checks the engine header and refuses mismatches).
        // A cache directory writable by an attacker is out of scope: such an
        // attacker can already replace the binary's own files.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &file) };
        match loaded {
            Ok(c) => {
                mark_used(&file);
                return Ok((c, LoadSource::CacheHit, Some(file)));
            }
            Err(e) => tracing::warn!(
                "ignoring the compiled-component cache {}: {e:#}",
                file.display()
            ),
        }
    }
    let component = compile(engine, wasm)?;
    let source = match component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))
        .and_then(|bytes| write_atomically(&file, &bytes))
    {
        Ok(()) => {
            prune_cache(dir, &file);
            LoadSource::CompiledAndCached
        }
        Err(e) => {
            tracing::warn!(
                "could not cache the compiled component in {}: {e}",
                dir.display()
            );
            LoadSource::Compiled
        }
    };
    Ok((
        component,
        source,
        Some(file).filter(|_| source == LoadSource::CompiledAndCached),
    ))
}

/// Cache entries unused for this long are deleted when a new one is written
/// (each build of the component, or engine upgrade, makes a new ~1 MB entry).
const CACHE_MAX_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Refreshes an entry's mtime (at most daily) so pruning sees it is in use.
fn mark_used(file: &Path) {
    let stale = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(24 * 3600));
    if stale && let Ok(f) = std::fs::File::options().append(true).open(file) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Deletes other entries idle for [`CACHE_MAX_IDLE`]. Best effort: an entry
/// another process has loaded stays usable by it (its mapping keeps the
/// inode), and any error just leaves the file.
fn prune_cache(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path == keep || !name.starts_with("skillsmith-sync-") || !name.ends_with(".cwasm") {
            continue;
        }
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if idle.is_some_and(|d| d > CACHE_MAX_IDLE) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Explains a link failure: which `skillsmith:sync` names the component has.
fn incompatible(engine: &Engine, component: &Component, e: &wasmtime::Error) -> ComponentError {
    let ty = component.component_type();
    let exports: Vec<&str> = ty
        .exports(engine)
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("skillsmith:"))
        .collect();
    let imports: Vec<&str> = ty
        .imports(engine)
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("skillsmith:"))
        .collect();
    ComponentError::Incompatible {
        expected: WIT_PACKAGE,
        detail: format!(
            "the component exports [{}] and imports [{}] ({e:#})",
            exports.join(", "),
            imports.join(", ")
        ),
    }
}

/// A compiled, linked sync component, ready to instantiate, for hosts of
/// type `H`.
pub struct ComponentRuntime<H: 'static> {
    engine: &'static Engine,
    pre: SyncPre<ComponentState<H>>,
    timings: LoadTimings,
    limits: ComponentLimits,
}

impl<H: 'static> std::fmt::Debug for ComponentRuntime<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentRuntime")
            .field("timings", &self.timings)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<H: Embedder> ComponentRuntime<H> {
    /// The embedded component, loaded through the cache of
    /// [`default_cache_dir`]. Hosts keep one per process (a static).
    pub fn embedded() -> Result<ComponentRuntime<H>, ComponentError> {
        ComponentRuntime::from_bytes(EMBEDDED_WASM, default_cache_dir().as_deref())
    }

    /// The component embedded in this build (what
    /// `scripts/build-component.sh` produces); empty when the guest did not
    /// build.
    pub fn embedded_wasm() -> &'static [u8] {
        EMBEDDED_WASM
    }

    /// Compiles `wasm` in memory, bypassing any cache (benchmarks: the cost
    /// of a first run on a machine).
    pub fn load_cold(wasm: &[u8]) -> Result<ComponentRuntime<H>, ComponentError> {
        ComponentRuntime::from_bytes(wasm, None)
    }

    /// Loads `wasm` through the cache in `cache_dir`, compiling and writing
    /// the cache entry when missing.
    pub fn load_cached(
        wasm: &[u8],
        cache_dir: &Path,
    ) -> Result<ComponentRuntime<H>, ComponentError> {
        ComponentRuntime::from_bytes(wasm, Some(cache_dir))
    }

    /// Loads a component file (any component: hostile-guest tests load
    /// their own).
    pub fn from_file(
        path: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<ComponentRuntime<H>, ComponentError> {
        let wasm = std::fs::read(path)
            .map_err(|e| ComponentError::Compile(format!("cannot read {}: {e}", path.display())))?;
        ComponentRuntime::from_bytes(&wasm, cache_dir)
    }

    /// Loads a component from bytes, through `cache_dir` when given, and
    /// links it against this host's imports and expected exports.
    pub fn from_bytes(
        wasm: &[u8],
        cache_dir: Option<&Path>,
    ) -> Result<ComponentRuntime<H>, ComponentError> {
        let engine = engine()?;
        let started = Instant::now();
        let (component, source, cache_file) = load_component(engine, wasm, cache_dir)?;
        let load = started.elapsed();

        let started = Instant::now();
        let mut linker = Linker::<ComponentState<H>>::new(engine);
        grants::add_to_linker(&mut linker).map_err(|e| ComponentError::Engine(format!("{e:#}")))?;
        SyncWorld::add_to_linker::<_, HasSelf<ComponentState<H>>>(&mut linker, |s| s)
            .map_err(|e| ComponentError::Engine(format!("{e:#}")))?;
        // Refuses ambient authority by name ...
        let ty = component.component_type();
        let ungranted = grants::ungranted(ty.imports(engine).map(|(n, _)| n));
        if !ungranted.is_empty() {
            return Err(ComponentError::Ungranted {
                imports: ungranted.into_iter().map(String::from).collect(),
            });
        }
        // ... fails when the component imports a `skillsmith:sync` version
        // this host does not provide ...
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| incompatible(engine, &component, &e))?;
        // ... or lacks the exports of `skillsmith:sync/*@0.2.0`.
        let pre = SyncPre::new(instance_pre).map_err(|e| incompatible(engine, &component, &e))?;
        let link = started.elapsed();

        Ok(ComponentRuntime {
            engine,
            pre,
            timings: LoadTimings {
                source,
                load,
                link,
                wasm_bytes: wasm.len(),
                cache_file,
            },
            limits: ComponentLimits::default(),
        })
    }

    /// Replaces the limits of later runs.
    pub fn with_limits(mut self, limits: ComponentLimits) -> ComponentRuntime<H> {
        self.limits = limits;
        self
    }

    /// The limits of runs.
    pub fn limits(&self) -> ComponentLimits {
        self.limits
    }

    /// How loading went.
    pub fn timings(&self) -> &LoadTimings {
        &self.timings
    }

    fn new_store(&self, host: Option<H>, limits: ComponentLimits) -> Store<ComponentState<H>> {
        let stderr = StderrTail::new(limits.stderr_tail_bytes);
        // Nothing but a stderr we capture: no files, env, args or network.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let state = ComponentState {
            host,
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            budget: RunBudget::new(limits.budgets(), Instant::now()),
            imports: 0,
        };
        let mut store = Store::new(self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(TICKS_PER_CHECK);
        store.epoch_deadline_callback(|ctx| {
            ctx.data().budget.check(Instant::now())?;
            Ok(UpdateDeadline::Continue(TICKS_PER_CHECK))
        });
        store
    }

    fn instantiate_in(
        &self,
        store: &mut Store<ComponentState<H>>,
    ) -> Result<SyncWorld, ComponentError> {
        self.pre.instantiate(&mut *store).map_err(|e| {
            match classify(&e, store.data().stderr.text()) {
                // Limits and deadlines are worth naming; anything else is
                // an instantiation failure.
                trap @ ComponentError::Trap { kind, .. } if kind != TrapKind::Other => trap,
                _ => ComponentError::Instantiate(format!("{e:#}")),
            }
        })
    }

    /// Instantiates the component in a fresh store without a host and
    /// returns how long that took (benchmarks).
    pub fn instantiate(&self) -> Result<Duration, ComponentError> {
        let _ticking = Ticking::start(self.engine);
        let mut store = self.new_store(None, self.limits);
        let started = Instant::now();
        self.instantiate_in(&mut store)?;
        Ok(started.elapsed())
    }

    /// Runs one sync in a fresh instance.
    pub fn run(&self, host: H, options: SyncOptions) -> ComponentRun<H> {
        self.run_limited(host, options, self.limits)
    }

    /// Like [`ComponentRuntime::run`], with other limits for this run.
    pub fn run_limited(
        &self,
        host: H,
        options: SyncOptions,
        limits: ComponentLimits,
    ) -> ComponentRun<H> {
        let _ticking = Ticking::start(self.engine);
        let mut store = self.new_store(Some(host), limits);
        let mut stats = GuestStats::default();
        let started = Instant::now();
        let result = self.instantiate_in(&mut store).and_then(|sync| {
            stats.instantiate = started.elapsed();
            let started = Instant::now();
            store.data_mut().budget = RunBudget::new(limits.budgets(), Instant::now());
            let r = sync
                .skillsmith_sync_engine()
                .call_run(&mut store, &options.convert());
            stats.call = started.elapsed();
            r.map(Convert::convert)
                .map_err(|e| classify(&e, store.data().stderr.text()))
        });
        let state = store.into_data();
        stats.imports = state.imports;
        ComponentRun {
            result,
            host: state.host.expect("the store was created with a host"),
            stats,
        }
    }

    /// Calls the component's `schedule.decide` in a fresh instance.
    pub fn decide(
        &self,
        config: ScheduleConfig,
        now_ms: i64,
        jitter_seed: u64,
    ) -> Result<Decision, ComponentError> {
        let _ticking = Ticking::start(self.engine);
        let mut store = self.new_store(None, self.limits);
        let sync = self.instantiate_in(&mut store)?;
        store.data_mut().budget = RunBudget::new(self.limits.budgets(), Instant::now());
        let d = sync
            .skillsmith_sync_schedule()
            .call_decide(&mut store, config.convert(), now_ms, jitter_seed)
            .map_err(|e| classify(&e, store.data().stderr.text()))?;
        Ok(d.convert())
    }
}

/// Turns a wasmtime error from a guest call into a [`ComponentError::Trap`].
fn classify(e: &wasmtime::Error, stderr: String) -> ComponentError {
    let message = e.root_cause().to_string();
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| b.to_string())
        .unwrap_or_default();
    let kind = if e.downcast_ref::<Exceeded>().is_some() {
        TrapKind::Deadline
    } else if e.downcast_ref::<HostFault>().is_some() {
        TrapKind::HostFault
    } else if message.contains("forcing trap when growing memory") {
        // StoreLimits' error for `trap_on_grow_failure`; it has no type.
        TrapKind::MemoryLimit
    } else {
        match e.downcast_ref::<Trap>() {
            Some(Trap::UnreachableCodeReached) => TrapKind::Panic,
            Some(Trap::StackOverflow) => TrapKind::StackOverflow,
            _ => TrapKind::Other,
        }
    };
    ComponentError::Trap {
        kind,
        message,
        stderr,
        backtrace,
    }
}

// ---- imports: WIT <-> domain, delegated to the Embedder ---------------

impl<H: Embedder> wit_types::Host for ComponentState<H> {}

impl<H: Embedder> wit_http::HostPending for ComponentState<H> {
    fn wait(
        &mut self,
        pending: Resource<PendingSlot>,
    ) -> wasmtime::Result<Result<wit_http::Response, wit_http::HttpError>> {
        let slot = self.table.get_mut(&pending)?;
        let Some(p) = slot.0.take() else {
            return Ok(Err(wit_http::HttpError::Other(
                "this response was already taken by an earlier wait".into(),
            )));
        };
        let p = p.downcast::<H::Pending>().map_err(|_| {
            wasmtime::Error::new(HostFault("a pending request of another host".into()))
        })?;
        Ok(on_host(self, |h| h.http_wait(*p))?.convert())
    }

    fn drop(&mut self, pending: Resource<PendingSlot>) -> wasmtime::Result<()> {
        // Dropping the slot drops the `Pending`, which aborts the request.
        self.table.delete(pending)?;
        Ok(())
    }
}

impl<H: Embedder> wit_http::Host for ComponentState<H> {
    fn send(&mut self, request: wit_http::Request) -> wasmtime::Result<Resource<PendingSlot>> {
        let pending = on_host(self, |h| h.http_send(request.convert()))?;
        Ok(self.table.push(PendingSlot(Some(Box::new(pending))))?)
    }
}

impl<H: Embedder> wit_store::Host for ComponentState<H> {
    fn read_state(
        &mut self,
    ) -> wasmtime::Result<Result<wit_store::SyncState, wit_store::StoreError>> {
        Ok(on_host(self, H::read_state)?.convert())
    }

    fn local_versions(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<wit_store::LocalVersion>>, wit_store::StoreError>> {
        Ok(on_host(self, |h| h.local_versions(&ids))?.convert())
    }

    fn registry_ids(
        &mut self,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, wit_store::StoreError>> {
        let r = on_host(self, |h| h.registry_ids(after.as_deref(), limit))?;
        Ok(r.map_err(Convert::convert))
    }

    fn registry_rows(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<wit_store::RegistryRow>>, wit_store::StoreError>> {
        Ok(on_host(self, |h| h.registry_rows(&ids))?.convert())
    }

    fn begin_run(
        &mut self,
        mode: wit_types::SyncMode,
    ) -> wasmtime::Result<Result<u64, wit_store::StoreError>> {
        let r = on_host(self, |h| h.begin_run(mode.convert()))?;
        Ok(r.map_err(Convert::convert))
    }

    fn apply_page(
        &mut self,
        run: u64,
        page: wit_store::Page,
    ) -> wasmtime::Result<Result<(), wit_store::StoreError>> {
        let r = on_host(self, |h| h.apply_page(run, page.convert()))?;
        Ok(r.map_err(Convert::convert))
    }

    fn finish_run(
        &mut self,
        run: u64,
        outcome: wit_store::RunOutcome,
    ) -> wasmtime::Result<Result<(), wit_store::StoreError>> {
        let r = on_host(self, |h| h.finish_run(run, outcome.convert()))?;
        Ok(r.map_err(Convert::convert))
    }
}

impl<H: Embedder> wit_host::Host for ComponentState<H> {
    fn log(&mut self, level: wit_host::Level, message: String) -> wasmtime::Result<()> {
        on_host(self, |h| h.log(level.convert(), &message))
    }

    fn progress(
        &mut self,
        report: wit_host::ProgressReport,
    ) -> wasmtime::Result<wit_host::Directive> {
        Ok(on_host(self, |h| h.progress(report.convert()))?.convert())
    }

    fn sleep(&mut self, ms: u64) -> wasmtime::Result<wit_host::Directive> {
        Ok(on_host(self, |h| h.sleep(ms))?.convert())
    }

    fn random(&mut self) -> wasmtime::Result<u64> {
        on_host(self, H::random)
    }
}

/// The bindings' import and export trees under the names
/// [`skillsmith_guest::wit_conversions!`] expects.
mod wit {
    pub use crate::bindings::exports::skillsmith::sync as exports;
    pub use crate::bindings::skillsmith::sync as imports;
}
use wit::{exports, imports};

skillsmith_guest::wit_conversions!(imports, exports);

#[cfg(test)]
mod tests {
    use super::*;
    use domain::*;

    /// Domain → WIT → domain gives the value back: every field and variant
    /// survives both directions of `wit_conversions!` on the host's side.
    fn round_trip<D, W>(value: D)
    where
        D: Convert<W> + Clone + PartialEq + std::fmt::Debug,
        W: Convert<D>,
    {
        let back: D = value.clone().convert().convert();
        assert_eq!(back, value);
    }

    fn every_skill() -> Vec<Skill> {
        TrustTier::ALL
            .into_iter()
            .enumerate()
            .map(|(i, trust_tier)| Skill {
                description: Some("d".into()),
                author: Some("a".into()),
                repo_url: Some("https://github.com/a/b".into()),
                quality_score: Some(0.25),
                trust_tier,
                tags: vec!["t".into()],
                categories: vec!["Testing".into()],
                stars: Some(i as i64),
                content_hash: Some("h".into()),
                license: Some("MIT".into()),
                security_score: Some(0.5),
                installable: Some(true),
                quarantined: Some(false),
                ..Skill::minimal(&format!("s{i}"), "2026-01-01T00:00:00.000Z")
            })
            .collect()
    }

    #[test]
    fn every_record_and_variant_converts_both_ways() {
        let coverage = Coverage {
            registry_total: Some(10),
            reached: 9,
            unfilterable_tiers: vec!["experimental".into()],
        };
        for skill in every_skill() {
            round_trip::<_, wit::imports::types::Skill>(skill);
        }
        for mode in [SyncMode::ChangesFeed, SyncMode::Search] {
            round_trip::<_, wit::imports::types::SyncMode>(mode);
            let checkpoint = Checkpoint {
                mode,
                cursor: Some("c".into()),
                etag: Some("e".into()),
                resync_pending: true,
            };
            round_trip::<_, wit::imports::store::Page>(Page {
                upserts: every_skill(),
                removals: vec!["gone".into()],
                checkpoint,
            });
            round_trip::<_, wit::imports::store::SyncState>(SyncState {
                last_sync_at: Some("2026-01-01T00:00:00.000Z".into()),
                mode: Some(mode),
                cursor: Some("c".into()),
                etag: None,
                resync_pending: false,
                registry_skills: 3,
            });
            round_trip::<_, wit::exports::engine::SyncOptions>(SyncOptions {
                registry: "http://127.0.0.1:1/functions/v1".into(),
                force: true,
                dry_run: false,
                page_size: 100,
                mode: Some(mode),
                now_ms: 1,
                retry_budget_ms: 2,
            });
            round_trip::<_, wit::exports::engine::SyncReport>(SyncReport {
                mode,
                added: 1,
                updated: 2,
                unchanged: 3,
                removed: 4,
                skipped: 5,
                pages: 6,
                requests: 7,
                warnings: vec!["w".into()],
                last_sync_at: Some("2026-01-01T00:00:00.000Z".into()),
                cancelled: true,
                coverage: Some(coverage.clone()),
            });
        }
        for (status, failure) in [RunStatus::Success, RunStatus::Partial, RunStatus::Failed]
            .into_iter()
            .zip(FailureKind::ALL.into_iter().cycle())
            .chain(FailureKind::ALL.into_iter().map(|k| (RunStatus::Failed, k)))
        {
            round_trip::<_, wit::imports::store::RunOutcome>(RunOutcome {
                status,
                counts: RunCounts {
                    added: 1,
                    updated: 2,
                    unchanged: 3,
                    removed: 4,
                    skipped: 5,
                },
                error: Some("e".into()),
                failure: Some(failure),
                last_sync_at: None,
                coverage: Some(coverage.clone()),
            });
        }
        for source in [Source::Registry, Source::Local] {
            round_trip::<_, wit::imports::store::LocalVersion>(LocalVersion {
                updated_at: "2026-01-01T00:00:00.000Z".into(),
                source,
            });
        }
        round_trip::<_, wit::imports::store::RegistryRow>(RegistryRow {
            id: "s".into(),
            trust_tier: TrustTier::Experimental,
            scored: true,
            categories: vec!["Testing".into()],
        });
        round_trip::<_, wit::imports::http::Request>(HttpRequest {
            url: "http://127.0.0.1:1/".into(),
            headers: vec![("a".into(), "b".into())],
            timeout_ms: 5,
        });
        round_trip::<_, wit::imports::http::Response>(HttpResponse {
            status: 200,
            headers: vec![("a".into(), "b".into())],
            body: b"{}".to_vec(),
            sent_at_ms: 1,
            received_at_ms: 2,
        });
        let text = || "t".to_owned();
        let http_errors = [
            HttpError::Timeout,
            HttpError::Refused(text()),
            HttpError::Tls(text()),
            HttpError::Cancelled,
            HttpError::Connection(text()),
            HttpError::TooLarge(9),
            HttpError::Denied(text()),
            HttpError::Other(text()),
        ];
        let store_errors = [
            StoreError::Busy,
            StoreError::RunOpen(text()),
            StoreError::Invalid(text()),
            StoreError::NoSpace,
            StoreError::ReadOnly,
            StoreError::Corrupt(text()),
            StoreError::Other(text()),
        ];
        for e in &http_errors {
            round_trip::<_, wit::imports::http::HttpError>(e.clone());
        }
        for e in &store_errors {
            round_trip::<_, wit::imports::store::StoreError>(e.clone());
        }
        let sync_errors = http_errors
            .into_iter()
            .map(SyncError::Unreachable)
            .chain(store_errors.into_iter().map(SyncError::Store))
            .chain([
                SyncError::Unauthorized(text()),
                SyncError::QuotaExceeded(text()),
                SyncError::RateLimited(text()),
                SyncError::Registry(text()),
                SyncError::Redirected(text()),
                SyncError::NotARegistry(text()),
                SyncError::Protocol(text()),
                SyncError::Busy,
            ]);
        for e in sync_errors {
            round_trip::<_, wit::exports::engine::SyncError>(e);
        }
        for level in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ] {
            round_trip::<_, wit::imports::host::Level>(level);
        }
        for (phase, waiting_for) in [Phase::Discover, Phase::Fetch, Phase::Prune]
            .into_iter()
            .zip([WaitReason::None, WaitReason::RateLimit, WaitReason::Retry])
        {
            round_trip::<_, wit::imports::host::ProgressReport>(Progress {
                phase,
                done: 1,
                total: Some(2),
                pages: 3,
                waiting_ms: 4,
                waiting_for,
            });
        }
        for d in [Directive::Proceed, Directive::Stop] {
            round_trip::<_, wit::imports::host::Directive>(d);
        }
        round_trip::<_, wit::exports::schedule::ScheduleConfig>(ScheduleConfig {
            enabled: true,
            interval_ms: 1,
            last_attempt_ms: Some(2),
            last_success_ms: None,
            consecutive_failures: 3,
        });
        round_trip::<_, wit::exports::schedule::Decision>(Decision {
            due: true,
            next_ms: Some(4),
        });
    }

    impl Embedder for skillsmith_guest::fake::Fake {
        fn should_stop(&self) -> bool {
            false
        }
    }

    /// The sandbox and its import glue, with a host of neither TCP nor
    /// SQLite: the engine tests' fake registry and store.
    #[test]
    fn runs_the_embedded_component_against_an_in_memory_host() {
        use skillsmith_guest::fake::{Fake, FakeRegistry, options};
        let wasm = ComponentRuntime::<Fake>::embedded_wasm();
        assert!(
            !wasm.is_empty(),
            "this build embeds no component: install the wasm32-wasip2 target \
             (scripts/wasm-target.sh); SKILLSMITH_REQUIRE_GUEST=1 makes that a build error"
        );
        let runtime = ComponentRuntime::<Fake>::from_bytes(wasm, None).unwrap();
        let run = runtime.run(Fake::new(FakeRegistry::with(250, false)), options());
        let report = run
            .result
            .expect("the component ran")
            .expect("the sync succeeded");
        assert_eq!(report.mode, SyncMode::Search);
        assert_eq!(report.added, 250, "{report:?}");
        assert!(
            run.host.in_sync(),
            "the fake store holds what the registry has"
        );
        assert!(run.stats.imports > 250 / 100, "{:?}", run.stats);
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let t = StderrTail::new(8);
        t.push(b"hello ");
        t.push(b"world!");
        assert_eq!(t.text(), "o world!");
        t.push(b"0123456789abc");
        assert_eq!(t.text(), "56789abc");
    }
}
