//! What the tools and the background scheduler share: the settings, one
//! catalogue connection for the read side, the in-process sync lock, the
//! stop signal and the scheduler's status.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use skillsmith_runtime::db::{Database, DbError};
use tokio::sync::Notify;

use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::tools::BackgroundStatus;

/// State shared by every request and the background task.
#[derive(Debug)]
pub struct Shared {
    /// Flags and environment.
    pub settings: Settings,
    /// The catalogue path, or why there is none.
    pub db_path: Result<PathBuf, String>,
    /// One connection, kept open so that prepared statements (the FTS query
    /// above all) are reused across calls; reopened after any error in case
    /// the file was replaced.
    catalogue: Mutex<Option<Database>>,
    /// At most one sync at a time in this process. The database lease does
    /// the same across processes, but reports a sibling in this process as
    /// "another process", and taking it costs a write.
    pub sync_lock: Arc<tokio::sync::Mutex<()>>,
    /// The stop signal and running-sync count.
    pub shutdown: Arc<Shutdown>,
    /// What the background scheduler is doing (shown by `sync_status`).
    pub background: Mutex<BackgroundStatus>,
    /// Wakes the background scheduler for an early check (after
    /// `sync_config` changed something).
    pub wake: Notify,
    /// The catalogue was seen to hold skills. Only the hint of an empty
    /// search result depends on it, and counting 100,000 rows to give that
    /// hint costs tens of milliseconds, so it is learnt once.
    pub has_skills: AtomicBool,
    /// A search found the catalogue empty and started a sync (once per
    /// session).
    pub empty_search_synced: AtomicBool,
}

impl Shared {
    /// Shared state for `settings`.
    pub fn new(settings: Settings, shutdown: Arc<Shutdown>) -> Arc<Shared> {
        let db_path = settings.db_path();
        let background = BackgroundStatus {
            check_interval_ms: settings.check_interval_ms,
            off_in_session: !settings.background_sync,
            ..BackgroundStatus::default()
        };
        Arc::new(Shared {
            settings,
            db_path,
            catalogue: Mutex::new(None),
            sync_lock: Arc::new(tokio::sync::Mutex::new(())),
            shutdown,
            background: Mutex::new(background),
            wake: Notify::new(),
            has_skills: AtomicBool::new(false),
            empty_search_synced: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the catalogue connection, on the blocking pool (SQLite
    /// calls block). The error is a message for the user.
    pub async fn with_db<T, F>(self: &Arc<Self>, f: F) -> Result<T, String>
    where
        F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.with_db_blocking(f))
            .await
            .unwrap_or_else(|e| Err(format!("internal error while reading the catalogue: {e}")))
    }

    /// [`Shared::with_db`] for callers already on a blocking thread.
    pub fn with_db_blocking<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, DbError>,
    ) -> Result<T, String> {
        let path = self.db_path.clone()?;
        let mut slot = self
            .catalogue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(Database::open(&path).map_err(|e| e.to_string())?);
        }
        let db = slot.as_ref().expect("opened above");
        let result = f(db);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| e.to_string())
    }

    /// The scheduler status, locked for an update.
    pub fn background(&self) -> MutexGuard<'_, BackgroundStatus> {
        self.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
