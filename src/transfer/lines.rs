//! The export's lines: writing a [`Snapshot`] and reading one back, with
//! every line checked and errors naming it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::names::{ImageUri, Label, ProjectId, ServiceId};
use crate::release::Release;
use crate::store::{SkippedParameter, SkippedRecord};
use crate::tracker::Warning;
use crate::transfer::{Snapshot, TransferError, FORMAT, FORMAT_VERSION};

/// The longest line read. A release record is at most 400 KB in DynamoDB;
/// a longer line is not an export (and is not read into memory whole).
const MAX_LINE_BYTES: u64 = 4 * 1024 * 1024;

/// The header's fields other than `format` and `version`, which are
/// checked first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    project_id: ProjectId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseLine {
    release: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelLine {
    label: Label,
    images: BTreeMap<ServiceId, ImageUri>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkippedRecordLine {
    record: String,
    release_id: Option<String>,
    attribute: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkippedParameterLine {
    name: String,
    service: Option<ServiceId>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    releases: usize,
    labels: usize,
    skipped: usize,
}

fn line_of(kind: &str, mut fields: Map<String, Value>) -> Value {
    let mut line = Map::new();
    line.insert("kind".into(), kind.into());
    line.append(&mut fields);
    Value::Object(line)
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The line of something the export passed over; `None` for warnings that
/// are not about what was read (an export takes no lease and records no
/// deployment).
fn skipped_line(warning: &Warning) -> Option<Value> {
    Some(match warning {
        Warning::SkippedRecord(skipped) => line_of(
            "skipped_record",
            fields(json!({
                "record": skipped.record,
                "release_id": skipped.release_id,
                "attribute": skipped.attribute,
                "message": skipped.message,
            })),
        ),
        Warning::SkippedParameter(skipped) => line_of(
            "skipped_parameter",
            fields(json!({
                "name": skipped.name,
                "service": skipped.service.as_ref().map(ServiceId::as_str),
                "reason": skipped.reason,
            })),
        ),
        Warning::LeaseNotReleased { .. } | Warning::RecordNearlyFull { .. } => return None,
    })
}

impl Snapshot {
    /// Writes the snapshot as JSON lines (see the [module](crate::transfer)
    /// docs): header, releases, labels, what was skipped, end.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), TransferError> {
        let mut lines = vec![line_of(
            "header",
            fields(json!({
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "project_id": self.project.as_str(),
            })),
        )];
        for release in &self.releases {
            lines.push(line_of(
                "release",
                fields(json!({ "release": release.to_json() })),
            ));
        }
        for (label, images) in &self.labels {
            lines.push(line_of(
                "label",
                fields(json!({ "label": label.as_str(), "images": images })),
            ));
        }
        lines.extend(self.skipped.iter().filter_map(skipped_line));
        lines.push(line_of(
            "end",
            fields(json!({
                "releases": self.releases.len(),
                "labels": self.labels.len(),
                "skipped": self.skipped.len(),
            })),
        ));
        for line in lines {
            serde_json::to_writer(&mut *out, &line).map_err(|e| TransferError::Write(e.into()))?;
            out.write_all(b"\n").map_err(TransferError::Write)?;
        }
        out.flush().map_err(TransferError::Write)
    }

    /// Reads an export written by [`write_to`](Snapshot::write_to) (any
    /// format version up to [`FORMAT_VERSION`]). The whole input is checked
    /// before anything is returned: every line, the header first and the
    /// end line last with the counts it states. Errors name the line.
    pub fn read_from(input: impl BufRead) -> Result<Snapshot, TransferError> {
        let mut reader = Reader::new(input);
        let mut snapshot = match reader.next_line()? {
            None => return Err(invalid(1, None, "the input is empty: not an export")),
            Some((kind, mut fields)) => {
                if kind != "header" {
                    return Err(invalid(
                        1,
                        Some("kind"),
                        format!("the first line must be the header, not `{kind}`"),
                    ));
                }
                // Format and version first: a newer version may have fields
                // this one does not know.
                match fields.get("format") {
                    Some(Value::String(format)) if format == FORMAT => {}
                    Some(Value::String(format)) => {
                        return Err(invalid(
                            1,
                            Some("format"),
                            format!("`{format}` is not this format (`{FORMAT}`)"),
                        ))
                    }
                    _ => return Err(invalid(1, Some("format"), format!("must be `{FORMAT}`"))),
                }
                match fields.get("version").and_then(Value::as_u64) {
                    Some(0) | None => {
                        return Err(invalid(
                            1,
                            Some("version"),
                            "must be a format version (a number from 1)",
                        ))
                    }
                    Some(version) if version > FORMAT_VERSION => {
                        return Err(TransferError::UnsupportedVersion { version })
                    }
                    Some(_) => {}
                }
                fields.remove("format");
                fields.remove("version");
                let header: Header = decode(1, fields)?;
                Snapshot {
                    project: header.project_id,
                    releases: Vec::new(),
                    labels: BTreeMap::new(),
                    skipped: Vec::new(),
                }
            }
        };
        let mut release_lines = HashMap::new();
        let mut label_lines = HashMap::new();
        loop {
            let Some((kind, fields)) = reader.next_line()? else {
                return Err(TransferError::Truncated { lines: reader.line });
            };
            let line = reader.line;
            match kind.as_str() {
                "release" => {
                    let ReleaseLine { release } = decode(line, fields)?;
                    let release = Release::from_json(release, "release").map_err(|e| match e {
                        crate::Error::InvalidRecord {
                            attribute, message, ..
                        } => invalid(line, Some(&format!("release.{attribute}")), message),
                        other => invalid(line, Some("release"), other.to_string()),
                    })?;
                    if release.project_id() != &snapshot.project {
                        return Err(invalid(
                            line,
                            Some("release.project_id"),
                            format!(
                                "release of project `{}` in an export of project `{}`",
                                release.project_id(),
                                snapshot.project
                            ),
                        ));
                    }
                    if let Some(first) = release_lines.insert(release.release_id().clone(), line) {
                        return Err(invalid(
                            line,
                            Some("release.release_id"),
                            format!("release `{}` is also on line {first}", release.release_id()),
                        ));
                    }
                    snapshot.releases.push(release);
                }
                "label" => {
                    let LabelLine { label, images } = decode(line, fields)?;
                    if let Some(first) = label_lines.insert(label.clone(), line) {
                        return Err(invalid(
                            line,
                            Some("label"),
                            format!("label `{label}` is also on line {first}"),
                        ));
                    }
                    snapshot.labels.insert(label, images);
                }
                "skipped_record" => {
                    let s: SkippedRecordLine = decode(line, fields)?;
                    snapshot.skipped.push(Warning::SkippedRecord(SkippedRecord {
                        record: s.record,
                        release_id: s.release_id,
                        attribute: s.attribute,
                        message: s.message,
                    }));
                }
                "skipped_parameter" => {
                    let s: SkippedParameterLine = decode(line, fields)?;
                    snapshot
                        .skipped
                        .push(Warning::SkippedParameter(SkippedParameter {
                            name: s.name,
                            service: s.service,
                            reason: s.reason,
                        }));
                }
                "end" => {
                    let end: End = decode(line, fields)?;
                    let counts = [
                        ("releases", end.releases, snapshot.releases.len()),
                        ("labels", end.labels, snapshot.labels.len()),
                        ("skipped", end.skipped, snapshot.skipped.len()),
                    ];
                    for (field, stated, found) in counts {
                        if stated != found {
                            return Err(invalid(
                                line,
                                Some(field),
                                format!("the end line counts {stated}, the export holds {found}"),
                            ));
                        }
                    }
                    if reader.next_line()?.is_some() {
                        return Err(invalid(
                            reader.line,
                            None,
                            format!("a line after the end line (line {line})"),
                        ));
                    }
                    return Ok(snapshot);
                }
                "header" => {
                    return Err(invalid(line, Some("kind"), "a second header line"));
                }
                other => {
                    return Err(invalid(
                        line,
                        Some("kind"),
                        format!(
                            "unknown kind `{other}` (expected release, label, skipped_record, \
                             skipped_parameter or end)"
                        ),
                    ));
                }
            }
        }
    }
}

fn invalid(line: usize, field: Option<&str>, message: impl Into<String>) -> TransferError {
    TransferError::InvalidLine {
        line,
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// Decodes a line's fields (its `kind` removed), naming the bad field.
fn decode<T: DeserializeOwned>(
    line: usize,
    fields: Map<String, Value>,
) -> Result<T, TransferError> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        invalid(line, field.as_deref(), e.into_inner().to_string())
    })
}

/// A line's `kind` and its other fields.
type Line = (String, Map<String, Value>);

/// Lines of the input, each a JSON object with a string `kind`.
struct Reader<R> {
    input: R,
    /// The number of the line last read, from 1.
    line: usize,
}

impl<R: BufRead> Reader<R> {
    fn new(input: R) -> Reader<R> {
        Reader { input, line: 0 }
    }

    /// The next line's kind and other fields; `None` at the end of input.
    fn next_line(&mut self) -> Result<Option<Line>, TransferError> {
        let line = self.line + 1;
        let mut bytes = Vec::new();
        let read = (&mut self.input)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|source| TransferError::Read { line, source })?;
        if read == 0 {
            return Ok(None);
        }
        self.line = line;
        if bytes.len() as u64 > MAX_LINE_BYTES {
            return Err(invalid(
                line,
                None,
                format!("longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| invalid(line, None, format!("not UTF-8 text: {e}")))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(invalid(line, None, "an empty line"));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| invalid(line, None, format!("not JSON: {e}")))?;
        let Value::Object(mut fields) = value else {
            return Err(invalid(line, None, "not a JSON object"));
        };
        match fields.remove("kind") {
            Some(Value::String(kind)) => Ok(Some((kind, fields))),
            Some(_) => Err(invalid(line, Some("kind"), "must be a string")),
            None => Err(invalid(line, Some("kind"), "missing")),
        }
    }
}
