//! Tests of the control types: shapes, errors and input checks.

use std::time::Duration;

use super::lease::{busy, lost};
use super::*;
use crate::error::Error;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};
use serde_json::json;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn lease() -> Lease {
    LeaseRequest::new(
        Requester::new("arn:aws:sts::123456789012:assumed-role/deployer/alice"),
        LeaseOperation::Deploy,
        ReleaseId::new("r-1").unwrap(),
        "build-7",
        Duration::from_secs(600),
    )
    .unwrap()
    .with_lease_id(LeaseId::new("lease-1").unwrap())
    .lease_at(
        &ProjectId::new("storage").unwrap(),
        &EnvironmentId::new("prod").unwrap(),
        at("2024-05-01T10:00:00"),
    )
}

#[test]
fn a_lease_expires_at_acquired_plus_ttl_and_says_who_holds_it() {
    let lease = lease();
    assert_eq!(lease.expires, at("2024-05-01T10:10:00"));
    assert!(!lease.is_expired(at("2024-05-01T10:09:59.999999")));
    assert!(lease.is_expired(at("2024-05-01T10:10:00")));
    assert_eq!(
        lease.to_string(),
        "being deployed by alice (release `r-1`, since 2024-05-01T10:00:00 UTC, expires \
         2024-05-01T10:10:00 UTC; host build-7, lease lease-1)"
    );
}

#[test]
fn stored_shapes_round_trip_and_avoid_the_index_keys() {
    let lease = lease();
    let action = ControlAction::new(
        Requester::new("bob"),
        Reason::new("incident INC-1").unwrap(),
        at("2024-05-01T11:00:00"),
    )
    .unwrap();
    let freeze = Freeze::new(&lease.project, &lease.environment, &action);
    let block = Block::new(&lease.project, &lease.release, &action);
    let events = [
        ControlChange::ForceUnlock {
            environment: lease.environment.clone(),
            lease: lease.clone(),
        },
        ControlChange::Freeze {
            environment: lease.environment.clone(),
        },
        ControlChange::Unfreeze {
            environment: lease.environment.clone(),
            lifted: freeze.clone(),
        },
        ControlChange::Block {
            release: lease.release.clone(),
        },
        ControlChange::Unblock {
            release: lease.release.clone(),
            lifted: block.clone(),
        },
    ]
    .map(|change| ControlEvent::new(7, &lease.project, &action, change));
    let mut values = vec![
        serde_json::to_value(&lease).unwrap(),
        serde_json::to_value(&freeze).unwrap(),
        serde_json::to_value(&block).unwrap(),
    ];
    for event in &events {
        let value = serde_json::to_value(event).unwrap();
        assert_eq!(value["kind"], event.change.kind());
        assert_eq!(
            serde_json::from_value::<ControlEvent>(value.clone()).unwrap(),
            *event
        );
        values.push(value);
    }
    assert_eq!(
        serde_json::from_value::<Lease>(values[0].clone()).unwrap(),
        lease
    );
    // DynamoDB's indexes key on these, and the table's key is
    // release_id: a control record must hold none of them.
    for value in &values {
        for key in [
            "project_id",
            "date_created",
            "last_date_deployed",
            "release_id",
        ] {
            assert!(value.get(key).is_none(), "{key} in {value}");
        }
    }
    assert_eq!(
        events[2].to_string(),
        "#7 2024-05-01T11:00:00 UTC bob unfroze prod (frozen by bob since \
         2024-05-01T11:00:00 UTC): \"incident INC-1\""
    );
}

#[test]
fn errors_name_project_environment_holder_release_since_and_expiry() {
    let lease = lease();
    let busy = busy(lease.clone()).to_string();
    assert_eq!(
        busy,
        "project `storage`: environment `prod` is being deployed by alice (release `r-1`, \
         since 2024-05-01T10:00:00 UTC, expires 2024-05-01T10:10:00 UTC; host build-7, \
         lease lease-1)"
    );
    let mut mine = lease.clone();
    mine.lease_id = LeaseId::new("lease-0").unwrap();
    let mut rollback = lease.clone();
    rollback.operation = LeaseOperation::Rollback;
    assert_eq!(
        lost(&mine, Some(rollback)).to_string(),
        "project `storage`: lease lease-0 on environment `prod` is no longer held; the \
         environment is now being rolled back by alice (release `r-1`, since \
         2024-05-01T10:00:00 UTC, expires 2024-05-01T10:10:00 UTC; host build-7, lease lease-1)"
    );
    assert!(lost(&mine, None)
        .to_string()
        .ends_with("the environment has no lease now (it was force-unlocked or released)"));
    let action = ControlAction::new(
        Requester::new("arn:aws:iam::1:user/bob"),
        Reason::new("INC-7\nsee the \u{1b}[31mchannel").unwrap(),
        at("2024-05-01T11:00:00"),
    )
    .unwrap();
    let frozen = Error::EnvironmentFrozen {
        freeze: Box::new(Freeze::new(&lease.project, &lease.environment, &action)),
    };
    assert_eq!(
        frozen.to_string(),
        "project `storage`: environment `prod` is frozen by bob since 2024-05-01T11:00:00 \
         UTC: \"INC-7\\nsee the \\u{1b}[31mchannel\""
    );
    let blocked = Error::ReleaseBlocked {
        block: Box::new(Block::new(&lease.project, &lease.release, &action)),
    };
    assert!(blocked.to_string().starts_with(
        "project `storage`: release `r-1` is blocked by bob since 2024-05-01T11:00:00 UTC: "
    ));
}

#[test]
fn inputs_are_checked() {
    assert!(matches!(
        Reason::new("  \n"),
        Err(Error::InvalidArgument {
            argument: "reason",
            ..
        })
    ));
    assert!(Reason::new("x".repeat(MAX_REASON_CHARS)).is_ok());
    assert!(Reason::new("é".repeat(MAX_REASON_CHARS + 1)).is_err());
    assert!(serde_json::from_value::<Reason>(json!("")).is_err());
    for bad in ["", "a b", "a/b", &"x".repeat(129)] {
        assert!(LeaseId::new(bad).is_err(), "{bad:?}");
    }
    let request = |host: &str, ttl: u64, who: &str| {
        LeaseRequest::new(
            Requester::new(who),
            LeaseOperation::Rollback,
            ReleaseId::new("r").unwrap(),
            host,
            Duration::from_secs(ttl),
        )
    };
    assert!(request("h", 60, "alice").is_ok());
    for (host, ttl, who, argument) in [
        ("", 60, "alice", "host"),
        (&"h".repeat(256) as &str, 60, "alice", "host"),
        ("h", 0, "alice", "ttl"),
        ("h", 24 * 3600 + 1, "alice", "ttl"),
        ("h", 60, &"a".repeat(2049) as &str, "holder"),
    ] {
        match request(host, ttl, who) {
            Err(Error::InvalidArgument { argument: a, .. }) => assert_eq!(a, argument),
            other => panic!("{argument}: {other:?}"),
        }
    }
    assert_ne!(LeaseId::random(), LeaseId::random());
}
