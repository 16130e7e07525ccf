//! The file's schema, its versions, and the checks made before anything is
//! written to a file.
//!
//! A store is marked by `PRAGMA application_id` ([`APPLICATION_ID`]) and
//! carries its schema version in `PRAGMA user_version`. [`MIGRATIONS`] lists
//! every step from an empty database to [`SCHEMA_VERSION`]; a new store runs
//! them all, an older one the steps it lacks, each in the one transaction
//! that opens it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::error::{failure, io_failure, OpenError};
use super::records::{columns_of, Columns};
use crate::error::{Error, Result};

/// The schema version this version of the crate writes, and the newest it
/// reads. Files with an older version are migrated when opened; files with a
/// newer one are refused ([`OpenError::NewerSchema`]).
pub const SCHEMA_VERSION: u32 = 3;

/// `PRAGMA application_id` of a store: `RTrk`, so `file(1)` and SQLite tools
/// can tell a store from other SQLite databases.
pub(super) const APPLICATION_ID: i32 = 0x5254_726B;

/// One schema step: the version it produces and what it does.
type Migration = (u32, fn(&Transaction<'_>) -> rusqlite::Result<()>);

/// Every step from an empty database, in order.
const MIGRATIONS: [Migration; 3] = [(1, tables), (2, last_date_deployed), (3, controls)];

/// Version 1: images by project, label and service (as SSM holds them at
/// `/{project}/images/{label}/{service}`); releases as their JSON record
/// (as DynamoDB holds them) under project and release id, with
/// `date_created` as an indexed column for the newest-first listings.
fn tables(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE images (
             project_id TEXT NOT NULL,
             label TEXT NOT NULL,
             service TEXT NOT NULL,
             uri TEXT NOT NULL,
             PRIMARY KEY (project_id, label, service)
         ) STRICT, WITHOUT ROWID;
         CREATE TABLE releases (
             project_id TEXT NOT NULL,
             release_id TEXT NOT NULL,
             date_created TEXT,
             record TEXT NOT NULL,
             PRIMARY KEY (project_id, release_id)
         ) STRICT;
         CREATE INDEX releases_by_date_created
             ON releases (project_id, date_created, release_id);",
    )?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
}

/// Version 2: `last_date_deployed` as an indexed column, so the recent
/// deployments are read newest release first and the read stops early, as
/// DynamoDB's `deployment_gsi` allows. Filled in from each stored record.
fn last_date_deployed(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE releases ADD COLUMN last_date_deployed TEXT;")?;
    let rows: Vec<(String, String, String)> = {
        let mut select = tx.prepare("SELECT project_id, release_id, record FROM releases")?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = tx.prepare(
        "UPDATE releases SET last_date_deployed = ?3 WHERE project_id = ?1 AND release_id = ?2",
    )?;
    for (project, id, record) in rows {
        let Columns {
            last_date_deployed, ..
        } = columns_of(&record);
        update.execute((project, id, last_date_deployed))?;
    }
    tx.execute_batch(
        "CREATE INDEX releases_by_last_date_deployed
             ON releases (project_id, last_date_deployed, release_id);",
    )
}

/// Version 3: deployment controls ([`ControlStore`](crate::control::ControlStore)):
/// leases and freezes by project and environment, blocks by project and
/// release, and each project's audit trail of control events, numbered
/// from 1. Each row holds its record as JSON, as `releases` does, with the
/// columns the conditions and listings need.
fn controls(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE leases (
             project_id TEXT NOT NULL,
             environment TEXT NOT NULL,
             lease_id TEXT NOT NULL,
             record TEXT NOT NULL,
             PRIMARY KEY (project_id, environment)
         ) STRICT, WITHOUT ROWID;
         CREATE TABLE freezes (
             project_id TEXT NOT NULL,
             environment TEXT NOT NULL,
             record TEXT NOT NULL,
             PRIMARY KEY (project_id, environment)
         ) STRICT, WITHOUT ROWID;
         CREATE TABLE blocks (
             project_id TEXT NOT NULL,
             release_id TEXT NOT NULL,
             record TEXT NOT NULL,
             PRIMARY KEY (project_id, release_id)
         ) STRICT, WITHOUT ROWID;
         CREATE TABLE control_events (
             project_id TEXT NOT NULL,
             sequence INTEGER NOT NULL,
             environment TEXT,
             record TEXT NOT NULL,
             PRIMARY KEY (project_id, sequence)
         ) STRICT, WITHOUT ROWID;
         CREATE INDEX control_events_by_environment
             ON control_events (project_id, environment, sequence);",
    )
}

/// What an existing file was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing yet (no file, an empty file, or an SQLite database with no
    /// tables): made into a store.
    Nothing,
    /// A store at this schema version (at most [`SCHEMA_VERSION`]).
    Store(u32),
}

/// Looks at `path` without writing to it: before `journal_mode=WAL` or any
/// table is written, and never through a connection that could replay a
/// journal or checkpoint a write-ahead log into the file.
pub(super) fn inspect(path: &Path, busy_timeout: std::time::Duration) -> Result<Found> {
    let not_a_store = |reason: String| OpenError::NotAStore {
        path: path.to_owned(),
        reason,
    };
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let operation = "checking the file before opening it";
    let length = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io_failure(path, operation, e)),
        Ok(meta) if meta.is_dir() => return Err(not_a_store("it is a directory".into()).into()),
        Ok(meta) => meta.len(),
    };
    if length == 0 {
        return Ok(Found::Nothing);
    }

    let mut header = [0u8; 100];
    let read = File::open(path)
        .and_then(|mut file| file.read(&mut header).map(|_| ()))
        .map_err(|e| io_failure(path, operation, e));
    read?;
    if length < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(not_a_store(format!(
            "it is not an SQLite database (its {length} bytes do not start with the SQLite header)"
        ))
        .into());
    }
    if let Some(expected) = expected_length(&header) {
        // Pages can also live in the write-ahead log until a checkpoint.
        if length < expected && !sidecar(path, "-wal").exists() {
            return Err(corrupt(format!(
                "it is truncated: its header counts {expected} bytes, the file has {length}"
            ))
            .into());
        }
    }

    // A read-only connection never writes the file, but on a WAL-mode file
    // it makes `-wal` and `-shm` files and may not remove them. A WAL-mode
    // file without a `-wal` holds every page itself (a writer that starts
    // meanwhile writes to its new `-wal`), so it is read as immutable:
    // without locks or files beside it.
    // SQLite reads a file as WAL when its read version (byte 19) is 2.
    let wal_mode = header[19] == 2;
    let read_only = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let immutable = if wal_mode && !sidecar(path, "-wal").exists() {
        immutable_uri(path)
    } else {
        None
    };
    let refuse = |e: rusqlite::Error| -> Error {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                not_a_store(format!("SQLite cannot read it: {e}")).into()
            }
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => corrupt(e.to_string()).into(),
            _ => failure(path, operation, e),
        }
    };
    let connection = match immutable {
        Some(uri) => Connection::open_with_flags(uri, read_only | OpenFlags::SQLITE_OPEN_URI),
        None => Connection::open_with_flags(path, read_only),
    }
    .map_err(refuse)?;
    connection.busy_timeout(busy_timeout).map_err(refuse)?;
    let (application_id, version, tables) = identify(&connection).map_err(refuse)?;
    if application_id != APPLICATION_ID {
        if application_id == 0 && version == 0 && tables.is_empty() {
            return Ok(Found::Nothing);
        }
        return Err(not_a_store(describe(application_id, &tables)).into());
    }
    let version = match u32::try_from(version) {
        Ok(0) | Err(_) => {
            return Err(corrupt(format!("it has no valid schema version ({version})")).into())
        }
        Ok(v) if v > SCHEMA_VERSION => {
            return Err(OpenError::NewerSchema {
                path: path.to_owned(),
                found: v,
                supported: SCHEMA_VERSION,
            }
            .into())
        }
        Ok(v) => v,
    };
    for table in ["images", "releases"] {
        if !tables.iter().any(|t| t == table) {
            return Err(corrupt(format!("its table `{table}` is missing")).into());
        }
    }
    // Reads every page once: a damaged file is refused here rather than
    // failing part-way through some later call.
    let problems: Vec<String> = connection
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut check| {
            check
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(refuse)?;
    if problems != ["ok"] {
        return Err(corrupt(format!(
            "SQLite's integrity check says: {}",
            problems.join("; ")
        ))
        .into());
    }
    Ok(Found::Store(version))
}

/// Brings the file open on `connection` (writable) to [`SCHEMA_VERSION`],
/// in one `BEGIN IMMEDIATE` transaction: another process opening it at the
/// same time waits, then finds it done.
pub(super) fn migrate(connection: &mut Connection, path: &Path) -> Result<()> {
    let operation = "bringing the store's schema up to date";
    let fail = |e| failure(path, operation, e);
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    // Looked at again under the write lock: it may have changed since
    // `inspect`.
    let (application_id, version, tables) = identify(&tx).map_err(fail)?;
    let version = if application_id == APPLICATION_ID {
        u32::try_from(version).unwrap_or(u32::MAX)
    } else if application_id == 0 && version == 0 && tables.is_empty() {
        0
    } else {
        return Err(OpenError::NotAStore {
            path: path.to_owned(),
            reason: describe(application_id, &tables),
        }
        .into());
    };
    if version > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    for (target, step) in MIGRATIONS {
        if target > version {
            step(&tx).map_err(fail)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(fail)?;
    tx.commit().map_err(fail)
}

/// The file's application id, schema version and table names.
fn identify(connection: &Connection) -> rusqlite::Result<(i32, i64, Vec<String>)> {
    let application_id = connection.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version = connection.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut select = connection.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let tables = select
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((application_id, version, tables))
}

/// What an SQLite database that is not a store holds.
fn describe(application_id: i32, tables: &[String]) -> String {
    let tables = if tables.is_empty() {
        "no tables".to_owned()
    } else {
        let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        let more = tables.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("tables {}{more}", shown.join(", "))
    };
    if application_id == 0 {
        format!("it is another SQLite database ({tables})")
    } else {
        format!("it is another application's SQLite database (application_id {application_id:#010x}, {tables})")
    }
}

/// The file length the header promises, when the header's page count is
/// valid (SQLite 3.7.0 and later keep it so).
fn expected_length(header: &[u8; 100]) -> Option<u64> {
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    let pages = u64::from(word(28));
    // The count is valid only if written by the same change as the counter.
    (pages > 0 && word(24) == word(92)).then_some(pages * page_size)
}

/// `file:{absolute path}?immutable=1`, percent-encoded; `None` where a
/// path does not map to a URI simply (not Unix, not UTF-8).
fn immutable_uri(path: &Path) -> Option<String> {
    if !cfg!(unix) {
        return None;
    }
    let absolute = std::path::absolute(path).ok()?;
    let mut uri = String::from("file:");
    for byte in absolute.to_str()?.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

/// `{path}{suffix}`: SQLite's `-wal`, `-shm` and `-journal` files.
pub(super) fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}
