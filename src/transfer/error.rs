//! What can go wrong reading an export or importing it.

use std::fmt;

use crate::error::{Error, Names};
use crate::names::{Escaped, Label, ProjectId, ReleaseId, ServiceId};
use crate::transfer::Imported;

/// A stored record that an import would have to overwrite: it holds
/// something other than the export. An import that meets any writes
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// The store has a release with this id that is not the exported one.
    Release {
        /// The release.
        release: ReleaseId,
        /// How they differ: the attributes that differ, or why the stored
        /// record cannot be compared.
        reason: String,
    },
    /// The store has another image (or a parameter that is not an image)
    /// for a service at a label.
    Image {
        /// The label.
        label: Label,
        /// The service.
        service: ServiceId,
        /// What the store holds instead.
        reason: String,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Release { release, reason } => {
                write!(f, "release `{release}`: {}", Escaped::whole(reason))
            }
            Conflict::Image {
                label,
                service,
                reason,
            } => write!(
                f,
                "image of `{service}` at `{label}`: {}",
                Escaped::whole(reason)
            ),
        }
    }
}

/// `` `field`: `` before a message about a field, nothing otherwise.
struct FieldPrefix<'a>(Option<&'a str>);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "`{}`: ", Escaped::new(field)),
            None => Ok(()),
        }
    }
}

/// An export could not be read or written, or an import could not be
/// carried out. Messages name the line of the export concerned; text from
/// the input is shown through [`Escaped`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A line of the export is not what the format allows there.
    #[error("line {line}: {}{}", FieldPrefix(field.as_deref()), Escaped::whole(message))]
    InvalidLine {
        /// The line, from 1.
        line: usize,
        /// The field of the line's object, as a path (`release.deployments[0].environment`),
        /// when one is at fault.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// The export was made by a newer version of the format than this
    /// crate reads.
    #[error(
        "line 1: export format version {version} is newer than this version of the crate \
         reads (up to {}); import it with a newer release_tracking",
        crate::transfer::FORMAT_VERSION
    )]
    UnsupportedVersion {
        /// The version in the header.
        version: u64,
    },

    /// The export stops before its end line: it was cut short (an export
    /// that failed, a partial copy).
    #[error(
        "the export ends after line {lines} without its end line: it is incomplete, \
         nothing was imported"
    )]
    Truncated {
        /// How many lines it has.
        lines: usize,
    },

    /// The export could not be read.
    #[error("reading line {line} of the export")]
    Read {
        /// The line being read, from 1.
        line: usize,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The export could not be written.
    #[error("writing the export")]
    Write(#[source] std::io::Error),

    /// The export is of another project than the one it is imported into.
    #[error(
        "the export is of project `{exported}`, not `{project}`: an import copies a project's \
         records as they are, into the same project"
    )]
    WrongProject {
        /// The project imported into.
        project: ProjectId,
        /// The project of the export.
        exported: ProjectId,
    },

    /// Records in the store differ from the export; nothing was written.
    #[error(
        "import into project `{project}` refused, nothing was written: {} stored record(s) \
         differ from the export: {}",
        conflicts.len(), Names(conflicts)
    )]
    Conflicts {
        /// The project.
        project: ProjectId,
        /// Every difference found.
        conflicts: Vec<Conflict>,
    },

    /// A write failed part-way through an import.
    #[error(transparent)]
    Interrupted(Box<InterruptedImport>),

    /// A store failed while the export was read from it or the import
    /// checked against it (before any write).
    #[error(transparent)]
    Store(#[from] Error),
}

/// An import that a failed write stopped part-way: what was written stays
/// (each release and image whole); running the import again completes it,
/// as what is already there is skipped.
#[derive(Debug, thiserror::Error)]
#[error(
    "import into project `{project}` stopped after {} release(s) created and {} image(s) \
     written; {releases_left} release(s) and {images_left} image(s) not written; run the \
     import again to complete it",
    done.releases_created, done.images_written
)]
pub struct InterruptedImport {
    /// The project.
    pub project: ProjectId,
    /// What was written before the failure.
    pub done: Imported,
    /// Releases of the export not yet created.
    pub releases_left: usize,
    /// Images of the export not yet written.
    pub images_left: usize,
    /// The failure.
    #[source]
    pub source: Error,
}
