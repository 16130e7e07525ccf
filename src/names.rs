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

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// Outside text shown inside a message or a line of output: control and
/// other invisible characters are escaped as Rust's `{:?}` escapes them
/// (`\n`, `\u{1b}`, `\u{202e}`), so a value cannot move the cursor, colour
/// the terminal or hide part of the line; printable characters, other
/// scripts included, are shown as they are.
///
/// Backslashes and quotes are left alone, so text that went through
/// `Escaped` once is shown unchanged: a message may quote another message
/// that escaped its own values.
///
/// ```
/// use release_tracking::names::Escaped;
///
/// assert_eq!(Escaped::new("\u{1b}[31mprod\n").to_string(), "\\u{1b}[31mprod\\n");
/// assert_eq!(Escaped::new("Zürich 東京").to_string(), "Zürich 東京");
/// let long = "x".repeat(1000);
/// assert_eq!(Escaped::new(&long).to_string().chars().count(), 256 + 1); // then `…`
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a> {
    text: &'a str,
    max_chars: usize,
}

impl<'a> Escaped<'a> {
    /// A value echoed from input: its first [`MAX_ECHO_CHARS`] characters,
    /// then `…` if there were more.
    pub fn new(text: &'a str) -> Escaped<'a> {
        Escaped {
            text,
            max_chars: MAX_ECHO_CHARS,
        }
    }

    /// All of `text`: for text that is not one value but may quote some (a
    /// parser's or a service's message, a description, a whole message).
    pub fn whole(text: &'a str) -> Escaped<'a> {
        Escaped {
            text,
            max_chars: usize::MAX,
        }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let mut chars = self.text.chars();
        for (i, c) in chars.by_ref().take(self.max_chars).enumerate() {
            match c {
                '\\' | '"' | '\'' => f.write_char(c)?,
                // A combining mark that starts the value would join the
                // character before it, so it is escaped there; elsewhere it
                // belongs to the letter before it. `str::escape_debug` draws
                // that line: escape `c` as a string's second character.
                _ if i > 0 && !c.is_ascii() => {
                    let pair = String::from_iter(['x', c]);
                    for e in pair.escape_debug().skip(1) {
                        f.write_char(e)?;
                    }
                }
                _ => write!(f, "{}", c.escape_debug())?,
            }
        }
        if chars.next().is_some() {
            f.write_char('…')?;
        }
        Ok(())
    }
}

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

fn check_segment(kind: NameKind, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::new(kind, value, NameProblem::Empty));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(NameError::new(
            kind,
            value,
            NameProblem::InvalidCharacter(c),
        ));
    }
    // All characters are ASCII from here, so bytes == characters.
    if value.len() > MAX_NAME_LEN {
        return Err(NameError::new(
            kind,
            value,
            NameProblem::TooLong { max: MAX_NAME_LEN },
        ));
    }
    if value == "." || value == ".." {
        return Err(NameError::new(kind, value, NameProblem::DotSegment));
    }
    Ok(())
}

macro_rules! segment_name {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` (see the [module docs](self) for the rules).
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                check_segment($kind, &value)?;
                let extra: fn(&str) -> Result<(), NameProblem> = $extra;
                extra(&value).map_err(|problem| NameError::new($kind, &value, problem))?;
                Ok($name(value))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                $name::new(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn no_extra_rule(_: &str) -> Result<(), NameProblem> {
    Ok(())
}

segment_name!(
    /// A project id: the key of a project in the manifest, the first segment
    /// of its parameter names and the suffix of its default table name.
    ProjectId,
    NameKind::ProjectId,
    |value| {
        let lower = value.get(..3).map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some("aws") => Err(NameProblem::Reserved("the prefix `aws`")),
            Some("ssm") => Err(NameProblem::Reserved("the prefix `ssm`")),
            _ => Ok(()),
        }
    }
);

segment_name!(
    /// A label: a named set of images of a project, such as `latest` (what CI
    /// publishes) or an environment id (what Terraform reads).
    Label,
    NameKind::Label,
    no_extra_rule
);

segment_name!(
    /// A service id: the last segment of an image parameter name, and a key of
    /// a release's images.
    ServiceId,
    NameKind::ServiceId,
    no_extra_rule
);

segment_name!(
    /// An environment id, such as `stage` or `prod`. An environment's images
    /// live at the label of the same name (see [`EnvironmentId::label`]), so
    /// `latest`, the label CI publishes to, is reserved: deploying to it
    /// would overwrite the builds.
    EnvironmentId,
    NameKind::EnvironmentId,
    |value| {
        if value == LATEST_LABEL {
            Err(NameProblem::Reserved("`latest` (the label CI publishes to)"))
        } else {
            Ok(())
        }
    }
);

segment_name!(
    /// A release id: the hash key of a release record. New ids are UUID v4
    /// strings; `latest` is reserved (see [`ReleaseRef`]).
    ReleaseId,
    NameKind::ReleaseId,
    |value| {
        if value == LATEST_LABEL {
            Err(NameProblem::Reserved("`latest`"))
        } else {
            Ok(())
        }
    }
);

impl Label {
    /// The `latest` label, which CI publishes to.
    pub fn latest() -> Label {
        Label(LATEST_LABEL.to_owned())
    }
}

impl EnvironmentId {
    /// The label that holds this environment's images: the same name.
    pub fn label(&self) -> Label {
        Label(self.0.clone())
    }
}

impl From<&EnvironmentId> for Label {
    fn from(environment: &EnvironmentId) -> Label {
        environment.label()
    }
}

impl ReleaseId {
    /// A fresh random (UUID v4) release id, as the old tools made.
    pub fn random() -> ReleaseId {
        ReleaseId(uuid::Uuid::new_v4().to_string())
    }
}

/// How a user names a release: an id, or `latest` for the newest release of
/// the project (by creation time; ties go to the greatest release id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReleaseRef {
    /// The newest release of the project.
    Latest,
    /// One release, by id.
    Id(ReleaseId),
}

impl FromStr for ReleaseRef {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s == LATEST_LABEL {
            Ok(ReleaseRef::Latest)
        } else {
            ReleaseId::new(s).map(ReleaseRef::Id)
        }
    }
}

impl fmt::Display for ReleaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseRef::Latest => f.pad(LATEST_LABEL),
            ReleaseRef::Id(id) => f.pad(id.as_str()),
        }
    }
}

impl From<ReleaseId> for ReleaseRef {
    fn from(id: ReleaseId) -> Self {
        ReleaseRef::Id(id)
    }
}

impl From<&ReleaseId> for ReleaseRef {
    fn from(id: &ReleaseId) -> Self {
        ReleaseRef::Id(id.clone())
    }
}

/// A container image reference, as stored in a parameter's value: usually an
/// ECR URI (`…/archivist:ref.3f2a9c1`), sometimes a bare tag or git sha.
/// Any non-empty string of at most [`MAX_IMAGE_URI_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageUri(String);

impl ImageUri {
    /// Validates `value`: non-empty, at most [`MAX_IMAGE_URI_LEN`] bytes.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if value.is_empty() {
            return Err(NameError::new(
                NameKind::ImageUri,
                &value,
                NameProblem::Empty,
            ));
        }
        if value.len() > MAX_IMAGE_URI_LEN {
            return Err(NameError::new(
                NameKind::ImageUri,
                &value,
                NameProblem::TooLong {
                    max: MAX_IMAGE_URI_LEN,
                },
            ));
        }
        Ok(ImageUri(value))
    }

    /// The URI as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ImageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ImageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for ImageUri {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        ImageUri::new(s)
    }
}

impl TryFrom<String> for ImageUri {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        ImageUri::new(s)
    }
}

impl TryFrom<&str> for ImageUri {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        ImageUri::new(s)
    }
}

impl AsRef<str> for ImageUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ImageUri {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ImageUri {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for ImageUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ImageUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        ImageUri::new(value).map_err(serde::de::Error::custom)
    }
}

/// The SSM path that holds every image of `label`: `/{project}/images/{label}`.
pub fn label_path(project: &ProjectId, label: &Label) -> String {
    format!("/{project}/images/{label}")
}

/// The SSM parameter name of one image:
/// `/{project}/images/{label}/{service}`.
pub fn image_parameter_name(project: &ProjectId, label: &Label, service: &ServiceId) -> String {
    format!("/{project}/images/{label}/{service}")
}

/// Why a parameter under a label path is not an image of that label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParameterNameProblem {
    /// The name is not under `/{project}/images/{label}/`.
    OutsideLabel,
    /// The name has more segments below the label (`…/{label}/a/b`).
    TooDeep,
    /// The last segment is not a valid service id.
    InvalidServiceId(NameError),
}

impl fmt::Display for ParameterNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterNameProblem::OutsideLabel => f.write_str("it is not under the label's path"),
            ParameterNameProblem::TooDeep => {
                f.write_str("it is nested below a service id (`…/{label}/{service}/…`)")
            }
            ParameterNameProblem::InvalidServiceId(e) => e.fmt(f),
        }
    }
}

/// The service id of parameter `name` if it is an image of `label`
/// (`/{project}/images/{label}/{service}`), or why it is not.
pub fn parse_image_parameter_name(
    project: &ProjectId,
    label: &Label,
    name: &str,
) -> Result<ServiceId, ParameterNameProblem> {
    let prefix = label_path(project, label);
    let rest = name
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or(ParameterNameProblem::OutsideLabel)?;
    if rest.contains('/') {
        return Err(ParameterNameProblem::TooDeep);
    }
    ServiceId::new(rest).map_err(ParameterNameProblem::InvalidServiceId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_tricks_and_bad_characters() {
        for bad in [
            "",
            "a/../../prod",
            "stage/x",
            ".",
            "..",
            "a b",
            "tab\t",
            "é",
            "new\nline",
        ] {
            assert!(ServiceId::new(bad).is_err(), "{bad:?} accepted");
            assert!(Label::new(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            ServiceId::new(long).unwrap_err().problem(),
            &NameProblem::TooLong { max: MAX_NAME_LEN }
        );
        assert!(ServiceId::new("a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn error_names_kind_and_value() {
        let err = ServiceId::new("a/../../prod").unwrap_err();
        assert_eq!(err.kind(), NameKind::ServiceId);
        assert_eq!(
            err.to_string(),
            "invalid service id \"a/../../prod\": it contains '/'; only letters, digits, `_`, `.` and `-` are allowed"
        );
    }

    #[test]
    fn reserved_names() {
        assert!(ProjectId::new("AWSome").is_err());
        assert!(ProjectId::new("ssm-tools").is_err());
        assert!(ProjectId::new("storage").is_ok());
        assert!(ReleaseId::new("latest").is_err());
        let err = EnvironmentId::new("latest").unwrap_err();
        assert!(err.to_string().contains("CI publishes"), "{err}");
        assert_eq!("latest".parse::<ReleaseRef>().unwrap(), ReleaseRef::Latest);
        assert!(Label::new("latest").is_ok());
    }

    #[test]
    fn parameter_names_round_trip() {
        let p = ProjectId::new("storage").unwrap();
        let l = Label::latest();
        let s = ServiceId::new("archivist").unwrap();
        let name = image_parameter_name(&p, &l, &s);
        assert_eq!(name, "/storage/images/latest/archivist");
        assert_eq!(parse_image_parameter_name(&p, &l, &name).unwrap(), s);
        assert_eq!(
            parse_image_parameter_name(&p, &l, "/storage/images/latest/a/b"),
            Err(ParameterNameProblem::TooDeep)
        );
        assert_eq!(
            parse_image_parameter_name(&p, &l, "/storage/images/latestx/a"),
            Err(ParameterNameProblem::OutsideLabel)
        );
        assert!(matches!(
            parse_image_parameter_name(&p, &l, "/storage/images/latest/a b"),
            Err(ParameterNameProblem::InvalidServiceId(_))
        ));
    }

    #[test]
    fn image_uris() {
        assert!(ImageUri::new("").is_err());
        assert!(ImageUri::new("ref.3f2a9c1").is_ok());
        assert!(ImageUri::new("x".repeat(MAX_IMAGE_URI_LEN + 1)).is_err());
    }
}
