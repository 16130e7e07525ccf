//! Checks of freezes and blocks.

use crate::control::{Block, ControlChange, ControlEvent, ControlStore, Freeze};
use crate::error::Error;
use crate::names::{EnvironmentId, ProjectId, ReleaseId};

use super::*;
use crate::conformance::support::*;

/// A freeze reads back, is per environment, refuses a second freeze with
/// [`Error::EnvironmentFrozen`] carrying the first, is lifted by
/// [`ControlStore::unfreeze`] (returning it; a second unfreeze returns
/// `None`), and both changes are events.
pub async fn control_store_freeze_round_trip(store: &dyn ControlStore, project: &ProjectId) {
    let (prod, stage) = (environment("prod"), environment("stage"));
    let frozen_for = |env: &EnvironmentId| {
        let env = env.clone();
        async move {
            must(
                store.environment_freeze(project, &env).await,
                format_args!("environment_freeze({project}, {env})"),
            )
        }
    };
    assert_eq!(frozen_for(&prod).await, None, "conformance: not frozen yet");
    let incident = action("alice", "incident INC-42", at(10 * SECOND));
    let freeze = must(store.freeze(project, &prod, &incident).await, "freeze");
    assert_eq!(
        freeze,
        Freeze::new(project, &prod, &incident),
        "conformance: freeze returns who, why and since"
    );
    assert_eq!(
        frozen_for(&prod).await.as_ref(),
        Some(&freeze),
        "conformance"
    );
    assert_eq!(
        frozen_for(&stage).await,
        None,
        "conformance: a freeze is of one environment"
    );

    let second = action("bob", "also frozen", at(20 * SECOND));
    match store.freeze(project, &prod, &second).await {
        Err(Error::EnvironmentFrozen { freeze: existing }) => assert_eq!(
            *existing, freeze,
            "conformance: EnvironmentFrozen must carry the freeze in place"
        ),
        other => panic!("conformance: freezing a frozen environment must fail, got {other:?}"),
    }

    let lift = action("carol", "incident over", at(30 * SECOND));
    assert_eq!(
        must(store.unfreeze(project, &prod, &lift).await, "unfreeze").as_ref(),
        Some(&freeze),
        "conformance: unfreeze returns the freeze lifted"
    );
    assert_eq!(frozen_for(&prod).await, None, "conformance: lifted");
    let nothing = action("carol", "again", at(40 * SECOND));
    assert_eq!(
        must(store.unfreeze(project, &prod, &nothing).await, "unfreeze"),
        None,
        "conformance: unfreezing an environment that is not frozen returns None"
    );
    let expected = [
        ControlEvent::new(
            2,
            project,
            &lift,
            ControlChange::Unfreeze {
                environment: prod.clone(),
                lifted: freeze.clone(),
            },
        ),
        ControlEvent::new(
            1,
            project,
            &incident,
            ControlChange::Freeze {
                environment: prod.clone(),
            },
        ),
    ];
    assert_eq!(
        events(store, project, None, 10).await,
        expected,
        "conformance: a freeze and its lifting are events, newest first; a refused freeze \
         and an unfreeze of nothing are not"
    );
    let refrozen = must(store.freeze(project, &prod, &second).await, "freeze again");
    assert_eq!(
        refrozen,
        Freeze::new(project, &prod, &second),
        "conformance"
    );
}

/// Blocks read back, list newest first (ties: greater release id first),
/// refuse a second block with [`Error::ReleaseBlocked`] carrying the first,
/// are lifted by [`ControlStore::unblock_release`], and every change is an
/// event of the project, of no environment.
pub async fn control_store_block_round_trip(store: &dyn ControlStore, project: &ProjectId) {
    let (r0, r1, r2) = (release_id("r0"), release_id("r1"), release_id("r2"));
    let blocked = |release: &ReleaseId| {
        let release = release.clone();
        async move {
            must(
                store.release_block(project, &release).await,
                format_args!("release_block({project}, {release})"),
            )
        }
    };
    let all = || async { must(store.blocks(project).await, "blocks") };
    assert_eq!(blocked(&r1).await, None, "conformance: not blocked yet");
    assert_eq!(all().await, [], "conformance: no blocks yet");

    let a1 = action("alice", "breaks ingest", at(SECOND));
    let a2 = action("bob", "bad migration", at(2 * SECOND));
    let a0 = action("bob", "same build", at(2 * SECOND));
    let b1 = must(store.block_release(project, &r1, &a1).await, "block r1");
    let b2 = must(store.block_release(project, &r2, &a2).await, "block r2");
    let b0 = must(store.block_release(project, &r0, &a0).await, "block r0");
    assert_eq!(
        b1,
        Block::new(project, &r1, &a1),
        "conformance: the block returned"
    );
    assert_eq!(blocked(&r1).await.as_ref(), Some(&b1), "conformance");
    assert_eq!(
        all().await,
        [b2.clone(), b0.clone(), b1.clone()],
        "conformance: blocks list newest first, ties by greater release id first"
    );

    let again = action("carol", "twice", at(3 * SECOND));
    match store.block_release(project, &r1, &again).await {
        Err(Error::ReleaseBlocked { block }) => assert_eq!(
            *block, b1,
            "conformance: ReleaseBlocked must carry the block in place"
        ),
        other => panic!("conformance: blocking a blocked release must fail, got {other:?}"),
    }

    let lift = action("carol", "fixed forward", at(4 * SECOND));
    assert_eq!(
        must(store.unblock_release(project, &r1, &lift).await, "unblock").as_ref(),
        Some(&b1),
        "conformance: unblock returns the block lifted"
    );
    assert_eq!(blocked(&r1).await, None, "conformance: lifted");
    assert_eq!(
        all().await,
        [b2, b0],
        "conformance: a lifted block is not listed"
    );
    assert_eq!(
        must(store.unblock_release(project, &r1, &lift).await, "unblock"),
        None,
        "conformance: unblocking a release that is not blocked returns None"
    );

    let trail = events(store, project, None, 10).await;
    assert_eq!(
        trail,
        [
            ControlEvent::new(
                4,
                project,
                &lift,
                ControlChange::Unblock {
                    release: r1.clone(),
                    lifted: b1,
                },
            ),
            ControlEvent::new(3, project, &a0, ControlChange::Block { release: r0 }),
            ControlEvent::new(2, project, &a2, ControlChange::Block { release: r2 }),
            ControlEvent::new(1, project, &a1, ControlChange::Block { release: r1 }),
        ],
        "conformance: blocks and their lifting are events, newest first"
    );
    assert_eq!(
        events(store, project, Some("prod"), 10).await,
        [],
        "conformance: block events belong to no environment"
    );
}
