//! Injected failures: what a registry or the network can do to a client.

use serde::{Deserialize, Serialize};

/// One injected failure. Of the requests whose path matches, the first
/// `after` pass untouched, the next `times` (all following when 0) get `kind`.
///
/// JSON (admin endpoint): `{"kind": "status", "code": 500, "path":
/// "/skills-search", "after": 2, "times": 1}`; `path`, `after` and `times`
/// may be omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// API path, e.g. `"/skills-search"` (the `/functions/v1` prefix is
    /// optional); `None` matches every API path.
    #[serde(default)]
    pub path: Option<String>,
    /// Matching requests let through before the fault applies.
    #[serde(default)]
    pub after: u32,
    /// Matching requests affected; 0 means every following one.
    #[serde(default)]
    pub times: u32,
    /// What happens to an affected request.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// What an affected request gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// This status, with `body` (JSON) or `{"error": <reason phrase>}`.
    Status {
        /// HTTP status code.
        code: u16,
        /// Response body; defaults to the Error shape.
        #[serde(default)]
        body: Option<serde_json::Value>,
    },
    /// Wait, then answer normally.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Announce the full `Content-Length` but close after half the body.
    Truncate,
    /// `200` with a body that is not JSON.
    Malformed,
    /// `429` with `Retry-After` and `X-RateLimit-Remaining: 0`.
    RateLimit {
        /// Seconds in `Retry-After` (and until `X-RateLimit-Reset`).
        retry_after_secs: u64,
    },
    /// `429 {"error": "monthly_quota_exceeded"}`: retrying cannot help.
    Quota,
    /// A normal page in which one record has wrong types and no `id`.
    BadRecord,
    /// `302` to `location`.
    Redirect {
        /// Absolute URL for the `Location` header.
        location: String,
    },
    /// Never answer (the connection stays open until the client gives up).
    Hang,
    /// `401` as if the key were missing or wrong.
    Unauthorized,
    /// An HTML page with this status, as a captive portal's login page or
    /// a web server at the wrong URL sends.
    Html {
        /// HTTP status code.
        code: u16,
    },
    /// `200` with a JSON body of `bytes` bytes (a search page padded with
    /// whitespace): a registry sending more than any page should hold.
    Huge {
        /// Body size.
        bytes: usize,
    },
    /// `200` with a gzip body of a few hundred kilobytes that decodes to
    /// `decoded_bytes` (a search page padded with spaces): a decompression
    /// bomb, whatever the request's `Accept-Encoding`.
    GzipBomb {
        /// Size after decoding.
        decoded_bytes: usize,
    },
}

impl Fault {
    /// `kind` on every API request, from the first one on.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            path: None,
            after: 0,
            times: 0,
            kind,
        }
    }

    /// Restricts the fault to one API path, e.g. `"/skills-search"`.
    pub fn on(mut self, path: &str) -> Self {
        self.path = Some(path.to_string());
        self
    }

    /// Lets `n` matching requests through first.
    pub fn after(mut self, n: u32) -> Self {
        self.after = n;
        self
    }

    /// Affects only `n` requests (0: all following).
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, path: &str) -> bool {
        self.path.as_deref().is_none_or(|p| {
            let p = p.strip_prefix(crate::reply::API_PREFIX).unwrap_or(p);
            p.trim_start_matches('/') == path.trim_start_matches('/')
        })
    }
}

/// The active faults and how many matching requests each has seen.
#[derive(Default)]
pub(crate) struct FaultSet {
    entries: Vec<(Fault, u32)>,
}

impl FaultSet {
    pub fn push(&mut self, fault: Fault) {
        self.entries.push((fault, 0));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.entries.iter().map(|(f, _)| f.clone()).collect()
    }

    /// Counts the request against every matching fault and returns the kind
    /// of the first one that applies. Spent faults are dropped.
    pub fn take(&mut self, path: &str) -> Option<FaultKind> {
        let mut hit = None;
        for (fault, seen) in &mut self.entries {
            if !fault.matches(path) {
                continue;
            }
            *seen += 1;
            let active =
                *seen > fault.after && (fault.times == 0 || *seen <= fault.after + fault.times);
            if active && hit.is_none() {
                hit = Some(fault.kind.clone());
            }
        }
        self.entries
            .retain(|(f, seen)| f.times == 0 || *seen < f.after + f.times);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let f: Fault = serde_json::from_str(
            r#"{"kind":"status","code":500,"path":"/skills-search","after":2,"times":1}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::new(FaultKind::Status {
                code: 500,
                body: None
            })
            .on("/skills-search")
            .after(2)
            .times(1)
        );
        let v = serde_json::to_value(Fault::new(FaultKind::RateLimit {
            retry_after_secs: 3,
        }))
        .unwrap();
        assert_eq!(v["kind"], "rate_limit");
        assert_eq!(v["retry_after_secs"], 3);
        for k in [
            "truncate",
            "malformed",
            "quota",
            "bad_record",
            "hang",
            "unauthorized",
        ] {
            let f: Fault = serde_json::from_str(&format!(r#"{{"kind":"{k}"}}"#)).unwrap();
            assert_eq!(serde_json::to_value(&f).unwrap()["kind"], k);
        }
    }

    #[test]
    fn after_and_times() {
        let mut set = FaultSet::default();
        set.push(
            Fault::new(FaultKind::Malformed)
                .on("/functions/v1/skills-search")
                .after(1)
                .times(2),
        );
        assert_eq!(set.take("/health"), None);
        assert_eq!(set.take("/skills-search"), None);
        assert_eq!(set.take("/skills-search"), Some(FaultKind::Malformed));
        assert_eq!(set.take("/skills-search"), Some(FaultKind::Malformed));
        assert_eq!(set.take("/skills-search"), None);
        assert!(set.list().is_empty());
        set.push(Fault::new(FaultKind::Hang));
        assert_eq!(set.take("/anything"), Some(FaultKind::Hang));
        assert_eq!(set.take("/health"), Some(FaultKind::Hang));
    }
}
