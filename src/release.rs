//! Releases, deployments and the values inside them, in the shape of the
//! records that exist (see the crate docs, "Record shapes").
//!
//! Serde for these types is the JSON form of a release item: the DynamoDB
//! backend converts items to and from JSON and uses it, and so can any other
//! backend. Every legacy shape is read; new values are written in the current
//! shape; shapes read from a record are written back as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, Escaped, ImageUri, ProjectId, ReleaseId, ServiceId};

/// A point in time, UTC, with microsecond precision.
///
/// Records store it as naive ISO-8601 (`2019-07-10T10:44:02.272898`, or
/// `2019-07-10T10:44:02` when the microseconds are 0), which is what
/// [`Display`](fmt::Display) and serde write. Parsing also accepts a space for
/// the `T`, 1 to 9 fractional digits (truncated to microseconds), and a `Z` or
/// `±HH:MM` suffix, which is converted to UTC, so values from other writers
/// compare correctly. The canonical text sorts in the same order as the times.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Timestamp {
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }

    /// Converts to UTC and truncates to microseconds.
    pub fn from_offset_date_time(at: OffsetDateTime) -> Timestamp {
        let utc = at.to_offset(UtcOffset::UTC);
        let micros = utc.microsecond();
        let time = utc.time().replace_microsecond(micros).unwrap_or(utc.time());
        Timestamp(PrimitiveDateTime::new(utc.date(), time))
    }

    /// Seconds since the Unix epoch plus microseconds; `None` if out of range.
    pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
        let nanos = i128::from(micros) * 1000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp::from_offset_date_time)
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        // In range for every year `time` can represent by default (±9999).
        (self.0.assume_utc().unix_timestamp_nanos() / 1000) as i64
    }

    /// This time plus `micros` microseconds (negative goes back); unchanged
    /// if the result would fall outside the years -9999 to 9999.
    pub fn add_micros(&self, micros: i64) -> Timestamp {
        let target = self.unix_micros().saturating_add(micros);
        Timestamp::from_unix_micros(target).unwrap_or(*self)
    }

    /// As a `time` value with a UTC offset.
    pub fn to_offset_date_time(&self) -> OffsetDateTime {
        self.0.assume_utc()
    }
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp \"{}\": expected ISO-8601 like 2019-07-10T10:44:02.272898",
    crate::names::Escaped::new(value)
)]
pub struct TimestampError {
    value: String,
}

fn digits(s: &str, at: usize, len: usize) -> Option<u32> {
    let part = s.get(at..at + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(digits(s, 0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(s, 5, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(s, 8, 2)?).ok()?;
    let hour = u8::try_from(digits(s, 11, 2)?).ok()?;
    let minute = u8::try_from(digits(s, 14, 2)?).ok()?;
    let second = u8::try_from(digits(s, 17, 2)?).ok()?;
    let mut rest = s.get(19..)?;
    let mut micros = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let padded = format!("{:0<6}", &fraction[..len.min(6)]);
        micros = padded.parse().ok()?;
        rest = &fraction[len..];
    }
    let offset = match rest {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = &rest[1..];
            let (h, m) = match body.len() {
                5 if body.as_bytes()[2] == b':' => (digits(body, 0, 2)?, digits(body, 3, 2)?),
                4 => (digits(body, 0, 2)?, digits(body, 2, 2)?),
                2 => (digits(body, 0, 2)?, 0),
                _ => return None,
            };
            let h = i8::try_from(h).ok()?;
            let m = i8::try_from(m).ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_micro(hour, minute, second, micros).ok()?;
    Some(Timestamp::from_offset_date_time(
        PrimitiveDateTime::new(date, time).assume_offset(offset),
    ))
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        parse_timestamp(s).ok_or_else(|| TimestampError {
            // One character more than a message shows, so it marks the cut.
            value: s.chars().take(crate::names::MAX_ECHO_CHARS + 1).collect(),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )?;
        if d.microsecond() != 0 {
            write!(f, ".{:06}", d.microsecond())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// Who asked for a release or a deployment.
///
/// Current records hold a string, normally the caller's ARN from STS
/// `GetCallerIdentity` (`arn:aws:sts::123456789012:assumed-role/ci/session`);
/// the oldest hold a map `{id, name}`. Each is written back in the shape it
/// was read in; new values use the string shape.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requester {
    /// The current shape: an ARN or another principal string.
    Principal(String),
    /// The oldest shape: `{"id": …, "name": …}`.
    Legacy {
        /// The `id` field.
        id: String,
        /// The `name` field.
        name: String,
    },
}

impl Requester {
    /// A requester in the current shape.
    pub fn new(principal: impl Into<String>) -> Requester {
        Requester::Principal(principal.into())
    }

    /// The ARN or principal string, or the legacy `id`.
    pub fn id(&self) -> &str {
        match self {
            Requester::Principal(p) => p,
            Requester::Legacy { id, .. } => id,
        }
    }

    /// A short name for people: the last `/` segment of an ARN
    /// (`arn:aws:sts::1:assumed-role/ci/session` → `session`), or the legacy
    /// `name`.
    pub fn display_name(&self) -> &str {
        match self {
            Requester::Principal(p) => p.rsplit('/').next().unwrap_or(p),
            Requester::Legacy { name, .. } => name,
        }
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.display_name())
    }
}

impl fmt::Debug for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requester::Principal(p) => write!(f, "Requester({p:?})"),
            Requester::Legacy { id, name } => {
                write!(f, "Requester {{ id: {id:?}, name: {name:?} }}")
            }
        }
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "`{key}` must be a string, found {}",
            value_kind(other)
        )),
        None => Err(format!("missing `{key}`")),
    }
}

/// What a JSON value is, for "expected X, found Y" messages.
pub(crate) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Serialize for Requester {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Requester::Principal(p) => serializer.serialize_str(p),
            Requester::Legacy { id, name } => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("name", name)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Requester {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(p) => Ok(Requester::Principal(p)),
            Value::Object(map) => {
                let id = string_field(&map, "id").map_err(D::Error::custom)?;
                // The oldest records always have both; tolerate a missing name.
                let name = match map.get("name") {
                    None => id.clone(),
                    Some(_) => string_field(&map, "name").map_err(D::Error::custom)?,
                };
                Ok(Requester::Legacy { id, name })
            }
            other => Err(D::Error::custom(format!(
                "expected a principal string or an {{id, name}} map, found {}",
                value_kind(&other)
            ))),
        }
    }
}

/// The environment a deployment went to.
///
/// Current records hold the id string (`"stage"`); the oldest hold the
/// manifest's environment map (`{id, name, …}`), kept whole.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum DeploymentEnvironment {
    /// The current shape: the environment id.
    Id(EnvironmentId),
    /// The oldest shape: the manifest entry.
    Legacy {
        /// The `id` field.
        id: EnvironmentId,
        /// The `name` field, if present.
        name: Option<String>,
        /// Any other fields, kept as they were.
        extra: Map<String, Value>,
    },
}

impl DeploymentEnvironment {
    /// The environment id, whatever the shape.
    pub fn id(&self) -> &EnvironmentId {
        match self {
            DeploymentEnvironment::Id(id) | DeploymentEnvironment::Legacy { id, .. } => id,
        }
    }
}

impl Serialize for DeploymentEnvironment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DeploymentEnvironment::Id(id) => id.serialize(serializer),
            DeploymentEnvironment::Legacy { id, name, extra } => {
                let mut map = Map::new();
                map.insert("id".into(), Value::String(id.to_string()));
                if let Some(name) = name {
                    map.insert("name".into(), Value::String(name.clone()));
                }
                for (k, v) in extra {
                    map.insert(k.clone(), v.clone());
                }
                map.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for DeploymentEnvironment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(id) => EnvironmentId::new(id)
                .map(DeploymentEnvironment::Id)
                .map_err(D::Error::custom),
            Value::Object(mut map) => {
                let id = string_field(&map, "id").map_err(D::Error::custom)?;
                let id = EnvironmentId::new(id).map_err(D::Error::custom)?;
                map.remove("id");
                let name = match map.remove("name") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(other) => {
                        return Err(D::Error::custom(format!(
                            "`name` must be a string, found {}",
                            value_kind(&other)
                        )))
                    }
                };
                Ok(DeploymentEnvironment::Legacy {
                    id,
                    name,
                    extra: map,
                })
            }
            other => Err(D::Error::custom(format!(
                "expected an environment id string or an {{id, name}} map, found {}",
                value_kind(&other)
            ))),
        }
    }
}

/// The shape of a record's `requested_by` and of its deployments'
/// `environment`, by the tool generation that wrote it.
///
/// Readers of a shared table expect the shapes they have seen there:
/// `release_tooling`'s `show-deployments` crashes on a deployment whose
/// `environment` is a string, while `weco-deploy` 4.1.6 reads every shape.
/// See [`ReleaseTracker::with_record_shape`](crate::ReleaseTracker::with_record_shape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordShape {
    /// `release_tooling` and weco-deploy 1.x: `requested_by` is a map
    /// `{id, name}` and a deployment's `environment` is a map `{id, name}`.
    ReleaseTooling,
    /// weco-deploy 2.0 to 3.3: `requested_by` is the caller's ARN string and
    /// `environment` a map `{id, name}`.
    WecoDeploy2,
    /// weco-deploy 4.0 and later (the current shape): both are strings.
    #[default]
    WecoDeploy4,
}

impl RecordShape {
    /// The shape of `release`'s newest deployment, or, if it has none, the
    /// shape its own `requested_by` implies (a map is the oldest shape; a
    /// string, the current one).
    pub fn of_release(release: &Release) -> RecordShape {
        match release.deployments().last() {
            Some(deployment) => match (&deployment.requested_by, &deployment.environment) {
                (Requester::Legacy { .. }, _) => RecordShape::ReleaseTooling,
                (_, DeploymentEnvironment::Legacy { .. }) => RecordShape::WecoDeploy2,
                _ => RecordShape::WecoDeploy4,
            },
            None => match release.requested_by() {
                Requester::Legacy { .. } => RecordShape::ReleaseTooling,
                Requester::Principal(_) => RecordShape::WecoDeploy4,
            },
        }
    }

    /// `requester` in this shape's form (a map holds the principal as `id`
    /// and its display name as `name`).
    pub fn requester(self, requester: &Requester) -> Requester {
        match (self, requester) {
            (RecordShape::ReleaseTooling, Requester::Principal(principal)) => Requester::Legacy {
                id: principal.clone(),
                name: requester.display_name().to_owned(),
            },
            (RecordShape::WecoDeploy2 | RecordShape::WecoDeploy4, Requester::Legacy { id, .. }) => {
                Requester::Principal(id.clone())
            }
            _ => requester.clone(),
        }
    }

    /// `environment` in this shape's form: the id, or the map `{id, name}`
    /// (only these two keys, so that no reader meets a number or a set that
    /// it cannot print).
    pub fn environment(self, environment: &crate::Environment) -> DeploymentEnvironment {
        match self {
            RecordShape::WecoDeploy4 => DeploymentEnvironment::Id(environment.id().clone()),
            RecordShape::ReleaseTooling | RecordShape::WecoDeploy2 => {
                DeploymentEnvironment::Legacy {
                    id: environment.id().clone(),
                    name: Some(environment.name().to_owned()),
                    extra: Map::new(),
                }
            }
        }
    }
}

impl fmt::Display for RecordShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordShape::ReleaseTooling => "release_tooling (requester and environment as maps)",
            RecordShape::WecoDeploy2 => "weco-deploy 2 (requester string, environment map)",
            RecordShape::WecoDeploy4 => "weco-deploy 4 (requester and environment as strings)",
        })
    }
}

/// One deployment of a release to an environment: who, when, why.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Deployment {
    date_created: Timestamp,
    #[serde(default)]
    description: String,
    environment: DeploymentEnvironment,
    requested_by: Requester,
    /// Fields this crate does not interpret (`details`, …), kept as they were.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Deployment {
    /// A deployment in the current shape.
    pub fn new(
        environment: EnvironmentId,
        date_created: Timestamp,
        requested_by: Requester,
        description: impl Into<String>,
    ) -> Deployment {
        Deployment {
            date_created,
            description: description.into(),
            environment: DeploymentEnvironment::Id(environment),
            requested_by,
            extra: Map::new(),
        }
    }

    /// A deployment to `environment` in `shape`: the requester and the
    /// environment written as that generation of tools wrote them.
    pub fn in_shape(
        shape: RecordShape,
        environment: &crate::Environment,
        date_created: Timestamp,
        requested_by: &Requester,
        description: impl Into<String>,
    ) -> Deployment {
        Deployment {
            date_created,
            description: description.into(),
            environment: shape.environment(environment),
            requested_by: shape.requester(requested_by),
            extra: Map::new(),
        }
    }

    /// When the deployment was recorded.
    pub fn date_created(&self) -> Timestamp {
        self.date_created
    }

    /// Why it was made.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The environment id.
    pub fn environment(&self) -> &EnvironmentId {
        self.environment.id()
    }

    /// The environment as recorded (id string or legacy map).
    pub fn environment_record(&self) -> &DeploymentEnvironment {
        &self.environment
    }

    /// Who asked for it.
    pub fn requested_by(&self) -> &Requester {
        &self.requested_by
    }

    /// Fields this crate does not interpret, such as weco-deploy's `details`.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// What a release holds for one service.
///
/// Releases made by this crate always hold [`ImageEntry::Uri`]; the other
/// variants come from legacy records and cannot be deployed.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ImageEntry {
    /// An image URI (or bare tag): what gets written to a label.
    Uri(ImageUri),
    /// `null`: the service had no image at the label (weco-deploy 5.6.36+).
    Missing,
    /// A set of tags (a String Set, written for three days in Nov 2020).
    Tags(BTreeSet<String>),
}

impl ImageEntry {
    /// The URI, if this entry is one.
    pub fn uri(&self) -> Option<&ImageUri> {
        match self {
            ImageEntry::Uri(uri) => Some(uri),
            _ => None,
        }
    }
}

impl From<ImageUri> for ImageEntry {
    fn from(uri: ImageUri) -> Self {
        ImageEntry::Uri(uri)
    }
}

/// For people: control characters in a stored value are escaped.
impl fmt::Display for ImageEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageEntry::Uri(uri) => f.pad(&Escaped::whole(uri.as_str()).to_string()),
            ImageEntry::Missing => f.write_str("(no image)"),
            ImageEntry::Tags(tags) => {
                f.write_str("{")?;
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Escaped::whole(tag))?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for ImageEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageEntry::Uri(uri) => uri.serialize(serializer),
            ImageEntry::Missing => serializer.serialize_none(),
            ImageEntry::Tags(tags) => tags.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ImageEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(uri) => ImageUri::new(uri)
                .map(ImageEntry::Uri)
                .map_err(D::Error::custom),
            Value::Null => Ok(ImageEntry::Missing),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(tag) => Ok(tag),
                    other => Err(D::Error::custom(format!(
                        "a set of tags must hold strings, found {}",
                        value_kind(&other)
                    ))),
                })
                .collect::<Result<BTreeSet<_>, _>>()
                .map(ImageEntry::Tags),
            other => Err(D::Error::custom(format!(
                "expected an image URI string, null or a set of tags, found {}",
                value_kind(&other)
            ))),
        }
    }
}

/// A release: the images of a project frozen at one moment, and the history
/// of where they were deployed.
///
/// Fields are read through methods so that the invariants hold: the
/// deployments are in the order they were recorded, and
/// [`last_date_deployed`](Release::last_date_deployed) is the newest of them
/// (or the stored value, if a legacy record has a newer one).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Release {
    release_id: ReleaseId,
    project_id: ProjectId,
    #[serde(default)]
    project_name: String,
    date_created: Timestamp,
    requested_by: Requester,
    #[serde(default)]
    description: String,
    images: BTreeMap<ServiceId, ImageEntry>,
    #[serde(default)]
    deployments: Vec<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_date_deployed: Option<Timestamp>,
    /// Attributes this crate does not interpret (`release_manifest`, …).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The parts of a new release; see [`Release::new`].
#[derive(Clone, Debug)]
pub struct NewRelease {
    /// The id; usually [`ReleaseId::random`].
    pub release_id: ReleaseId,
    /// The project.
    pub project_id: ProjectId,
    /// The project's display name, from the manifest.
    pub project_name: String,
    /// When the release was made.
    pub date_created: Timestamp,
    /// Who made it.
    pub requested_by: Requester,
    /// Why.
    pub description: String,
    /// The images.
    pub images: BTreeMap<ServiceId, ImageEntry>,
}

impl Release {
    /// A new release with no deployments.
    pub fn new(parts: NewRelease) -> Release {
        Release {
            release_id: parts.release_id,
            project_id: parts.project_id,
            project_name: parts.project_name,
            date_created: parts.date_created,
            requested_by: parts.requested_by,
            description: parts.description,
            images: parts.images,
            deployments: Vec::new(),
            last_date_deployed: None,
            extra: Map::new(),
        }
    }

    /// The release id.
    pub fn release_id(&self) -> &ReleaseId {
        &self.release_id
    }

    /// The project id.
    pub fn project_id(&self) -> &ProjectId {
        &self.project_id
    }

    /// The project's display name when the release was made.
    pub fn project_name(&self) -> &str {
        &self.project_name
    }

    /// When the release was made.
    pub fn date_created(&self) -> Timestamp {
        self.date_created
    }

    /// Who made it.
    pub fn requested_by(&self) -> &Requester {
        &self.requested_by
    }

    /// Why it was made.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The images, by service.
    pub fn images(&self) -> &BTreeMap<ServiceId, ImageEntry> {
        &self.images
    }

    /// Every deployment, oldest first (in the order they were recorded).
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// When the release was last deployed; `None` if never.
    pub fn last_date_deployed(&self) -> Option<Timestamp> {
        self.last_date_deployed
    }

    /// Attributes this crate does not interpret, kept as they were.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Appends a deployment and moves
    /// [`last_date_deployed`](Release::last_date_deployed) forward to its date
    /// (never backward). Stores call this to apply
    /// [`ReleaseStore::add_deployment`](crate::ReleaseStore::add_deployment).
    pub fn record_deployment(&mut self, deployment: Deployment) {
        let at = deployment.date_created;
        self.last_date_deployed = Some(self.last_date_deployed.map_or(at, |last| last.max(at)));
        self.deployments.push(deployment);
    }

    /// The release as a JSON object in the record's shape.
    pub fn to_json(&self) -> Value {
        // Serializing these types cannot fail: every key is a string and no
        // value is a float.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a release from the JSON form of a record. `record` names it in
    /// errors (`release 0efc… in table wellcome-releases-storage`); errors give
    /// the path of the bad attribute.
    pub fn from_json(value: Value, record: &str) -> Result<Release> {
        decode_record(value, record)
    }
}

/// One deployment with the release it deployed, as returned by history
/// queries.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The release that was deployed.
    pub release_id: ReleaseId,
    /// The deployment.
    pub deployment: Deployment,
}

/// Decodes any record type from its JSON form, naming the bad attribute.
pub(crate) fn decode_record<T: serde::de::DeserializeOwned>(
    value: Value,
    record: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        Error::InvalidRecord {
            record: record.to_owned(),
            attribute: attribute_path(&path, &message),
            message,
        }
    })
}

/// The attribute a decoding error is about. serde reports a missing field
/// at the path of the map that lacks it (`.` for the record itself), so
/// the field's name is appended: `requested_by`, `deployments[0].environment`.
fn attribute_path(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match (path, missing) {
        (".", Some(field)) => field.to_owned(),
        (_, Some(field)) => format!("{path}.{field}"),
        (".", None) => "(the record itself)".to_owned(),
        (_, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_keep_the_record_format() {
        for text in ["2019-07-10T10:44:02.272898", "2019-07-10T10:44:02"] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        let t: Timestamp = "2019-07-10T10:44:02.5".parse().unwrap();
        assert_eq!(t.to_string(), "2019-07-10T10:44:02.500000");
    }

    #[test]
    fn timestamps_with_offsets_compare_in_utc() {
        let a: Timestamp = "2019-07-10T11:44:02+01:00".parse().unwrap();
        let b: Timestamp = "2019-07-10T10:44:02".parse().unwrap();
        let c: Timestamp = "2019-07-10T10:44:02.000001Z".parse().unwrap();
        assert_eq!(a, b);
        assert!(c > b);
    }

    #[test]
    fn bad_timestamps_are_errors() {
        for text in [
            "",
            "1562755442",
            "2019-13-10T10:44:02",
            "2019-07-10T25:44:02",
            "2019-07-10T10:44:02.",
            "2019-07-10T10:44:02+0",
            "2019-07-10T10:44:02x",
            "2019-07-10T10:44:0é",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn requester_shapes() {
        let legacy: Requester =
            serde_json::from_value(json!({"id": "unknown", "name": "unknown"})).unwrap();
        assert_eq!(legacy.display_name(), "unknown");
        assert_eq!(
            serde_json::to_value(&legacy).unwrap(),
            json!({"id": "unknown", "name": "unknown"})
        );
        let arn: Requester =
            serde_json::from_value(json!("arn:aws:sts::123456789012:assumed-role/ci/session"))
                .unwrap();
        assert_eq!(arn.display_name(), "session");
        assert!(serde_json::from_value::<Requester>(json!(3)).is_err());
    }

    #[test]
    fn record_errors_name_the_attribute() {
        let err = Release::from_json(
            json!({
                "release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02",
                "requested_by": "x", "images": {"a": "u"},
                "deployments": [{"date_created": "2019-07-10T10:44:02", "environment": 7, "requested_by": "x"}]
            }),
            "release r1",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("release r1"), "{text}");
        assert!(text.contains("deployments[0].environment"), "{text}");
    }

    #[test]
    fn a_missing_field_is_named_not_dotted() {
        // The hand-made item weco-deploy 4.1.6 needs on an empty table.
        let err = Release::from_json(
            json!({"release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02", "images": {}}),
            "release r1",
        )
        .unwrap_err();
        match err {
            Error::InvalidRecord { attribute, .. } => assert_eq!(attribute, "requested_by"),
            other => panic!("{other}"),
        }
        let err = Release::from_json(
            json!({"release_id": "r1", "project_id": "p", "date_created": "2019-07-10T10:44:02",
                   "requested_by": "x", "images": {},
                   "deployments": [{"date_created": "2019-07-10T10:44:02", "requested_by": "x"}]}),
            "release r1",
        )
        .unwrap_err();
        match err {
            Error::InvalidRecord { attribute, .. } => {
                assert_eq!(attribute, "deployments[0].environment")
            }
            other => panic!("{other}"),
        }
    }
}
