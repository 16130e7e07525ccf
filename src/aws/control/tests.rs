//! Tests of the control items and expressions.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::codec::{self};
use crate::aws::DynamoDbReleaseStore;
use crate::control::{ControlAction, ControlChange, ControlEvent, Lease, LeaseRequest};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};

use super::expressions::*;
use super::items::*;
use super::*;
use crate::control::{LeaseId, LeaseOperation, Reason, MAX_REASON_CHARS, MAX_REQUESTER_CHARS};
use crate::release::Requester;

fn project() -> ProjectId {
    ProjectId::new("storage").unwrap()
}

fn lease() -> Lease {
    LeaseRequest::new(
        Requester::new("alice"),
        LeaseOperation::Deploy,
        ReleaseId::new("r-1").unwrap(),
        "host",
        Duration::from_secs(60),
    )
    .unwrap()
    .with_lease_id(LeaseId::new("l-1").unwrap())
    .lease_at(
        &project(),
        &EnvironmentId::new("prod").unwrap(),
        "2024-01-01T00:00:00".parse().unwrap(),
    )
}

#[test]
fn every_expression_gives_exactly_the_placeholders_it_uses() {
    let lease = lease();
    let now = lease.expires;
    let release = ReleaseId::new("r-1").unwrap();
    let built = [
        acquire_condition(&lease, None, now),
        acquire_condition(&lease, Some(&lease), now),
        holder_condition(&lease),
        renew_expressions(&lease, now),
        absent(),
        counter_update(0),
        counter_update(7),
        add_blocked(&release),
        remove_blocked(&release),
        DynamoDbReleaseStore::same_version(&HashMap::from([(VERSION.to_owned(), s("v"))])),
        DynamoDbReleaseStore::same_version(&HashMap::new()),
    ];
    for expressions in built {
        let expressions = expressions.expect("consistent");
        assert!(expressions.condition.is_some() || expressions.update.is_some());
    }
    let unused = Expressions::condition("#a = :a")
        .name("#a", "a")
        .value(":a", s("x"))
        .value(":b", s("y"));
    assert!(unused.checked().is_err());
    let undeclared = Expressions::condition("#a = :a").name("#a", "a");
    assert!(undeclared.checked().is_err());
    assert_eq!(
        placeholders("attribute_not_exists(#k) OR (#id = :mine AND size(#r) < :max)"),
        BTreeSet::from(["#k", "#id", ":mine", "#r", ":max"])
    );
    // No empty map is ever sent.
    assert_eq!(absent().unwrap().values(), None);
}

#[test]
fn control_keys_cannot_be_release_ids_and_items_hide_from_the_indexes() {
    let lease = lease();
    let environment = lease.environment.clone();
    let keys = [
        lease_key(&project(), &environment),
        freeze_key(&project(), &environment),
        block_key(&project(), &lease.release),
        blocks_key(&project()),
        counter_key(&project(), None),
        counter_key(&project(), Some(&environment)),
        event_key(&project(), None, 1),
        event_key(&project(), Some(&environment), 1),
    ];
    for key in &keys {
        assert!(ReleaseId::new(key.as_str()).is_err(), "{key}");
        assert!(key.starts_with('#'), "{key}");
    }
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len());
    let item = lease_item(&lease);
    for attribute in ["project_id", "date_created", "last_date_deployed"] {
        assert!(!item.contains_key(attribute), "{attribute}");
    }
    assert_eq!(item.get(KEY), Some(&s("#lease#storage#prod")));
    let back: Lease = decode_item(&item, "lease").unwrap();
    assert_eq!(back, lease);
}

/// The largest event: a forced unlock by a requester with the longest
/// id, of a lease held by another, both reasons as long as allowed.
#[test]
fn the_largest_control_item_is_far_below_the_item_limit() {
    let long = |c: char, len: usize| std::iter::repeat_n(c, len).collect::<String>();
    // Four bytes a character: the most a reason can take.
    let reason = Reason::new(long('😀', MAX_REASON_CHARS)).unwrap();
    let requester = Requester::new(long('a', MAX_REQUESTER_CHARS));
    let mut lease = lease();
    lease.holder = requester.clone();
    lease.host = long('h', crate::control::MAX_HOST_CHARS);
    let action = ControlAction::new(requester, reason, lease.expires).unwrap();
    let event = ControlEvent::new(
        u64::MAX,
        &project(),
        &action,
        ControlChange::ForceUnlock {
            environment: lease.environment.clone(),
            lease,
        },
    );
    let item = record_item("#event#x#1".to_owned(), "event", &event);
    let size = serde_json::to_string(&codec::to_json(&AttributeValue::M(item), "").unwrap())
        .unwrap()
        .len();
    assert!(size < 16 * 1024, "{size} bytes");
}
