//! A minimal search-only registry for the runtime's own tests (the full
//! registry lives in `skillsmith-testkit`, which depends on this crate).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One skill served by [`FakeRegistry`].
#[derive(Clone)]
pub struct FakeSkill {
    pub id: String,
    pub name: String,
    pub tier: &'static str,
    pub updated_at: String,
}

/// A registry serving `/health` (no feed) and `/skills-search` by tier.
#[allow(dead_code)] // `skills` and `requests` are for tests that mutate or count.
pub struct FakeRegistry {
    pub base: String,
    pub skills: Arc<Mutex<Vec<FakeSkill>>>,
    pub requests: Arc<AtomicU64>,
    /// Milliseconds to wait before answering each request.
    pub delay_ms: Arc<AtomicU64>,
}

const TIERS: [&str; 5] = ["official", "verified", "curated", "community", "unverified"];

impl FakeRegistry {
    pub fn start(n: usize) -> FakeRegistry {
        let skills: Vec<FakeSkill> = (0..n)
            .map(|i| FakeSkill {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                name: format!("skill-{i}"),
                tier: TIERS[i % TIERS.len()],
                updated_at: "2026-01-02T03:04:05.000Z".into(),
            })
            .collect();
        let skills = Arc::new(Mutex::new(skills));
        let requests = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/functions/v1", listener.local_addr().unwrap());
        let (s, r, d) = (skills.clone(), requests.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (s, r, d) = (s.clone(), r.clone(), d.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(d.load(Ordering::SeqCst)));
                    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = respond(&target, &s.lock().unwrap());
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Date: Wed, 25 Nov 2026 10:00:00 GMT\r\nX-RateLimit-Limit: 600\r\n\
                         X-RateLimit-Remaining: 599\r\nX-RateLimit-Reset: 1795600000\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes());
                });
            }
        });
        FakeRegistry {
            base,
            skills,
            requests,
            delay_ms,
        }
    }
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn respond(target: &str, skills: &[FakeSkill]) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/functions/v1/health" => (
            "200 OK",
            r#"{"status":"healthy","version":"fake","timestamp":"2026-11-25T10:00:00Z","uptime":1,"checks":[],"summary":{}}"#.into(),
        ),
        "/functions/v1/skills-search" => {
            let tier = param(query, "trust_tier");
            let offset: usize = param(query, "offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = param(query, "limit").and_then(|v| v.parse().ok()).unwrap_or(20);
            let matching: Vec<&FakeSkill> =
                skills.iter().filter(|s| tier.is_none_or(|t| t == s.tier)).collect();
            let data: Vec<serde_json::Value> = matching
                .iter()
                .skip(offset)
                .take(limit)
                .map(|s| {
                    serde_json::json!({
                        "id": s.id, "name": s.name, "description": "a fake skill for git",
                        "author": "fake", "repo_url": null, "quality_score": 0.5,
                        "trust_tier": s.tier, "tags": ["git"], "categories": ["Development"],
                        "stars": 1, "created_at": "2026-01-01T00:00:00.000Z",
                        "updated_at": s.updated_at, "rank": 1.0
                    })
                })
                .collect();
            let body = serde_json::json!({
                "data": data,
                "meta": {"query": null, "total": matching.len(), "limit": limit, "offset": offset,
                         "filters": {"category": null, "trust_tier": tier, "min_score": null}}
            });
            ("200 OK", body.to_string())
        }
        _ => ("404 Not Found", r#"{"error":"not found"}"#.into()),
    }
}
