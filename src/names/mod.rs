//! Validated names: project, label, service, environment and release ids,
//! and image URIs.
//!
//! Every name is checked once, where it enters the process (a manifest, a
//! command-line argument, a record read back from a store). After that the
//! type system guarantees that no SSM parameter name or DynamoDB table name
//! can be built from a value such as `a/../../prod`.
//!
//! The rules for the id types ([`ProjectId`], [`Label`], [`ServiceId`],
//! [`EnvironmentId`], [`ReleaseId`]) are those of one SSM parameter-name
//! segment, which are also valid in a DynamoDB table name:
//!
//! - 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 _ . -`;
//! - not `.` or `..`;
//! - a project id may not start with `aws` or `ssm` (any case): SSM reserves
//!   those prefixes;
//! - a release id may not be `latest`, which user interfaces reserve for
//!   "the newest release" (see [`ReleaseRef`]);
//! - an environment id may not be `latest`: an environment's images live at
//!   the label of the same name, and `latest` is where CI publishes.
//!
//! Parameter names are built and parsed here and nowhere else:
//! `/{project_id}/images/{label}/{service_id}`.

use std::fmt;

mod escape;
mod ids;
mod paths;

pub use escape::Escaped;
pub use ids::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ReleaseRef, ServiceId};
pub use paths::{
    image_parameter_name, label_path, parse_image_parameter_name, ParameterNameProblem,
};

/// The longest id accepted, in characters.
///
/// With it, the longest parameter name this crate builds is well under SSM's
/// 1011-character limit and the longest default table name
/// (`wellcome-releases-{project_id}`) under DynamoDB's 255.
pub const MAX_NAME_LEN: usize = 128;

/// The longest image URI accepted, in bytes: SSM's limit for a standard
/// parameter's value.
pub const MAX_IMAGE_URI_LEN: usize = 4096;

/// The label CI publishes to and `prepare` reads by default.
pub const LATEST_LABEL: &str = "latest";

/// The most characters of one outside value (an argument, a manifest key, a
/// record attribute) that a message shows; see [`Escaped::new`].
pub const MAX_ECHO_CHARS: usize = 256;
/// Which kind of name a [`NameError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A [`ProjectId`].
    ProjectId,
    /// A [`Label`].
    Label,
    /// A [`ServiceId`].
    ServiceId,
    /// An [`EnvironmentId`].
    EnvironmentId,
    /// A [`ReleaseId`].
    ReleaseId,
    /// An [`ImageUri`].
    ImageUri,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::ProjectId => "project id",
            NameKind::Label => "label",
            NameKind::ServiceId => "service id",
            NameKind::EnvironmentId => "environment id",
            NameKind::ReleaseId => "release id",
            NameKind::ImageUri => "image URI",
        })
    }
}

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit (characters for ids, bytes for URIs).
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The name contains a character outside `A-Z a-z 0-9 _ . -`.
    InvalidCharacter(char),
    /// The name is `.` or `..`.
    DotSegment,
    /// The name is, or starts with, a reserved word.
    Reserved(&'static str),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::TooLong { max } => write!(f, "it is longer than {max}"),
            NameProblem::InvalidCharacter(c) => write!(
                f,
                "it contains '{}'; only letters, digits, `_`, `.` and `-` are allowed",
                Escaped::new(c.encode_utf8(&mut [0; 4]))
            ),
            NameProblem::DotSegment => f.write_str("`.` and `..` are not names"),
            NameProblem::Reserved(what) => write!(f, "{what} is reserved"),
        }
    }
}

/// A name that failed validation: which kind, the value, and why. The
/// message shows the value through [`Escaped::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} \"{}\": {problem}", Escaped::new(value))]
pub struct NameError {
    kind: NameKind,
    value: String,
    problem: NameProblem,
}

impl NameError {
    fn new(kind: NameKind, value: &str, problem: NameProblem) -> Self {
        // Keep one character more than is shown, so the message can say
        // that the value was cut.
        let value = value.chars().take(MAX_ECHO_CHARS + 1).collect();
        NameError {
            kind,
            value,
            problem,
        }
    }

    /// Which kind of name was rejected.
    pub fn kind(&self) -> NameKind {
        self.kind
    }

    /// The rejected value, cut to its first [`MAX_ECHO_CHARS`] characters.
    pub fn value(&self) -> &str {
        match self.value.char_indices().nth(MAX_ECHO_CHARS) {
            Some((end, _)) => &self.value[..end],
            None => &self.value,
        }
    }

    /// Why it was rejected.
    pub fn problem(&self) -> &NameProblem {
        &self.problem
    }
}
