//! Request accounting: what clients sent, for tests to assert on.

use std::collections::{BTreeMap, VecDeque};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// How many recent requests [`Stats::recent`] keeps.
pub const RECENT_REQUESTS: usize = 512;

/// One API request as the registry saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number, from 1, over the registry's lifetime (not reset).
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path below `/functions/v1`, e.g. `/skills-search`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Response status; 0 while the request is still being answered (or hangs).
    pub status: u16,
    /// `X-API-Key` header, if sent.
    pub api_key: Option<String>,
    /// `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// `If-None-Match` header, if sent.
    pub if_none_match: Option<String>,
    /// `User-Agent` header, if sent.
    pub user_agent: Option<String>,
    /// `Accept-Encoding` header, if sent.
    #[serde(default)]
    pub accept_encoding: Option<String>,
    /// When the registry counted it: Unix ms on the registry clock.
    #[serde(default)]
    pub at_ms: i64,
}

impl RequestRecord {
    /// Whether the request carried an `X-API-Key`.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }
}

/// Request counters since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests (admin endpoints are not counted).
    pub total: u64,
    /// API requests per path below `/functions/v1`.
    pub by_path: BTreeMap<String, u64>,
    /// The most recent requests, oldest first (at most [`RECENT_REQUESTS`]).
    pub recent: Vec<RequestRecord>,
    /// Bytes written to client sockets (admin answers included): what
    /// crossed the network, compressed where the client asked.
    #[serde(default)]
    pub wire_bytes: u64,
    /// Bytes of the API response bodies before content encoding.
    #[serde(default)]
    pub body_bytes: u64,
}

impl Stats {
    /// Requests seen for `path` (e.g. `"/skills-search"`).
    pub fn count(&self, path: &str) -> u64 {
        self.by_path.get(path).copied().unwrap_or(0)
    }

    /// The most recent request, if any.
    pub fn last(&self) -> Option<&RequestRecord> {
        self.recent.last()
    }
}

#[derive(Default)]
pub(crate) struct Recorder {
    seq: u64,
    total: u64,
    by_path: BTreeMap<String, u64>,
    recent: VecDeque<RequestRecord>,
}

impl Recorder {
    /// Records a request as it arrives; returns its sequence number.
    pub fn begin(
        &mut self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        at_ms: i64,
    ) -> u64 {
        self.seq += 1;
        self.total += 1;
        *self.by_path.entry(path.to_string()).or_default() += 1;
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        if self.recent.len() == RECENT_REQUESTS {
            self.recent.pop_front();
        }
        self.recent.push_back(RequestRecord {
            seq: self.seq,
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            status: 0,
            api_key: header("x-api-key"),
            authorization: header("authorization"),
            if_none_match: header("if-none-match"),
            user_agent: header("user-agent"),
            accept_encoding: header("accept-encoding"),
            at_ms,
        });
        self.seq
    }

    /// Fills in the status of request `seq` if it is still in the window.
    pub fn finish(&mut self, seq: u64, status: u16) {
        let Some(first) = self.recent.front().map(|r| r.seq) else {
            return;
        };
        if let Some(r) = seq
            .checked_sub(first)
            .and_then(|i| self.recent.get_mut(i as usize))
            && r.seq == seq
        {
            r.status = status;
        }
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            total: self.total,
            by_path: self.by_path.clone(),
            recent: self.recent.iter().cloned().collect(),
            wire_bytes: 0,
            body_bytes: 0,
        }
    }

    pub fn reset(&mut self) {
        // The sequence keeps counting so in-flight requests cannot mark a
        // newer record with their status.
        *self = Recorder {
            seq: self.seq,
            ..Recorder::default()
        };
    }
}
