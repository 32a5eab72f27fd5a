//! The API's wire primitives, shared by every endpoint: where the API
//! lives, query parameters as the registry reads them, and a reply before
//! the common headers are added.

use axum::http::{HeaderName, StatusCode};
use serde_json::json;

/// Where the API lives, as on the live service.
pub const API_PREFIX: &str = "/functions/v1";

/// Query parameters in order of appearance; the first occurrence wins.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .and_then(|q| {
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                    &format!("/?{q}").parse().ok()?,
                )
                .ok()
            })
            .map(|q| q.0)
            .unwrap_or_default();
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response before the common headers are added.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Vec<u8>>,
    /// Set when `body` is already encoded (the bomb fault).
    pub(crate) content_encoding: Option<&'static str>,
    /// Whether the compression layer may encode it (not a fault whose
    /// point is its size on the wire).
    pub(crate) compress: bool,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Self {
        Reply {
            status,
            body: Some(body.into_bytes()),
            content_encoding: None,
            compress: true,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Reply {
            content_type: "text/html; charset=utf-8",
            ..Reply::json(status, body)
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            body: None,
            content_encoding: None,
            compress: true,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    /// The OpenAPI Error shape; `details` is left out when null.
    pub fn error(status: u16, error: &str, details: serde_json::Value) -> Self {
        let body = if details.is_null() {
            json!({"error": error})
        } else {
            json!({"error": error, "details": details})
        };
        Reply::json(status, body.to_string())
    }

    /// `200` JSON whose gzip body is small but decodes to `decoded` bytes (a
    /// search page padded with spaces): a decompression bomb.
    pub fn gzip_bomb(decoded: usize) -> Self {
        use std::io::Write as _;
        let head = b"{\"data\":[],\"meta\":{\"total\":0}";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let spaces = vec![b' '; 1 << 16];
        let mut left = decoded.saturating_sub(head.len() + 1);
        gz.write_all(head).expect("in memory");
        while left > 0 {
            let n = left.min(spaces.len());
            gz.write_all(&spaces[..n]).expect("in memory");
            left -= n;
        }
        gz.write_all(b"}").expect("in memory");
        Reply {
            body: Some(gz.finish().expect("in memory")),
            content_encoding: Some("gzip"),
            ..Reply::json(200, String::new())
        }
        .header("content-encoding", "gzip")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }
}

pub(crate) fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}
