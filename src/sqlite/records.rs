//! Release records as stored: the JSON record and the indexed columns
//! taken from it.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::release::Release;

/// The indexed columns of a release row.
///
/// A record that decodes gets canonical timestamps, which sort as the times
/// do; `last_date_deployed` is then the newest of the stored value and every
/// deployment, so no deployment is newer than its row says. A record that
/// does not decode gets its attributes' text as stored (or `NULL`), which
/// is where a DynamoDB index would place it; such a record is only ever
/// reported as skipped.
#[derive(Debug, Default)]
pub(super) struct Columns {
    pub(super) date_created: Option<String>,
    pub(super) last_date_deployed: Option<String>,
}

impl Columns {
    pub(super) fn of_release(release: &Release) -> Columns {
        let newest = release
            .deployments()
            .iter()
            .map(|d| d.date_created())
            .chain(release.last_date_deployed())
            .max();
        Columns {
            date_created: Some(release.date_created().to_string()),
            last_date_deployed: newest.map(|t| t.to_string()),
        }
    }

    /// The columns of a record given as JSON.
    pub(super) fn of_value(record: &Value) -> Columns {
        match Release::from_json(record.clone(), "") {
            Ok(release) => Columns::of_release(&release),
            Err(_) => {
                let text = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_owned);
                Columns {
                    date_created: text("date_created"),
                    last_date_deployed: text("last_date_deployed"),
                }
            }
        }
    }
}

/// The columns of a stored record's text.
pub(super) fn columns_of(record: &str) -> Columns {
    serde_json::from_str::<Value>(record)
        .map(|value| Columns::of_value(&value))
        .unwrap_or_default()
}

/// How a release row is named in errors and skipped records.
pub(super) fn record_name(path: &Path, id: &str) -> String {
    format!("release {id} in SQLite store {}", path.display())
}

/// Decodes a release row stored under `project` and `id`. Anything wrong
/// with it is [`Error::InvalidRecord`], which listings pass over.
pub(super) fn decode(path: &Path, project: &str, id: &str, record: &str) -> Result<Release> {
    let name = record_name(path, id);
    let invalid = |attribute: &str, message: String| Error::InvalidRecord {
        record: name.clone(),
        attribute: attribute.to_owned(),
        message,
    };
    let value: Value = serde_json::from_str(record)
        .map_err(|e| invalid("(the record itself)", format!("not JSON: {e}")))?;
    let release = Release::from_json(value, &name)?;
    if release.release_id().as_str() != id {
        return Err(invalid(
            "release_id",
            format!("`{}` in a record stored under `{id}`", release.release_id()),
        ));
    }
    if release.project_id().as_str() != project {
        return Err(invalid(
            "project_id",
            format!(
                "`{}` in a record stored under `{project}`",
                release.project_id()
            ),
        ));
    }
    Ok(release)
}
