//! Admin endpoints under `/_admin`: the handle's controls over HTTP, for the
//! out-of-process (Node.js, Python) tests.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::App;
use crate::config::ConfigUpdate;
use crate::faults::Fault;

/// Body of `/_admin/update`, `/_admin/delete` and `/_admin/insert`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Target {
    count: Option<usize>,
    ids: Option<Vec<String>>,
}

type AppState = State<Arc<App>>;

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/update", post(update))
        .route("/delete", post(delete))
        .route("/insert", post(insert))
        .route(
            "/fault",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/config", post(set_config).get(get_config))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/snapshot", get(snapshot))
        .route("/skill", get(skill))
        .route("/unreachable", get(unreachable))
}

/// Parses a JSON body whatever its content type (an empty body is `{}`), so
/// scripted clients need not set headers.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, BadRequest> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| BadRequest(e.to_string()))
}

/// A body an admin endpoint could not parse: `400 {"error": ...}`.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": format!("bad admin request: {}", self.0)}));
        (StatusCode::BAD_REQUEST, body).into_response()
    }
}

fn ids(ids: Vec<String>) -> Response {
    Json(json!({"ids": ids})).into_response()
}

async fn update(State(app): AppState, b: Bytes) -> Response {
    match body::<Target>(&b) {
        Ok(Target {
            ids: Some(list), ..
        }) => ids(app.update_ids(&list)),
        Ok(t) => ids(app.update(t.count.unwrap_or(1))),
        Err(e) => e.into_response(),
    }
}

async fn delete(State(app): AppState, b: Bytes) -> Response {
    match body::<Target>(&b) {
        Ok(Target {
            ids: Some(list), ..
        }) => ids(app.delete_ids(&list)),
        Ok(t) => ids(app.delete(t.count.unwrap_or(1))),
        Err(e) => e.into_response(),
    }
}

async fn insert(State(app): AppState, b: Bytes) -> Response {
    match body::<Target>(&b) {
        Ok(t) => ids(app.insert(t.count.unwrap_or(1))),
        Err(e) => e.into_response(),
    }
}

async fn add_fault(State(app): AppState, b: Bytes) -> Response {
    match body::<Fault>(&b) {
        Ok(f) => {
            app.add_fault(f);
            Json(json!({"faults": app.faults()})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn clear_faults(State(app): AppState) -> Json<Value> {
    app.clear_faults();
    Json(json!({"faults": []}))
}

async fn list_faults(State(app): AppState) -> Json<Value> {
    Json(json!({"faults": app.faults()}))
}

async fn set_config(State(app): AppState, b: Bytes) -> Response {
    match body::<ConfigUpdate>(&b) {
        Ok(u) => Json(app.set_config(u)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_config(State(app): AppState) -> Response {
    Json(app.config()).into_response()
}

async fn stats(State(app): AppState) -> Response {
    Json(app.stats()).into_response()
}

async fn reset_stats(State(app): AppState) -> Json<Value> {
    app.reset_stats();
    Json(json!({"ok": true}))
}

async fn snapshot(State(app): AppState) -> Json<Value> {
    let v: Vec<Value> = app
        .snapshot()
        .into_iter()
        .map(|(id, u)| json!({"id": id, "updated_at": u}))
        .collect();
    Json(Value::Array(v))
}

#[derive(Deserialize)]
struct IdParam {
    id: String,
}

async fn skill(State(app): AppState, Query(q): Query<IdParam>) -> Response {
    match app.skill_json(&q.id) {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Skill not found"})),
        )
            .into_response(),
    }
}

async fn unreachable(State(app): AppState) -> Json<Value> {
    Json(json!({"ids": app.catalogue().unreachable_by_upstream_words()}))
}
