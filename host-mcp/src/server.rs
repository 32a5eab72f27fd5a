//! The MCP server: the six tools on rmcp's tool router, and [`serve`], which
//! runs a session over stdio with the background scheduler beside it and
//! leaves promptly when the client goes away or a signal arrives.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rmcp::handler::server::tool::{ToolRouter, schema_for_output};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt, tool, tool_handler,
    tool_router,
};
use serde::Serialize;
use skillsmith_runtime::db::{Frequency, SearchFilter};
use skillsmith_runtime::eta::Eta;
use skillsmith_runtime::text::printable_lines;
use skillsmith_runtime::{Phase, Progress, WaitReason};
use tokio::sync::watch;

use crate::settings::Settings;
use crate::shutdown::{self, EofSignal, GRACE, Shutdown};
use crate::state::Shared;
use crate::syncing::{self, Origin, SyncRequest};
use crate::tools::{
    ConfigArgs, ConfigOutput, EmptyCatalogue, FrequencyArg, GetSkillArgs, GetSkillOutput,
    HistoryArgs, HistoryOutput, SearchArgs, SearchOutput, StatusOutput, SyncArgs, SyncOutput,
};
use crate::{background, tools};

/// Default and largest `limit` of `search`.
const SEARCH_LIMIT: (u32, u32) = (10, 100);
/// Default and largest `limit` of `sync_history`.
const HISTORY_LIMIT: (u32, u32) = (10, 100);

const INSTRUCTIONS: &str = "Skillsmith agent skills, from a local catalogue that works offline. \
Use `search` to find skills (full-text, ranked) and `get_skill` for one skill's details. \
`sync` updates the catalogue from the registry (differential; `force` for a full resync); \
a background sync also keeps it current while this session runs (daily by default; \
`sync_config` turns it on or off or sets the frequency). `sync_status` and `sync_history` \
show what happened.";

/// A successful result: readable text plus the structured value. The text
/// quotes registry data, so control characters in it are escaped (lines
/// stay); the structured value keeps the exact strings, which JSON escapes.
fn ok<T: Serialize>(text: String, value: &T) -> Result<CallToolResult, McpError> {
    let value = serde_json::to_value(value)
        .map_err(|e| McpError::internal_error(format!("cannot serialise the result: {e}"), None))?;
    let text = printable_lines(&text).into_owned();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// A failure the user can act on: a tool error whose text says what to do.
fn user_error(text: impl Into<String>) -> Result<CallToolResult, McpError> {
    let text = printable_lines(&text.into()).into_owned();
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
}

/// The MCP server of one session.
#[derive(Debug, Clone)]
pub struct SkillsmithServer {
    shared: Arc<Shared>,
    tool_router: ToolRouter<SkillsmithServer>,
}

impl SkillsmithServer {
    /// A server over `shared`.
    pub fn new(shared: Arc<Shared>) -> SkillsmithServer {
        let mut tool_router = SkillsmithServer::tool_router();
        for route in tool_router.map.values_mut() {
            crate::schema::standardise_tool(&mut route.attr);
        }
        SkillsmithServer {
            shared,
            tool_router,
        }
    }

    /// The tools as `tools/list` shows them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }
}

#[tool_router]
impl SkillsmithServer {
    /// Search the local skill catalogue (offline, full-text, ranked by relevance).
    #[tool(
        annotations(title = "Search skills", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<SearchOutput>()
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, McpError> {
        if let Some(q) = args.min_quality
            && !(0.0..=1.0).contains(&q)
        {
            return user_error(format!(
                "min_quality must be between 0 and 1 (got {q}); quality scores are fractions, e.g. 0.7"
            ));
        }
        let limit = args.limit.unwrap_or(SEARCH_LIMIT.0);
        if limit == 0 || limit > SEARCH_LIMIT.1 {
            return user_error(format!(
                "limit must be between 1 and {} (got {limit})",
                SEARCH_LIMIT.1
            ));
        }
        let filter = SearchFilter {
            trust_tier: args
                .trust_tier
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty()),
            min_quality: args.min_quality,
            limit,
        };
        let query = args.query.clone();
        let shared = self.shared.clone();
        let found = self
            .shared
            .with_db(move |db| {
                let hits = db.search(&query, &filter)?;
                // Only an empty result needs to know whether the catalogue
                // is empty (to suggest a sync); counting costs a scan, so
                // a catalogue once seen with skills is not counted again.
                let known = shared.has_skills.load(Ordering::Relaxed);
                let empty = if !hits.is_empty() || known {
                    None
                } else {
                    let s = db.status()?;
                    (s.registry_skills + s.local_skills + s.other_skills == 0)
                        .then_some(s.config.enabled)
                };
                if !hits.is_empty() || (!known && empty.is_none()) {
                    shared.has_skills.store(true, Ordering::Relaxed);
                }
                Ok((hits, empty))
            })
            .await;
        let (hits, empty) = match found {
            Ok(x) => x,
            Err(e) => return user_error(e),
        };
        let empty = empty.map(|enabled| self.sync_empty_catalogue(enabled));
        let out = SearchOutput {
            query: args.query,
            count: hits.len(),
            skills: hits,
        };
        ok(tools::search_text(&out, empty), &out)
    }

    /// Get one skill from the local catalogue by id, `author/name` or name.
    #[tool(
        annotations(title = "Get a skill", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<GetSkillOutput>()
    )]
    async fn get_skill(
        &self,
        Parameters(args): Parameters<GetSkillArgs>,
    ) -> Result<CallToolResult, McpError> {
        let key = args.id.trim().to_owned();
        if key.is_empty() {
            return user_error("id is empty: pass a skill id from `search`, or `author/name`");
        }
        let lookup = key.clone();
        match self.shared.with_db(move |db| db.get(&lookup)).await {
            Ok(Some(skill)) => {
                let out = GetSkillOutput { skill };
                ok(tools::skill_text(&out.skill), &out)
            }
            Ok(None) => user_error(format!(
                "no skill {key:?} in the local catalogue; find its id with `search`, or call `sync` if the catalogue is out of date"
            )),
            Err(e) => user_error(e),
        }
    }

    /// Sync the local catalogue with the Skillsmith registry (differential by default; `force` for a full resync). Sends progress notifications when the request has a progress token; returns the report.
    #[tool(
        annotations(title = "Sync with the registry", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = schema_for_output::<SyncOutput>()
    )]
    async fn sync(
        &self,
        Parameters(args): Parameters<SyncArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        // A dry run writes nothing and can run beside another sync.
        let lock = if args.dry_run {
            None
        } else {
            match self.shared.sync_lock.clone().try_lock_owned() {
                Ok(g) => Some(g),
                Err(_) => {
                    return user_error(
                        "a sync is already running in this session (the background sync or an earlier call); wait for it to finish (sync_status shows it), then call sync again",
                    );
                }
            }
        };
        let token = context.meta.get_progress_token();
        let (tx, rx) = watch::channel(None);
        let forwarder = token.map(|token| {
            let stop = self.shared.shutdown.clone();
            tokio::spawn(forward_progress(context.peer.clone(), token, rx, stop))
        });
        let request = SyncRequest {
            force: args.force,
            dry_run: args.dry_run,
            origin: Origin::Tool,
            progress: forwarder.is_some().then_some(tx),
            cancel: Some(context.ct.clone()),
            scheduled_after: None,
        };
        let result = syncing::run(&self.shared, request, lock).await;
        // The sender went with the sync; let the last notification go out
        // before the response.
        if let Some(f) = forwarder {
            let _ = f.await;
        }
        match result {
            Ok(outcome) => {
                let out = SyncOutput::from(&outcome);
                ok(tools::sync_text(&out), &out)
            }
            Err(e) => user_error(format!("sync failed: {e}")),
        }
    }

    /// Show the sync configuration, the catalogue's size and state, the last run, and what this session's background sync is doing.
    #[tool(
        annotations(title = "Sync status", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<StatusOutput>()
    )]
    async fn sync_status(&self) -> Result<CallToolResult, McpError> {
        match self.shared.with_db(|db| db.status()).await {
            Ok(status) => {
                let background = self.shared.background().clone();
                let out = StatusOutput {
                    catalogue: status,
                    background,
                };
                ok(tools::status_text(&out), &out)
            }
            Err(e) => user_error(e),
        }
    }

    /// Show past sync runs, newest first.
    #[tool(
        annotations(title = "Sync history", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<HistoryOutput>()
    )]
    async fn sync_history(
        &self,
        Parameters(args): Parameters<HistoryArgs>,
    ) -> Result<CallToolResult, McpError> {
        let limit = args.limit.unwrap_or(HISTORY_LIMIT.0);
        if limit == 0 || limit > HISTORY_LIMIT.1 {
            return user_error(format!(
                "limit must be between 1 and {} (got {limit})",
                HISTORY_LIMIT.1
            ));
        }
        match self.shared.with_db(move |db| db.history(limit)).await {
            Ok(runs) => {
                let out = HistoryOutput { runs };
                ok(tools::history_text(&out), &out)
            }
            Err(e) => user_error(e),
        }
    }

    /// Show or change background sync: turn it on or off, or set it to daily or weekly. With no arguments, shows the settings.
    #[tool(
        annotations(title = "Background sync settings", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ConfigOutput>()
    )]
    async fn sync_config(
        &self,
        Parameters(args): Parameters<ConfigArgs>,
    ) -> Result<CallToolResult, McpError> {
        let changed = args.enabled.is_some() || args.frequency.is_some();
        let result = self
            .shared
            .with_db(move |db| {
                if let Some(f) = args.frequency {
                    db.set_frequency(match f {
                        FrequencyArg::Daily => Frequency::Daily,
                        FrequencyArg::Weekly => Frequency::Weekly,
                    })?;
                }
                if let Some(on) = args.enabled {
                    db.set_enabled(on)?;
                }
                db.config()
            })
            .await;
        match result {
            Ok(config) => {
                if changed {
                    // Act on it now rather than at the next check.
                    self.shared.wake.notify_one();
                }
                let out = ConfigOutput { changed, config };
                ok(tools::config_text(&out), &out)
            }
            Err(e) => user_error(e),
        }
    }
}

impl SkillsmithServer {
    /// A search found the catalogue empty: like the upstream server's, it
    /// starts a sync, in the background so that the answer does not wait,
    /// unless background sync is off (in this session, or in `sync_config`
    /// as `enabled`) or a sync of this session already runs.
    fn sync_empty_catalogue(&self, enabled: bool) -> EmptyCatalogue {
        if !self.shared.settings.background_sync || !enabled {
            return EmptyCatalogue::BackgroundOff;
        }
        let Ok(lock) = self.shared.sync_lock.clone().try_lock_owned() else {
            return EmptyCatalogue::SyncRunning;
        };
        // Once per session: a sync that left the catalogue empty failed,
        // and starting it again at every search would only repeat that.
        if self
            .shared
            .empty_search_synced
            .swap(true, Ordering::Relaxed)
        {
            let last = self.shared.background().last_result.clone();
            return EmptyCatalogue::StillEmpty(last.unwrap_or_else(|| "no result".to_owned()));
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if let Err(e) = background::run_now(&shared, lock, None).await {
                tracing::warn!("the sync an empty search started failed: {e}");
            }
        });
        EmptyCatalogue::SyncStarted
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SkillsmithServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("skillsmith-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("Skillsmith"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

/// `left`: the time the sync has left, when there is an estimate.
fn progress_message(p: &Progress, left: Option<Duration>) -> String {
    let left = left
        .map(|d| format!(", about {} s left", d.as_secs()))
        .unwrap_or_default();
    if p.waiting_ms > 0 {
        let why = match p.waiting_for {
            WaitReason::RateLimit => "for the registry's rate limit",
            WaitReason::Retry | WaitReason::None => "to retry a failed request",
        };
        return format!("waiting {:.1} s {why}{left}", p.waiting_ms as f64 / 1000.0);
    }
    let phase = match p.phase {
        Phase::Discover => "contacting the registry",
        Phase::Fetch => "downloading",
        Phase::Prune => "removing skills the registry dropped",
    };
    match p.total {
        Some(total) => format!(
            "{phase}: {} of {total} skills, {} pages{left}",
            p.done, p.pages
        ),
        None => format!("{phase}: {} skills, {} pages{left}", p.done, p.pages),
    }
}

/// Sends the sync's progress as `notifications/progress` until the sync
/// ends (its sender is dropped). Values only ever increase, as MCP requires.
/// Gives up on shutdown: once the client is gone the service no longer
/// takes messages, and a notification would wait forever, holding up the
/// tool's response and with it the service's exit.
async fn forward_progress(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    mut rx: watch::Receiver<Option<Progress>>,
    shutdown: Arc<Shutdown>,
) {
    let mut last: Option<u64> = None;
    let mut eta = Eta::default();
    while rx.changed().await.is_ok() {
        let Some(p) = *rx.borrow_and_update() else {
            continue;
        };
        let left = eta.left(Instant::now(), &p);
        if last.is_some_and(|l| p.done <= l) {
            continue;
        }
        last = Some(p.done);
        let mut n = ProgressNotificationParam::new(token.clone(), p.done as f64)
            .with_message(progress_message(&p, left));
        if let Some(total) = p.total.filter(|t| *t >= p.done) {
            n = n.with_total(total as f64);
        }
        tokio::select! {
            sent = peer.notify_progress(n) => if let Err(e) = sent {
                tracing::debug!("cannot send progress (client gone?): {e}");
                break;
            },
            _ = shutdown.stopping() => break,
        }
    }
}

/// Runs one MCP session over stdin/stdout until the client goes away or a
/// signal arrives, then stops running syncs and returns within about
/// [`GRACE`].
pub async fn serve(settings: Settings) {
    let started = Instant::now();
    let shutdown = Shutdown::new();
    tokio::spawn(shutdown::on_signal(shutdown.clone()));
    let shared = Shared::new(settings, shutdown.clone());
    if let Err(e) = &shared.db_path {
        tracing::warn!("{e}");
    }
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let transport = (EofSignal::new(stdin, shutdown.clone()), stdout);
    let server = SkillsmithServer::new(shared.clone());
    let running = tokio::select! {
        r = server.serve(transport) => match r {
            Ok(running) => running,
            Err(e) => {
                tracing::info!("session ended before it started: {e}");
                return;
            }
        },
        _ = shutdown.stopping() => return,
    };
    tracing::info!("session initialised in {:?}", started.elapsed());
    let scheduler = if shared.settings.background_sync {
        Some(tokio::spawn(background::run(shared.clone())))
    } else {
        tracing::info!(
            "background sync is off in this session (SKILLSMITH_BACKGROUND_SYNC); the sync tool still works"
        );
        None
    };
    let service_ct = running.cancellation_token();
    let ended = running.waiting();
    tokio::pin!(ended);
    let mut service_done = false;
    tokio::select! {
        _ = &mut ended => service_done = true,
        _ = shutdown.stopping() => {}
    }
    shutdown.begin("the MCP session ended");
    // Syncs see the stop signal at their next page boundary; the service
    // sends the responses of requests that finish meanwhile.
    let grace = tokio::time::sleep(GRACE);
    tokio::pin!(grace);
    tokio::select! {
        _ = shutdown.idle() => {}
        _ = &mut grace => {}
    }
    service_ct.cancel();
    if !service_done {
        tokio::select! {
            _ = &mut ended => {}
            _ = &mut grace => {}
        }
    }
    if shutdown.active() > 0 {
        tracing::warn!(
            "a sync did not stop within {:?}; leaving anyway (SQLite keeps the file consistent; the next sync closes its history row)",
            GRACE
        );
    }
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
}
