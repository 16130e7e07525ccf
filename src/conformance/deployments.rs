//! Checks of recording and listing deployments in a [`ReleaseStore`].

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::error::Error;
use crate::names::{ProjectId, ReleaseId};
use crate::release::{Deployment, DeploymentKind, DeploymentRecord};
use crate::store::{ReleaseStore, MAX_PAGE_SIZE};

use super::support::*;

/// [`ReleaseStore::add_deployment`] appends in call order and returns the
/// updated release, which is what a later read sees; `last_date_deployed`
/// moves forward and never backward (an older-dated deployment added later
/// leaves it alone).
pub async fn release_store_add_deployment(store: &dyn ReleaseStore, project: &ProjectId) {
    let release = new_release(project, "release-1", at(0));
    create(store, &release).await;
    assert_eq!(
        read(store, project, release.release_id())
            .await
            .and_then(|r| r.last_date_deployed()),
        None,
        "conformance: a release never deployed has no last_date_deployed"
    );

    let steps = [
        deployment("stage", at(10 * SECOND), "first, to stage"),
        deployment("prod", at(20 * SECOND), "second, to prod"),
        deployment("stage", at(15 * SECOND), "third, dated before the second"),
    ];
    let mut expected = release.clone();
    for step in &steps {
        expected.record_deployment(step.clone());
        let returned = deploy(store, project, release.release_id(), step).await;
        assert_eq!(
            returned,
            expected,
            "conformance: add_deployment ({}) must return the release with the deployment \
             appended and nothing else changed",
            step.description()
        );
        let stored = read(store, project, release.release_id()).await;
        assert_eq!(
            stored.as_ref(),
            Some(&expected),
            "conformance: release() after add_deployment ({}) must return the updated release",
            step.description()
        );
    }
    assert_eq!(
        expected.last_date_deployed(),
        Some(at(20 * SECOND)),
        "conformance (self-check): last_date_deployed is the newest deployment"
    );
    let stored = read(store, project, release.release_id()).await;
    assert_eq!(
        stored.and_then(|r| r.last_date_deployed()),
        Some(at(20 * SECOND)),
        "conformance: last_date_deployed must stay at the newest deployment when an older-dated \
         one is added"
    );
}

/// [`ReleaseStore::recent_deployments`] across three releases: newest first;
/// equal dates go to the greater release id, then to the later position in
/// a release; filtered by environment; at most `limit`; a limit of 0 or
/// above [`MAX_PAGE_SIZE`] is [`Error::InvalidArgument`].
/// [`ReleaseStore::current_release`] is the first of those to an
/// environment, with its release as stored unless it is the one known.
pub async fn release_store_recent_deployments(store: &dyn ReleaseStore, project: &ProjectId) {
    let (a, b, c) = (
        new_release(project, "rel-a", at(0)),
        new_release(project, "rel-b", at(SECOND)),
        new_release(project, "rel-c", at(2 * SECOND)),
    );
    for release in [&a, &b, &c] {
        create(store, release).await;
    }
    // (release, environment, seconds, description), in call order.
    let plan = [
        (&a, "stage", 10, "a1"),
        (&a, "prod", 20, "a2"),
        (&b, "stage", 30, "b1"),
        (&b, "stage", 50, "b2"),
        (&b, "prod", 50, "b3"),
        (&c, "prod", 40, "c1"),
        (&c, "stage", 50, "c2"),
        (&a, "prod", 5, "a3"),
    ];
    for (release, env, seconds, description) in plan {
        deploy(
            store,
            project,
            release.release_id(),
            &deployment(env, at(seconds * SECOND), description),
        )
        .await;
    }

    let recent = |environment: Option<&'static str>, limit: usize| async move {
        let env = environment.map(self::environment);
        must(
            store.recent_deployments(project, env.as_ref(), limit).await,
            format_args!("recent_deployments({project}, {environment:?}, {limit})"),
        )
        .records
    };

    let all = recent(None, 100).await;
    assert_eq!(
        descriptions(&all),
        ["c2", "b3", "b2", "c1", "b1", "a2", "a1", "a3"],
        "conformance: recent_deployments must be newest first; on equal dates the greater \
         release id first, then the later deployment of a release first"
    );
    let first = all.first().expect("conformance: deployments were listed");
    assert_eq!(
        first,
        &DeploymentRecord {
            release_id: c.release_id().clone(),
            deployment: deployment("stage", at(50 * SECOND), "c2"),
        },
        "conformance: recent_deployments must name the release and return the deployment as \
         recorded"
    );
    assert_eq!(
        descriptions(&recent(Some("stage"), 100).await),
        ["c2", "b2", "b1", "a1"],
        "conformance: recent_deployments filtered to `stage`"
    );
    assert_eq!(
        descriptions(&recent(Some("prod"), 100).await),
        ["b3", "c1", "a2", "a3"],
        "conformance: recent_deployments filtered to `prod`"
    );
    assert_eq!(
        descriptions(&recent(None, 3).await),
        ["c2", "b3", "b2"],
        "conformance: recent_deployments limited to 3"
    );
    assert_eq!(
        descriptions(&recent(Some("stage"), 2).await),
        ["c2", "b2"],
        "conformance: recent_deployments filtered to `stage` and limited to 2"
    );
    assert!(
        recent(Some("test"), 10).await.is_empty(),
        "conformance: recent_deployments to an environment never deployed must be empty"
    );

    let current = |env: &'static str, known: Option<ReleaseId>| async move {
        must(
            store
                .current_release(project, &environment(env), known.as_ref())
                .await,
            format_args!("current_release({project}, {env}, {known:?})"),
        )
    };
    for (env, newest, of) in [("stage", "c2", &c), ("prod", "b3", &b)] {
        let found = current(env, None).await;
        assert_eq!(
            found
                .deployment
                .as_ref()
                .map(|r| r.deployment.description()),
            Some(newest),
            "conformance: current_release({env}) must be its newest deployment"
        );
        assert_eq!(
            found.release,
            read(store, project, of.release_id()).await,
            "conformance: current_release({env}) must return that deployment's release as stored"
        );
        let known = current(env, Some(of.release_id().clone())).await;
        assert_eq!(
            (known.deployment, known.release),
            (found.deployment, None),
            "conformance: current_release({env}) must not return the release the caller knows"
        );
    }
    assert_eq!(
        current("test", None).await,
        crate::store::CurrentRelease::default(),
        "conformance: current_release to an environment never deployed must find nothing"
    );

    for limit in [0, MAX_PAGE_SIZE + 1] {
        match store.recent_deployments(project, None, limit).await {
            Err(Error::InvalidArgument {
                argument: "limit", ..
            }) => {}
            Err(other) => panic!(
                "conformance: recent_deployments with limit {limit} must fail with \
                 InvalidArgument(limit), got: {other}"
            ),
            Ok(found) => panic!(
                "conformance: recent_deployments accepted limit {limit} and returned {} records",
                found.records.len()
            ),
        }
    }
}

/// Deployments keep what this crate does not interpret: weco-deploy's
/// `details` map, and the legacy environment map (with extra keys) and
/// `{id, name}` requester.
pub async fn release_store_deployment_fields_survive(
    store: &dyn ReleaseStore,
    project: &ProjectId,
) {
    let release = new_release(project, "release-1", at(0));
    create(store, &release).await;
    let with_details = deployment_from_json(json!({
        "date_created": "2020-11-02T09:15:00.123456",
        "description": "deploy with details",
        "environment": "prod",
        "requested_by": "arn:aws:sts::123456789012:assumed-role/platform-ci/deploy",
        "details": {
            "archivist": {
                "ssm_result": {"old_image": "ref.1111111", "new_image": "ref.2222222"},
                "tag_result": {"status": "success", "tags": ["env.prod", "ref.2222222"]},
                "ecs_deployments": [
                    {"service_arn": "arn:aws:ecs:eu-west-1:123456789012:service/archivist",
                     "deployment_id": "ecs-svc/1234567890", "running_count": 2, "stable": true}
                ]
            },
            "bag-verifier": {}
        }
    }));
    let legacy_shapes = deployment_from_json(json!({
        "date_created": "2020-11-03T10:00:00",
        "description": "No description provided",
        "environment": {"id": "stage", "name": "Staging", "aws_region_name": "eu-west-1",
                        "account_id": "123456789012"},
        "requested_by": {"id": "unknown", "name": "unknown"}
    }));

    deploy(store, project, release.release_id(), &with_details).await;
    let returned = deploy(store, project, release.release_id(), &legacy_shapes).await;
    let stored = read(store, project, release.release_id())
        .await
        .expect("conformance: a created release reads back");
    for got in [&returned, &stored] {
        assert_eq!(
            got.deployments(),
            [with_details.clone(), legacy_shapes.clone()],
            "conformance: deployments must keep unknown fields and legacy shapes"
        );
        let json: Vec<Value> = got
            .deployments()
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect();
        assert_eq!(
            json.first().and_then(|d| d.get("details")),
            with_details.extra().get("details"),
            "conformance: a deployment's `details` must survive unchanged"
        );
    }
}

/// 64 concurrent [`ReleaseStore::add_deployment`] calls on one release (in a
/// shuffled date order) are all recorded, each exactly once, and
/// `last_date_deployed` is the newest of them.
pub async fn release_store_concurrent_deployments(store: &dyn ReleaseStore, project: &ProjectId) {
    const COUNT: usize = 64;
    let release = new_release(project, "release-1", at(0));
    create(store, &release).await;
    // 5 is coprime with 64: the newest deployment is not the last call.
    let deployments: Vec<Deployment> = (0..COUNT)
        .map(|i| {
            let n = (i * 5) % COUNT;
            let env = if n.is_multiple_of(2) { "stage" } else { "prod" };
            deployment(
                env,
                at((n as i64 + 1) * SECOND),
                &format!("concurrent-{n:02}"),
            )
        })
        .collect();

    let results = join_all(
        deployments
            .iter()
            .map(|d| store.add_deployment(project, release.release_id(), d)),
    )
    .await;
    for (d, result) in deployments.iter().zip(results) {
        let returned = must(
            result,
            format_args!("concurrent add_deployment ({})", d.description()),
        );
        assert!(
            returned.deployments().contains(d),
            "conformance: the release returned by add_deployment ({}) must contain that \
             deployment",
            d.description()
        );
    }

    let stored = read(store, project, release.release_id())
        .await
        .expect("conformance: a created release reads back");
    let got: Vec<&str> = stored
        .deployments()
        .iter()
        .map(Deployment::description)
        .collect();
    let unique: BTreeSet<&str> = got.iter().copied().collect();
    let expected: BTreeSet<&str> = deployments.iter().map(Deployment::description).collect();
    assert_eq!(
        got.len(),
        COUNT,
        "conformance: {COUNT} concurrent add_deployment calls recorded {} deployments \
         (lost or duplicated updates)",
        got.len()
    );
    assert_eq!(
        unique, expected,
        "conformance: every concurrent deployment must be recorded exactly once"
    );
    assert_eq!(
        stored.last_date_deployed(),
        Some(at(COUNT as i64 * SECOND)),
        "conformance: after concurrent deployments last_date_deployed must be the newest"
    );
    let recent = must(
        store.recent_deployments(project, None, COUNT).await,
        format_args!("recent_deployments({project}, None, {COUNT})"),
    )
    .records;
    assert_eq!(
        recent.len(),
        COUNT,
        "conformance: recent_deployments must list every concurrent deployment"
    );
    assert_eq!(
        recent.first().map(|r| r.deployment.date_created()),
        Some(at(COUNT as i64 * SECOND)),
        "conformance: recent_deployments must list the newest concurrent deployment first"
    );
}

/// The audit trail of a deployment (`deployment_id`, `kind`,
/// `replaced_release`, `changed_services`, `bypass_reason`) survives
/// [`ReleaseStore::add_deployment`], [`ReleaseStore::release`] and
/// [`ReleaseStore::recent_deployments`] unchanged, in the current shape and
/// in the oldest (environment and requester maps), with an empty list of
/// changed services, and beside an entry written before these attributes
/// existed, which stays without them.
pub async fn release_store_audit_trail_survives(store: &dyn ReleaseStore, project: &ProjectId) {
    let previous = new_release(project, "release-0", at(0));
    let release = new_release(project, "release-1", at(SECOND));
    create(store, &previous).await;
    create(store, &release).await;
    let before_audit = deployment("stage", at(10 * SECOND), "written before the audit trail");
    let bypass = deployment("prod", at(20 * SECOND), "hotfix")
        .with_deployment_id("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
        .with_kind(DeploymentKind::Bypass)
        .with_replaced_release(previous.release_id().clone())
        .with_changed_services([service("archivist"), service("bag-verifier")])
        .with_bypass_reason("hotfix INC-123: \"quoted\", ünïcode");
    let rollback_in_oldest_shape = deployment_from_json(json!({
        "date_created": "2020-01-01T00:00:30",
        "description": "back to release-0",
        "environment": {"id": "stage", "name": "Staging"},
        "requested_by": {"id": "arn:aws:iam::123456789012:user/alice", "name": "alice"},
        "deployment_id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
        "kind": "rollback",
        "replaced_release": "release-1",
        "changed_services": []
    }));
    let steps = [&before_audit, &bypass, &rollback_in_oldest_shape];
    let mut expected = release.clone();
    for step in steps {
        expected.record_deployment(step.clone());
        let returned = deploy(store, project, release.release_id(), step).await;
        assert_eq!(
            returned,
            expected,
            "conformance: add_deployment ({}) must keep the audit trail as given",
            step.description()
        );
    }
    let stored = read(store, project, release.release_id()).await;
    assert_eq!(
        stored.as_ref(),
        Some(&expected),
        "conformance: release() must return the audit trail as recorded"
    );
    let stored = stored.expect("conformance: checked above");
    let [first, second, third] = stored.deployments() else {
        panic!("conformance: three deployments were recorded");
    };
    assert_eq!(
        (
            first.kind(),
            first.deployment_id(),
            first.changed_services()
        ),
        (None, None, None),
        "conformance: an entry written without the audit trail must read back without it"
    );
    assert_eq!(second.kind(), Some(&DeploymentKind::Bypass));
    assert_eq!(second.replaced_release(), Some(previous.release_id()));
    assert_eq!(
        second.changed_services(),
        Some(&[service("archivist"), service("bag-verifier")][..])
    );
    assert_eq!(
        second.bypass_reason(),
        Some("hotfix INC-123: \"quoted\", ünïcode")
    );
    assert_eq!(third.kind(), Some(&DeploymentKind::Rollback));
    assert_eq!(
        third.changed_services(),
        Some(&[][..]),
        "conformance: an empty list of changed services must stay an empty list, not vanish"
    );
    let recent = must(
        store.recent_deployments(project, None, 10).await,
        format_args!("recent_deployments({project}, None, 10)"),
    )
    .records;
    let listed: Vec<&Deployment> = recent.iter().map(|r| &r.deployment).collect();
    assert_eq!(
        listed,
        [&rollback_in_oldest_shape, &bypass, &before_audit],
        "conformance: recent_deployments must list the audit trail as recorded"
    );
}
