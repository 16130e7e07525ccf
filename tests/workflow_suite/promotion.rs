//! Workflows of safe promotion: the audit trail each deployment records,
//! the size a release record may reach, promotion gates and their bypass.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use release_tracking::{
    DeployOptions, DeploymentKind, Environment, Error, GateVerdict, Project, ReleaseRef,
    ReleaseTracker, Requester, UnmetRequirement,
};

use super::{
    counting_ids, env, label_map, prepare_latest, publish, publish_three, start_time, svc, tracker,
    Stores, Tracker, ALICE,
};

/// A clock the test moves by hand, in minutes from [`start_time`].
#[derive(Clone, Default)]
struct HandClock(Arc<AtomicI64>);

impl HandClock {
    fn set(&self, minutes: i64) {
        self.0.store(minutes, Ordering::SeqCst);
    }
}

/// A tracker whose project has `stage`, and `prod` requiring `stage` (for
/// `soak`, if given), on a clock moved by hand.
fn gated_tracker(stores: &Stores, soak: Option<&str>) -> (Tracker, HandClock) {
    let mut prod = Environment::new(env("prod"), "Production").with_requires([env("stage")]);
    if let Some(soak) = soak {
        prod = prod.with_soak(soak.parse().expect("soak"));
    }
    let project = Project::new(
        stores.project.clone(),
        "Storage service",
        vec![Environment::new(env("stage"), "Staging"), prod],
    )
    .expect("valid gates");
    let clock = HandClock::default();
    let minutes = clock.0.clone();
    let tracker = ReleaseTracker::new(
        project,
        stores.images.clone(),
        stores.releases.clone(),
        Requester::new(ALICE),
    )
    .with_clock(move || start_time().add_micros(minutes.load(Ordering::SeqCst) * 60_000_000))
    .with_id_generator(counting_ids());
    (tracker, clock)
}

/// Every deployment this crate records says what it was: a fresh id, its
/// kind, the release it replaced in the environment (none for the first
/// there) and the services whose parameter it wrote; the plan shows the
/// release it will replace.
pub async fn deploy_records_the_audit_trail(stores: Stores) {
    let t = tracker(&stores);
    publish_three(&t).await;
    let first = prepare_latest(&t).await;
    let first_ref: ReleaseRef = first.release_id().into();
    let deployed = t
        .deploy(&first_ref, "stage", "first")
        .await
        .expect("deploy");
    let d = &deployed.deployment;
    assert_eq!(d.kind(), Some(&DeploymentKind::Deploy));
    assert_eq!(d.replaced_release(), None, "nothing was in stage before");
    assert_eq!(
        d.changed_services().map(<[_]>::to_vec),
        Some(vec![svc("archivist"), svc("bag-register"), svc("notifier")])
    );
    assert_eq!(d.bypass_reason(), None);
    let first_id = d.deployment_id().expect("a deployment id").to_owned();

    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.ddd").await;
    let second = prepare_latest(&t).await;
    let plan = t
        .plan(&second.release_id().into(), "stage")
        .await
        .expect("plan");
    assert_eq!(plan.replaces.as_ref(), Some(first.release_id()));
    assert!(
        plan.to_string()
            .contains(&format!("(replacing {})", first.release_id())),
        "{plan}"
    );
    let deployed = t.execute(plan, "second").await.expect("execute");
    let d = &deployed.deployment;
    assert_eq!(d.kind(), Some(&DeploymentKind::Deploy));
    assert_eq!(d.replaced_release(), Some(first.release_id()));
    assert_eq!(d.changed_services(), Some(&[svc("notifier")][..]));

    // Stored as returned, listed as stored, and every id distinct.
    let stored = t
        .release(&second.release_id().into())
        .await
        .expect("read")
        .release;
    assert_eq!(stored.deployments(), std::slice::from_ref(d));
    let again = t.deploy(&first_ref, "prod", "to prod").await.expect("prod");
    assert_eq!(again.deployment.replaced_release(), None);
    assert_eq!(again.deployment.changed_services().map(<[_]>::len), Some(3));
    let history = t.history(None, 10).await.expect("history").records;
    let ids: BTreeSet<_> = history
        .iter()
        .filter_map(|r| r.deployment.deployment_id())
        .collect();
    assert_eq!(ids.len(), 3, "{history:#?}");
    assert!(ids.contains(first_id.as_str()));
    assert_eq!(history[1].deployment, *d);
}

/// A release record of `services` services whose deployments (to `stage`,
/// each with a long description) make it at least `target` bytes as
/// DynamoDB counts them. Few long values rather than many short ones: the
/// emulator takes about 45 µs per value to answer a read.
fn bulky_record(stores: &Stores, id: &str, services: usize, target: usize) -> serde_json::Value {
    use release_tracking::release::item_size;
    let images: serde_json::Map<String, serde_json::Value> = (0..services)
        .map(|i| {
            let service = format!("service-{i:03}");
            let image = format!("ecr.example.com/{service}:ref.{i}");
            (service, image.into())
        })
        .collect();
    let mut record = serde_json::json!({
        "release_id": id,
        "project_id": stores.project.as_str(),
        "project_name": "Storage service",
        "date_created": "2024-01-01T00:00:00",
        "requested_by": super::ALICE,
        "description": "a release deployed many times",
        "images": images,
        "deployments": [],
    });
    let mut n = 0;
    while item_size(&record) < target {
        let date = format!("2024-01-01T{:02}:{:02}:00", n / 60, n % 60);
        let deployment = serde_json::json!({
            "date_created": date,
            "description": format!("{n}: {}", "a long description ".repeat(150)),
            "environment": "stage",
            "requested_by": super::ALICE,
            "kind": "deploy",
            "changed_services": ["service-000"],
        });
        if let Some(list) = record["deployments"].as_array_mut() {
            list.push(deployment);
        }
        record["last_date_deployed"] = date.into();
        n += 1;
    }
    record
}

/// A release whose record nears the 400 KB a DynamoDB item holds deploys
/// with a warning; one that one more deployment would take past the limit
/// is refused before any parameter is written, and its record is unchanged.
pub async fn a_release_record_near_the_size_limit_warns_then_refuses(stores: Stores) {
    use release_tracking::release::{MAX_RECORD_SIZE, RECORD_SIZE_WARNING};
    use release_tracking::{Error, Warning};
    let t = tracker(&stores);
    let nearly_full = "00000000-0000-4000-8000-00000000f001";
    let full = "00000000-0000-4000-8000-00000000f002";
    (stores.put_raw)(bulky_record(
        &stores,
        nearly_full,
        10,
        RECORD_SIZE_WARNING + 1_000,
    ))
    .await;
    (stores.put_raw)(bulky_record(&stores, full, 10, MAX_RECORD_SIZE - 100)).await;

    let deployed = t
        .deploy(&nearly_full.parse().expect("id"), "prod", "nearly full")
        .await
        .expect("a record past the warning size still deploys");
    assert_eq!(deployed.written.len(), 10);
    let warning = deployed
        .warnings
        .iter()
        .find_map(|w| match w {
            Warning::RecordNearlyFull { size, more, .. } => Some((*size, *more)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no RecordNearlyFull in {:?}", deployed.warnings));
    assert_eq!(warning.0, deployed.release.record_size());
    assert!(warning.1 > 100, "{warning:?}");
    let shown = deployed
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(
        shown
            .iter()
            .any(|w| w.contains("more deployments like this one fit")),
        "{shown:?}"
    );

    let before = t
        .release(&full.parse().expect("id"))
        .await
        .expect("read")
        .release;
    let err = t
        .deploy(&full.parse().expect("id"), "stage", "one too many")
        .await
        .expect_err("a deployment past the limit is refused");
    match &err {
        Error::ReleaseRecordFull {
            release,
            environment,
            size,
            limit,
            ..
        } => {
            assert_eq!(release.as_str(), full);
            assert_eq!(environment.as_str(), "stage");
            assert!(size > limit && *limit == MAX_RECORD_SIZE, "{err}");
        }
        other => panic!("expected ReleaseRecordFull, got {other}"),
    }
    assert!(err.to_string().contains("Nothing was written"), "{err}");
    // Nothing was ever deployed to stage, and the refused deploy wrote
    // nothing there.
    let stage = t
        .label_images(&"stage".parse().expect("label"))
        .await
        .expect("label");
    assert!(stage.images.is_empty(), "{stage:?}");
    let after = t
        .release(&full.parse().expect("id"))
        .await
        .expect("read")
        .release;
    assert_eq!(after, before, "the refused deployment was not recorded");
}

/// `prod` requires `stage`: a release never deployed there is refused
/// before any write, with the plan showing why; once in stage it deploys.
pub async fn a_release_must_pass_through_the_required_environment(stores: Stores) {
    let (t, clock) = gated_tracker(&stores, None);
    publish_three(&t).await;
    let release = prepare_latest(&t).await;
    let id: ReleaseRef = release.release_id().into();
    let expected = format!(
        "release {} has not been deployed to stage; prod requires stage",
        release.release_id()
    );

    let plan = t.plan(&id, "prod").await.expect("plan");
    assert!(!plan.gates_pass());
    let gates = plan.gates.clone().expect("prod has gates");
    assert_eq!(gates.requires, [env("stage")]);
    match &gates.verdict {
        GateVerdict::Unmet(unmet) => {
            assert!(
                matches!(&unmet[..], [UnmetRequirement::NotDeployed { required, .. }] if required == &env("stage")),
                "{unmet:?}"
            );
        }
        GateVerdict::Pass => panic!("passed"),
    }
    let shown = plan.to_string();
    assert!(
        shown.contains("gates: NOT MET (deployed to stage)"),
        "{shown}"
    );
    assert!(shown.contains(&expected), "{shown}");

    let err = t.execute(plan, "to prod").await.expect_err("refused");
    assert!(
        matches!(&err, Error::GatesNotMet { unmet, .. } if unmet.len() == 1),
        "{err}"
    );
    assert!(err.to_string().contains(&expected), "{err}");
    assert!(err.to_string().contains("Nothing was written"), "{err}");
    assert!(
        label_map(&t, "prod").await.is_empty(),
        "nothing written to prod"
    );
    let stored = t.release(&id).await.expect("read").release;
    assert!(stored.deployments().is_empty(), "nothing recorded");

    let to_stage = t.plan(&id, "stage").await.expect("plan");
    assert!(to_stage.gates.is_none() && to_stage.gates_pass());
    assert!(to_stage.to_string().contains("gates: none"), "{to_stage}");
    t.execute(to_stage, "to stage")
        .await
        .expect("stage has no gates");
    clock.set(1);
    let plan = t.plan(&id, "prod").await.expect("plan");
    assert!(plan.gates_pass(), "{plan}");
    assert!(
        plan.to_string().contains("gates: pass (deployed to stage)"),
        "{plan}"
    );
    let deployed = t.execute(plan, "to prod").await.expect("deploy");
    assert_eq!(deployed.deployment.kind(), Some(&DeploymentKind::Deploy));
    assert_eq!(deployed.written.len(), 3);
}

/// With a soak, the time a release was current in stage counts: too short
/// is refused with how long it was, a plan refused at first deploys once
/// the time has passed (execute checks again), a later release in stage
/// ends the time, and a bypass with a reason deploys anyway and is recorded
/// as one; a blank reason is refused before anything is read.
pub async fn the_soak_time_is_measured_and_a_bypass_is_recorded(stores: Stores) {
    let (t, clock) = gated_tracker(&stores, Some("2h"));
    publish_three(&t).await;
    let first = prepare_latest(&t).await;
    let first_ref: ReleaseRef = first.release_id().into();
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.ddd").await;
    let second = prepare_latest(&t).await;
    let second_ref: ReleaseRef = second.release_id().into();

    t.deploy(&first_ref, "stage", "to stage")
        .await
        .expect("stage");
    clock.set(35);
    let err = t
        .deploy(&first_ref, "prod", "too soon")
        .await
        .expect_err("not soaked");
    assert!(
        err.to_string().contains(&format!(
            "release {} has been current in stage for 35m; prod requires 2h",
            first.release_id()
        )),
        "{err}"
    );

    // Planned too soon, executed after the soak: execute checks again.
    let plan = t.plan(&first_ref, "prod").await.expect("plan");
    assert!(!plan.gates_pass(), "{plan}");
    clock.set(125);
    let deployed = t.execute(plan, "after the soak").await.expect("soaked");
    assert_eq!(deployed.deployment.kind(), Some(&DeploymentKind::Deploy));

    // The second release replaces the first in stage after 40 minutes;
    // however long after, it was current there for 40 minutes only.
    t.deploy(&second_ref, "stage", "second to stage")
        .await
        .expect("stage");
    clock.set(165);
    t.deploy(&first_ref, "stage", "first back to stage")
        .await
        .expect("stage");
    // (first was current 0..125 and from 165 on: its longest time counts.)
    clock.set(600);
    let plan = t.plan(&second_ref, "prod").await.expect("plan");
    let shown = plan.to_string();
    assert!(
        shown.contains(&format!(
            "release {} has been current in stage for 40m; prod requires 2h",
            second.release_id()
        )),
        "{shown}"
    );

    // A blank reason is refused before any read; a reason bypasses.
    for blank in ["", "  "] {
        let err = t
            .deploy(
                &second_ref,
                "prod",
                DeployOptions::new("x").bypass_gates(blank),
            )
            .await
            .expect_err("a blank reason");
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "bypass_gates",
                    ..
                }
            ),
            "{err}"
        );
    }
    let deployed = t
        .deploy(
            &second_ref,
            "prod",
            DeployOptions::new("hotfix").bypass_gates("INC-123: prod is down"),
        )
        .await
        .expect("bypassed");
    let d = &deployed.deployment;
    assert_eq!(d.kind(), Some(&DeploymentKind::Bypass));
    assert_eq!(d.bypass_reason(), Some("INC-123: prod is down"));
    assert_eq!(d.requested_by().id(), ALICE, "who bypassed");
    assert_eq!(d.replaced_release(), Some(first.release_id()));
    assert_eq!(d.changed_services(), Some(&[svc("notifier")][..]));
    assert_eq!(
        label_map(&t, "prod").await,
        label_map(&t, "latest").await,
        "the bypass wrote the second release"
    );

    // A bypass reason where the gates pass bypasses nothing.
    let deployed = t
        .deploy(
            &first_ref,
            "prod",
            DeployOptions::new("back").bypass_gates("not needed"),
        )
        .await
        .expect("deploy");
    assert_eq!(deployed.deployment.kind(), Some(&DeploymentKind::Deploy));
    assert_eq!(deployed.deployment.bypass_reason(), None);
}

/// Rollback: to the release current before the present one, or to one
/// named; recorded as a rollback naming the release it replaced, writing
/// only what differs, and allowed whatever the gates say (the release
/// already ran there). Nothing to roll back to is a clear error.
pub async fn rollback_returns_to_the_release_before(stores: Stores) {
    use release_tracking::RollbackRefusal;
    let (t, clock) = gated_tracker(&stores, None);
    publish_three(&t).await;
    let first = prepare_latest(&t).await;
    let first_ref: ReleaseRef = first.release_id().into();
    publish(&t, "latest", "notifier", "ecr.example.com/notifier:ref.ddd").await;
    let second = prepare_latest(&t).await;
    let second_ref: ReleaseRef = second.release_id().into();

    let refusal = |err: Error| match err {
        Error::NothingToRollBack { why, .. } => why,
        other => panic!("expected NothingToRollBack, got {other}"),
    };
    let err = t.rollback("prod", None, "undo").await.expect_err("empty");
    assert!(
        err.to_string()
            .contains("cannot roll back `prod`: nothing has been deployed there"),
        "{err}"
    );
    assert_eq!(refusal(err), RollbackRefusal::NeverDeployed);

    // The first release goes to prod past its gates (a bypass); the second
    // through them.
    t.deploy(
        &first_ref,
        "prod",
        DeployOptions::new("hotfix").bypass_gates("INC-1"),
    )
    .await
    .expect("bypass");
    let err = t
        .rollback("prod", None, "undo")
        .await
        .expect_err("one release");
    assert_eq!(
        refusal(err),
        RollbackRefusal::NoEarlierRelease {
            current: first.release_id().clone(),
            read: 1,
            complete: true
        }
    );
    // Listings order deployments by time: each step gets its own.
    clock.set(1);
    t.deploy(&second_ref, "stage", "second to stage")
        .await
        .expect("stage");
    clock.set(2);
    t.deploy(&second_ref, "prod", "second to prod")
        .await
        .expect("prod");
    clock.set(3);
    t.deploy(&second_ref, "prod", "again")
        .await
        .expect("prod again");

    clock.set(4);
    // The first release would not pass prod's gates now; a rollback to it
    // does not ask them.
    let gated = t.plan(&first_ref, "prod").await.expect("plan");
    assert!(!gated.gates_pass());
    let plan = t.plan_rollback("prod", None).await.expect("plan");
    assert_eq!(plan.release_id, *first.release_id());
    assert_eq!(plan.kind, DeploymentKind::Rollback);
    assert_eq!(plan.replaces.as_ref(), Some(second.release_id()));
    assert!(plan.gates.is_none() && plan.gates_pass());
    let shown = plan.to_string();
    assert!(
        shown.starts_with(&format!(
            "roll back prod to {} (replacing {}): 1 to write, 2 unchanged",
            first.release_id(),
            second.release_id()
        )),
        "{shown}"
    );
    assert!(shown.contains("gates: not checked"), "{shown}");
    let rolled = t.execute(plan, "undo").await.expect("rollback");
    let d = &rolled.deployment;
    assert_eq!(d.kind(), Some(&DeploymentKind::Rollback));
    assert_eq!(d.replaced_release(), Some(second.release_id()));
    assert_eq!(d.changed_services(), Some(&[svc("notifier")][..]));
    assert_eq!(rolled.written, [svc("notifier")]);
    assert_eq!(
        label_map(&t, "prod").await,
        super::pairs(&[
            ("archivist", "ecr.example.com/archivist:ref.aaa"),
            ("bag-register", "ecr.example.com/bag-register:ref.bbb"),
            ("notifier", "ecr.example.com/notifier:ref.ccc"),
        ])
    );
    let history = t.history(Some("prod"), 1).await.expect("history").records;
    assert_eq!(history[0].deployment, *d);

    // Rolling back again returns to the release before the first one.
    clock.set(5);
    let again = t.rollback("prod", None, "redo").await.expect("rollback");
    assert_eq!(again.release.release_id(), second.release_id());
    assert_eq!(
        again.deployment.replaced_release(),
        Some(first.release_id())
    );

    // Naming the release: the current one, or one that never ran there.
    let err = t
        .rollback("prod", Some(&second_ref), "no-op")
        .await
        .expect_err("current");
    assert_eq!(
        refusal(err),
        RollbackRefusal::AlreadyCurrent {
            release: second.release_id().clone()
        }
    );
    let third = prepare_latest(&t).await;
    let err = t
        .rollback("prod", Some(&third.release_id().into()), "never there")
        .await
        .expect_err("never ran in prod");
    assert!(
        err.to_string().contains("was never deployed there"),
        "{err}"
    );
    clock.set(6);
    let named = t
        .rollback("prod", Some(&first_ref), "named")
        .await
        .expect("a release that ran in prod");
    assert_eq!(named.release.release_id(), first.release_id());
    assert_eq!(named.deployment.kind(), Some(&DeploymentKind::Rollback));
    let err = t.rollback("stage", None, "x").await.expect_err("stage");
    assert!(matches!(
        refusal(err),
        RollbackRefusal::NoEarlierRelease { .. }
    ));
}
