//! Registry URLs: validates the base URL once and builds every request URL
//! from it, so that no response (a cursor, say) can ever steer a request to
//! another origin.

use std::fmt;

/// The registry base URL was not an absolute `http(s)` URL we can append
/// paths to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBaseUrl {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for BadBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry URL {:?} is invalid: {}", self.url, self.reason)
    }
}

impl std::error::Error for BadBaseUrl {}

/// A validated registry base URL such as
/// `https://api.skillsmith.app/functions/v1`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    base: String,
}

impl Registry {
    /// Validates `url`: `http` or `https`, a non-empty host, no user info,
    /// query or fragment (the guest appends its own paths and queries, and
    /// credentials are the host's business). One trailing `/` is dropped.
    pub fn parse(url: &str) -> Result<Registry, BadBaseUrl> {
        let bad = |reason| BadBaseUrl {
            url: url.to_owned(),
            reason,
        };
        let lower_scheme_len = if starts_with_ignore_case(url, "https://") {
            8
        } else if starts_with_ignore_case(url, "http://") {
            7
        } else {
            return Err(bad("it must start with http:// or https://"));
        };
        if url
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
        {
            return Err(bad("it contains spaces, control or non-ASCII characters"));
        }
        if url.contains(['?', '#']) {
            return Err(bad("it must not have a query or fragment"));
        }
        let rest = &url[lower_scheme_len..];
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad("it has no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "it must not contain user info; the host adds credentials",
            ));
        }
        let base = url.strip_suffix('/').unwrap_or(url);
        Ok(Registry {
            base: base.to_owned(),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `base + path + ?query`, with every query name and value
    /// percent-encoded. `path` is one of the guest's own constants and must
    /// start with `/`.
    pub fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> String {
        debug_assert!(path.starts_with('/'), "endpoint paths are absolute");
        let extra: usize = query.iter().map(|(k, v)| k.len() + v.len() * 3 + 2).sum();
        let mut url = String::with_capacity(self.base.len() + path.len() + extra);
        url.push_str(&self.base);
        url.push_str(path);
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            encode_component(name, &mut url);
            url.push('=');
            encode_component(value, &mut url);
        }
        url
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Appends `s` to `out`, percent-encoding everything except RFC 3986
/// unreserved characters, so that the value cannot end the query parameter,
/// start a fragment or change the path.
pub fn encode_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_trims() {
        let r = Registry::parse("https://api.skillsmith.app/functions/v1/").unwrap();
        assert_eq!(r.base(), "https://api.skillsmith.app/functions/v1");
        assert_eq!(
            r.endpoint(
                "/skills-search",
                &[("trust_tier", "official"), ("offset", "0")]
            ),
            "https://api.skillsmith.app/functions/v1/skills-search?trust_tier=official&offset=0"
        );
        assert_eq!(
            Registry::parse("http://127.0.0.1:8080")
                .unwrap()
                .endpoint("/health", &[]),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn rejects_bad_bases() {
        for bad in [
            "ftp://x",
            "api.skillsmith.app",
            "https://",
            "https:///path",
            "https://user:pw@host/",
            "https://host/?a=b",
            "https://host/#x",
            "https://ho st/",
        ] {
            assert!(Registry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodes_hostile_cursor() {
        let r = Registry::parse("https://reg.example/v1").unwrap();
        let url = r.endpoint(
            "/skills-changes",
            &[("since", "a&b=c#d/../@evil.example?x é")],
        );
        assert_eq!(
            url,
            "https://reg.example/v1/skills-changes?since=a%26b%3Dc%23d%2F..%2F%40evil.example%3Fx%20%C3%A9"
        );
    }

    proptest! {
        #[test]
        fn query_values_never_leave_the_query(v in any::<String>()) {
            let r = Registry::parse("https://reg.example/v1").unwrap();
            let url = r.endpoint("/skills-changes", &[("since", &v)]);
            let prefix = "https://reg.example/v1/skills-changes?since=";
            prop_assert!(url.starts_with(prefix));
            let tail = &url[prefix.len()..];
            prop_assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }
}
