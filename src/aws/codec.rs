//! DynamoDB items ↔ the JSON form of a record.
//!
//! A release item is converted to a `serde_json::Value` and decoded by
//! [`Release::from_json`], so every legacy shape that the release model
//! reads is read here too, and a malformed item is an
//! [`Error::InvalidRecord`] naming the release and the attribute path, never
//! a panic.
//!
//! | DynamoDB | JSON |
//! | --- | --- |
//! | `S` | string |
//! | `N` | number (an integer when it fits `i64`/`u64`, else a finite `f64`) |
//! | `BOOL` | boolean |
//! | `NULL` | null |
//! | `M` | object (keys sorted) |
//! | `L` | array |
//! | `SS` | array of strings, sorted (the Nov 2020 tag sets) |
//! | `NS` | array of numbers |
//! | `B` | array of byte values (no release attribute is binary; this only keeps unknown attributes readable) |
//! | `BS` | array of arrays of byte values |
//!
//! Writing maps JSON back the obvious way (string → `S`, number → `N`,
//! object → `M`, array → `L`, null → `NULL`): the shape [`Release`]
//! serializes, which is what the newest old tool writes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};
use crate::release::Release;

/// An item, as the SDK holds it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Why an attribute could not be converted.
#[derive(Debug)]
pub(crate) struct CodecError {
    /// Attribute path: `images.archivist`, `deployments[2].date_created`.
    pub(crate) path: String,
    pub(crate) message: String,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn number(text: &str, path: &str) -> Result<Value, CodecError> {
    let parsed = if let Ok(i) = text.parse::<i64>() {
        Some(Number::from(i))
    } else if let Ok(u) = text.parse::<u64>() {
        Some(Number::from(u))
    } else {
        text.parse::<f64>().ok().and_then(Number::from_f64)
    };
    parsed.map(Value::Number).ok_or_else(|| CodecError {
        path: path.to_owned(),
        message: format!(
            "number \"{}\" is out of range",
            crate::names::Escaped::new(text)
        ),
    })
}

fn bytes(blob: &[u8]) -> Value {
    Value::Array(blob.iter().map(|b| Value::from(*b)).collect())
}

/// One attribute value as JSON; `path` names it in errors.
pub(crate) fn to_json(value: &AttributeValue, path: &str) -> Result<Value, CodecError> {
    Ok(match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n, path)?,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(map) => Value::Object(map_to_json(map, path)?),
        AttributeValue::L(list) => Value::Array(
            list.iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Ss(set) => {
            let mut set = set.clone();
            set.sort();
            Value::Array(set.into_iter().map(Value::String).collect())
        }
        AttributeValue::Ns(set) => Value::Array(
            set.iter()
                .map(|n| number(n, path))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::B(blob) => bytes(blob.as_ref()),
        AttributeValue::Bs(blobs) => {
            Value::Array(blobs.iter().map(|b| bytes(b.as_ref())).collect())
        }
        _ => {
            return Err(CodecError {
                path: path.to_owned(),
                message: "unknown DynamoDB attribute type".to_owned(),
            })
        }
    })
}

fn map_to_json(
    map: &HashMap<String, AttributeValue>,
    path: &str,
) -> Result<Map<String, Value>, CodecError> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = map.get(key) {
            out.insert(key.clone(), to_json(value, &child(path, key))?);
        }
    }
    Ok(out)
}

/// A JSON value as an attribute value.
pub(crate) fn from_json(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(from_json).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// How a release item is named in errors: `release {id} in table {table}`.
pub(crate) fn record_name(item: &Item, table: &str) -> String {
    match item.get("release_id") {
        Some(AttributeValue::S(id)) => {
            format!(
                "release {} in table {table}",
                crate::names::Escaped::new(id)
            )
        }
        _ => format!("release (no string `release_id`) in table {table}"),
    }
}

/// Decodes a release item.
pub(crate) fn decode_release(item: &Item, table: &str) -> Result<Release> {
    let record = record_name(item, table);
    let json = map_to_json(item, "").map_err(|e| Error::InvalidRecord {
        record: record.clone(),
        attribute: e.path,
        message: e.message,
    })?;
    Release::from_json(Value::Object(json), &record)
}

/// Encodes a release as an item in the current shape.
pub(crate) fn encode_release(release: &Release) -> Item {
    match from_json(&release.to_json()) {
        AttributeValue::M(map) => map,
        // `Release` always serializes to an object.
        _ => HashMap::new(),
    }
}

/// A string attribute of an item, if it is one.
pub(crate) fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use serde_json::json;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn every_type_converts_without_panicking() {
        let item: Item = [
            ("s".to_owned(), s("x")),
            ("n".to_owned(), AttributeValue::N("12".into())),
            ("f".to_owned(), AttributeValue::N("0.5".into())),
            (
                "big".to_owned(),
                AttributeValue::N("18446744073709551615".into()),
            ),
            ("b".to_owned(), AttributeValue::Bool(true)),
            ("z".to_owned(), AttributeValue::Null(true)),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["b".into(), "a".into()]),
            ),
            (
                "ns".to_owned(),
                AttributeValue::Ns(vec!["1".into(), "2".into()]),
            ),
            ("bin".to_owned(), AttributeValue::B(Blob::new(vec![1u8, 2]))),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(vec![3u8])]),
            ),
            ("l".to_owned(), AttributeValue::L(vec![s("y")])),
        ]
        .into_iter()
        .collect();
        let json = map_to_json(&item, "").unwrap();
        assert_eq!(
            Value::Object(json),
            json!({
                "b": true, "big": 18446744073709551615u64, "bin": [1, 2], "bs": [[3]], "f": 0.5,
                "l": ["y"], "n": 12, "ns": [1, 2], "s": "x", "ss": ["a", "b"], "z": null
            })
        );
    }

    #[test]
    fn bad_numbers_name_the_path() {
        let v = AttributeValue::M(
            [(
                "x".to_owned(),
                AttributeValue::L(vec![AttributeValue::N("1e999".into())]),
            )]
            .into_iter()
            .collect(),
        );
        let err = to_json(&v, "extra").unwrap_err();
        assert_eq!(err.path, "extra.x[0]");
        let err = to_json(&AttributeValue::N("not a number".into()), "n").unwrap_err();
        assert_eq!(err.path, "n");
    }

    #[test]
    fn malformed_items_name_release_and_attribute() {
        let item: Item = [
            ("release_id".to_owned(), s("r1")),
            ("project_id".to_owned(), s("p")),
            (
                "date_created".to_owned(),
                AttributeValue::N("1562755442".into()),
            ),
            ("requested_by".to_owned(), s("x")),
            ("images".to_owned(), AttributeValue::M(HashMap::new())),
        ]
        .into_iter()
        .collect();
        let err = decode_release(&item, "t").unwrap_err();
        match err {
            Error::InvalidRecord {
                record, attribute, ..
            } => {
                assert_eq!(record, "release r1 in table t");
                assert_eq!(attribute, "date_created");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_round_trips() {
        let value = json!({"a": [1, "x", null, true, {"b": 2.5}], "c": {}});
        assert_eq!(to_json(&from_json(&value), "").unwrap(), value);
    }

    use proptest::prelude::*;

    /// Any attribute value, nested a few levels, with garbage numbers too.
    fn attribute() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".{0,12}".prop_map(AttributeValue::S),
            "[-+0-9.eE]{0,8}|.{0,6}".prop_map(AttributeValue::N),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null(true)),
            proptest::collection::vec(".{0,6}", 0..3).prop_map(AttributeValue::Ss),
            proptest::collection::vec("[0-9.]{0,4}", 0..3).prop_map(AttributeValue::Ns),
            proptest::collection::vec(any::<u8>(), 0..4)
                .prop_map(|b| AttributeValue::B(Blob::new(b))),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                proptest::collection::hash_map(".{0,8}", inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    fn valid_item() -> Item {
        [
            ("release_id", s("r-1")),
            ("project_id", s("storage")),
            ("project_name", s("Storage")),
            ("date_created", s("2019-07-10T10:44:02.272898")),
            ("requested_by", s("arn:aws:iam::1:user/a")),
            ("description", s("d")),
            (
                "images",
                AttributeValue::M([("a".to_owned(), s("u"))].into_iter().collect()),
            ),
            ("deployments", AttributeValue::L(Vec::new())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No item read from a table panics the decoder.
        #[test]
        fn arbitrary_items_never_panic(
            item in proptest::collection::hash_map(".{0,10}", attribute(), 0..8),
        ) {
            let _ = decode_release(&item, "wellcome-releases-storage");
        }

        /// One attribute of a valid item replaced by anything: either still a
        /// release, or an error that names that attribute (or a path in it).
        #[test]
        fn one_bad_attribute_is_named(
            name in prop::sample::select(vec![
                "release_id", "project_id", "date_created", "requested_by",
                "images", "deployments", "last_date_deployed",
            ]),
            value in attribute(),
        ) {
            let mut item = valid_item();
            item.insert(name.to_owned(), value);
            if let Err(Error::InvalidRecord { attribute, record, .. }) =
                decode_release(&item, "wellcome-releases-storage")
            {
                prop_assert!(record.contains("wellcome-releases-storage"), "{}", record);
                prop_assert!(
                    attribute.starts_with(name),
                    "{} does not name {}", attribute, name
                );
            }
        }
    }
}
