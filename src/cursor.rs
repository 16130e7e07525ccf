//! The one cursor format of this crate's stores: where a newest-first
//! release listing stopped.
//!
//! A cursor is the hex of a small JSON object naming the project, the last
//! release's `date_created` (as the store keeps it) and its id: opaque to
//! callers, safe on a command line, and checked on the way back in.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::names::{Escaped, ProjectId, ReleaseId};
use crate::release::{Release, Timestamp};
use crate::store::Cursor;

/// The last release of a page: the next page starts strictly below it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListingPosition {
    /// `date_created` exactly as the store keeps it (an index's sort key).
    pub(crate) date: String,
    pub(crate) release_id: ReleaseId,
}

impl ListingPosition {
    pub(crate) fn new(date: impl Into<String>, release_id: ReleaseId) -> ListingPosition {
        ListingPosition {
            date: date.into(),
            release_id,
        }
    }

    /// The position of `release`, for stores that keep dates canonical.
    pub(crate) fn of(release: &Release) -> ListingPosition {
        ListingPosition::new(
            release.date_created().to_string(),
            release.release_id().clone(),
        )
    }

    /// The cursor of this position in a listing of `project`.
    pub(crate) fn encode(&self, project: &ProjectId) -> Cursor {
        let json = json!({
            "p": project.as_str(),
            "d": self.date,
            "r": self.release_id.as_str(),
        });
        Cursor::new(hex(json.to_string().as_bytes()))
    }

    /// The position `cursor` stands for, if it was made by [`encode`](Self::encode)
    /// for `project`.
    pub(crate) fn decode(project: &ProjectId, cursor: &Cursor) -> Result<ListingPosition> {
        let not_ours = || Error::InvalidCursor {
            reason: format!(
                "\"{}\" is not a cursor of a release listing",
                Escaped::new(cursor.as_str())
            ),
        };
        let bytes = unhex(cursor.as_str()).ok_or_else(not_ours)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| not_ours())?;
        let field = |key: &str| value.get(key).and_then(Value::as_str);
        let (Some(p), Some(d), Some(r)) = (field("p"), field("d"), field("r")) else {
            return Err(not_ours());
        };
        if p != project.as_str() {
            return Err(Error::InvalidCursor {
                reason: format!(
                    "it was made for a listing of project `{}`, not `{project}`",
                    Escaped::new(p)
                ),
            });
        }
        let release_id = ReleaseId::new(r).map_err(|e| Error::InvalidCursor {
            reason: e.to_string(),
        })?;
        Ok(ListingPosition::new(d, release_id))
    }

    /// The position's date as a [`Timestamp`], for stores that order by it.
    pub(crate) fn timestamp(&self) -> Result<Timestamp> {
        self.date.parse().map_err(|e| Error::InvalidCursor {
            reason: format!("its date {:?} is not a timestamp: {e}", self.date),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str) -> ProjectId {
        ProjectId::new(name).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let storage = project("storage");
        let position = ListingPosition::new("2020-01-01T00:00:00", ReleaseId::new("r-1").unwrap());
        let cursor = position.encode(&storage);
        assert_eq!(
            ListingPosition::decode(&storage, &cursor).unwrap(),
            position
        );
        assert_eq!(
            position.timestamp().unwrap(),
            "2020-01-01T00:00:00".parse().unwrap()
        );
        let err = ListingPosition::decode(&project("catalogue"), &cursor).unwrap_err();
        assert!(
            err.to_string()
                .contains("made for a listing of project `storage`"),
            "{err}"
        );
        for garbage in ["", "zz", "abc", "7b7d", "not a cursor", "é"] {
            let err = ListingPosition::decode(&storage, &Cursor::new(garbage)).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCursor { .. }),
                "{garbage}: {err}"
            );
        }
    }
}
