//! The SQLite store (feature `sqlite`): images and releases in one local
//! file, for running the whole workflow on one machine without AWS.
//!
//! [`SqliteStore`] implements both [`ImageStore`](crate::ImageStore) and
//! [`ReleaseStore`](crate::ReleaseStore) and passes the same `conformance`
//! checks as the other backends. SQLite is compiled into the crate, so there
//! is nothing to install.
//!
//! ```
//! use release_tracking::sqlite::SqliteStore;
//! use release_tracking::{ImageStore, Label, ProjectId, ReleaseStore, ServiceId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("releases.sqlite");
//! // Creates the file if it does not exist; checks (and if need be
//! // migrates) it if it does.
//! let store = SqliteStore::open(&path)?;
//!
//! // Any executor: the store runs SQLite on a thread of its own.
//! futures::executor::block_on(async {
//!     let project = ProjectId::new("storage")?;
//!     let service = ServiceId::new("archivist")?;
//!     let uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/archivist:ref.3f2a9c1".parse()?;
//!     store.put_image(&project, &Label::latest(), &service, &uri).await?;
//!     assert_eq!(store.image(&project, &Label::latest(), &service).await?, Some(uri));
//!     assert_eq!(store.latest_release(&project).await?.release, None);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! # The file
//!
//! - Images are rows of `images (project_id, label, service, uri)`, one per
//!   SSM parameter `/{project}/images/{label}/{service}`. Releases are rows
//!   of `releases`: the record as JSON ([`Release::to_json`](crate::Release::to_json)),
//!   the same document as a DynamoDB item, keyed by `project_id` and
//!   `release_id`, with `date_created` and `last_date_deployed` as indexed
//!   columns. Moving releases between backends is a copy of the records.
//! - Several processes can use one file at once and lose nothing: the file
//!   is in WAL mode (readers do not wait for the writer), every write is
//!   one transaction (a deployment's read-modify-write takes the write lock
//!   first, `BEGIN IMMEDIATE`), and a call waits up to the busy timeout
//!   ([`SqliteOptions::busy_timeout`]) for another process's write before it
//!   fails with [`BackendErrorKind::Throttled`](crate::BackendErrorKind::Throttled).
//!   WAL needs a local file system: not a network share.
//! - Deployment controls ([`ControlStore`](crate::control::ControlStore):
//!   leases, freezes, blocks and their events) are rows of `leases`,
//!   `freezes`, `blocks` and `control_events`, each change with its event in
//!   one `BEGIN IMMEDIATE` transaction, so of several processes contending
//!   for a lease exactly one gets it.
//! - The file carries its schema version ([`SCHEMA_VERSION`], in
//!   `PRAGMA user_version`) and the store's mark (`PRAGMA application_id`).
//!   An older file is migrated when opened; a newer one, a file that is not
//!   a store, and a damaged store are refused with an [`OpenError`] naming
//!   the file, and left byte-for-byte unchanged.
//!
//! Errors name the file. Each call runs on the store's own thread (one per
//! [`SqliteStore::open`], shared by its clones), so an async caller's
//! executor is never blocked by SQLite, whatever runtime it uses.

mod control;
mod error;
mod images;
mod records;
mod releases;
mod schema;
mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use error::OpenError;
pub use schema::SCHEMA_VERSION;

use self::error::{failure, io_failure, worker_stopped};
use self::schema::Found;
use self::worker::Worker;
use crate::error::Result;

/// How [`SqliteStore::open_with`] opens a file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a call waits for another connection's write lock before it
    /// fails with [`BackendErrorKind::Throttled`](crate::BackendErrorKind::Throttled).
    /// Default: 10 seconds.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            busy_timeout: Duration::from_secs(10),
        }
    }
}

impl SqliteOptions {
    /// These options with another busy timeout.
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteOptions {
        self.busy_timeout = timeout;
        self
    }
}

/// Images and releases in one SQLite file: an
/// [`ImageStore`](crate::ImageStore) and a
/// [`ReleaseStore`](crate::ReleaseStore).
///
/// Clones share one connection and its thread; the file is closed when the
/// last clone is dropped. Other processes (and other
/// [`open`](SqliteStore::open)s of the same file) may use the file at the
/// same time. See the [module docs](self) for the file's layout.
///
/// Page cursors ([`Page::next`](crate::Page::next)) are JSON of the project
/// id and the `date_created` and release id of the last release returned;
/// one that does not decode or was made for another project is
/// [`Error::InvalidCursor`](crate::Error::InvalidCursor).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    worker: Worker,
}

impl SqliteStore {
    /// Opens the store in the file at `path` with the default
    /// [`SqliteOptions`], creating it if the file does not exist (or is
    /// empty).
    ///
    /// An existing file is checked before anything is written to it: it must
    /// be a store of schema version [`SCHEMA_VERSION`] or older, and pass
    /// SQLite's integrity check (which reads the whole file once). An older
    /// one is migrated. This blocks while it works: call it at start-up.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleStore`](crate::Error::IncompatibleStore), naming
    /// the file, with an [`OpenError`] as its source, when the file was
    /// refused (not a store, damaged, or of a newer schema); else
    /// [`Error::Backend`](crate::Error::Backend) with SQLite's or the
    /// system's error (no such directory, no permission, locked past the busy
    /// timeout).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open_with(path, &SqliteOptions::default())
    }

    /// [`open`](SqliteStore::open) with other options.
    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_owned();
        let found = schema::inspect(&path, options.busy_timeout)?;
        let operation = "opening the store";
        let fail = |e| failure(&path, operation, e);
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if found == Found::Nothing {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut connection = Connection::open_with_flags(&path, flags).map_err(fail)?;
        connection
            .busy_timeout(options.busy_timeout)
            .map_err(fail)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // WAL is what lets several processes share the file; SQLite
            // refuses it on some file systems.
            return Err(crate::Error::backend(
                format!("{operation} (SQLite store {})", path.display()),
                format!("SQLite kept journal mode `{mode}` instead of WAL"),
            ));
        }
        // Every commit reaches the disk before the call returns.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        if found != Found::Store(SCHEMA_VERSION) {
            schema::migrate(&mut connection, &path)?;
        }
        let worker = Worker::start(connection, "release-tracking-sqlite")
            .map_err(|e| io_failure(&path, "starting the store's thread", e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner { path, worker }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `job` on the store's thread; `operation` names it if the thread
    /// is gone.
    async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        job: impl FnOnce(&mut Connection, &Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = self.inner.path.clone();
        self.inner
            .worker
            .run(move |connection| job(connection, &path))
            .await
            .unwrap_or_else(|| Err(worker_stopped(&self.inner.path, operation)))
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}
