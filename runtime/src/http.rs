//! The HTTP backend behind the `http` import: reqwest on a small tokio
//! runtime that the backend owns.
//!
//! Owning the runtime lets the same code serve the synchronous CLI and the
//! MCP server (which calls a sync from `spawn_blocking` inside its own tokio
//! runtime): `send` spawns the request onto our runtime and hands back a
//! [`Pending`] backed by a `std::sync::mpsc` channel, so the calling thread
//! never enters a tokio blocking context. Redirects are never followed, the
//! API key is added here (never seen by the guest) and only for the allowed
//! origin, bodies are capped while streaming.

use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use skillsmith_guest::domain::{HttpError, HttpRequest, HttpResponse};

use crate::policy::Policy;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("skillsmith/", env!("CARGO_PKG_VERSION"));

/// How long `connect` may take, within the request's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the backend could not be created.
#[derive(Debug, thiserror::Error)]
pub enum HttpInitError {
    /// The tokio runtime could not start (out of threads or memory).
    #[error("could not start the HTTP runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// reqwest refused the configuration (TLS backend failed to initialise).
    #[error("could not create the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The API key cannot be sent as a header value.
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    BadApiKey,
}

/// HTTP client restricted by a [`Policy`].
pub struct HttpBackend {
    // `Option` only so that `Drop` can move it out and shut it down without
    // blocking (dropping a runtime inside another runtime's context panics).
    runtime: Option<tokio::runtime::Runtime>,
    client: reqwest::Client,
    policy: Policy,
    api_key: Option<HeaderValue>,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("policy", &self.policy)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A request in flight. Dropping it abandons the request.
#[derive(Debug)]
pub struct Pending {
    rx: mpsc::Receiver<Result<HttpResponse, HttpError>>,
    abort: Option<tokio::task::AbortHandle>,
}

impl Pending {
    fn ready(result: Result<HttpResponse, HttpError>) -> Pending {
        let (tx, rx) = mpsc::sync_channel(1);
        // Cannot fail: the receiver is alive and the buffer has room.
        let _ = tx.send(result);
        Pending { rx, abort: None }
    }

    /// Blocks until the response is complete or has failed.
    pub fn wait(self) -> Result<HttpResponse, HttpError> {
        self.rx.recv().unwrap_or_else(|_| Err(lost_task()))
    }

    /// Like [`Pending::wait`], but checks `stop` every `slice` and abandons
    /// the request once it returns true, so that a shutting-down host does not
    /// wait for a slow registry. The guest then sees `cancelled` and stops
    /// at that boundary.
    pub fn wait_or_stop(
        self,
        slice: Duration,
        mut stop: impl FnMut() -> bool,
    ) -> Result<HttpResponse, HttpError> {
        loop {
            match self.rx.recv_timeout(slice) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(lost_task()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stop() {
                        return Err(HttpError::Cancelled);
                    }
                }
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }
}

fn lost_task() -> HttpError {
    HttpError::Other("the HTTP task ended without a result".to_owned())
}

impl HttpBackend {
    /// Creates the backend; `api_key`, when given, is sent as `X-API-Key` to
    /// the policy's origin.
    pub fn new(policy: Policy, api_key: Option<String>) -> Result<HttpBackend, HttpInitError> {
        let api_key = match api_key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&k).map_err(|_| HttpInitError::BadApiKey)?;
                // Keeps it out of reqwest's and hyper's debug output.
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        // One worker is enough: the guest has at most four requests in
        // flight (their decoding is a few milliseconds a page), and the MCP
        // server must not gain a thread per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("skillsmith-http")
            .enable_all()
            .build()
            .map_err(HttpInitError::Runtime)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(HttpInitError::Client)?;
        Ok(HttpBackend {
            runtime: Some(runtime),
            client,
            policy,
            api_key,
        })
    }

    /// The policy requests are checked against.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Starts a request and returns at once. Policy violations are reported
    /// by [`Pending::wait`] as `denied`, as the WIT specifies.
    pub fn send(&self, request: HttpRequest) -> Pending {
        let url = match self.policy.check_url(&request.url) {
            Ok(url) => url,
            Err(why) => return Pending::ready(Err(HttpError::Denied(why))),
        };
        if let Err(why) = self.policy.check_headers(&request.headers) {
            return Pending::ready(Err(HttpError::Denied(why)));
        }
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 1);
        for (name, value) in &request.headers {
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Pending::ready(Err(HttpError::Denied(format!(
                    "malformed request header {name:?}"
                ))));
            };
            headers.append(n, v);
        }
        // `check_url` guarantees the origin is the registry's, the only one
        // allowed to see the key.
        if let Some(key) = &self.api_key {
            headers.insert(HeaderName::from_static("x-api-key"), key.clone());
        }
        let timeout = self.policy.effective_timeout(request.timeout_ms);
        let cap = self.policy.max_body_bytes();
        let builder = self.client.get(url).headers(headers);
        let (tx, rx) = mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        let task = runtime.spawn(async move {
            let result = match tokio::time::timeout(timeout, fetch(builder, cap)).await {
                Ok(r) => r,
                Err(_) => Err(HttpError::Timeout),
            };
            // The receiver may be gone (request abandoned); nothing to do then.
            let _ = tx.send(result);
        });
        Pending {
            rx,
            abort: Some(task.abort_handle()),
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The backend's monotonic clock for `sent-at-ms` / `received-at-ms`:
/// milliseconds since the first request of the process.
fn monotonic_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

async fn fetch(builder: reqwest::RequestBuilder, cap: u64) -> Result<HttpResponse, HttpError> {
    let sent_at_ms = monotonic_ms();
    let mut response = builder.send().await.map_err(classify)?;
    let received_at_ms = monotonic_ms();
    if let Some(len) = response.content_length()
        && len > cap
    {
        return Err(HttpError::TooLarge(cap));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            // `HeaderName` is always lower-case; values may be any bytes.
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(HttpError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
        sent_at_ms,
        received_at_ms,
    })
}

/// Maps a reqwest failure onto the closed `http-error` variants.
fn classify(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_connect() {
        match tls_failure(&e) {
            Some(TlsFailure::PlainHttp) => HttpError::Tls(format!(
                "the server at {} answers in plain HTTP, not TLS: use an http:// URL for it",
                e.url().map_or_else(|| "this address".to_owned(), origin_of)
            )),
            Some(TlsFailure::Other) => HttpError::Tls(error_chain(&e)),
            None => HttpError::Refused(error_chain(&e)),
        }
    } else if e.is_body() || e.is_decode() {
        HttpError::Connection(format!("response body cut short: {}", error_chain(&e)))
    } else if e.is_request() {
        HttpError::Connection(error_chain(&e))
    } else if e.is_builder() {
        HttpError::Denied(error_chain(&e))
    } else {
        HttpError::Other(error_chain(&e))
    }
}

/// How a connection's TLS handshake failed, if that is what failed.
enum TlsFailure {
    /// The server's first bytes were not TLS: it speaks plain HTTP.
    PlainHttp,
    /// Anything else: a certificate, a protocol version, a reset mid-way.
    Other,
}

/// Finds a TLS failure in a connect error's sources: tokio-rustls reports a
/// handshake error as an `io::Error` of kind `InvalidData` wrapping the
/// `rustls::Error`, which hyper wraps in another `io::Error`. (An
/// `io::Error`'s `source()` skips the error it wraps, so wrapped ones are
/// unpacked with `get_ref`.)
fn tls_failure(e: &reqwest::Error) -> Option<TlsFailure> {
    fn of(err: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(match t {
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                    TlsFailure::PlainHttp
                }
                _ => TlsFailure::Other,
            });
        }
        let io = err.downcast_ref::<std::io::Error>()?;
        match io.get_ref() {
            Some(inner) => of(inner).or_else(|| {
                (io.kind() == std::io::ErrorKind::InvalidData).then_some(TlsFailure::Other)
            }),
            None => (io.kind() == std::io::ErrorKind::InvalidData).then_some(TlsFailure::Other),
        }
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(found) = of(s) {
            return Some(found);
        }
        source = s.source();
    }
    None
}

fn origin_of(u: &reqwest::Url) -> String {
    u.origin().ascii_serialization()
}

/// reqwest's top-level message is generic ("error sending request"); the
/// useful part (refused, reset, certificate) is in the source chain.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server on a loopback port answering each connection
    /// with `reply`; it records what it received.
    fn serve(reply: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                if n == 0 || got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            s.write_all(reply).unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (format!("http://{addr}"), handle)
    }

    fn req(url: String) -> HttpRequest {
        HttpRequest {
            url,
            headers: vec![("If-None-Match".into(), "\"e1\"".into())],
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn get_adds_key_and_lowercases_headers() {
        let (base, server) = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-RateLimit-Remaining: 7\r\nConnection: close\r\n\r\nok",
        );
        let policy = Policy::for_registry(&base).unwrap();
        let http = HttpBackend::new(policy, Some("sekret".into())).unwrap();
        let r = http.send(req(format!("{base}/health"))).wait().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
        assert_eq!(r.header("x-ratelimit-remaining"), Some("7"));
        assert!(r.headers.iter().all(|(n, _)| n == &n.to_lowercase()));
        let seen = server.join().unwrap().to_lowercase();
        assert!(seen.contains("x-api-key: sekret"), "{seen}");
        assert!(seen.contains("if-none-match: \"e1\""), "{seen}");
        assert!(seen.contains("user-agent: skillsmith/"), "{seen}");
    }

    #[test]
    fn redirects_are_returned_not_followed() {
        let (base, server) = serve(
            b"HTTP/1.1 302 Found\r\nLocation: https://evil.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let http = HttpBackend::new(Policy::for_registry(&base).unwrap(), None).unwrap();
        let r = http.send(req(format!("{base}/x"))).wait().unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://evil.example/"));
        server.join().unwrap();
    }

    #[test]
    fn oversized_bodies_are_too_large() {
        let (base, server) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
        let policy = Policy::for_registry(&base).unwrap().with_max_body_bytes(50);
        let http = HttpBackend::new(policy, None).unwrap();
        assert_eq!(
            http.send(req(format!("{base}/x"))).wait(),
            Err(HttpError::TooLarge(50))
        );
        server.join().unwrap();
    }

    #[test]
    fn cut_bodies_are_connection_errors_and_refused_connections_refused() {
        let (base, server) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this");
        let http = HttpBackend::new(Policy::for_registry(&base).unwrap(), None).unwrap();
        let r = http.send(req(format!("{base}/x"))).wait();
        assert!(matches!(r, Err(HttpError::Connection(_))), "{r:?}");
        server.join().unwrap();

        // A port nobody listens on (bound then closed).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let http = HttpBackend::new(Policy::for_registry(&base).unwrap(), None).unwrap();
        let r = http.send(req(format!("{base}/x"))).wait();
        assert!(matches!(r, Err(HttpError::Refused(_))), "{r:?}");
    }

    #[test]
    fn https_to_a_plain_http_server_is_a_tls_failure_that_says_so() {
        // A plain-HTTP server answers the TLS ClientHello with an HTTP error.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let base = format!("https://{addr}");
        let http = HttpBackend::new(Policy::for_registry(&base).unwrap(), None).unwrap();
        let r = http.send(req(format!("{base}/x"))).wait();
        match r {
            Err(HttpError::Tls(t)) => {
                assert!(t.contains("plain HTTP") && t.contains("http://"), "{t}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slow_servers_time_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let http = HttpBackend::new(Policy::for_registry(&base).unwrap(), None).unwrap();
        let mut r = req(format!("{base}/slow"));
        r.timeout_ms = 200;
        // Accepted by the kernel backlog, never answered.
        assert_eq!(http.send(r).wait(), Err(HttpError::Timeout));
        drop(listener);
    }

    #[test]
    fn policy_violations_are_denied_without_a_request() {
        let http = HttpBackend::new(
            Policy::for_registry("http://127.0.0.1:9/functions/v1").unwrap(),
            Some("k".into()),
        )
        .unwrap();
        let r = http.send(req("http://evil.example/".into())).wait();
        assert!(matches!(r, Err(HttpError::Denied(_))), "{r:?}");
        let mut bad = req("http://127.0.0.1:9/functions/v1/health".into());
        bad.headers
            .push(("Authorization".into(), "Bearer x".into()));
        assert!(matches!(http.send(bad).wait(), Err(HttpError::Denied(_))));
    }

    #[test]
    fn backend_can_be_dropped_inside_a_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let http = HttpBackend::new(Policy::for_registry("http://127.0.0.1:9").unwrap(), None)
                .unwrap();
            drop(http);
        });
    }
}
