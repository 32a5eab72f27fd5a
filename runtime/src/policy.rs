//! Capability checks on what the guest may ask of the network.
//!
//! The guest is untrusted code from the host's point of view: it may only
//! reach the configured registry's origin, may not set credentials or routing
//! headers itself (the host adds `X-API-Key`), and gets bounded responses
//! within bounded time. Every refusal becomes `http-error::denied` with a
//! sentence saying why.

use std::time::Duration;

use reqwest::Url;

/// Request headers the guest may not set: credentials are the host's to add,
/// and `host` would let a request escape the origin check.
pub const FORBIDDEN_REQUEST_HEADERS: [&str; 4] = ["x-api-key", "authorization", "host", "cookie"];

/// Default cap on one response body. A feed page of 1,000 skills is about
/// 2 MB; anything past this cap is a misbehaving registry, not data.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Timeout when the guest asks for none (`timeout-ms = 0`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bound on any request's timeout, whatever the guest asks for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Scheme, host and port: what a URL must match to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, as the URL parser normalised it.
    pub host: String,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

impl Origin {
    /// The origin of `url`, when it has a host and an http(s) scheme.
    pub fn of(url: &Url) -> Option<Origin> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin {
            scheme: scheme.to_owned(),
            host: url.host_str()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Why a registry URL cannot be configured.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// Not a URL at all.
    #[error("registry URL {url:?} is not a valid URL: {reason}")]
    Malformed {
        /// What was given.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A URL, but not one a registry can live at.
    #[error("registry URL {url:?} is not usable: {reason}")]
    Unsupported {
        /// What was given.
        url: String,
        /// Why.
        reason: &'static str,
    },
}

/// The network capabilities granted to one sync.
#[derive(Debug, Clone)]
pub struct Policy {
    origin: Origin,
    max_body_bytes: u64,
    default_timeout: Duration,
    max_timeout: Duration,
}

impl Policy {
    /// Allows exactly the origin of `registry_url` with the default caps.
    pub fn for_registry(registry_url: &str) -> Result<Policy, PolicyError> {
        let url = Url::parse(registry_url).map_err(|e| PolicyError::Malformed {
            url: registry_url.to_owned(),
            reason: e.to_string(),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in a URL end up in logs and history rows.
            return Err(PolicyError::Unsupported {
                url: registry_url.to_owned(),
                reason: "it carries a user name or password; pass the API key through SKILLSMITH_API_KEY instead",
            });
        }
        let origin = Origin::of(&url).ok_or(PolicyError::Unsupported {
            url: registry_url.to_owned(),
            reason: "only http:// and https:// URLs with a host are supported",
        })?;
        Ok(Policy {
            origin,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            default_timeout: DEFAULT_TIMEOUT,
            max_timeout: MAX_TIMEOUT,
        })
    }

    /// Sets the response size cap.
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Policy {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets the default timeout and the cap on any timeout. The default is
    /// lowered to the cap if it exceeds it.
    pub fn with_timeouts(mut self, default: Duration, max: Duration) -> Policy {
        self.max_timeout = max;
        self.default_timeout = default.min(max);
        self
    }

    /// The one allowed origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The response size cap, in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// Parses `url` and checks that it is on the allowed origin. The error is
    /// the text of a `denied` http-error.
    pub fn check_url(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("malformed URL {url:?}: {e}"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("URL {url:?} carries credentials"));
        }
        match Origin::of(&parsed) {
            Some(o) if o == self.origin => Ok(parsed),
            Some(o) => Err(format!(
                "origin {o} is not allowed; this sync may only reach {}",
                self.origin
            )),
            None => Err(format!(
                "URL {url:?} is not http(s); this sync may only reach {}",
                self.origin
            )),
        }
    }

    /// Checks the guest's request headers. The error is the text of a
    /// `denied` http-error.
    pub fn check_headers(&self, headers: &[(String, String)]) -> Result<(), String> {
        for (name, _) in headers {
            if FORBIDDEN_REQUEST_HEADERS
                .iter()
                .any(|f| name.trim().eq_ignore_ascii_case(f))
            {
                return Err(format!(
                    "header {name:?} may not be set by the sync component (credentials and routing are the host's)"
                ));
            }
        }
        Ok(())
    }

    /// The timeout to apply for a guest's `timeout-ms`: its own value capped
    /// at the host's maximum, or the default for 0.
    pub fn effective_timeout(&self, requested_ms: u32) -> Duration {
        if requested_ms == 0 {
            self.default_timeout
        } else {
            Duration::from_millis(u64::from(requested_ms)).min(self.max_timeout)
        }
    }

    /// Whether a body of `len` bytes is within the cap.
    pub fn body_fits(&self, len: u64) -> bool {
        len <= self.max_body_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::for_registry("https://api.skillsmith.app/functions/v1").unwrap()
    }

    #[test]
    fn only_the_registry_origin_is_allowed() {
        let p = policy();
        assert!(
            p.check_url("https://api.skillsmith.app/functions/v1/health")
                .is_ok()
        );
        assert!(
            p.check_url("https://API.skillsmith.app:443/other/path?q=1")
                .is_ok()
        );
        for bad in [
            "http://api.skillsmith.app/functions/v1/health",
            "https://api.skillsmith.app:8443/functions/v1/health",
            "https://evil.example/functions/v1/health",
            "https://api.skillsmith.app.evil.example/",
            "https://user:pw@api.skillsmith.app/functions/v1/health",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(p.check_url(bad).is_err(), "{bad} should be denied");
        }
    }

    #[test]
    fn loopback_registry_with_port() {
        let p = Policy::for_registry("http://127.0.0.1:8787/functions/v1").unwrap();
        assert!(
            p.check_url("http://127.0.0.1:8787/functions/v1/health")
                .is_ok()
        );
        assert!(
            p.check_url("http://127.0.0.1:8788/functions/v1/health")
                .is_err()
        );
        assert!(
            p.check_url("http://localhost:8787/functions/v1/health")
                .is_err()
        );
    }

    #[test]
    fn unusable_registry_urls_are_rejected() {
        assert!(matches!(
            Policy::for_registry("nope"),
            Err(PolicyError::Malformed { .. })
        ));
        assert!(matches!(
            Policy::for_registry("ftp://x.example/"),
            Err(PolicyError::Unsupported { .. })
        ));
        assert!(matches!(
            Policy::for_registry("https://k:s@x.example/"),
            Err(PolicyError::Unsupported { .. })
        ));
    }

    #[test]
    fn forbidden_headers_are_denied_case_insensitively() {
        let p = policy();
        let h = |n: &str| vec![(n.to_owned(), "v".to_owned())];
        for bad in ["X-API-Key", "authorization", "Host", "COOKIE", " host"] {
            assert!(p.check_headers(&h(bad)).is_err(), "{bad}");
        }
        assert!(p.check_headers(&h("if-none-match")).is_ok());
        assert!(p.check_headers(&[]).is_ok());
    }

    #[test]
    fn timeouts_are_capped() {
        let p = policy().with_timeouts(Duration::from_secs(30), Duration::from_secs(60));
        assert_eq!(p.effective_timeout(0), Duration::from_secs(30));
        assert_eq!(p.effective_timeout(5_000), Duration::from_secs(5));
        assert_eq!(p.effective_timeout(u32::MAX), Duration::from_secs(60));
        let low = policy().with_timeouts(Duration::from_secs(30), Duration::from_secs(10));
        assert_eq!(low.effective_timeout(0), Duration::from_secs(10));
    }

    #[test]
    fn body_cap() {
        let p = policy().with_max_body_bytes(10);
        assert!(p.body_fits(10));
        assert!(!p.body_fits(11));
    }
}
