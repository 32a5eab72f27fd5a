//! A `skillsmith:sync@0.2.0` guest whose `engine.run` misbehaves as asked.
//!
//! The behaviour is chosen by `sync-options.registry`, read as a command line
//! (a real guest would put the registry URL there; the host's origin policy
//! is configured separately, so the string is free for this):
//!
//! | `registry`                 | behaviour                                          |
//! |----------------------------|----------------------------------------------------|
//! | `spin`                     | loops forever without calling the host             |
//! | `spin-calling-host`        | loops forever calling `host.random`                |
//! | `sleep SECS`               | `std::thread::sleep` (WASI monotonic clock) [^a]    |
//! | `grow`                     | allocates memory without bound                     |
//! | `panic`                    | panics                                             |
//! | `fetch URL [NAME=VALUE..]` | one `http.send`; an error comes back as `unreachable` |
//! | `garbage`                  | calls the store with invalid and out-of-order calls |
//! | `rewind`                   | writes a checkpoint, then an older one             |
//! | `environment`              | reads environment variables and arguments          |
//! | `ambient TCP-ADDR`         | looks for env, args, files, sockets, clocks [^a]    |
//! | `stderr-flood MIB`         | writes MIB mebibytes to stderr, then panics        |
//!
//! [^a]: Only with the `ambient` feature. These make the component import
//! `wasi:clocks`, `wasi:filesystem` and `wasi:sockets` (through the standard
//! library); without them it imports only the WASI the real guest imports, so
//! that the other behaviours keep loading in a host that links no more.
//!
//! Probes that return observations put them in `sync-report.warnings`, one
//! `name => result` line each, so the test asserts on what the guest saw.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "sync",
        path: "../../wit",
    });
}

use std::fmt::Debug;
use std::io::Write as _;
#[cfg(feature = "ambient")]
use std::time::{Duration, Instant, UNIX_EPOCH};

use bindings::exports::skillsmith::sync::{engine, schedule};
use bindings::skillsmith::sync::{host, http, store, types};

struct Hostile;

// The export shims are `#[unsafe(export_name)]` functions.
#[allow(unsafe_code)]
mod export {
    use super::{Hostile, bindings};
    bindings::export!(Hostile with_types_in bindings);
}

/// Skills in the page of the "huge page" garbage step.
const HUGE_PAGE: usize = 20_000;

impl engine::Guest for Hostile {
    fn run(options: engine::SyncOptions) -> Result<engine::SyncReport, engine::SyncError> {
        let args: Vec<&str> = options.registry.split_whitespace().collect();
        match args.as_slice() {
            ["spin"] => spin(),
            ["spin-calling-host"] => loop {
                std::hint::black_box(host::random());
            },
            #[cfg(feature = "ambient")]
            ["sleep", secs] => {
                std::thread::sleep(Duration::from_secs(secs.parse().unwrap_or(3600)));
                Ok(report(vec!["sleep => woke up".into()]))
            }
            ["grow"] => grow(),
            ["panic"] => panic!("hostile guest: deliberate panic"),
            ["fetch", url, headers @ ..] => fetch(url, headers),
            ["garbage"] => Ok(report(garbage())),
            ["rewind"] => Ok(report(rewind())),
            ["environment"] => Ok(report(environment())),
            #[cfg(feature = "ambient")]
            ["ambient", tcp] => Ok(report(ambient(tcp))),
            ["stderr-flood", mib] => {
                let chunk = vec![b'x'; 64 * 1024];
                let mut err = std::io::stderr();
                for _ in 0..mib.parse::<usize>().unwrap_or(1) * 16 {
                    let _ = err.write_all(&chunk);
                }
                // The message a host must still be able to show.
                panic!("hostile guest: end of flood");
            }
            _ => Err(engine::SyncError::Protocol(format!(
                "unknown hostile behaviour {:?}",
                options.registry
            ))),
        }
    }
}

impl schedule::Guest for Hostile {
    fn decide(_: schedule::ScheduleConfig, _: i64, _: u64) -> schedule::Decision {
        schedule::Decision {
            due: false,
            next_ms: None,
        }
    }
}

fn report(warnings: Vec<String>) -> engine::SyncReport {
    engine::SyncReport {
        mode: types::SyncMode::Search,
        added: 0,
        updated: 0,
        unchanged: 0,
        removed: 0,
        skipped: 0,
        pages: 0,
        requests: 0,
        warnings,
        last_sync_at: None,
        cancelled: false,
        coverage: None,
    }
}

/// Busy work the optimiser cannot remove, and no import calls.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn grow() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Filled, not just reserved, so every mebibyte really is committed.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn fetch(url: &str, headers: &[&str]) -> Result<engine::SyncReport, engine::SyncError> {
    let headers = headers
        .iter()
        .filter_map(|h| h.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let pending = http::send(&http::Request {
        url: url.to_owned(),
        headers,
        timeout_ms: 5_000,
    });
    match pending.wait() {
        Ok(resp) => Ok(report(vec![format!(
            "fetch => status {} with {} body bytes",
            resp.status,
            resp.body.len()
        )])),
        // What the real engine does with a refused request, so the host sees
        // exactly the variant the guest received.
        Err(e) => Err(engine::SyncError::Unreachable(e)),
    }
}

fn line<T: Debug, E: Debug>(step: &str, r: &Result<T, E>) -> String {
    match r {
        Ok(v) => format!("{step} => ok {v:?}"),
        Err(e) => format!("{step} => err {e:?}"),
    }
}

fn skill(id: &str, quality: Option<f64>) -> types::Skill {
    types::Skill {
        id: id.to_owned(),
        name: format!("hostile {id}"),
        description: Some("written by the hostile guest".into()),
        author: Some("hostile".into()),
        repo_url: None,
        quality_score: quality,
        trust_tier: types::TrustTier::Community,
        tags: vec!["hostile".into()],
        categories: Vec::new(),
        stars: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        content_hash: None,
        license: None,
        security_score: None,
        installable: None,
        quarantined: None,
    }
}

fn page(upserts: Vec<types::Skill>, cursor: Option<&str>) -> store::Page {
    store::Page {
        upserts,
        removals: Vec::new(),
        checkpoint: store::Checkpoint {
            mode: types::SyncMode::ChangesFeed,
            cursor: cursor.map(str::to_owned),
            etag: None,
            resync_pending: false,
        },
    }
}

fn failed(error: &str) -> store::RunOutcome {
    store::RunOutcome {
        status: store::RunStatus::Failed,
        counts: store::RunCounts {
            added: 0,
            updated: 0,
            unchanged: 0,
            removed: 0,
            skipped: 0,
        },
        error: Some(error.to_owned()),
        failure: Some(store::FailureKind::Component),
        last_sync_at: None,
        coverage: None,
    }
}

/// Every store call a confused or malicious guest might make. Each line must
/// come back `err Invalid(..)` except the probes of harmless reads and the
/// one legitimate begin/finish pair.
/// `apply-page`, then a read to settle it: a store that writes behind may
/// acknowledge a page and report its failure at the next call (see
/// `wit/store.wit`), so the page's outcome is the first error of the two.
fn apply(run: u64, page: &store::Page) -> Result<(), store::StoreError> {
    store::apply_page(run, page)?;
    store::read_state().map(drop)
}

fn garbage() -> Vec<String> {
    let mut lines = Vec::new();
    let one = || page(vec![skill("hostile-1", Some(0.5))], Some("c1"));
    lines.push(line(
        "apply-page before begin-run",
        &apply(1, &one()),
    ));
    lines.push(line(
        "finish-run before begin-run",
        &store::finish_run(1, &failed("hostile")),
    ));
    let begun = store::begin_run(types::SyncMode::ChangesFeed);
    lines.push(line("begin-run", &begun));
    let Ok(run) = begun else { return lines };
    lines.push(line(
        "second begin-run",
        &store::begin_run(types::SyncMode::Search),
    ));
    lines.push(line(
        "apply-page to another run",
        &apply(run + 1, &one()),
    ));
    lines.push(line(
        "apply-page with an empty id",
        &apply(run, &page(vec![skill("", None)], Some("c1"))),
    ));
    // Valid rows first, one the schema refuses last: the whole page must
    // roll back, not just its bad row.
    let mut huge: Vec<types::Skill> = (0..HUGE_PAGE - 1)
        .map(|i| skill(&format!("hostile-{i:05}"), Some(0.5)))
        .collect();
    huge.push(skill("hostile-bad-score", Some(7.0)));
    lines.push(line(
        "apply-page huge with a bad last row",
        &apply(run, &page(huge, Some("c2"))),
    ));
    lines.push(line(
        "local-versions of garbage ids",
        &store::local_versions(&[String::new(), "\0".into(), "x".repeat(100_000)]),
    ));
    lines.push(line(
        "registry-ids past the last id",
        &store::registry_ids(Some("\u{10FFFF}"), u32::MAX).map(|ids| ids.len()),
    ));
    lines.push(line(
        "registry-ids limit 0",
        &store::registry_ids(None, 0).map(|ids| ids.len()),
    ));
    lines.push(line(
        "finish-run of another run",
        &store::finish_run(run + 1, &failed("hostile")),
    ));
    lines.push(line(
        "finish-run",
        &store::finish_run(run, &failed("hostile guest: garbage calls")),
    ));
    lines.push(line(
        "apply-page after finish-run",
        &apply(run, &one()),
    ));
    lines.push(line(
        "second finish-run",
        &store::finish_run(run, &failed("hostile")),
    ));
    lines
}

/// A checkpoint, then an older one in the same run. Cursors are opaque to
/// the host, so it cannot tell; the test shows the cost is a resync.
fn rewind() -> Vec<String> {
    let mut lines = Vec::new();
    let begun = store::begin_run(types::SyncMode::ChangesFeed);
    lines.push(line("begin-run", &begun));
    let Ok(run) = begun else { return lines };
    for cursor in ["hostile-cursor-2", "hostile-cursor-1"] {
        lines.push(line(
            &format!("apply-page {cursor}"),
            &store::apply_page(run, &page(Vec::new(), Some(cursor))),
        ));
    }
    lines.push(line(
        "finish-run",
        &store::finish_run(run, &failed("hostile guest: rewound its checkpoint")),
    ));
    lines
}

/// Reads what `wasi:cli/environment` offers: variables and arguments.
fn environment() -> Vec<String> {
    vec![
        format!("env => {:?}", std::env::vars_os().collect::<Vec<_>>()),
        format!("args => {:?}", std::env::args_os().collect::<Vec<_>>()),
    ]
}

/// Looks for ambient authority through the WASI interfaces the Rust standard
/// library uses. Whatever the host links, these must find nothing.
#[cfg(feature = "ambient")]
fn ambient(tcp: &str) -> Vec<String> {
    let mut lines = environment();
    lines.extend([
        format!("cwd => {:?}", std::env::current_dir()),
        format!(
            "read-dir / => {:?}",
            std::fs::read_dir("/").map(|d| d.count())
        ),
        format!(
            "read-dir . => {:?}",
            std::fs::read_dir(".").map(|d| d.count())
        ),
        format!(
            "read /etc/passwd => {:?}",
            std::fs::read("/etc/passwd").map(|b| b.len())
        ),
        format!(
            "create /tmp/skillsmith-hostile => {:?}",
            std::fs::File::create("/tmp/skillsmith-hostile").map(|_| ())
        ),
        format!(
            "tcp-connect => {:?}",
            std::net::TcpStream::connect(tcp).map(|_| ())
        ),
        format!(
            "dns => {:?}",
            std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).map(Iterator::count)
        ),
        format!(
            "wall-clock => {:?}",
            std::time::SystemTime::now().duration_since(UNIX_EPOCH)
        ),
    ]);
    let started = Instant::now();
    std::hint::black_box(host::random());
    lines.push(format!("monotonic-clock => {:?}", started.elapsed()));
    lines
}
