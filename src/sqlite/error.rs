//! Why a file was refused, and how SQLite's errors become the crate's.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use crate::error::{BackendErrorKind, Error};

/// Why [`SqliteStore::open`](super::SqliteStore::open) refused a file.
///
/// Every refusal leaves the file byte-for-byte as it was. It reaches callers
/// as an [`Error::IncompatibleStore`] whose source it is; find it with
/// [`std::error::Error::source`] and `downcast_ref::<OpenError>()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file is not a release-tracking store: not an SQLite database, or
    /// an SQLite database of something else.
    #[error("{} is not a release-tracking store: {reason}; it was left unchanged", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },

    /// The file is marked as a release-tracking store but is damaged
    /// (truncated, or failing SQLite's integrity check).
    #[error(
        "the release-tracking store {} is damaged: {reason}; it was left unchanged (restore it from a backup)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The file was written by a newer version of this crate, in a schema
    /// this version cannot read.
    #[error(
        "the release-tracking store {} has schema version {found}, newer than the versions this \
         release-tracking reads (1 to {supported}); upgrade release-tracking to use it. It was left unchanged",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The file's schema version.
        found: u32,
        /// The newest schema version this version reads
        /// ([`SCHEMA_VERSION`](super::SCHEMA_VERSION)).
        supported: u32,
    },
}

impl From<OpenError> for Error {
    fn from(error: OpenError) -> Error {
        let (path, problem) = match &error {
            OpenError::NotAStore { path, reason } => (path, reason.clone()),
            OpenError::Corrupt { path, reason } => (
                path,
                format!("it is damaged ({reason}); restore it from a backup"),
            ),
            OpenError::NewerSchema {
                path,
                found,
                supported,
            } => (
                path,
                format!(
                    "it has schema version {found}, newer than the versions this \
                     release-tracking reads (1 to {supported}); upgrade release-tracking to use it"
                ),
            ),
        };
        Error::IncompatibleStore {
            location: format!("SQLite file {}", path.display()),
            problem,
            source: Some(Box::new(error)),
        }
    }
}

/// The kind of a SQLite failure: a lock held past the busy timeout by
/// another connection is `Throttled` (retry later), a refused write or
/// open is `AccessDenied`.
pub(super) fn kind_of(error: &rusqlite::Error) -> BackendErrorKind {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BackendErrorKind::Throttled,
        Some(
            ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::AuthorizationForStatementDenied,
        ) => BackendErrorKind::AccessDenied,
        _ => BackendErrorKind::Other,
    }
}

/// A failed SQLite call while `operation` (which names what, not where) was
/// being done on the store at `path`.
pub(super) fn failure(path: &Path, operation: &str, error: rusqlite::Error) -> Error {
    Error::Backend {
        operation: format!("{operation} (SQLite store {})", path.display()),
        kind: kind_of(&error),
        source: Box::new(error),
    }
}

/// A failed file-system call on the store at `path`.
pub(super) fn io_failure(path: &Path, operation: &str, error: std::io::Error) -> Error {
    let kind = match error.kind() {
        std::io::ErrorKind::PermissionDenied => BackendErrorKind::AccessDenied,
        _ => BackendErrorKind::Other,
    };
    Error::Backend {
        operation: format!("{operation} (SQLite store {})", path.display()),
        kind,
        source: Box::new(error),
    }
}

/// The worker thread stopped before answering: only if a job panicked.
pub(super) fn worker_stopped(path: &Path, operation: &str) -> Error {
    Error::backend(
        format!("{operation} (SQLite store {})", path.display()),
        "the store's SQLite thread stopped before answering",
    )
}
