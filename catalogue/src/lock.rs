//! The cross-process sync lease (table `sync_lease`): at most one sync per
//! catalogue at a time, across the CLI and any number of MCP servers.
//!
//! A lease is taken in a `BEGIN IMMEDIATE` transaction, so two processes
//! cannot both see it free. It expires [`LEASE_TTL`] after the last
//! heartbeat (every applied page renews it), and it is released on drop.
//! A holder killed on this machine blocks no one: its lease names its host
//! and pid, and a process that finds that pid gone takes the lease over at
//! once (elsewhere, or where the pid was reused, the expiry still frees it
//! within a minute). Taking a lease also closes history runs a dead holder
//! left `running`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::clock::{self, Clock};
use crate::connection::{DbError, open_connection};

/// How long a lease lasts without a heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// Error text written to history runs found `running` when a lease is taken.
pub const INTERRUPTED_MESSAGE: &str = "interrupted: the process running this sync stopped before it finished (killed or crashed); the next sync resumes from the last committed page";

/// Between pages (which renew the lease as they commit), how often a
/// running sync renews it: the one renewal policy of the store and the
/// store thread, a quarter of [`LEASE_TTL`].
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// How often [`Lease::acquire_wait`] retries.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// The `sync_lease` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseInfo {
    /// Opaque id of the holder (pid and a random part).
    pub holder: String,
    /// Holder's process id.
    pub pid: u32,
    /// Host time the lease was taken.
    pub acquired_at: String,
    /// Host time (Unix ms) it expires unless renewed.
    pub expires_at_ms: i64,
}

/// Why a lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds an unexpired lease.
    #[error("another sync of this catalogue is in progress (process {pid}, since {since})")]
    Busy {
        /// Holder's process id.
        pid: u32,
        /// Host time the holder took the lease.
        since: String,
    },
    /// Our lease was taken over after it expired (this process stalled).
    #[error("the sync lease was lost: this process stalled for over {} s and another sync took over", LEASE_TTL.as_secs())]
    Lost,
    /// The lease needs a database file, not an in-memory one.
    #[error("a sync lease needs a database file")]
    NoFile,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

/// The lease of one sync, released on drop.
#[derive(Debug)]
pub struct Lease {
    // A connection of its own, so that release on drop does not depend on
    // the state of the store's connection (which may be mid-transaction
    // after a trap).
    conn: Connection,
    path: std::path::PathBuf,
    holder: String,
    pid: u32,
    clock: Clock,
    released: bool,
}

/// The current unexpired lease, if any.
pub(crate) fn current_lease(conn: &Connection, now_ms: i64) -> rusqlite::Result<Option<LeaseInfo>> {
    conn.prepare_cached(
        "SELECT holder, pid, acquired_at, expires_at FROM sync_lease WHERE id = 1 AND expires_at > ?1",
    )?
    .query_row([now_ms], |r| {
        Ok(LeaseInfo {
            holder: r.get(0)?,
            pid: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            acquired_at: r.get(2)?,
            expires_at_ms: r.get(3)?,
        })
    })
    .optional()
}

/// The lease, if one is held by a process that may still be running: an
/// unexpired lease whose holder is known to be gone (killed on this
/// machine) does not count, so `sync status` never reports a dead sync.
pub(crate) fn live_lease(conn: &Connection, now_ms: i64) -> rusqlite::Result<Option<LeaseInfo>> {
    Ok(current_lease(conn, now_ms)?.filter(|held| !holder_is_gone(held)))
}

/// This machine's name, as written into lease holders.
pub(crate) fn this_host() -> String {
    #[cfg(unix)]
    if let Ok(name) = nix::unistd::gethostname() {
        return name.to_string_lossy().into_owned();
    }
    "unknown-host".to_owned()
}

/// Whether the lease's holder is a process of this machine that no longer
/// exists (killed, crashed). Anything uncertain (another host, an older
/// holder format, a pid owned by another user, no way to ask) counts as
/// alive: the lease then frees itself at expiry.
fn holder_is_gone(held: &LeaseInfo) -> bool {
    let same_host = held
        .holder
        .split_once(" on ")
        .and_then(|(_, rest)| rest.rsplit_once(" #"))
        .is_some_and(|(host, _)| host == this_host());
    same_host && held.pid != std::process::id() && process_is_gone(held.pid)
}

#[cfg(unix)]
fn process_is_gone(pid: u32) -> bool {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    match i32::try_from(pid) {
        // Signal 0 checks existence and permission without sending anything.
        Ok(pid) if pid > 0 => kill(Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH),
        _ => false,
    }
}

#[cfg(not(unix))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

/// Renews `holder`'s lease; `false` when it no longer holds it.
pub(crate) fn renew(conn: &Connection, holder: &str, now_ms: i64) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("UPDATE sync_lease SET expires_at = ?1 WHERE id = 1 AND holder = ?2")?
        .execute(params![now_ms + LEASE_TTL.as_millis() as i64, holder])?;
    Ok(n == 1)
}

impl Lease {
    /// Takes the lease of the catalogue at `path`, or fails with
    /// [`LockError::Busy`] when another process holds it
    /// (`Database::lease` for an open catalogue).
    pub fn acquire(path: &Path, clock: Clock) -> Result<Lease, LockError> {
        let conn = open_connection(path)?;
        Lease::acquire_on(conn, path, clock)
    }

    /// Like [`Lease::acquire`], but waits up to `timeout` for the holder to
    /// finish.
    pub fn acquire_wait(path: &Path, clock: Clock, timeout: Duration) -> Result<Lease, LockError> {
        let deadline = Instant::now() + timeout;
        loop {
            match Lease::acquire(path, clock) {
                Err(LockError::Busy { .. }) if Instant::now() + WAIT_POLL < deadline => {
                    std::thread::sleep(WAIT_POLL);
                }
                other => return other,
            }
        }
    }

    fn acquire_on(conn: Connection, path: &Path, clock: Clock) -> Result<Lease, LockError> {
        let pid = std::process::id();
        let holder = format!(
            "pid {pid} on {} #{:016x}",
            this_host(),
            crate::random::SplitMix64::from_entropy().next_u64()
        );
        let err = |e| LockError::Database(DbError::from_sqlite(path, e));
        // IMMEDIATE (the connection's default): the check and the write are
        // one step for every other process.
        let tx = conn.unchecked_transaction().map_err(err)?;
        let now = clock.now_ms();
        if let Some(held) = current_lease(&tx, now).map_err(err)?
            && !holder_is_gone(&held)
        {
            return Err(LockError::Busy {
                pid: held.pid,
                since: held.acquired_at,
            });
        }
        let now_text = clock::format_ms(now);
        tx.execute(
            "INSERT INTO sync_lease (id, holder, pid, acquired_at, expires_at)
             VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid,
                 acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            params![holder, pid, now_text, now + LEASE_TTL.as_millis() as i64],
        )
        .map_err(err)?;
        // Whoever of this project left these running is gone: the lease was
        // free. Another client's runs take no lease, so they are left be.
        tx.execute(
            "UPDATE sync_history SET status = 'failed', completed_at = ?1, error_message = ?2
             WHERE status = 'running' AND id IN (SELECT history_id FROM sync_run)",
            params![now_text, INTERRUPTED_MESSAGE],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Lease {
            conn,
            path: path.to_owned(),
            holder,
            pid,
            clock,
            released: false,
        })
    }

    /// The opaque holder id (the store renews the lease with it).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// This process's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Extends the lease by [`LEASE_TTL`] from now.
    pub fn renew(&self) -> Result<(), LockError> {
        match renew(&self.conn, &self.holder, self.clock.now_ms()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(LockError::Lost),
            Err(e) => Err(DbError::from_sqlite(&self.path, e).into()),
        }
    }

    /// Releases the lease now (drop does the same, ignoring errors).
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        self.delete()
            .map_err(|e| DbError::from_sqlite(&self.path, e).into())
    }

    fn delete(&self) -> rusqlite::Result<()> {
        self.conn
            .execute(
                "DELETE FROM sync_lease WHERE id = 1 AND holder = ?1",
                [&self.holder],
            )
            .map(drop)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released
            && let Err(e) = self.delete()
        {
            // It expires by itself within LEASE_TTL.
            tracing::warn!("could not release the sync lease: {e}");
        }
    }
}
