//! Unit tests of the registry over real loopback HTTP.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::{
    Fault, FaultKind, HealthStatus, RegistryHandle, RegistryServer, ServerConfig, TrustTier,
};

struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn start(n: usize) -> RegistryHandle {
    RegistryServer::start(ServerConfig::new(n, 42)).unwrap()
}

async fn get_with(r: &RegistryHandle, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(format!("{}{path}", r.base_url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Resp {
        status,
        headers,
        text: resp.text().await.unwrap(),
    }
}

async fn get(r: &RegistryHandle, path: &str) -> Resp {
    get_with(r, path, &[]).await
}

async fn admin(r: &RegistryHandle, method: &str, path: &str, body: Value) -> Value {
    let client = reqwest::Client::new();
    let url = format!("{}/_admin{path}", r.origin());
    let req = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url).body(body.to_string()),
    };
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn live_ids(r: &RegistryHandle) -> BTreeSet<String> {
    r.snapshot().into_iter().map(|(id, _)| id).collect()
}

/// Pages one search with `offset` to the end; returns every record.
async fn page_all(r: &RegistryHandle, filter: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = get(
            r,
            &format!("/skills-search?{filter}&limit={limit}&offset={}", out.len()),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        let data = page["data"].as_array().unwrap().clone();
        let total = page["meta"]["total"].as_u64().unwrap() as usize;
        out.extend(data);
        if out.len() >= total {
            return out;
        }
    }
}

#[tokio::test]
async fn paging_every_tier_visits_each_skill_once_in_order() {
    let r = start(1500);
    let mut seen = Vec::new();
    for tier in TrustTier::FILTERABLE {
        let records = page_all(&r, &format!("trust_tier={}", tier.as_str()), 100).await;
        // quality_score desc, nulls last, then id asc.
        let key = |s: &Value| {
            (
                s["quality_score"]
                    .as_f64()
                    .map(|q| -(q * 100.0).round() as i64),
                s["id"].as_str().unwrap().to_string(),
            )
        };
        for w in records.windows(2) {
            let (a, b) = (key(&w[0]), key(&w[1]));
            let ord = match (a.0, b.0) {
                (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.1.cmp(&b.1),
            };
            assert_eq!(ord, std::cmp::Ordering::Less, "{:?} then {:?}", a, b);
        }
        assert!(
            records
                .iter()
                .all(|s| s["trust_tier"] == tier.as_str() && s["rank"].is_number())
        );
        seen.extend(
            records
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(seen.len(), 1500);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), live_ids(&r));
    // The skills the upstream word list cannot reach are among them.
    let unreachable = r.catalogue().unreachable_by_upstream_words();
    assert!(unreachable.len() > 30);
    assert!(unreachable.iter().all(|id| seen.contains(id)));
}

#[tokio::test]
async fn search_shape_query_and_filters() {
    let r = start(1000);
    let page = get(&r, "/skills-search?query=GIT&limit=5").await;
    assert_eq!(page.status, 200);
    let v = page.json();
    assert_eq!(
        v["meta"],
        json!({"query": "GIT", "total": v["meta"]["total"], "limit": 5, "offset": 0,
        "filters": {"category": null, "trust_tier": null, "min_score": null}})
    );
    let rec = &v["data"][0];
    for field in [
        "id",
        "name",
        "trust_tier",
        "created_at",
        "updated_at",
        "tags",
        "categories",
        "rank",
        "installable",
        "_links",
    ] {
        assert!(rec.get(field).is_some(), "missing {field}: {rec}");
    }
    let all_git = page_all(&r, "query=git", 100).await;
    let expected = r
        .catalogue()
        .skills()
        .iter()
        .filter(|s| {
            let hay = format!(
                "{}\n{}\n{}\n{}",
                s.name,
                s.description.as_deref().unwrap_or(""),
                s.tags.join("\n"),
                s.author.as_deref().unwrap_or("")
            );
            hay.to_lowercase().contains("git")
        })
        .count();
    assert_eq!(all_git.len(), expected);
    // Name hits first.
    assert!(all_git[0]["name"].as_str().unwrap().contains("git"));

    // min_score compares quality*100; null scores never match, not even 0.
    let scored = r
        .catalogue()
        .skills()
        .iter()
        .filter(|s| s.quality_score.is_some())
        .count();
    let v = get(&r, "/skills-search?min_score=0&limit=1").await.json();
    assert_eq!(v["meta"]["total"].as_u64().unwrap() as usize, scored);
    let high = page_all(&r, "min_score=90&category=Testing", 100).await;
    assert!(!high.is_empty());
    assert!(high.iter().all(|s| {
        s["quality_score"].as_f64().unwrap() >= 0.9
            && s["categories"]
                .as_array()
                .unwrap()
                .contains(&json!("Testing"))
    }));
    // Offset past the end: empty data, total unchanged.
    let v = get(&r, "/skills-search?trust_tier=official&offset=100000")
        .await
        .json();
    assert_eq!(v["data"], json!([]));
    assert!(v["meta"]["total"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn search_validation_errors() {
    let r = start(50);
    let cases = [
        ("", "query", Value::Null),
        ("query=ab", "query", json!("ab")),
        ("category=Bogus", "category", json!("Bogus")),
        ("category=testing", "category", json!("testing")),
        (
            "trust_tier=experimental",
            "trust_tier",
            json!("experimental"),
        ),
        ("min_score=101", "min_score", json!("101")),
        ("min_score=x", "min_score", json!("x")),
        ("query=git&limit=0", "limit", json!("0")),
        ("query=git&limit=101", "limit", json!("101")),
        ("query=git&offset=-1", "offset", json!("-1")),
    ];
    for (q, parameter, received) in cases {
        let resp = get(&r, &format!("/skills-search?{q}")).await;
        assert_eq!(resp.status, 400, "{q}");
        let v = resp.json();
        assert!(v["error"].is_string());
        assert_eq!(
            v["details"],
            json!({"parameter": parameter, "received": received}),
            "{q}"
        );
    }
    assert_eq!(
        get(&r, "/skills-search?query=abc&limit=100&offset=0")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn common_headers_on_every_api_response() {
    let r = start(10);
    for path in [
        "/health",
        "/skills-search?query=abc",
        "/skills-search",
        "/nope",
        "/skills-get?id=missing",
    ] {
        let resp = get(&r, path).await;
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-request-id",
            "date",
        ] {
            assert!(resp.header(h).is_some(), "{path}: no {h}");
        }
        assert!(
            resp.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(resp.headers.get_all("date").iter().count(), 1);
        assert_eq!(resp.header("x-request-id").unwrap().len(), 36);
        resp.json();
    }
    let reset: i64 = get(&r, "/health")
        .await
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset * 1000 > r.now_ms());
}

#[tokio::test]
async fn skills_get_by_id_author_name_and_name() {
    let r = start(200);
    let cat = r.catalogue();
    let s = cat.skills().iter().find(|s| s.author.is_some()).unwrap();
    for key in [
        s.id.clone(),
        format!("{}/{}", s.author.as_deref().unwrap(), s.name),
        s.name.clone(),
    ] {
        let resp = get(&r, &format!("/skills-get?id={}", key.replace('/', "%2F"))).await;
        assert_eq!(resp.status, 200, "{key}");
        assert_eq!(resp.json()["data"]["id"], s.id.as_str());
    }
    let resp = get(&r, "/skills-get?id=nobody%2Fnothing").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["error"], "Skill not found");
    assert_eq!(get(&r, "/skills-get").await.status, 400);
    r.delete_ids(&[&s.id]);
    assert_eq!(
        get(&r, &format!("/skills-get?id={}", s.id)).await.status,
        404
    );
}

#[tokio::test]
async fn health_capabilities_and_status() {
    let r = start(10);
    let v = get(&r, "/health").await.json();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["capabilities"], json!(["skills-changes"]));
    assert_eq!(v["summary"]["total"], 3);
    r.set_feed_enabled(false);
    assert!(
        get(&r, "/health")
            .await
            .json()
            .get("capabilities")
            .is_none()
    );
    assert_eq!(get(&r, "/skills-changes").await.status, 404);
    r.set_health(HealthStatus::Degraded);
    assert_eq!(get(&r, "/health").await.json()["status"], "degraded");
    r.set_health(HealthStatus::Unhealthy);
    let resp = get(&r, "/health").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json()["status"], "unhealthy");
}

/// Pages the feed from `since` until caught up; returns entries, cursor, ETag.
async fn feed_all(
    r: &RegistryHandle,
    since: Option<&str>,
    limit: usize,
) -> (Vec<Value>, String, String) {
    let mut cursor = since.map(str::to_string);
    let mut entries = Vec::new();
    loop {
        let q = match &cursor {
            Some(c) => format!("/skills-changes?since={c}&limit={limit}"),
            None => format!("/skills-changes?limit={limit}"),
        };
        let resp = get(r, &q).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let etag = resp.header("etag").expect("ETag on every 200").to_string();
        let v = resp.json();
        entries.extend(v["data"].as_array().unwrap().iter().cloned());
        cursor = Some(v["meta"]["next_cursor"].as_str().unwrap().to_string());
        assert!(v["meta"]["server_time"].is_string());
        if !v["meta"]["has_more"].as_bool().unwrap() {
            return (entries, cursor.unwrap(), etag);
        }
    }
}

fn feed_key(e: &Value) -> (String, String) {
    (
        e["updated_at"].as_str().unwrap().to_string(),
        e["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn feed_keyset_tombstones_and_304() {
    let r = start(1000);
    let (all, cursor, etag) = feed_all(&r, None, 150).await;
    assert_eq!(all.len(), 1000);
    assert!(all.windows(2).all(|w| feed_key(&w[0]) < feed_key(&w[1])));
    assert_eq!(
        all.iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>(),
        live_ids(&r)
    );

    // Caught up: 304 with the ETag, an empty 200 without it.
    let resp = get_with(
        &r,
        &format!("/skills-changes?since={cursor}"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(resp.status, 304);
    assert!(resp.text.is_empty());
    let resp = get(&r, &format!("/skills-changes?since={cursor}")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("etag"), Some(etag.as_str()));
    assert_eq!(resp.json()["data"], json!([]));
    assert_eq!(resp.json()["meta"]["next_cursor"], cursor.as_str());

    let updated = r.update(5);
    let twice = updated[0].clone();
    r.update_ids(&[&twice]);
    let deleted = r.delete(3);
    let inserted = r.insert(2);
    assert_eq!((updated.len(), deleted.len(), inserted.len()), (5, 3, 2));
    let resp = get_with(
        &r,
        &format!("/skills-changes?since={cursor}"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(resp.status, 200);
    let (changes, cursor2, etag2) = feed_all(&r, Some(&cursor), 4).await;
    assert_ne!(etag2, etag);
    assert_eq!(changes.len(), 10, "{changes:#?}");
    assert!(
        changes
            .windows(2)
            .all(|w| feed_key(&w[0]) < feed_key(&w[1]))
    );
    let got: HashSet<&str> = changes.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got.len(), 10);
    for id in &deleted {
        let e = changes.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(e["deleted"], true);
        assert_eq!(e.as_object().unwrap().len(), 3);
    }
    // The twice-updated skill appears once, in its latest state.
    let e = changes.iter().find(|e| e["id"] == twice.as_str()).unwrap();
    assert_eq!(*e, r.skill_json(&twice).unwrap());
    // Every change is newer than every catalogue timestamp before it.
    let newest_old = all
        .iter()
        .map(|e| e["updated_at"].as_str().unwrap())
        .max()
        .unwrap();
    assert!(
        changes
            .iter()
            .all(|e| e["updated_at"].as_str().unwrap() > newest_old)
    );
    let resp = get_with(
        &r,
        &format!("/skills-changes?since={cursor2}"),
        &[("if-none-match", &etag2)],
    )
    .await;
    assert_eq!(resp.status, 304);
}

#[tokio::test]
async fn feed_changes_during_paging_are_not_lost() {
    let r = start(500);
    let first = get(&r, "/skills-changes?limit=200").await.json();
    let served = ids_of(&first);
    let unserved: Vec<String> = r
        .snapshot()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !served.contains(id))
        .collect();
    r.update_ids(&[&served[10], &unserved[0]]);
    r.delete_ids(&[&served[20]]);
    let (rest, _, _) = feed_all(&r, first["meta"]["next_cursor"].as_str(), 100).await;
    let rest_ids: Vec<&str> = rest.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = rest_ids.iter().copied().collect();
    assert_eq!(unique.len(), rest_ids.len(), "each skill at most once");
    assert_eq!(rest.len(), 300 + 2);
    for id in [&served[10], &unserved[0], &served[20]] {
        assert!(unique.contains(id.as_str()));
    }
}

#[tokio::test]
async fn feed_cursor_errors_and_expiry() {
    let r = start(300);
    let resp = get(&r, "/skills-changes?since=not*a*cursor").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_cursor");
    for limit in ["0", "1001", "x"] {
        assert_eq!(
            get(&r, &format!("/skills-changes?limit={limit}"))
                .await
                .status,
            400
        );
    }
    assert_eq!(
        get(&r, "/skills-changes?limit=1000").await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        300
    );

    let old = get(&r, "/skills-changes?limit=10").await.json()["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, caught_up, etag) = feed_all(&r, None, 1000).await;
    r.delete(4);
    let (_, after_delete, _) = feed_all(&r, Some(&caught_up), 1000).await;
    r.expire_tombstones();
    for cursor in [&old, &caught_up] {
        let resp = get(&r, &format!("/skills-changes?since={cursor}")).await;
        assert_eq!(resp.status, 410, "{cursor}");
        assert_eq!(resp.json()["error"], "cursor_expired");
    }
    // A client that saw the deletions is fine, and so is a fresh start.
    assert_eq!(
        get(&r, &format!("/skills-changes?since={after_delete}"))
            .await
            .status,
        200
    );
    let (all, _, _) = feed_all(&r, None, 1000).await;
    assert_eq!(all.len(), 296);
    assert!(all.iter().all(|e| e.get("deleted").is_none()));
    // A full resync started after the discard pages with small pages too:
    // its cursors postdate the discard, so none of them expires.
    let (small_pages, _, _) = feed_all(&r, None, 7).await;
    assert_eq!(small_pages.len(), 296);
    let _ = etag;
}

#[tokio::test]
async fn api_key_and_stats() {
    let r = RegistryServer::start(ServerConfig {
        api_key: Some("sk_test".into()),
        ..ServerConfig::new(20, 1)
    })
    .unwrap();
    let resp = get(&r, "/skills-search?query=abc").await;
    assert_eq!(resp.status, 401);
    assert!(resp.json()["error"].is_string());
    assert_eq!(
        get_with(&r, "/skills-search?query=abc", &[("x-api-key", "wrong")])
            .await
            .status,
        401
    );
    assert_eq!(
        get_with(&r, "/skills-search?query=abc", &[("x-api-key", "sk_test")])
            .await
            .status,
        200
    );
    assert_eq!(
        get_with(&r, "/health", &[("authorization", "Bearer sk_test")])
            .await
            .status,
        200
    );
    get_with(
        &r,
        "/skills-changes",
        &[("x-api-key", "sk_test"), ("if-none-match", "\"abc\"")],
    )
    .await;
    let stats = r.stats();
    assert_eq!(stats.total, 5);
    assert_eq!(stats.count("/skills-search"), 3);
    let statuses: Vec<u16> = stats.recent.iter().map(|q| q.status).collect();
    assert_eq!(statuses, [401, 401, 200, 200, 200]);
    assert!(!stats.recent[0].has_api_key() && stats.recent[2].has_api_key());
    assert_eq!(
        stats.last().unwrap().if_none_match.as_deref(),
        Some("\"abc\"")
    );
    r.reset_stats();
    assert_eq!(r.stats().total, 0);
    r.set_api_key(None);
    assert_eq!(get(&r, "/health").await.status, 200);
}

#[tokio::test]
async fn rate_limit_counts_down_then_429() {
    let r = start(10);
    r.set_rate_limit(3);
    let remaining: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let resp = get(&r, "/health").await;
            assert_eq!(resp.status, 200);
            assert_eq!(resp.header("x-ratelimit-limit"), Some("3"));
            v.push(resp.header("x-ratelimit-remaining").unwrap().to_string());
        }
        v
    };
    assert_eq!(remaining, ["2", "1", "0"]);
    let resp = get(&r, "/health").await;
    assert_eq!(resp.status, 429);
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn faults_status_after_times() {
    let r = start(10);
    r.set_fault(
        Fault::new(FaultKind::Status {
            code: 503,
            body: None,
        })
        .on("/skills-search")
        .after(1)
        .times(2),
    );
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(get(&r, "/skills-search?query=abc").await.status);
        }
        v
    };
    assert_eq!(codes, [200, 503, 503, 200]);
    assert_eq!(get(&r, "/health").await.status, 200);
    r.set_fault(Fault::new(FaultKind::Status {
        code: 500,
        body: Some(json!({"error": "boom"})),
    }));
    let resp = get(&r, "/health").await;
    assert_eq!((resp.status, resp.json()), (500, json!({"error": "boom"})));
    assert!(resp.header("x-ratelimit-limit").is_some());
    r.clear_faults();
    assert_eq!(get(&r, "/health").await.status, 200);
    // An impossible code cannot take the server down.
    r.set_fault(
        Fault::new(FaultKind::Status {
            code: 1000,
            body: None,
        })
        .times(1),
    );
    assert_eq!(get(&r, "/health").await.status, 500);
}

#[tokio::test]
async fn fault_truncate_cuts_the_body() {
    let r = start(100);
    r.set_fault(Fault::new(FaultKind::Truncate).times(2));
    let resp = reqwest::get(format!(
        "{}/skills-search?trust_tier=official&limit=50",
        r.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err(), "reqwest must see a cut body");

    // On the wire: a Content-Length for the whole body, half of it, then EOF.
    let addr = r.addr();
    let (declared, got) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /functions/v1/skills-search?trust_tier=official&limit=50 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
            .expect("content-length");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding"));
        (declared, body.len())
    })
    .await
    .unwrap();
    assert!(
        declared > 1000 && got == declared / 2,
        "declared {declared}, got {got}"
    );
}

#[tokio::test]
async fn fault_bodies_and_headers() {
    let r = start(300);
    r.set_fault(Fault::new(FaultKind::Malformed).times(1));
    let resp = get(&r, "/skills-search?query=abc").await;
    assert_eq!(resp.status, 200);
    assert!(serde_json::from_str::<Value>(&resp.text).is_err());

    for path in [
        "/skills-search?trust_tier=community&limit=20",
        "/skills-changes?limit=20",
    ] {
        r.set_fault(Fault::new(FaultKind::BadRecord).times(1));
        let v = get(&r, path).await.json();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 20);
        assert_eq!(
            data.iter().filter(|s| s.get("id").is_none()).count(),
            1,
            "{path}"
        );
    }

    r.set_fault(
        Fault::new(FaultKind::RateLimit {
            retry_after_secs: 7,
        })
        .times(1),
    );
    let resp = get(&r, "/health").await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("7"));
    assert_eq!(resp.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = resp.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset * 1000 >= r.now_ms() + 5000);

    r.set_fault(Fault::new(FaultKind::Quota).times(1));
    let resp = get(&r, "/health").await;
    assert_eq!(
        (resp.status, resp.json()),
        (429, json!({"error": "monthly_quota_exceeded"}))
    );

    r.set_fault(
        Fault::new(FaultKind::Redirect {
            location: "http://127.0.0.1:9/elsewhere".into(),
        })
        .times(1),
    );
    let resp = get(&r, "/health").await;
    assert_eq!(
        (resp.status, resp.header("location")),
        (302, Some("http://127.0.0.1:9/elsewhere"))
    );

    r.set_fault(Fault::new(FaultKind::Unauthorized).times(1));
    assert_eq!(get(&r, "/health").await.status, 401);
    assert_eq!(get(&r, "/health").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delay_and_hang() {
    let mut r = start(10);
    r.set_fault(Fault::new(FaultKind::Delay { ms: 150 }).times(1));
    let t = Instant::now();
    assert_eq!(get(&r, "/health").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));

    r.set_fault(Fault::new(FaultKind::Hang).on("/health"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(format!("{}/health", r.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // A hanging connection must not hold up shutdown.
    let url = format!("{}/health", r.base_url());
    let hung = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    tokio::task::block_in_place(|| r.shutdown());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(hung.await.unwrap().is_err());
}

fn start_mixed(n: usize, mix: &str, stale_copy_every: usize) -> RegistryHandle {
    RegistryServer::start(ServerConfig {
        tier_mix: crate::TierMix::parse(mix).unwrap(),
        stale_copy_every,
        ..ServerConfig::new(n, 11)
    })
    .unwrap()
}

#[tokio::test]
async fn tiers_outside_the_enum_are_served_counted_and_refused_as_filters() {
    let r = start_mixed(2000, "verified=1,community=6,experimental=3,preview=1", 0);
    let stats = get(&r, "/stats?detailed=true").await;
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    let by_tier = &stats["data"]["breakdown"]["byTier"];
    let counted: u64 = ["verified", "community", "experimental", "preview"]
        .iter()
        .map(|t| by_tier[t].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 2000);
    assert_eq!(stats["data"]["skillCount"], 2000);
    assert!(by_tier["experimental"].as_u64().unwrap() > 400);
    // The basic answer has no breakdown.
    let basic = get(&r, "/stats").await;
    assert!(basic.json()["data"].get("breakdown").is_none());
    // The filter accepts only the OpenAPI enum, and the six categories.
    for bad in [
        "trust_tier=experimental",
        "trust_tier=preview",
        "trust_tier=unknown",
        "category=Art",
        "min_score=101",
    ] {
        assert_eq!(
            get(&r, &format!("/skills-search?{bad}")).await.status,
            400,
            "{bad}"
        );
    }
    // Experimental skills are reachable only through categories and scores.
    let scored = page_all(&r, "min_score=0", 100).await;
    assert!(scored.iter().any(|s| s["trust_tier"] == "experimental"));
    assert!(scored.iter().all(|s| s["quality_score"].is_number()));
    let testing = page_all(&r, "category=Testing", 100).await;
    assert!(testing.iter().all(|s| {
        s["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("Testing"))
    }));
    // With a filter and no match, an empty page and a total of 0.
    let none = get(&r, "/skills-search?trust_tier=official").await;
    assert_eq!(none.json()["meta"]["total"], 0);
    // /stats can be switched off, as on a registry without it.
    r.set_stats_enabled(false);
    assert_eq!(get(&r, "/stats").await.status, 404);
}

#[tokio::test]
async fn stale_copies_are_listed_beside_the_skill_and_counted() {
    let r = start_mixed(500, "community=1", 50);
    let listed = page_all(&r, "trust_tier=community", 100).await;
    assert_eq!(listed.len(), 510, "ten stale copies beside 500 skills");
    let mut by_id: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for s in &listed {
        by_id
            .entry(s["id"].as_str().unwrap())
            .or_default()
            .push(s["updated_at"].as_str().unwrap());
    }
    let doubled: Vec<_> = by_id.iter().filter(|(_, v)| v.len() == 2).collect();
    assert_eq!(doubled.len(), 10);
    for (id, versions) in doubled {
        assert_ne!(versions[0], versions[1]);
        // /skills-get and the feed know only the real one.
        let real = r.skill_json(id).unwrap();
        assert!(versions.contains(&real["updated_at"].as_str().unwrap()));
    }
    assert_eq!(r.config().live_skills, 500);
    // Deleting a skill takes its stale copy with it.
    let id = listed
        .iter()
        .find(|s| s["description"] == "A stale copy of this skill.")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.delete_ids(&[&id]);
    let listed = page_all(&r, "trust_tier=community", 100).await;
    assert!(listed.iter().all(|s| s["id"] != id.as_str()));
}

#[tokio::test]
async fn mutations_move_the_clock_forward_even_with_skew() {
    let r = start(100);
    let max_before = r.snapshot().into_iter().map(|(_, u)| u).max().unwrap();
    // A registry clock a year behind must still issue strictly newer times.
    r.set_clock_offset_ms(-366 * 86_400_000);
    let a = r.update(3);
    let times: BTreeSet<String> = r
        .snapshot()
        .into_iter()
        .filter(|(id, _)| a.contains(id))
        .map(|(_, u)| u)
        .collect();
    assert_eq!(times.len(), 1);
    assert!(times.first().unwrap() > &max_before);
    let b = r.insert(1);
    let t_b = r.skill_json(&b[0]).unwrap()["updated_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(&t_b > times.first().unwrap());
    let date = get(&r, "/health").await.header("date").unwrap().to_string();
    let year_ago = chrono::DateTime::from_timestamp_millis(r.now_ms())
        .unwrap()
        .format("%Y")
        .to_string();
    assert!(date.contains(&year_ago), "{date}");
    assert!(r.update(0).is_empty());
}

#[tokio::test]
async fn admin_endpoints() {
    let r = start(100);
    let v = admin(&r, "POST", "/update", json!({"count": 3})).await;
    assert_eq!(v["ids"].as_array().unwrap().len(), 3);
    let id = v["ids"][0].as_str().unwrap().to_string();
    let v = admin(&r, "POST", "/update", json!({"ids": [id, "nope"]})).await;
    assert_eq!(v["ids"], json!([id]));
    assert_eq!(
        admin(&r, "POST", "/delete", json!({"count": 2})).await["ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        admin(&r, "POST", "/insert", json!({"count": 5})).await["ids"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        admin(&r, "GET", "/snapshot", Value::Null)
            .await
            .as_array()
            .unwrap()
            .len(),
        103
    );
    assert_eq!(
        admin(&r, "GET", &format!("/skill?id={id}"), Value::Null).await,
        r.skill_json(&id).unwrap()
    );

    admin(
        &r,
        "POST",
        "/fault",
        json!({"kind": "status", "code": 502, "path": "/health", "times": 1}),
    )
    .await;
    assert_eq!(get(&r, "/health").await.status, 502);
    admin(&r, "POST", "/fault", json!({"kind": "hang"})).await;
    admin(&r, "DELETE", "/fault", Value::Null).await;
    assert_eq!(get(&r, "/health").await.status, 200);

    let cfg = admin(
        &r,
        "POST",
        "/config",
        json!({"api_key": "k", "stats_enabled": false}),
    )
    .await;
    assert_eq!(cfg["api_key"], "k");
    assert_eq!(get(&r, "/health").await.status, 401);
    let cfg = admin(
        &r,
        "POST",
        "/config",
        json!({"api_key": null, "feed_enabled": false, "health": "degraded"}),
    )
    .await;
    assert_eq!(
        (cfg["api_key"].clone(), cfg["feed_enabled"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(get(&r, "/skills-changes").await.status, 404);
    admin(
        &r,
        "POST",
        "/config",
        json!({"feed_enabled": true, "expire_tombstones": true}),
    )
    .await;
    assert_eq!(r.config().tombstones, 0);

    let stats = admin(&r, "GET", "/stats", Value::Null).await;
    assert_eq!(stats["total"], 4);
    assert_eq!(stats["by_path"]["/health"], 3);
    assert_eq!(stats["recent"][0]["status"], 502);
    admin(&r, "POST", "/stats/reset", Value::Null).await;
    assert_eq!(r.stats().total, 0);
    let unreachable = admin(&r, "GET", "/unreachable", Value::Null).await;
    assert!(unreachable["ids"].is_array());
}

/// Server CPU per page while a client pages 100,000 skills at limit 100, by
/// search (every tier) and by feed. Run in release:
/// `cargo test -p skillsmith-testkit --release --lib -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "benchmark"]
async fn bench_paging_100k() {
    fn server_cpu_ms() -> f64 {
        // utime + stime of the registry's runtime threads, in clock ticks.
        let mut ticks = 0u64;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (name, rest) = stat.split_once(") ").unwrap();
            if name.ends_with("skillsmith-regi") {
                let f: Vec<&str> = rest.split(' ').collect();
                ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            }
        }
        ticks as f64 * 10.0
    }
    let t = Instant::now();
    let r = start(100_000);
    println!("generate + index 100k: {:?}", t.elapsed());
    let client = reqwest::Client::new();
    let base = r.base_url();
    for mode in ["search", "feed", "search (warm)"] {
        let (cpu0, t0) = (server_cpu_ms(), Instant::now());
        let mut pages = 0;
        let mut seen = 0usize;
        if mode.starts_with("search") {
            for tier in TrustTier::FILTERABLE {
                let mut offset = 0;
                loop {
                    let url = format!(
                        "{base}/skills-search?trust_tier={}&limit=100&offset={offset}",
                        tier.as_str()
                    );
                    let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let n = v["data"].as_array().unwrap().len();
                    pages += 1;
                    seen += n;
                    offset += n;
                    if offset >= v["meta"]["total"].as_u64().unwrap() as usize {
                        break;
                    }
                }
            }
        } else {
            let mut cursor = String::new();
            loop {
                let url = format!("{base}/skills-changes?limit=100&since={cursor}");
                let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
                let v: Value = serde_json::from_slice(&body).unwrap();
                pages += 1;
                seen += v["data"].as_array().unwrap().len();
                cursor = v["meta"]["next_cursor"].as_str().unwrap().to_string();
                if !v["meta"]["has_more"].as_bool().unwrap() {
                    break;
                }
            }
        }
        assert_eq!(seen, 100_000);
        let (wall, cpu) = (t0.elapsed(), server_cpu_ms() - cpu0);
        println!(
            "{mode}: {pages} pages in {wall:?} ({:.3} ms/page wall incl. client), server CPU {cpu:.0} ms = {:.3} ms/page",
            wall.as_secs_f64() * 1000.0 / pages as f64,
            cpu / pages as f64
        );
    }
}
