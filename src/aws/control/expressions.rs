//! Condition and update expressions of control writes, checked before sending.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::codec::Item;
use crate::control::{Lease, MAX_ACTIVE_BLOCKS};
use crate::error::{Error, Result};
use crate::names::ReleaseId;
use crate::release::Timestamp;

use super::*;

use super::items::*;

/// The placeholders (`#name`, `:value`) an expression uses.
pub(super) fn placeholders(expression: &str) -> BTreeSet<&str> {
    let mut found = BTreeSet::new();
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' || bytes[i] == b':' {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if i > start + 1 {
                found.insert(&expression[start..i]);
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The expressions of one write and their placeholders. DynamoDB rejects a
/// request that gives a placeholder no expression uses, uses one it does
/// not give, or gives an empty map; [`Expressions::checked`] refuses the
/// same before sending (the emulator accepts some of these).
#[derive(Debug, Default, Clone)]
pub(super) struct Expressions {
    pub(super) condition: Option<String>,
    pub(super) update: Option<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Expressions {
    pub(super) fn condition(condition: &str) -> Expressions {
        Expressions {
            condition: Some(condition.to_owned()),
            ..Expressions::default()
        }
    }

    pub(super) fn update(mut self, update: &str) -> Expressions {
        self.update = Some(update.to_owned());
        self
    }

    pub(super) fn name(mut self, placeholder: &str, attribute: &str) -> Expressions {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    pub(super) fn value(mut self, placeholder: &str, value: AttributeValue) -> Expressions {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    pub(super) fn checked(self) -> Result<Expressions> {
        let used: BTreeSet<&str> = self
            .condition
            .iter()
            .chain(&self.update)
            .flat_map(|e| placeholders(e))
            .collect();
        let given: BTreeSet<&str> = self
            .names
            .keys()
            .chain(self.values.keys())
            .map(String::as_str)
            .collect();
        if used != given {
            return Err(Error::backend(
                "building a DynamoDB expression",
                format!(
                    "placeholders used {used:?} differ from those given {given:?} in {:?} / {:?}",
                    self.condition, self.update
                ),
            ));
        }
        Ok(self)
    }

    pub(super) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(super) fn values(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// The condition of an acquire: free or ours; or, once `expired` has
/// expired at `now`, still that lease.
pub(super) fn acquire_condition(
    mine: &Lease,
    expired: Option<&Lease>,
    now: Timestamp,
) -> Result<Expressions> {
    match expired {
        None => Expressions::condition("attribute_not_exists(#k) OR #id = :mine")
            .name("#k", KEY)
            .name("#id", LEASE_ID)
            .value(":mine", s(mine.lease_id.as_str())),
        Some(old) => Expressions::condition("#id = :old AND #x <= :now")
            .name("#id", LEASE_ID)
            .name("#x", EXPIRES_MICROS)
            .value(":old", s(old.lease_id.as_str()))
            .value(":now", n(now.unix_micros())),
    }
    .checked()
}

/// Moves an event counter from `count` (as read; 0 if it did not exist)
/// to the next, only if nobody moved it since.
pub(super) fn counter_update(count: u64) -> Result<Expressions> {
    if count == 0 {
        Expressions::condition("attribute_not_exists(#k)").name("#k", KEY)
    } else {
        Expressions::condition("#c = :seen").value(":seen", n(count))
    }
    .update("SET #c = :next, #t = :type")
    .name("#c", EVENT_COUNT)
    .name("#t", RECORD_TYPE)
    .value(":next", n(count + 1))
    .value(":type", s("event_count"))
    .checked()
}

pub(super) fn holder_condition(lease: &Lease) -> Result<Expressions> {
    Expressions::condition("#id = :id")
        .name("#id", LEASE_ID)
        .value(":id", s(lease.lease_id.as_str()))
        .checked()
}

pub(super) fn renew_expressions(lease: &Lease, expires: Timestamp) -> Result<Expressions> {
    holder_condition(lease)?
        .update("SET #e = :e, #x = :x")
        .name("#e", EXPIRES)
        .name("#x", EXPIRES_MICROS)
        .value(":e", s(expires.to_string()))
        .value(":x", n(expires.unix_micros()))
        .checked()
}

pub(super) fn absent() -> Result<Expressions> {
    Expressions::condition("attribute_not_exists(#k)")
        .name("#k", KEY)
        .checked()
}

pub(super) fn add_blocked(release: &ReleaseId) -> Result<Expressions> {
    Expressions::condition("attribute_not_exists(#r) OR size(#r) < :max")
        .update("SET #t = :type ADD #r :one")
        .name("#r", BLOCKED)
        .name("#t", RECORD_TYPE)
        .value(":max", n(MAX_ACTIVE_BLOCKS))
        .value(":type", s("blocks"))
        .value(
            ":one",
            AttributeValue::Ss(vec![release.as_str().to_owned()]),
        )
        .checked()
}

pub(super) fn remove_blocked(release: &ReleaseId) -> Result<Expressions> {
    let mut expressions = Expressions::default()
        .update("DELETE #r :one")
        .name("#r", BLOCKED)
        .value(
            ":one",
            AttributeValue::Ss(vec![release.as_str().to_owned()]),
        );
    expressions.condition = None;
    expressions.checked()
}
