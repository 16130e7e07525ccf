//! The id types and [`ImageUri`]: validated once, where they enter.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{NameError, NameKind, NameProblem, LATEST_LABEL, MAX_IMAGE_URI_LEN, MAX_NAME_LEN};

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

/// What every validated string type has: `as_str`, `into_string`, and the
/// conversions, comparisons and serde impls through its `new`. `$noun`
/// names the value in the docs ("name", "URI").
macro_rules! string_impls {
    ($name:ident, $noun:literal) => {
        impl $name {
            #[doc = concat!("The ", $noun, " as a string slice.")]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            #[doc = concat!("The ", $noun, " as an owned string.")]
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

macro_rules! segment_name {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` (see the [module docs](crate::names) for the rules).
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                check_segment($kind, &value)?;
                let extra: fn(&str) -> Result<(), NameProblem> = $extra;
                extra(&value).map_err(|problem| NameError::new($kind, &value, problem))?;
                Ok($name(value))
            }
        }

        string_impls!($name, "name");

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

fn no_extra_rule(_: &str) -> Result<(), NameProblem> {
    Ok(())
}

/// The rule of a name that may not be `latest`; `reserved` says as what.
fn not_latest(value: &str, reserved: &'static str) -> Result<(), NameProblem> {
    if value == LATEST_LABEL {
        Err(NameProblem::Reserved(reserved))
    } else {
        Ok(())
    }
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
    |value| not_latest(value, "`latest` (the label CI publishes to)")
);

segment_name!(
    /// A release id: the hash key of a release record. New ids are UUID v4
    /// strings; `latest` is reserved (see [`ReleaseRef`]).
    ReleaseId,
    NameKind::ReleaseId,
    |value| not_latest(value, "`latest`")
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
}

string_impls!(ImageUri, "URI");
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
    fn image_uris() {
        assert!(ImageUri::new("").is_err());
        assert!(ImageUri::new("ref.3f2a9c1").is_ok());
        assert!(ImageUri::new("x".repeat(MAX_IMAGE_URI_LEN + 1)).is_err());
    }
}
