//! Control items: their keys, and records to and from items.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::aws::codec::{self, Item};
use crate::control::Lease;
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::decode_record;

use super::*;

pub(super) fn lease_key(project: &ProjectId, environment: &EnvironmentId) -> String {
    format!("#lease#{project}#{environment}")
}

pub(super) fn freeze_key(project: &ProjectId, environment: &EnvironmentId) -> String {
    format!("#freeze#{project}#{environment}")
}

pub(super) fn block_key(project: &ProjectId, release: &ReleaseId) -> String {
    format!("#block#{project}#{release}")
}

pub(super) fn blocks_key(project: &ProjectId) -> String {
    format!("#blocks#{project}")
}

pub(super) fn counter_key(project: &ProjectId, environment: Option<&EnvironmentId>) -> String {
    match environment {
        None => format!("#events#{project}"),
        Some(environment) => format!("#events#{project}#{environment}"),
    }
}

/// What a change reads: its `items`, then the event counters of the
/// project and, for a change of one environment, of that environment.
pub(super) fn change_keys<const N: usize>(
    project: &ProjectId,
    environment: Option<&EnvironmentId>,
    items: [String; N],
) -> Vec<String> {
    let mut keys = items.to_vec();
    keys.push(counter_key(project, None));
    keys.extend(environment.map(|environment| counter_key(project, Some(environment))));
    keys
}

pub(super) fn event_key(
    project: &ProjectId,
    environment: Option<&EnvironmentId>,
    n: u64,
) -> String {
    match environment {
        None => format!("#event#{project}#{n}"),
        Some(environment) => format!("#event#{project}#{environment}#{n}"),
    }
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// An item holding `record`'s fields under `key`.
pub(super) fn record_item<T: Serialize>(key: String, record_type: &str, record: &T) -> Item {
    let value = serde_json::to_value(record).unwrap_or(Value::Null);
    let mut item = match codec::from_json(&value) {
        AttributeValue::M(fields) => fields,
        _ => HashMap::new(),
    };
    item.insert(KEY.to_owned(), s(key));
    item.insert(RECORD_TYPE.to_owned(), s(record_type));
    item
}

pub(super) fn lease_item(lease: &Lease) -> Item {
    let mut item = record_item(
        lease_key(&lease.project, &lease.environment),
        "lease",
        lease,
    );
    item.insert(EXPIRES_MICROS.to_owned(), n(lease.expires.unix_micros()));
    item
}

/// An item with a fresh `version`, which its removal is conditional on.
pub(super) fn versioned_item<T: Serialize>(key: String, record_type: &str, record: &T) -> Item {
    let mut item = record_item(key, record_type, record);
    item.insert(VERSION.to_owned(), s(uuid::Uuid::new_v4().to_string()));
    item
}

/// Decodes a control item; `what` names it in errors.
pub(super) fn decode_item<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T> {
    let mut fields = Map::new();
    for (name, value) in item {
        if ITEM_ONLY.contains(&name.as_str()) {
            continue;
        }
        let value = codec::to_json(value, name).map_err(|e| Error::InvalidRecord {
            record: what.to_owned(),
            attribute: e.path,
            message: e.message,
        })?;
        fields.insert(name.clone(), value);
    }
    decode_record(Value::Object(fields), what)
}

pub(super) fn count_of(item: Option<&Item>) -> u64 {
    match item.and_then(|item| item.get(EVENT_COUNT)) {
        Some(AttributeValue::N(count)) => count.parse().unwrap_or(0),
        _ => 0,
    }
}
