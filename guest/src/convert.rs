//! The one set of WIT↔domain conversions, for both sides of the boundary.
//!
//! The guest's bindings (wit-bindgen) and the host's (wasmtime's `bindgen!`)
//! generate distinct Rust types from the same WIT, with the same names,
//! fields and variants. [`wit_conversions!`] is invoked once in each: it
//! lists every record and enum of `wit/` once, field by field, and writes
//! [`Convert`] both ways between it and its twin in [`crate::domain`]. A
//! field added to the WIT and the domain but not here fails to compile on
//! both sides, instead of being dropped by one hand-written copy.

/// A conversion between a domain type and its WIT twin (in either
/// direction). Unlike `From`, it can be implemented by the crate that owns
/// the bindings for pairs of foreign types in `Option` and `Vec`.
pub trait Convert<T> {
    /// Converts `self`.
    fn convert(self) -> T;
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(A::convert)
    }
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(A::convert).collect()
    }
}

impl<A: Convert<B>, B, E: Convert<F>, F> Convert<Result<B, F>> for Result<A, E> {
    fn convert(self) -> Result<B, F> {
        self.map(A::convert).map_err(E::convert)
    }
}

/// Writes [`Convert`] both ways between every WIT type of `skillsmith:sync`
/// and its domain twin. `$imports` and `$exports` name modules that alias
/// the bindings' `skillsmith::sync` and `exports::skillsmith::sync`.
///
/// Records list the fields that convert (`convert: [...]`, enums and nested
/// records) apart from those of the same type on both sides (`keep: [...]`,
/// moved as they are: strings, numbers, byte bodies). Variants name their
/// payload with how it converts.
#[macro_export]
macro_rules! wit_conversions {
    ($imports:ident, $exports:ident) => {
        $crate::wit_conversions!(@enum $imports::types::SyncMode => $crate::domain::SyncMode {
            ChangesFeed, Search,
        });
        $crate::wit_conversions!(@enum $imports::types::TrustTier => $crate::domain::TrustTier {
            Official, Verified, Curated, Community, Unverified, Experimental, Unknown,
        });
        $crate::wit_conversions!(@enum $imports::types::FailureKind => $crate::domain::FailureKind {
            Usage, Unreachable, Tls, Redirected, NotARegistry, Unauthorised, Quota, RateLimited,
            Protocol, TooLarge, StoreBusy, StoreCorrupt, NoSpace, ReadOnly, Busy, Superseded,
            Cancelled, Component, Internal,
        });
        $crate::wit_conversions!(@record $imports::types::Skill => $crate::domain::Skill {
            convert: [trust_tier],
            keep: [id, name, description, author, repo_url, quality_score, tags, categories,
                stars, created_at, updated_at, content_hash, license, security_score,
                installable, quarantined],
        });
        $crate::wit_conversions!(@record $imports::types::Coverage => $crate::domain::Coverage {
            convert: [],
            keep: [registry_total, reached, unfilterable_tiers],
        });

        $crate::wit_conversions!(@record $imports::http::Request => $crate::domain::HttpRequest {
            convert: [],
            keep: [url, headers, timeout_ms],
        });
        $crate::wit_conversions!(@record $imports::http::Response => $crate::domain::HttpResponse {
            convert: [],
            keep: [status, headers, body, sent_at_ms, received_at_ms],
        });
        $crate::wit_conversions!(@enum $imports::http::HttpError => $crate::domain::HttpError {
            Timeout, Refused(t: keep), Tls(t: keep), Cancelled, Connection(t: keep),
            TooLarge(n: keep), Denied(t: keep), Other(t: keep),
        });

        $crate::wit_conversions!(@enum $imports::store::StoreError => $crate::domain::StoreError {
            Busy, RunOpen(t: keep), Invalid(t: keep), NoSpace, ReadOnly, Corrupt(t: keep),
            Other(t: keep),
        });
        $crate::wit_conversions!(@record $imports::store::SyncState => $crate::domain::SyncState {
            convert: [mode],
            keep: [last_sync_at, cursor, etag, resync_pending, registry_skills],
        });
        $crate::wit_conversions!(@enum $imports::store::Source => $crate::domain::Source {
            Registry, Local,
        });
        $crate::wit_conversions!(@record $imports::store::LocalVersion => $crate::domain::LocalVersion {
            convert: [source],
            keep: [updated_at],
        });
        $crate::wit_conversions!(@record $imports::store::RegistryRow => $crate::domain::RegistryRow {
            convert: [trust_tier],
            keep: [id, scored, categories],
        });
        $crate::wit_conversions!(@record $imports::store::Checkpoint => $crate::domain::Checkpoint {
            convert: [mode],
            keep: [cursor, etag, resync_pending],
        });
        $crate::wit_conversions!(@record $imports::store::Page => $crate::domain::Page {
            convert: [upserts, checkpoint],
            keep: [removals],
        });
        $crate::wit_conversions!(@enum $imports::store::RunStatus => $crate::domain::RunStatus {
            Success, Partial, Failed,
        });
        $crate::wit_conversions!(@record $imports::store::RunCounts => $crate::domain::RunCounts {
            convert: [],
            keep: [added, updated, unchanged, removed, skipped],
        });
        $crate::wit_conversions!(@record $imports::store::RunOutcome => $crate::domain::RunOutcome {
            convert: [status, counts, failure, coverage],
            keep: [error, last_sync_at],
        });

        $crate::wit_conversions!(@enum $imports::host::Level => $crate::domain::Level {
            Trace, Debug, Info, Warn, Error,
        });
        $crate::wit_conversions!(@enum $imports::host::Phase => $crate::domain::Phase {
            Discover, Fetch, Prune,
        });
        $crate::wit_conversions!(@enum $imports::host::WaitReason => $crate::domain::WaitReason {
            None, RateLimit, Retry,
        });
        $crate::wit_conversions!(@record $imports::host::ProgressReport => $crate::domain::Progress {
            convert: [phase, waiting_for],
            keep: [done, total, pages, waiting_ms],
        });
        $crate::wit_conversions!(@enum $imports::host::Directive => $crate::domain::Directive {
            Proceed, Stop,
        });

        $crate::wit_conversions!(@record $exports::engine::SyncOptions => $crate::domain::SyncOptions {
            convert: [mode],
            keep: [registry, force, dry_run, page_size, now_ms, retry_budget_ms],
        });
        $crate::wit_conversions!(@record $exports::engine::SyncReport => $crate::domain::SyncReport {
            convert: [mode, coverage],
            keep: [added, updated, unchanged, removed, skipped, pages, requests, warnings,
                last_sync_at, cancelled],
        });
        $crate::wit_conversions!(@enum $exports::engine::SyncError => $crate::domain::SyncError {
            Unreachable(e: convert), Unauthorized(t: keep), QuotaExceeded(t: keep),
            RateLimited(t: keep), Registry(t: keep), Redirected(t: keep), NotARegistry(t: keep),
            Protocol(t: keep), Store(e: convert), Busy,
        });

        $crate::wit_conversions!(@record $exports::schedule::ScheduleConfig => $crate::domain::ScheduleConfig {
            convert: [],
            keep: [enabled, interval_ms, last_attempt_ms, last_success_ms, consecutive_failures],
        });
        $crate::wit_conversions!(@record $exports::schedule::Decision => $crate::domain::Decision {
            convert: [],
            keep: [due, next_ms],
        });
    };

    (@enum $wit:ty => $dom:ty { $($v:ident $(($p:ident: $how:ident))?),* $(,)? }) => {
        $crate::wit_conversions!(@enum_one $dom => $wit { $($v $(($p: $how))?),* });
        $crate::wit_conversions!(@enum_one $wit => $dom { $($v $(($p: $how))?),* });
    };
    (@enum_one $from:ty => $to:ty { $($v:ident $(($p:ident: $how:ident))?),* }) => {
        impl $crate::convert::Convert<$to> for $from {
            fn convert(self) -> $to {
                type Src = $from;
                type Dst = $to;
                match self {
                    $(Src::$v $(($p))? => Dst::$v $(($crate::wit_conversions!(@value $how $p)))?,)*
                }
            }
        }
    };

    (@record $wit:ty => $dom:ty { convert: [$($c:ident),*], keep: [$($k:ident),* $(,)?] $(,)? }) => {
        $crate::wit_conversions!(@record_one $dom => $wit { [$($c),*] [$($k),*] });
        $crate::wit_conversions!(@record_one $wit => $dom { [$($c),*] [$($k),*] });
    };
    (@record_one $from:ty => $to:ty { [$($c:ident),*] [$($k:ident),*] }) => {
        impl $crate::convert::Convert<$to> for $from {
            fn convert(self) -> $to {
                type Dst = $to;
                Dst {
                    $($c: $crate::convert::Convert::convert(self.$c),)*
                    $($k: self.$k,)*
                }
            }
        }
    };

    (@value keep $x:ident) => { $x };
    (@value convert $x:ident) => { $crate::convert::Convert::convert($x) };
}
