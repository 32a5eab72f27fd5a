//! Sending requests through the host with retries and rate-limit pacing:
//! exponential backoff with jitter, `Retry-After` and `X-RateLimit-Reset`
//! honoured (on the registry's clock, since the guest has none), a per-request
//! waiting budget, and proactive pacing once `X-RateLimit-Remaining` hits 0,
//! until the registry's clock surely reads the reset time ([`RegistryClock`]).
//! Every wait goes through `Host::sleep`, announced with `Host::progress`, and
//! either may cancel the run.

use crate::domain::{
    Directive, Host, HttpError, HttpRequest, HttpResponse, Level, Progress, SyncError, WaitReason,
};
use crate::protocol;
use crate::warnings::Warnings;

/// First backoff step; doubles per attempt.
pub const BASE_BACKOFF_MS: u64 = 500;
/// Longest single backoff step (before a `Retry-After` overrides it).
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// Attempts per request, the first included. The waiting budget normally ends
/// retrying first; this bounds a host whose sleeps return at once.
pub const MAX_ATTEMPTS: u32 = 10;
/// Attempts when no connection could be made at all (DNS, refused): a
/// registry that is not there now will rarely be there in a second, so two
/// quick retries, then the run fails fast instead of backing off for a
/// minute or more.
pub const REFUSED_ATTEMPTS: u32 = 3;
/// The backoff step between those attempts; doubles once.
pub const REFUSED_BACKOFF_MS: u64 = 250;
/// Most requests a run keeps in flight at once: enough to hide a slow
/// network's latency behind the pages being written, few enough to be a
/// polite client of a shared API.
pub const MAX_IN_FLIGHT: usize = 4;

/// Why a sync stops before finishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// It failed.
    Failed(SyncError),
    /// The host said `stop`.
    Cancelled,
}

impl From<SyncError> for Halt {
    fn from(e: SyncError) -> Halt {
        Halt::Failed(e)
    }
}

/// A request in flight, with what retrying it needs.
pub struct InFlight<P> {
    request: HttpRequest,
    pending: P,
    waited_ms: u64,
    final_statuses: &'static [u16],
}

impl<P> InFlight<P> {
    /// The request.
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }
}

/// Sends requests and waits for their responses, retrying and pacing.
#[derive(Debug)]
pub struct Client {
    budget_ms: u64,
    pace_ms: Option<u64>,
    requests: u32,
    progress: Progress,
    warned_unknown_reset: bool,
    /// The registry has answered this run at least once: a refused
    /// connection after that is a restart or a blip, not a wrong address,
    /// and gets the ordinary backoff.
    answered: bool,
    /// Requests sent and not yet waited for.
    in_flight: usize,
    /// What the current rate-limit window has left, as the responses said
    /// (less what was sent since, see [`Client::room`]).
    remaining: Option<u64>,
    /// `X-RateLimit-Reset` of that window, in Unix ms.
    window_reset: Option<i64>,
    /// The reset of the last window this client waited out: responses that
    /// still name it were counted in a window that is over.
    expired_reset: Option<i64>,
    clock: RegistryClock,
}

/// Where the registry's clock stands against the host's monotonic one
/// (`registry ms = host ms + offset`), narrowed by every response: its
/// `Date` (whole seconds) was read between the request's sending and the
/// response's arrival, so `offset` is at least `date - received` and less
/// than `date + 1 s - sent`. After a few responses the lower bound is within
/// a round trip of the truth, where the `Date` alone is up to a second off.
/// Added to every wait for a reset: the host's clock fields are whole
/// milliseconds, so the lower bound may be a millisecond high.
const RESET_MARGIN_MS: i64 = 5;

#[derive(Debug, Default, Clone, Copy)]
struct RegistryClock {
    lo: Option<i64>,
    hi: Option<i64>,
    /// Host time of the latest response: "now", give or take the time
    /// spent on its page.
    last_received: u64,
}

impl RegistryClock {
    fn observe(&mut self, resp: &HttpResponse) {
        let Some(date) = protocol::response_date(resp) else {
            return;
        };
        let date_ms = date.timestamp().saturating_mul(1000);
        let lo = date_ms.saturating_sub(resp.received_at_ms as i64);
        let hi = date_ms
            .saturating_add(999)
            .saturating_sub(resp.sent_at_ms as i64);
        (self.lo, self.hi) = match (self.lo, self.hi) {
            (Some(l), Some(h)) if lo.max(l) <= hi.min(h) => (Some(lo.max(l)), Some(hi.min(h))),
            // At odds with what came before (a clock was set): start again.
            _ => (Some(lo), Some(hi)),
        };
        self.last_received = self.last_received.max(resp.received_at_ms);
    }

    /// How long to wait, from the latest response, until the registry's
    /// clock surely reads `reset_ms` (Unix ms); `None` before any `Date`.
    fn wait_until(&self, reset_ms: i64) -> Option<u64> {
        let wake = reset_ms
            .saturating_add(RESET_MARGIN_MS)
            .saturating_sub(self.lo?);
        Some(wake.saturating_sub(self.last_received as i64).max(0) as u64)
    }

    /// [`RegistryClock::wait_until`] the reset `resp` announces.
    fn wait_for_reset(&self, resp: &HttpResponse) -> Option<u64> {
        self.wait_until(protocol::reset_ms(resp)?)
    }
}

enum Verdict {
    Done,
    Retry,
    Fail(SyncError),
}

enum Failure {
    Transport(HttpError),
    Status(u16, Option<String>),
}

impl Client {
    /// A client that waits at most `budget_ms` for any one request.
    pub fn new(budget_ms: u64, progress: Progress) -> Client {
        Client {
            budget_ms,
            pace_ms: None,
            requests: 0,
            progress,
            warned_unknown_reset: false,
            answered: false,
            in_flight: 0,
            remaining: None,
            window_reset: None,
            expired_reset: None,
            clock: RegistryClock::default(),
        }
    }

    /// How many more requests may be sent now without waiting for one in
    /// flight: at most [`MAX_IN_FLIGHT`] in flight, and never more than the
    /// rate limit's window has left (the latest response's
    /// `X-RateLimit-Remaining`, less what is in flight beside it, since the
    /// registry counts those too). None while a pause for the window is due.
    pub fn room(&self) -> usize {
        if self.pace_ms.is_some() {
            return 0;
        }
        let by_count = MAX_IN_FLIGHT.saturating_sub(self.in_flight);
        match self.remaining {
            Some(left) => by_count.min((left as usize).saturating_sub(self.in_flight)),
            None => by_count,
        }
    }

    /// Abandons a request in flight (its response is no longer wanted).
    /// The registry has most likely counted it already, so it still comes
    /// off what the window has left.
    pub fn abandon<P>(&mut self, flight: InFlight<P>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.remaining = self.remaining.map(|r| r.saturating_sub(1));
        drop(flight);
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// What to report with `waiting_ms` while waiting.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = progress;
    }

    /// Sends `request`, first waiting out the rate-limit window if the last
    /// response said none was left. Statuses in `final_statuses` are returned
    /// as they are even where they would be retried (a `/health` 503 is an
    /// answer, not a hiccup).
    pub fn send<H: Host>(
        &mut self,
        host: &mut H,
        request: HttpRequest,
        final_statuses: &'static [u16],
    ) -> Result<InFlight<H::Pending>, Halt> {
        let mut waited_ms = 0;
        if let Some(ms) = self.pace_ms.take() {
            if ms > self.budget_ms {
                return Err(Halt::Failed(SyncError::RateLimited(format!(
                    "the registry's rate limit is used up and resets in {} s, longer than the \
                     retry budget of {} s",
                    ms.div_ceil(1000),
                    self.budget_ms / 1000
                ))));
            }
            host.log(
                Level::Info,
                &format!("rate limit used up; waiting {ms} ms for the window to reset"),
            );
            self.pause(host, ms, WaitReason::RateLimit)?;
            waited_ms = ms;
            // That window is over: the next response says what the new one has.
            self.expired_reset = self.window_reset;
            self.remaining = None;
        }
        let pending = host.http_send(request.clone());
        self.requests += 1;
        self.in_flight += 1;
        Ok(InFlight {
            request,
            pending,
            waited_ms,
            final_statuses,
        })
    }

    /// Waits for the response, retrying timeouts, connection failures, 5xx
    /// and 429 within the budget. Returns any other response (2xx, 3xx,
    /// 4xx) for the caller to interpret; 401, 403 and an exhausted monthly
    /// quota are errors here because no caller can do anything else with them.
    pub fn wait<H: Host>(
        &mut self,
        host: &mut H,
        flight: InFlight<H::Pending>,
        warnings: &mut Warnings,
    ) -> Result<HttpResponse, Halt> {
        let InFlight {
            request,
            mut pending,
            mut waited_ms,
            final_statuses,
        } = flight;
        // Whatever happens below, this request is no longer in flight.
        self.in_flight = self.in_flight.saturating_sub(1);
        let mut attempt = 1;
        loop {
            let (failure, hint) = match host.http_wait(pending) {
                Ok(resp) => {
                    self.answered = true;
                    self.clock.observe(&resp);
                    self.note_rate_limit(&resp, warnings);
                    match verdict(&resp, final_statuses) {
                        Verdict::Done => return Ok(resp),
                        Verdict::Fail(e) => return Err(Halt::Failed(e)),
                        Verdict::Retry => {
                            // A 429 read late (behind pages in flight) has
                            // had part of its `Retry-After` already: what is
                            // left of it, else the reset on the registry's
                            // clock.
                            let since =
                                self.clock.last_received.saturating_sub(resp.received_at_ms);
                            let hint = protocol::retry_after_ms(&resp)
                                .map(|ms| ms.saturating_sub(since))
                                .or_else(|| {
                                    (resp.status == 429)
                                        .then(|| self.clock.wait_for_reset(&resp))
                                        .flatten()
                                });
                            let code = protocol::error_code(&resp.body);
                            (Failure::Status(resp.status, code), hint)
                        }
                    }
                }
                Err(HttpError::Cancelled) => return Err(Halt::Cancelled),
                Err(
                    e @ (HttpError::Timeout | HttpError::Connection(_) | HttpError::Refused(_)),
                ) => (Failure::Transport(e), None),
                Err(e) => return Err(Halt::Failed(SyncError::Unreachable(e))),
            };
            let refused =
                !self.answered && matches!(failure, Failure::Transport(HttpError::Refused(_)));
            let (max_attempts, step) = if refused {
                (
                    REFUSED_ATTEMPTS,
                    Some(REFUSED_BACKOFF_MS << (attempt - 1).min(1)),
                )
            } else {
                (MAX_ATTEMPTS, None)
            };
            // A 429 that says to retry at once (`Retry-After: 0`, or a
            // reset already past: a registry that rounds its reset down)
            // was refused all the same; retrying at once would spend every
            // attempt in a moment, so it backs off.
            let delay = hint
                .filter(|&ms| ms > 0)
                .or(step)
                .unwrap_or_else(|| backoff(host, attempt))
                .max(self.pace_ms.take().unwrap_or(0));
            if attempt >= max_attempts || waited_ms.saturating_add(delay) > self.budget_ms {
                return Err(Halt::Failed(give_up(
                    failure,
                    attempt,
                    attempt >= max_attempts,
                    delay,
                    self.budget_ms,
                )));
            }
            host.log(
                Level::Warn,
                &format!(
                    "{} failed ({}); retrying in {delay} ms (attempt {} of at most {max_attempts})",
                    request.url,
                    describe(&failure),
                    attempt + 1
                ),
            );
            let why = match failure {
                Failure::Status(429, _) => WaitReason::RateLimit,
                _ => WaitReason::Retry,
            };
            self.pause(host, delay, why)?;
            waited_ms += delay;
            attempt += 1;
            pending = host.http_send(request.clone());
            self.requests += 1;
        }
    }

    /// Sleeps through the host, telling it first how long and why; either
    /// may stop.
    fn pause<H: Host>(&mut self, host: &mut H, ms: u64, why: WaitReason) -> Result<(), Halt> {
        if ms == 0 {
            return Ok(());
        }
        let report = Progress {
            waiting_ms: ms,
            waiting_for: why,
            ..self.progress
        };
        if host.progress(report) == Directive::Stop || host.sleep(ms) == Directive::Stop {
            return Err(Halt::Cancelled);
        }
        Ok(())
    }

    /// Plans a pause before the next request when this response used up the
    /// rate-limit window.
    fn note_rate_limit(&mut self, resp: &HttpResponse, warnings: &mut Warnings) {
        let limit = protocol::rate_limit(resp);
        let Some(left) = limit.remaining else {
            // A reply without the headers (a proxy's 502, say) spent one.
            self.remaining = self.remaining.map(|r| r.saturating_sub(1));
            return;
        };
        if limit
            .reset_ms
            .zip(self.expired_reset)
            .is_some_and(|(reset, expired)| reset <= expired)
        {
            // Counted in a window this client has waited out.
            return;
        }
        // With requests in flight, responses can be read in another order
        // than the registry counted them: within one window the lowest
        // count is the latest; only a later reset is a new window.
        let newer = match (limit.reset_ms, self.window_reset) {
            (Some(reset), Some(known)) => reset > known,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if newer {
            self.window_reset = limit.reset_ms;
            self.remaining = Some(left);
            self.pace_ms = None;
        } else {
            self.remaining = Some(self.remaining.map_or(left, |r| r.min(left)));
        }
        if self.remaining != Some(0) || self.pace_ms.is_some() {
            return;
        }
        match self.clock.wait_for_reset(resp) {
            // An honest reset is the window's end, exact or rounded up to
            // the second, so reaching it on the registry's clock is never
            // early. One rounded down is, and the 429 it earns backs off.
            Some(ms) => self.pace_ms = Some(ms),
            None if !self.warned_unknown_reset => {
                self.warned_unknown_reset = true;
                warnings.push(
                    "X-RateLimit-Remaining is 0 but X-RateLimit-Reset or Date is missing; \
                     cannot pace requests"
                        .into(),
                );
            }
            None => {}
        }
    }
}

fn verdict(resp: &HttpResponse, final_statuses: &[u16]) -> Verdict {
    let status = resp.status;
    if final_statuses.contains(&status) {
        return Verdict::Done;
    }
    match status {
        401 | 403 => Verdict::Fail(SyncError::Unauthorized(unauthorized_message(
            status,
            protocol::error_code(&resp.body),
        ))),
        429 => match protocol::error_code(&resp.body) {
            Some(code) if code == "monthly_quota_exceeded" => {
                let resets = protocol::reset_ms(resp)
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| format!("it resets at {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_else(|| "the registry did not say when it resets".into());
                Verdict::Fail(SyncError::QuotaExceeded(format!(
                    "the monthly request quota of this API key is used up (HTTP 429 \
                     monthly_quota_exceeded): {resets}"
                )))
            }
            _ => Verdict::Retry,
        },
        500..=599 => Verdict::Retry,
        _ => Verdict::Done,
    }
}

fn unauthorized_message(status: u16, code: Option<String>) -> String {
    let detail = code.map(|c| format!(": {c}")).unwrap_or_default();
    if status == 401 {
        format!(
            "the registry refused the request (HTTP 401{detail}): without an API key it allows \
             10 requests in all, so a sync needs one, and a key that is sent must be valid"
        )
    } else {
        format!(
            "the registry denied access (HTTP 403{detail}): the API key is not allowed to use \
             this registry"
        )
    }
}

/// Equal-jitter exponential backoff: half the step fixed, half random, so
/// that clients failing together do not retry together.
fn backoff<H: Host>(host: &mut H, attempt: u32) -> u64 {
    let step = BASE_BACKOFF_MS
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(MAX_BACKOFF_MS)
        .min(MAX_BACKOFF_MS);
    step / 2 + host.random() % (step / 2 + 1)
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Transport(HttpError::Timeout) => "timed out".into(),
        Failure::Transport(e) => format!("{e}"),
        Failure::Status(s, Some(code)) => format!("HTTP {s}: {code}"),
        Failure::Status(s, None) => format!("HTTP {s}"),
    }
}

fn give_up(
    failure: Failure,
    attempts: u32,
    out_of_attempts: bool,
    next_delay: u64,
    budget_ms: u64,
) -> SyncError {
    let why = if out_of_attempts {
        format!("after {attempts} attempts")
    } else {
        format!(
            "after {attempts} attempts (waiting {} s more would exceed the retry budget of {} s)",
            next_delay.div_ceil(1000),
            budget_ms / 1000
        )
    };
    match failure {
        Failure::Transport(e) => SyncError::Unreachable(e),
        Failure::Status(429, _) => SyncError::RateLimited(format!(
            "the registry kept answering 429 Too Many Requests {why}"
        )),
        failure => SyncError::Registry(format!(
            "the registry kept failing ({}) {why}",
            describe(&failure)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;
    use std::collections::VecDeque;

    /// Just enough host for the HTTP side.
    #[derive(Default)]
    struct Net {
        script: VecDeque<Result<HttpResponse, HttpError>>,
        sent: Vec<HttpRequest>,
        slept: Vec<u64>,
        waits_reported: Vec<u64>,
        reasons: Vec<WaitReason>,
        stop_on_sleep: bool,
    }

    impl Host for Net {
        type Pending = Result<HttpResponse, HttpError>;
        fn http_send(&mut self, r: HttpRequest) -> Self::Pending {
            self.sent.push(r);
            self.script.pop_front().expect("unscripted request")
        }
        fn http_wait(&mut self, p: Self::Pending) -> Result<HttpResponse, HttpError> {
            p
        }
        fn read_state(&mut self) -> Result<SyncState, StoreError> {
            unimplemented!()
        }
        fn local_versions(
            &mut self,
            _: &[String],
        ) -> Result<Vec<Option<LocalVersion>>, StoreError> {
            unimplemented!()
        }
        fn registry_ids(&mut self, _: Option<&str>, _: u32) -> Result<Vec<String>, StoreError> {
            unimplemented!()
        }
        fn registry_rows(&mut self, _: &[String]) -> Result<Vec<Option<RegistryRow>>, StoreError> {
            unimplemented!()
        }
        fn begin_run(&mut self, _: SyncMode) -> Result<u64, StoreError> {
            unimplemented!()
        }
        fn apply_page(&mut self, _: u64, _: Page) -> Result<(), StoreError> {
            unimplemented!()
        }
        fn finish_run(&mut self, _: u64, _: RunOutcome) -> Result<(), StoreError> {
            unimplemented!()
        }
        fn log(&mut self, _: Level, _: &str) {}
        fn progress(&mut self, p: Progress) -> Directive {
            self.waits_reported.push(p.waiting_ms);
            self.reasons.push(p.waiting_for);
            Directive::Proceed
        }
        fn sleep(&mut self, ms: u64) -> Directive {
            self.slept.push(ms);
            if self.stop_on_sleep {
                Directive::Stop
            } else {
                Directive::Proceed
            }
        }
        fn random(&mut self) -> u64 {
            12345
        }
    }

    fn r(status: u16, headers: &[(&str, &str)], body: &str) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            sent_at_ms: 0,
            received_at_ms: 0,
        })
    }

    fn req() -> HttpRequest {
        HttpRequest {
            url: "https://reg.example/health".into(),
            headers: vec![],
            timeout_ms: 0,
        }
    }

    fn progress() -> Progress {
        Progress {
            phase: Phase::Fetch,
            done: 0,
            total: None,
            pages: 0,
            waiting_ms: 0,
            waiting_for: WaitReason::None,
        }
    }

    fn fetch(net: &mut Net, budget: u64) -> (Result<HttpResponse, Halt>, u32) {
        let mut c = Client::new(budget, progress());
        let mut w = Warnings::new();
        let res = c.send(net, req(), &[]).and_then(|f| c.wait(net, f, &mut w));
        (res, c.requests())
    }

    const DATE: &str = "Wed, 25 Nov 2026 02:00:00 GMT";

    #[test]
    fn retries_transient_then_succeeds() {
        let mut net = Net::default();
        net.script.extend([
            Err(HttpError::Timeout),
            Err(HttpError::Connection("reset".into())),
            r(503, &[], ""),
            r(429, &[("retry-after", "3")], r#"{"error":"rate_limited"}"#),
            r(200, &[], "{}"),
        ]);
        let (res, requests) = fetch(&mut net, 60_000);
        assert_eq!(res.unwrap().status, 200);
        assert_eq!(requests, 5);
        assert_eq!(net.slept.len(), 4);
        assert_eq!(net.slept[3], 3000, "Retry-After honoured");
        assert_eq!(net.slept, net.waits_reported);
        // Backoff grows: step 500, 1000, 2000 with equal jitter.
        assert!((250..=500).contains(&net.slept[0]));
        assert!((500..=1000).contains(&net.slept[1]));
        assert!((1000..=2000).contains(&net.slept[2]));
    }

    #[test]
    fn a_refused_connection_gets_two_quick_retries_and_tls_none() {
        let mut net = Net::default();
        net.script
            .extend((0..5).map(|_| Err(HttpError::Refused("connection refused".into()))));
        let (res, requests) = fetch(&mut net, 120_000);
        assert_eq!(requests, REFUSED_ATTEMPTS);
        assert_eq!(net.slept, [250, 500], "quick, and announced as retries");
        assert!(matches!(
            res,
            Err(Halt::Failed(SyncError::Unreachable(HttpError::Refused(_))))
        ));
        let mut net = Net::default();
        net.script
            .push_back(Err(HttpError::Tls("plain HTTP".into())));
        let (res, requests) = fetch(&mut net, 120_000);
        assert_eq!(requests, 1);
        assert!(matches!(
            res,
            Err(Halt::Failed(SyncError::Unreachable(HttpError::Tls(_))))
        ));
        // A request the host abandoned because it is stopping is a stop.
        let mut net = Net::default();
        net.script.push_back(Err(HttpError::Cancelled));
        assert_eq!(fetch(&mut net, 120_000).0.unwrap_err(), Halt::Cancelled);
    }

    #[test]
    fn waits_say_why() {
        let mut net = Net::default();
        net.script.push_back(Err(HttpError::Timeout));
        net.script.push_back(r(429, &[("retry-after", "2")], "{}"));
        net.script.push_back(r(200, &[], "{}"));
        fetch(&mut net, 60_000).0.unwrap();
        assert_eq!(net.reasons, [WaitReason::Retry, WaitReason::RateLimit]);
    }

    #[test]
    fn the_quota_message_says_when_it_resets() {
        let mut net = Net::default();
        net.script.push_back(r(
            429,
            &[("x-ratelimit-reset", "1796083200")],
            r#"{"error":"monthly_quota_exceeded"}"#,
        ));
        let msg = match fetch(&mut net, 60_000).0 {
            Err(Halt::Failed(SyncError::QuotaExceeded(m))) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg.contains("resets at 2026-12-01 00:00 UTC"), "{msg}");
    }

    #[test]
    fn never_retries_auth_or_quota() {
        for (status, body, want) in [
            (401, "{}", "10 requests in all"),
            (403, "{}", "not allowed"),
            (
                429,
                r#"{"error":"monthly_quota_exceeded"}"#,
                "did not say when it resets",
            ),
        ] {
            let mut net = Net::default();
            net.script.push_back(r(status, &[], body));
            let (res, requests) = fetch(&mut net, 60_000);
            assert_eq!(requests, 1);
            let msg = match res {
                Err(Halt::Failed(SyncError::Unauthorized(m))) => m,
                Err(Halt::Failed(SyncError::QuotaExceeded(m))) => m,
                other => panic!("{other:?}"),
            };
            assert!(msg.contains(want), "{msg}");
        }
        let mut net = Net::default();
        net.script.push_back(r(404, &[], "{}"));
        assert_eq!(fetch(&mut net, 60_000).0.unwrap().status, 404);
    }

    #[test]
    fn rate_limit_reset_uses_registry_clock() {
        let mut net = Net::default();
        // 1795572000 is the Date; reset 20 s later.
        net.script.extend([
            r(
                429,
                &[("date", DATE), ("x-ratelimit-reset", "1795572020")],
                "",
            ),
            r(200, &[], "{}"),
        ]);
        let (res, _) = fetch(&mut net, 60_000);
        assert!(res.is_ok());
        assert_eq!(net.slept, [20_000 + RESET_MARGIN_MS as u64]);
    }

    #[test]
    fn a_429_that_says_retry_now_backs_off() {
        let mut net = Net::default();
        net.script.extend([
            r(429, &[("retry-after", "0")], ""),
            // Reset a second before the `Date`: already past.
            r(
                429,
                &[("date", DATE), ("x-ratelimit-reset", "1795571999")],
                "",
            ),
            r(200, &[], "{}"),
        ]);
        let (res, requests) = fetch(&mut net, 60_000);
        assert_eq!(res.unwrap().status, 200);
        assert_eq!(requests, 3);
        assert!((250..=500).contains(&net.slept[0]), "{:?}", net.slept);
        assert!((500..=1000).contains(&net.slept[1]), "{:?}", net.slept);
    }

    #[test]
    fn budget_exhausted() {
        let mut net = Net::default();
        net.script.push_back(r(429, &[("retry-after", "120")], ""));
        let (res, requests) = fetch(&mut net, 60_000);
        assert!(
            matches!(res, Err(Halt::Failed(SyncError::RateLimited(_)))),
            "{res:?}"
        );
        assert_eq!(requests, 1);
        assert!(net.slept.is_empty());

        let mut net = Net::default();
        net.script
            .extend((0..MAX_ATTEMPTS).map(|_| Err(HttpError::Timeout)));
        let (res, requests) = fetch(&mut net, u64::MAX);
        assert_eq!(
            res,
            Err(Halt::Failed(SyncError::Unreachable(HttpError::Timeout)))
        );
        assert_eq!(requests, MAX_ATTEMPTS);

        let mut net = Net::default();
        net.script.push_back(r(502, &[], ""));
        let (res, _) = fetch(&mut net, 0);
        assert!(matches!(res, Err(Halt::Failed(SyncError::Registry(_)))));

        let mut net = Net::default();
        net.script
            .push_back(Err(HttpError::Denied("origin".into())));
        let (res, requests) = fetch(&mut net, 60_000);
        assert_eq!(
            res,
            Err(Halt::Failed(SyncError::Unreachable(HttpError::Denied(
                "origin".into()
            ))))
        );
        assert_eq!(requests, 1);
    }

    #[test]
    fn the_registry_clock_is_placed_within_the_sampling_interval() {
        // The registry's clock reads host ms + OFF; each response's `Date`
        // (whole seconds) is taken 2 ms before it arrives.
        const OFF: i64 = 1_795_572_000_700;
        let mut clock = RegistryClock::default();
        for t in (0..=2000u64).step_by(100) {
            let date = chrono::DateTime::from_timestamp((t as i64 + OFF - 2) / 1000, 0).unwrap();
            clock.observe(&HttpResponse {
                status: 200,
                headers: vec![(
                    "date".into(),
                    date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                )],
                body: Vec::new(),
                sent_at_ms: t.saturating_sub(5),
                received_at_ms: t,
            });
        }
        let reset = (2000 + OFF) / 1000 + 1;
        let exact = (reset * 1000 - (2000 + OFF)) as u64;
        let wait = clock.wait_until(reset * 1000).unwrap();
        // Never early; late by at most the spacing of the samples, where the
        // `Date` alone (reset minus the last `Date`) is up to a second off.
        assert!(
            (exact..=exact + 100 + RESET_MARGIN_MS as u64).contains(&wait),
            "{wait} against {exact}"
        );
        let date_only = ((reset - (2000 + OFF - 2) / 1000) * 1000) as u64;
        assert!(date_only >= exact + 600, "{date_only}");
    }

    #[test]
    fn paces_when_remaining_is_zero() {
        // The Date is 1795572000: a reset in seconds, and one in
        // milliseconds, waited for to the millisecond.
        for (reset, wait) in [("1795572007", 7000), ("1795572002250", 2250)] {
            let mut net = Net::default();
            net.script.extend([
                r(
                    200,
                    &[
                        ("date", DATE),
                        ("x-ratelimit-remaining", "0"),
                        ("x-ratelimit-reset", reset),
                    ],
                    "",
                ),
                r(200, &[], ""),
            ]);
            let mut c = Client::new(60_000, progress());
            let mut w = Warnings::new();
            let f = c.send(&mut net, req(), &[]).unwrap();
            c.wait(&mut net, f, &mut w).unwrap();
            assert!(net.slept.is_empty());
            let f = c.send(&mut net, req(), &[]).unwrap();
            assert_eq!(
                net.slept,
                [wait + RESET_MARGIN_MS as u64],
                "paced before the second request"
            );
            c.wait(&mut net, f, &mut w).unwrap();
            assert_eq!(c.requests(), 2);
        }
    }

    #[test]
    fn stop_while_waiting_cancels() {
        let mut net = Net {
            stop_on_sleep: true,
            ..Net::default()
        };
        net.script.push_back(Err(HttpError::Timeout));
        assert_eq!(fetch(&mut net, 60_000).0, Err(Halt::Cancelled));
    }

    #[test]
    fn final_statuses_are_not_retried() {
        let mut net = Net::default();
        net.script.push_back(r(503, &[], "{}"));
        let mut c = Client::new(60_000, progress());
        let f = c.send(&mut net, req(), &[503]).unwrap();
        assert_eq!(
            c.wait(&mut net, f, &mut Warnings::new()).unwrap().status,
            503
        );
    }
}
