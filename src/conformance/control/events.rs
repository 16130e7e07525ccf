//! Checks of the control audit trail, concurrent changes and isolation.

use futures::future::join_all;

use crate::control::{ControlAction, ControlEvent, ControlStore};
use crate::error::Error;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::store::MAX_PAGE_SIZE;

use super::*;
use crate::conformance::support::*;

/// The trail across kinds and environments: numbered 1, 2, … per project,
/// newest first, filtered by environment, limited; a limit of 0 or above
/// [`MAX_PAGE_SIZE`] is [`Error::InvalidArgument`].
pub async fn control_store_events_newest_first(store: &dyn ControlStore, project: &ProjectId) {
    let (prod, stage) = (environment("prod"), environment("stage"));
    let step = |n: i64| action("ops", &format!("step {n}"), at(n * SECOND));
    must(store.freeze(project, &prod, &step(1)).await, "freeze prod");
    must(
        store.freeze(project, &stage, &step(2)).await,
        "freeze stage",
    );
    must(
        store
            .block_release(project, &release_id("r1"), &step(3))
            .await,
        "block",
    );
    must(
        store.unfreeze(project, &prod, &step(4)).await,
        "unfreeze prod",
    );
    acquire(
        store,
        project,
        &stage,
        &request("alice", "release-1", 600, "lease-alice"),
        at(0),
    )
    .await;
    must(
        store.force_unlock(project, &stage, &step(5)).await,
        "force_unlock",
    );
    must(
        store
            .unblock_release(project, &release_id("r1"), &step(6))
            .await,
        "unblock",
    );

    let summary = |events: Vec<ControlEvent>| -> Vec<(u64, &'static str, String)> {
        events
            .into_iter()
            .map(|e| (e.sequence, e.change.kind(), e.reason.as_str().to_owned()))
            .collect()
    };
    let expect = |items: &[(u64, &'static str)]| -> Vec<(u64, &'static str, String)> {
        items
            .iter()
            .map(|&(n, kind)| (n, kind, format!("step {n}")))
            .collect()
    };
    assert_eq!(
        summary(events(store, project, None, 100).await),
        expect(&[
            (6, "unblock"),
            (5, "force_unlock"),
            (4, "unfreeze"),
            (3, "block"),
            (2, "freeze"),
            (1, "freeze"),
        ]),
        "conformance: control_events must list every event newest first"
    );
    assert_eq!(
        summary(events(store, project, Some("prod"), 100).await),
        expect(&[(4, "unfreeze"), (1, "freeze")]),
        "conformance: control_events filtered to `prod`"
    );
    assert_eq!(
        summary(events(store, project, Some("stage"), 100).await),
        expect(&[(5, "force_unlock"), (2, "freeze")]),
        "conformance: control_events filtered to `stage`"
    );
    assert_eq!(
        summary(events(store, project, None, 2).await),
        expect(&[(6, "unblock"), (5, "force_unlock")]),
        "conformance: control_events limited to 2"
    );
    assert_eq!(
        summary(events(store, project, Some("stage"), 1).await),
        expect(&[(5, "force_unlock")]),
        "conformance: control_events filtered to `stage` and limited to 1"
    );
    assert_eq!(
        events(store, project, Some("test"), 10).await,
        [],
        "conformance: an environment without events has none"
    );
    for limit in [0, MAX_PAGE_SIZE + 1] {
        match store.control_events(project, None, limit).await {
            Err(Error::InvalidArgument {
                argument: "limit", ..
            }) => {}
            other => panic!(
                "conformance: control_events with limit {limit} must fail with \
                 InvalidArgument(limit), got: {other:?}"
            ),
        }
    }
}

/// 8 concurrent freezes of 8 environments and 4 concurrent blocks of one
/// project all take effect, and their 12 events are numbered 1 to 12,
/// each once: nothing lost, nothing numbered twice.
pub async fn control_store_concurrent_changes_are_each_recorded_once(
    store: &dyn ControlStore,
    project: &ProjectId,
) {
    let environments: Vec<EnvironmentId> =
        (0..8).map(|i| environment(&format!("env-{i}"))).collect();
    let releases: Vec<ReleaseId> = (0..4).map(|i| release_id(&format!("r{i}"))).collect();
    let actions: Vec<ControlAction> = (0..12)
        .map(|i| {
            action(
                &format!("person-{i}"),
                &format!("change {i}"),
                at(i * SECOND),
            )
        })
        .collect();
    let freezes = join_all(
        environments
            .iter()
            .zip(&actions)
            .map(|(env, action)| store.freeze(project, env, action)),
    );
    let blocks = join_all(
        releases
            .iter()
            .zip(&actions[8..])
            .map(|(release, action)| store.block_release(project, release, action)),
    );
    let (freezes, blocks) = futures::join!(freezes, blocks);
    for (i, result) in freezes.into_iter().enumerate() {
        must(result, format_args!("concurrent freeze of env-{i}"));
    }
    for (i, result) in blocks.into_iter().enumerate() {
        must(result, format_args!("concurrent block of r{i}"));
    }
    let trail = events(store, project, None, 100).await;
    let sequences: Vec<u64> = trail.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (1..=12).rev().collect::<Vec<u64>>(),
        "conformance: 12 concurrent changes must be 12 events numbered 1 to 12"
    );
    let mut reasons: Vec<&str> = trail.iter().map(|e| e.reason.as_str()).collect();
    reasons.sort_unstable();
    let mut expected: Vec<String> = (0..12).map(|i| format!("change {i}")).collect();
    expected.sort_unstable();
    assert_eq!(reasons, expected, "conformance: each change recorded once");
    for (i, env) in environments.iter().enumerate() {
        let theirs = events(store, project, Some(env.as_str()), 10).await;
        assert_eq!(
            theirs.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            [format!("change {i}")],
            "conformance: each environment's trail holds its own freeze"
        );
    }
    assert_eq!(
        must(store.blocks(project).await, "blocks").len(),
        4,
        "conformance: every concurrent block is in place"
    );
}

/// Projects, and environments within a project, are independent: a lease,
/// a freeze, a block and events of one are not seen in, and not changed
/// by, another. Also writes under the project `{project}-other`; a store
/// with a table per project must have that project's table (or share one).
pub async fn control_store_projects_and_environments_are_isolated(
    store: &dyn ControlStore,
    project: &ProjectId,
) {
    let other = ProjectId::new(format!("{project}-other"))
        .unwrap_or_else(|e| panic!("conformance: needs a second project `{project}-other`: {e}"));
    let (prod, stage) = (environment("prod"), environment("stage"));
    let alice = acquire(
        store,
        project,
        &prod,
        &request("alice", "release-1", 600, "lease-alice"),
        at(0),
    )
    .await
    .lease;
    assert_eq!(
        held(store, project, &stage).await,
        None,
        "conformance: per environment"
    );
    assert_eq!(
        held(store, &other, &prod).await,
        None,
        "conformance: per project"
    );
    let bob = request("bob", "release-2", 600, "lease-bob");
    let on_stage = acquire(store, project, &stage, &bob, at(SECOND)).await;
    assert_eq!(on_stage.took_over, None, "conformance: stage was free");
    let carol = request("carol", "release-3", 600, "lease-carol");
    let elsewhere = acquire(store, &other, &prod, &carol, at(SECOND)).await;
    assert_eq!(
        elsewhere.took_over, None,
        "conformance: the other project's prod was free"
    );

    let freeze = action("ops", "freeze prod", at(2 * SECOND));
    must(store.freeze(project, &prod, &freeze).await, "freeze");
    for (p, env) in [(project, &stage), (&other, &prod)] {
        assert_eq!(
            must(store.environment_freeze(p, env).await, "environment_freeze"),
            None,
            "conformance: a freeze of {project}/prod must not freeze {p}/{env}"
        );
    }
    let r1 = release_id("r1");
    must(
        store
            .block_release(project, &r1, &action("ops", "bad", at(3 * SECOND)))
            .await,
        "block",
    );
    assert_eq!(
        must(store.release_block(&other, &r1).await, "release_block"),
        None,
        "conformance: a block is of one project"
    );
    assert_eq!(
        must(store.blocks(&other).await, "blocks"),
        [],
        "conformance"
    );
    assert_eq!(
        events(store, &other, None, 10).await,
        [],
        "conformance: events are per project"
    );

    let unlock = action("ops", "unlock the other", at(4 * SECOND));
    assert_eq!(
        must(
            store.force_unlock(&other, &prod, &unlock).await,
            "force_unlock"
        )
        .as_ref(),
        Some(&elsewhere.lease),
        "conformance"
    );
    assert_eq!(
        held(store, project, &prod).await.as_ref(),
        Some(&alice),
        "conformance: unlocking another project's environment leaves this one's lease"
    );
    assert_eq!(
        held(store, project, &stage).await.as_ref(),
        Some(&on_stage.lease),
        "conformance"
    );
    let kinds: Vec<&str> = events(store, project, None, 10)
        .await
        .iter()
        .map(|e| e.change.kind())
        .collect();
    assert_eq!(
        kinds,
        ["block", "freeze"],
        "conformance: this project's own events"
    );
    let theirs: Vec<u64> = events(store, &other, None, 10)
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        theirs,
        [1],
        "conformance: each project numbers its own events"
    );
}
