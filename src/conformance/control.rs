//! Checks of a [`ControlStore`]: leases, freezes, blocks and their events.

use std::time::Duration;

use futures::future::join_all;

use crate::control::{
    Acquired, Block, ControlAction, ControlChange, ControlEvent, ControlStore, Freeze, Lease,
    LeaseId, LeaseOperation, LeaseRequest, Reason,
};
use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ProjectId, ReleaseId};
use crate::release::{Requester, Timestamp};
use crate::store::MAX_PAGE_SIZE;

use super::support::*;

fn person(name: &str) -> Requester {
    Requester::new(format!(
        "arn:aws:sts::123456789012:assumed-role/deployer/{name}"
    ))
}

/// A deploy lease request by `who` with the fixed id `id`.
fn request(who: &str, release: &str, ttl_seconds: u64, id: &str) -> LeaseRequest {
    LeaseRequest::new(
        person(who),
        LeaseOperation::Deploy,
        release_id(release),
        format!("{who}-host"),
        Duration::from_secs(ttl_seconds),
    )
    .expect("conformance: fixed lease request is valid")
    .with_lease_id(LeaseId::new(id).expect("conformance: fixed lease id is valid"))
}

fn action(who: &str, reason: &str, at: Timestamp) -> ControlAction {
    ControlAction::new(
        person(who),
        Reason::new(reason).expect("conformance: fixed reason is valid"),
        at,
    )
    .expect("conformance: fixed action is valid")
}

async fn acquire(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: &EnvironmentId,
    request: &LeaseRequest,
    now: Timestamp,
) -> Acquired {
    must(
        store
            .acquire_lease(project, environment, request, now)
            .await,
        format_args!(
            "acquire_lease({project}, {environment}, {}) at {now}",
            request.lease_id()
        ),
    )
}

async fn held(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: &EnvironmentId,
) -> Option<Lease> {
    must(
        store.lease(project, environment).await,
        format_args!("lease({project}, {environment})"),
    )
}

async fn events(
    store: &dyn ControlStore,
    project: &ProjectId,
    environment: Option<&str>,
    limit: usize,
) -> Vec<ControlEvent> {
    let env = environment.map(self::environment);
    must(
        store.control_events(project, env.as_ref(), limit).await,
        format_args!("control_events({project}, {environment:?}, {limit})"),
    )
}

/// The lease a busy-environment error carries; panics on any other result.
#[track_caller]
fn busy_holder<T: std::fmt::Debug>(result: Result<T>, what: &str) -> Lease {
    match result {
        Err(Error::EnvironmentBusy { lease }) => *lease,
        other => panic!("conformance: {what} must fail with EnvironmentBusy, got {other:?}"),
    }
}

/// The holder a lost-lease error names; panics on any other result.
#[track_caller]
fn lost_to<T: std::fmt::Debug>(result: Result<T>, what: &str) -> Option<Lease> {
    match result {
        Err(Error::LeaseLost { holder, .. }) => holder.map(|h| *h),
        other => panic!("conformance: {what} must fail with LeaseLost, got {other:?}"),
    }
}

/// An acquired lease reads back as requested; another holder is refused
/// with [`Error::EnvironmentBusy`] carrying the stored lease, in a message
/// that names the environment, the holder, the release, since and expiry;
/// acquiring again with the holder's own lease id succeeds; a released
/// environment can be taken by the next.
pub async fn control_store_lease_acquire_and_release(
    store: &dyn ControlStore,
    project: &ProjectId,
) {
    let prod = environment("prod");
    assert_eq!(
        held(store, project, &prod).await,
        None,
        "conformance: a new environment has no lease"
    );
    let alice = request("alice", "release-1", 600, "lease-alice");
    let acquired = acquire(store, project, &prod, &alice, at(0)).await;
    assert_eq!(
        acquired,
        Acquired {
            lease: alice.lease_at(project, &prod, at(0)),
            took_over: None,
        },
        "conformance: acquire_lease must return the requested lease, acquired at `now` and \
         expiring `ttl` later"
    );
    assert_eq!(
        held(store, project, &prod).await.as_ref(),
        Some(&acquired.lease),
        "conformance: lease() must return the acquired lease"
    );

    let bob = request("bob", "release-2", 600, "lease-bob");
    let result = store.acquire_lease(project, &prod, &bob, at(SECOND)).await;
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(
        busy_holder(result, "acquiring a held environment"),
        acquired.lease,
        "conformance: EnvironmentBusy must carry the holder's lease as stored"
    );
    for part in [
        "environment `prod`",
        "being deployed by alice",
        "release `release-1`",
        "since 2020-01-01T00:00:00 UTC",
        "expires 2020-01-01T00:10:00 UTC",
        "alice-host",
    ] {
        assert!(
            message.contains(part),
            "conformance: the busy message must contain {part:?}: {message}"
        );
    }

    let again = acquire(store, project, &prod, &alice, at(2 * SECOND)).await;
    assert_eq!(
        again,
        Acquired {
            lease: alice.lease_at(project, &prod, at(2 * SECOND)),
            took_over: None,
        },
        "conformance: acquiring again with the held lease's own id must succeed (a retry)"
    );
    must(
        store.release_lease(&again.lease).await,
        "release_lease by the holder",
    );
    assert_eq!(
        held(store, project, &prod).await,
        None,
        "conformance: a released lease must be gone"
    );
    let next = acquire(store, project, &prod, &bob, at(3 * SECOND)).await;
    assert_eq!(
        next.lease,
        bob.lease_at(project, &prod, at(3 * SECOND)),
        "conformance: a released environment must be free for the next holder"
    );
}

/// 32 concurrent contenders for one free environment: exactly one wins and
/// every other gets [`Error::EnvironmentBusy`] carrying the winner's lease.
/// Once that lease has expired, 32 concurrent takeovers: again exactly one
/// wins, naming the expired lease it took over.
pub async fn control_store_lease_contenders(store: &dyn ControlStore, project: &ProjectId) {
    const CONTENDERS: usize = 32;
    let prod = environment("prod");
    for (round, now) in [(0, at(0)), (1, at(601 * SECOND))] {
        let before = held(store, project, &prod).await;
        let requests: Vec<LeaseRequest> = (0..CONTENDERS)
            .map(|i| {
                request(
                    &format!("contender-{i:02}"),
                    "release-1",
                    600,
                    &format!("round-{round}-lease-{i:02}"),
                )
            })
            .collect();
        let results = join_all(
            requests
                .iter()
                .map(|r| store.acquire_lease(project, &prod, r, now)),
        )
        .await;
        let mut winners = Vec::new();
        let mut refused = Vec::new();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(acquired) => winners.push((i, acquired)),
                Err(Error::EnvironmentBusy { lease }) => refused.push(*lease),
                Err(other) => panic!(
                    "conformance: a contender for a lease must win or get EnvironmentBusy, \
                     contender {i} got: {other}"
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "conformance: of {CONTENDERS} concurrent acquire_lease calls (round {round}) \
             exactly one must win, {} did",
            winners.len()
        );
        let (winner, acquired) = winners.remove(0);
        assert_eq!(
            acquired.lease,
            requests[winner].lease_at(project, &prod, now),
            "conformance: the winner's lease is its request"
        );
        assert_eq!(
            acquired.took_over, before,
            "conformance: the winner took over exactly the lease there before (round {round})"
        );
        assert_eq!(
            held(store, project, &prod).await.as_ref(),
            Some(&acquired.lease),
            "conformance: the stored lease is the winner's"
        );
        for lease in refused {
            assert_eq!(
                lease, acquired.lease,
                "conformance: every refused contender must be told the winner's lease"
            );
        }
    }
}

/// With an injected clock: a lease is busy until its expiry and can be
/// taken over from its expiry on; the earlier holder's renewal and release
/// then fail with [`Error::LeaseLost`] naming the new holder; a renewal
/// moves the expiry.
pub async fn control_store_lease_expiry_and_takeover(
    store: &dyn ControlStore,
    project: &ProjectId,
) {
    let prod = environment("prod");
    let alice = request("alice", "release-1", 60, "lease-alice");
    let bob = request("bob", "release-2", 60, "lease-bob");
    let carol = request("carol", "release-3", 60, "lease-carol");
    let first = acquire(store, project, &prod, &alice, at(0)).await.lease;

    let result = store
        .acquire_lease(project, &prod, &bob, at(60 * SECOND - 1))
        .await;
    assert_eq!(
        busy_holder(
            result,
            "acquiring one microsecond before the holder's expiry"
        ),
        first,
        "conformance: a lease is busy until its expiry"
    );
    let taken = acquire(store, project, &prod, &bob, at(60 * SECOND)).await;
    assert_eq!(
        taken,
        Acquired {
            lease: bob.lease_at(project, &prod, at(60 * SECOND)),
            took_over: Some(first.clone()),
        },
        "conformance: a lease can be taken over from its expiry on, naming the lease taken over"
    );

    let renewal = store.renew_lease(&first, at(61 * SECOND), Duration::from_secs(60));
    assert_eq!(
        lost_to(renewal.await, "renewing a lease taken over").as_ref(),
        Some(&taken.lease),
        "conformance: LeaseLost must name the new holder"
    );
    assert_eq!(
        lost_to(
            store.release_lease(&first).await,
            "releasing a lease taken over"
        )
        .as_ref(),
        Some(&taken.lease),
        "conformance: LeaseLost must name the new holder"
    );
    assert_eq!(
        held(store, project, &prod).await.as_ref(),
        Some(&taken.lease),
        "conformance: a refused renewal or release changes nothing"
    );

    let renewed = must(
        store
            .renew_lease(&taken.lease, at(100 * SECOND), Duration::from_secs(60))
            .await,
        "renew_lease by the holder",
    );
    assert_eq!(
        (renewed.acquired, renewed.expires),
        (at(60 * SECOND), at(160 * SECOND)),
        "conformance: a renewal moves the expiry to now + ttl and keeps the acquired time"
    );
    let result = store
        .acquire_lease(project, &prod, &carol, at(150 * SECOND))
        .await;
    assert_eq!(
        busy_holder(result, "acquiring a renewed lease before its new expiry"),
        renewed,
        "conformance: a renewed lease is busy until its new expiry"
    );
    let taken = acquire(store, project, &prod, &carol, at(160 * SECOND)).await;
    assert_eq!(
        taken.took_over,
        Some(renewed),
        "conformance: a renewed lease can be taken over from its new expiry on"
    );
}

/// Only the holder renews or releases: a lease with another id is refused
/// with [`Error::LeaseLost`] naming the holder and changes nothing; the
/// holder may renew after its expiry as long as nobody took the lease over;
/// after a release, renewing or releasing again is [`Error::LeaseLost`]
/// with no holder; a renewal outside the allowed lease lengths is
/// [`Error::InvalidArgument`].
pub async fn control_store_lease_holder_only(store: &dyn ControlStore, project: &ProjectId) {
    let prod = environment("prod");
    let alice = acquire(
        store,
        project,
        &prod,
        &request("alice", "release-1", 600, "lease-alice"),
        at(0),
    )
    .await
    .lease;
    let impostor = Lease {
        lease_id: LeaseId::new("lease-impostor").expect("conformance: valid lease id"),
        ..alice.clone()
    };
    let renewal = store.renew_lease(&impostor, at(SECOND), Duration::from_secs(600));
    assert_eq!(
        lost_to(renewal.await, "renewing by a non-holder"),
        Some(alice.clone()),
        "conformance: a non-holder's renewal must be refused, naming the holder"
    );
    assert_eq!(
        lost_to(
            store.release_lease(&impostor).await,
            "releasing by a non-holder"
        ),
        Some(alice.clone()),
        "conformance: a non-holder's release must be refused, naming the holder"
    );
    assert_eq!(
        held(store, project, &prod).await.as_ref(),
        Some(&alice),
        "conformance: a refused renewal or release changes nothing"
    );

    let renewed = must(
        store
            .renew_lease(&alice, at(30 * SECOND), Duration::from_secs(600))
            .await,
        "renew_lease by the holder",
    );
    assert_eq!(
        renewed,
        Lease {
            expires: at(630 * SECOND),
            ..alice.clone()
        },
        "conformance: a renewal returns the stored lease with the new expiry"
    );
    let late = must(
        store
            .renew_lease(&alice, at(700 * SECOND), Duration::from_secs(600))
            .await,
        "renew_lease by the holder after its expiry",
    );
    assert_eq!(
        late.expires,
        at(1300 * SECOND),
        "conformance: an expired lease nobody took over can still be renewed by its holder"
    );
    match store
        .renew_lease(&alice, at(701 * SECOND), Duration::ZERO)
        .await
    {
        Err(Error::InvalidArgument {
            argument: "ttl", ..
        }) => {}
        other => {
            panic!("conformance: a renewal of 0 s must be InvalidArgument(ttl), got {other:?}")
        }
    }

    must(
        store.release_lease(&alice).await,
        "release_lease by the holder",
    );
    assert_eq!(
        lost_to(store.release_lease(&alice).await, "releasing twice"),
        None,
        "conformance: releasing a released lease is LeaseLost with no holder"
    );
    let renewal = store.renew_lease(&alice, at(702 * SECOND), Duration::from_secs(60));
    assert_eq!(
        lost_to(renewal.await, "renewing a released lease"),
        None,
        "conformance: renewing a released lease is LeaseLost with no holder"
    );
    assert_eq!(
        held(store, project, &prod).await,
        None,
        "conformance: a refused renewal must not create a lease"
    );
}

/// [`ControlStore::force_unlock`] removes whatever lease is there and
/// records who, why and which lease; with no lease it changes and records
/// nothing; the unlocked holder's release is then [`Error::LeaseLost`].
pub async fn control_store_force_unlock(store: &dyn ControlStore, project: &ProjectId) {
    let prod = environment("prod");
    let ops = action("operator", "the deploy host died", at(100 * SECOND));
    assert_eq!(
        must(
            store.force_unlock(project, &prod, &ops).await,
            "force_unlock of a free environment"
        ),
        None,
        "conformance: force_unlock of a free environment removes nothing"
    );
    assert_eq!(
        events(store, project, None, 10).await,
        [],
        "conformance: a force_unlock that removed nothing records nothing"
    );

    let alice = request("alice", "release-1", 600, "lease-alice");
    let lease = acquire(store, project, &prod, &alice, at(0)).await.lease;
    assert_eq!(
        must(
            store.force_unlock(project, &prod, &ops).await,
            "force_unlock"
        )
        .as_ref(),
        Some(&lease),
        "conformance: force_unlock returns the lease it removed"
    );
    assert_eq!(
        held(store, project, &prod).await,
        None,
        "conformance: unlocked"
    );
    let expected = ControlEvent::new(
        1,
        project,
        &ops,
        ControlChange::ForceUnlock {
            environment: prod.clone(),
            lease: lease.clone(),
        },
    );
    assert_eq!(
        events(store, project, None, 10).await,
        std::slice::from_ref(&expected),
        "conformance: force_unlock records who, why, when and the lease removed"
    );
    assert_eq!(
        events(store, project, Some("prod"), 10).await,
        [expected],
        "conformance: the forced unlock is an event of its environment"
    );
    assert_eq!(
        lost_to(
            store.release_lease(&lease).await,
            "releasing a force-unlocked lease"
        ),
        None,
        "conformance: the unlocked holder's release is LeaseLost"
    );

    let bob = request("bob", "release-2", 600, "lease-bob");
    let next = acquire(store, project, &prod, &bob, at(200 * SECOND)).await;
    assert_eq!(
        next.took_over, None,
        "conformance: nothing left to take over"
    );
    let again = action("operator", "again", at(300 * SECOND));
    must(
        store.force_unlock(project, &prod, &again).await,
        "force_unlock",
    );
    let sequences: Vec<u64> = events(store, project, None, 10)
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        sequences,
        [2, 1],
        "conformance: each forced unlock is one event"
    );
}

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
