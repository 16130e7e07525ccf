//! Checks of environment leases: acquire, contend, expire, renew, release, force-unlock.

use std::time::Duration;

use futures::future::join_all;

use crate::control::{
    Acquired, ControlChange, ControlEvent, ControlStore, Lease, LeaseId, LeaseRequest,
};
use crate::error::Error;
use crate::names::ProjectId;

use super::*;
use crate::conformance::support::*;

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
