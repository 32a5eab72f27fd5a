//! The `skillsmith:sync` component glue: WIT bindings, a [`Host`] over the
//! imports, and the exports calling [`engine::run`] and [`schedule::decide`].
//! Conversions between WIT and domain types and nothing else; all logic lives
//! in the plain-Rust modules, where it is tested natively.

// Generated code is documented from the WIT where the WIT has docs, and uses
// `unsafe` for the canonical ABI.
#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "sync",
        path: "../wit",
    });
}

use bindings::exports::skillsmith::sync::{engine as wit_engine, schedule as wit_schedule};
use bindings::skillsmith::sync::{host, http, store, types};

use crate::domain::{self, Host};
use crate::{engine, schedule};

// Decoding a page allocates for nearly every field of every record, and
// dlmalloc, the standard library's allocator on wasm32, made that a good
// part of what the component costs over the same code built natively
// (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

struct Component;

// The export shims are `#[unsafe(export_name)]` functions.
#[allow(unsafe_code)]
mod export {
    use super::{Component, bindings};
    bindings::export!(Component with_types_in bindings);
}

impl wit_engine::Guest for Component {
    fn run(
        options: wit_engine::SyncOptions,
    ) -> Result<wit_engine::SyncReport, wit_engine::SyncError> {
        let opts = domain::SyncOptions {
            registry: options.registry,
            force: options.force,
            dry_run: options.dry_run,
            page_size: options.page_size,
            mode: options.mode.map(mode_from_wit),
            now_ms: options.now_ms,
            retry_budget_ms: options.retry_budget_ms,
        };
        engine::run(&mut WitHost, opts)
            .map(report_to_wit)
            .map_err(sync_error_to_wit)
    }
}

impl wit_schedule::Guest for Component {
    fn decide(
        config: wit_schedule::ScheduleConfig,
        now_ms: i64,
        jitter_seed: u64,
    ) -> wit_schedule::Decision {
        let config = domain::ScheduleConfig {
            enabled: config.enabled,
            interval_ms: config.interval_ms,
            last_attempt_ms: config.last_attempt_ms,
            last_success_ms: config.last_success_ms,
            consecutive_failures: config.consecutive_failures,
        };
        let d = schedule::decide(config, now_ms, jitter_seed);
        wit_schedule::Decision {
            due: d.due,
            next_ms: d.next_ms,
        }
    }
}

/// [`Host`] over the component's imports.
struct WitHost;

impl Host for WitHost {
    type Pending = http::Pending;

    fn http_send(&mut self, request: domain::HttpRequest) -> http::Pending {
        http::send(&http::Request {
            url: request.url,
            headers: request.headers,
            timeout_ms: request.timeout_ms,
        })
    }

    fn http_wait(
        &mut self,
        pending: http::Pending,
    ) -> Result<domain::HttpResponse, domain::HttpError> {
        pending
            .wait()
            .map(|r| domain::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(http_error_from_wit)
    }

    fn read_state(&mut self) -> Result<domain::SyncState, domain::StoreError> {
        let s = store::read_state().map_err(store_error_from_wit)?;
        Ok(domain::SyncState {
            last_sync_at: s.last_sync_at,
            mode: s.mode.map(mode_from_wit),
            cursor: s.cursor,
            etag: s.etag,
            resync_pending: s.resync_pending,
            registry_skills: s.registry_skills,
        })
    }

    fn local_versions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<domain::LocalVersion>>, domain::StoreError> {
        let versions = store::local_versions(ids).map_err(store_error_from_wit)?;
        Ok(versions
            .into_iter()
            .map(|v| {
                v.map(|v| domain::LocalVersion {
                    updated_at: v.updated_at,
                    source: match v.source {
                        store::Source::Registry => domain::Source::Registry,
                        store::Source::Local => domain::Source::Local,
                    },
                })
            })
            .collect())
    }

    fn registry_ids(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, domain::StoreError> {
        store::registry_ids(after, limit).map_err(store_error_from_wit)
    }

    fn registry_rows(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<domain::RegistryRow>>, domain::StoreError> {
        let rows = store::registry_rows(ids).map_err(store_error_from_wit)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.map(|r| domain::RegistryRow {
                    id: r.id,
                    trust_tier: tier_from_wit(r.trust_tier),
                    scored: r.scored,
                    categories: r.categories,
                })
            })
            .collect())
    }

    fn begin_run(&mut self, mode: domain::SyncMode) -> Result<u64, domain::StoreError> {
        store::begin_run(mode_to_wit(mode)).map_err(store_error_from_wit)
    }

    fn apply_page(&mut self, run: u64, page: domain::Page) -> Result<(), domain::StoreError> {
        let page = store::Page {
            upserts: page.upserts.into_iter().map(skill_to_wit).collect(),
            removals: page.removals,
            checkpoint: store::Checkpoint {
                mode: mode_to_wit(page.checkpoint.mode),
                cursor: page.checkpoint.cursor,
                etag: page.checkpoint.etag,
                resync_pending: page.checkpoint.resync_pending,
            },
        };
        store::apply_page(run, &page).map_err(store_error_from_wit)
    }

    fn finish_run(
        &mut self,
        run: u64,
        outcome: domain::RunOutcome,
    ) -> Result<(), domain::StoreError> {
        let c = outcome.counts;
        let outcome = store::RunOutcome {
            status: match outcome.status {
                domain::RunStatus::Success => store::RunStatus::Success,
                domain::RunStatus::Partial => store::RunStatus::Partial,
                domain::RunStatus::Failed => store::RunStatus::Failed,
            },
            counts: store::RunCounts {
                added: c.added,
                updated: c.updated,
                unchanged: c.unchanged,
                removed: c.removed,
                skipped: c.skipped,
            },
            error: outcome.error,
            failure: outcome.failure.map(failure_to_wit),
            last_sync_at: outcome.last_sync_at,
            coverage: outcome.coverage.map(coverage_to_wit),
        };
        store::finish_run(run, &outcome).map_err(store_error_from_wit)
    }

    fn log(&mut self, level: domain::Level, message: &str) {
        let level = match level {
            domain::Level::Trace => host::Level::Trace,
            domain::Level::Debug => host::Level::Debug,
            domain::Level::Info => host::Level::Info,
            domain::Level::Warn => host::Level::Warn,
            domain::Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }

    fn progress(&mut self, report: domain::Progress) -> domain::Directive {
        directive_from_wit(host::progress(host::ProgressReport {
            phase: match report.phase {
                domain::Phase::Discover => host::Phase::Discover,
                domain::Phase::Fetch => host::Phase::Fetch,
                domain::Phase::Prune => host::Phase::Prune,
            },
            done: report.done,
            total: report.total,
            pages: report.pages,
            waiting_ms: report.waiting_ms,
            waiting_for: match report.waiting_for {
                domain::WaitReason::None => host::WaitReason::None,
                domain::WaitReason::RateLimit => host::WaitReason::RateLimit,
                domain::WaitReason::Retry => host::WaitReason::Retry,
            },
        }))
    }

    fn sleep(&mut self, ms: u64) -> domain::Directive {
        directive_from_wit(host::sleep(ms))
    }

    fn random(&mut self) -> u64 {
        host::random()
    }
}

fn directive_from_wit(d: host::Directive) -> domain::Directive {
    match d {
        host::Directive::Proceed => domain::Directive::Proceed,
        host::Directive::Stop => domain::Directive::Stop,
    }
}

fn mode_from_wit(m: types::SyncMode) -> domain::SyncMode {
    match m {
        types::SyncMode::ChangesFeed => domain::SyncMode::ChangesFeed,
        types::SyncMode::Search => domain::SyncMode::Search,
    }
}

fn mode_to_wit(m: domain::SyncMode) -> types::SyncMode {
    match m {
        domain::SyncMode::ChangesFeed => types::SyncMode::ChangesFeed,
        domain::SyncMode::Search => types::SyncMode::Search,
    }
}

fn tier_to_wit(t: domain::TrustTier) -> types::TrustTier {
    match t {
        domain::TrustTier::Official => types::TrustTier::Official,
        domain::TrustTier::Verified => types::TrustTier::Verified,
        domain::TrustTier::Curated => types::TrustTier::Curated,
        domain::TrustTier::Community => types::TrustTier::Community,
        domain::TrustTier::Unverified => types::TrustTier::Unverified,
        domain::TrustTier::Experimental => types::TrustTier::Experimental,
        domain::TrustTier::Unknown => types::TrustTier::Unknown,
    }
}

fn tier_from_wit(t: types::TrustTier) -> domain::TrustTier {
    match t {
        types::TrustTier::Official => domain::TrustTier::Official,
        types::TrustTier::Verified => domain::TrustTier::Verified,
        types::TrustTier::Curated => domain::TrustTier::Curated,
        types::TrustTier::Community => domain::TrustTier::Community,
        types::TrustTier::Unverified => domain::TrustTier::Unverified,
        types::TrustTier::Experimental => domain::TrustTier::Experimental,
        types::TrustTier::Unknown => domain::TrustTier::Unknown,
    }
}

fn failure_to_wit(k: domain::FailureKind) -> types::FailureKind {
    use domain::FailureKind as D;
    use types::FailureKind as W;
    match k {
        D::Usage => W::Usage,
        D::Unreachable => W::Unreachable,
        D::Tls => W::Tls,
        D::Redirected => W::Redirected,
        D::NotARegistry => W::NotARegistry,
        D::Unauthorised => W::Unauthorised,
        D::Quota => W::Quota,
        D::RateLimited => W::RateLimited,
        D::Protocol => W::Protocol,
        D::TooLarge => W::TooLarge,
        D::StoreBusy => W::StoreBusy,
        D::StoreCorrupt => W::StoreCorrupt,
        D::NoSpace => W::NoSpace,
        D::ReadOnly => W::ReadOnly,
        D::Busy => W::Busy,
        D::Superseded => W::Superseded,
        D::Cancelled => W::Cancelled,
        D::Component => W::Component,
        D::Internal => W::Internal,
    }
}

fn coverage_to_wit(c: domain::Coverage) -> types::Coverage {
    types::Coverage {
        registry_total: c.registry_total,
        reached: c.reached,
        unfilterable_tiers: c.unfilterable_tiers,
    }
}

fn skill_to_wit(s: domain::Skill) -> types::Skill {
    types::Skill {
        id: s.id,
        name: s.name,
        description: s.description,
        author: s.author,
        repo_url: s.repo_url,
        quality_score: s.quality_score,
        trust_tier: tier_to_wit(s.trust_tier),
        tags: s.tags,
        categories: s.categories,
        stars: s.stars,
        created_at: s.created_at,
        updated_at: s.updated_at,
        content_hash: s.content_hash,
        license: s.license,
        security_score: s.security_score,
        installable: s.installable,
        quarantined: s.quarantined,
    }
}

fn http_error_from_wit(e: http::HttpError) -> domain::HttpError {
    match e {
        http::HttpError::Timeout => domain::HttpError::Timeout,
        http::HttpError::Refused(t) => domain::HttpError::Refused(t),
        http::HttpError::Tls(t) => domain::HttpError::Tls(t),
        http::HttpError::Cancelled => domain::HttpError::Cancelled,
        http::HttpError::Connection(t) => domain::HttpError::Connection(t),
        http::HttpError::TooLarge(n) => domain::HttpError::TooLarge(n),
        http::HttpError::Denied(t) => domain::HttpError::Denied(t),
        http::HttpError::Other(t) => domain::HttpError::Other(t),
    }
}

fn http_error_to_wit(e: domain::HttpError) -> http::HttpError {
    match e {
        domain::HttpError::Timeout => http::HttpError::Timeout,
        domain::HttpError::Refused(t) => http::HttpError::Refused(t),
        domain::HttpError::Tls(t) => http::HttpError::Tls(t),
        domain::HttpError::Cancelled => http::HttpError::Cancelled,
        domain::HttpError::Connection(t) => http::HttpError::Connection(t),
        domain::HttpError::TooLarge(n) => http::HttpError::TooLarge(n),
        domain::HttpError::Denied(t) => http::HttpError::Denied(t),
        domain::HttpError::Other(t) => http::HttpError::Other(t),
    }
}

fn store_error_from_wit(e: store::StoreError) -> domain::StoreError {
    match e {
        store::StoreError::Busy => domain::StoreError::Busy,
        store::StoreError::RunOpen(t) => domain::StoreError::RunOpen(t),
        store::StoreError::Invalid(t) => domain::StoreError::Invalid(t),
        store::StoreError::NoSpace => domain::StoreError::NoSpace,
        store::StoreError::ReadOnly => domain::StoreError::ReadOnly,
        store::StoreError::Corrupt(t) => domain::StoreError::Corrupt(t),
        store::StoreError::Other(t) => domain::StoreError::Other(t),
    }
}

fn store_error_to_wit(e: domain::StoreError) -> store::StoreError {
    match e {
        domain::StoreError::Busy => store::StoreError::Busy,
        domain::StoreError::RunOpen(t) => store::StoreError::RunOpen(t),
        domain::StoreError::Invalid(t) => store::StoreError::Invalid(t),
        domain::StoreError::NoSpace => store::StoreError::NoSpace,
        domain::StoreError::ReadOnly => store::StoreError::ReadOnly,
        domain::StoreError::Corrupt(t) => store::StoreError::Corrupt(t),
        domain::StoreError::Other(t) => store::StoreError::Other(t),
    }
}

fn report_to_wit(r: domain::SyncReport) -> wit_engine::SyncReport {
    wit_engine::SyncReport {
        mode: mode_to_wit(r.mode),
        added: r.added,
        updated: r.updated,
        unchanged: r.unchanged,
        removed: r.removed,
        skipped: r.skipped,
        pages: r.pages,
        requests: r.requests,
        warnings: r.warnings,
        last_sync_at: r.last_sync_at,
        cancelled: r.cancelled,
        coverage: r.coverage.map(coverage_to_wit),
    }
}

fn sync_error_to_wit(e: domain::SyncError) -> wit_engine::SyncError {
    use wit_engine::SyncError as W;
    match e {
        domain::SyncError::Unreachable(h) => W::Unreachable(http_error_to_wit(h)),
        domain::SyncError::Unauthorized(t) => W::Unauthorized(t),
        domain::SyncError::QuotaExceeded(t) => W::QuotaExceeded(t),
        domain::SyncError::RateLimited(t) => W::RateLimited(t),
        domain::SyncError::Registry(t) => W::Registry(t),
        domain::SyncError::Redirected(t) => W::Redirected(t),
        domain::SyncError::NotARegistry(t) => W::NotARegistry(t),
        domain::SyncError::Protocol(t) => W::Protocol(t),
        domain::SyncError::Store(s) => W::Store(store_error_to_wit(s)),
        domain::SyncError::Busy => W::Busy,
    }
}
