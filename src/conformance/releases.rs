//! Checks of creating, reading and listing releases in a [`ReleaseStore`].

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::names::ProjectId;
use crate::release::{ImageEntry, NewRelease, Release};
use crate::store::{Cursor, PageRequest, ReleaseStore};

use super::support::*;

/// A created release reads back equal through [`ReleaseStore::release`] and
/// is the project's latest; another id is `None`.
pub async fn release_store_create_and_get(store: &dyn ReleaseStore, project: &ProjectId) {
    let mut parts = NewRelease {
        release_id: release_id("0efc9bd6-0b43-4a8e-9b3a-8b8a27a5c0a1"),
        project_id: project.clone(),
        project_name: "Storage service".to_owned(),
        date_created: at(272_898),
        requested_by: requester(),
        description: "Release with every kind of image".to_owned(),
        images: BTreeMap::new(),
    };
    parts
        .images
        .insert(service("archivist"), ecr("archivist", "ref.3f2a9c1").into());
    parts
        .images
        .insert(service("bagger"), image("ref.77b0e4d").into());
    parts
        .images
        .insert(service("notifier"), ImageEntry::Missing);
    let release = Release::new(parts);

    create(store, &release).await;
    let got = read(store, project, release.release_id()).await;
    assert_eq!(
        got.as_ref(),
        Some(&release),
        "conformance: release() must return the release exactly as created"
    );
    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest.as_ref(),
        Some(&release),
        "conformance: the only release of a project must be its latest"
    );
    let other = read(store, project, &release_id("another-release")).await;
    assert_eq!(
        other, None,
        "conformance: release() of an id never created must be None"
    );
}

/// Creating a release whose id exists fails with
/// [`Error::ReleaseAlreadyExists`] and leaves the stored release (and its
/// deployments) unchanged.
pub async fn release_store_create_conflict(store: &dyn ReleaseStore, project: &ProjectId) {
    let original = new_release(project, "release-1", at(0));
    create(store, &original).await;
    let deployed = deploy(
        store,
        project,
        original.release_id(),
        &deployment("stage", at(10 * SECOND), "first deployment"),
    )
    .await;

    let impostor = new_release(project, "release-1", at(20 * SECOND));
    match store.create_release(&impostor).await {
        Err(Error::ReleaseAlreadyExists {
            project: p,
            release,
        }) => {
            assert_eq!(
                (&p, &release),
                (project, original.release_id()),
                "conformance: ReleaseAlreadyExists must name the project and release"
            );
        }
        Err(other) => panic!(
            "conformance: create_release of an existing id must fail with \
             ReleaseAlreadyExists, got: {other}"
        ),
        Ok(()) => panic!("conformance: create_release overwrote an existing release"),
    }

    let got = read(store, project, original.release_id()).await;
    assert_eq!(
        got.as_ref(),
        Some(&deployed),
        "conformance: a failed create_release must leave the existing release unchanged"
    );
    let pages = walk(store, project, 10).await;
    assert_eq!(
        pages.concat(),
        vec![deployed],
        "conformance: a failed create_release must not add a release to the listing"
    );
}

/// A missing release is `None`; [`ReleaseStore::add_deployment`] on it fails
/// with [`Error::ReleaseNotFound`] and creates nothing (the old tools created
/// a stub item).
pub async fn release_store_missing_release(store: &dyn ReleaseStore, project: &ProjectId) {
    let missing = release_id("9a1c2b3d-missing");
    assert_eq!(
        read(store, project, &missing).await,
        None,
        "conformance: release() of an id never created must be None"
    );

    let result = store
        .add_deployment(
            project,
            &missing,
            &deployment("stage", at(0), "deploy a missing release"),
        )
        .await;
    match result {
        Err(Error::ReleaseNotFound {
            project: p,
            release,
        }) => assert_eq!(
            (&p, &release),
            (project, &missing),
            "conformance: ReleaseNotFound must name the project and release"
        ),
        Err(other) => panic!(
            "conformance: add_deployment on a missing release must fail with ReleaseNotFound, \
             got: {other}"
        ),
        Ok(release) => panic!(
            "conformance: add_deployment on a missing release succeeded and returned {release:?}"
        ),
    }

    assert_eq!(
        read(store, project, &missing).await,
        None,
        "conformance: add_deployment on a missing release must not create it"
    );
    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest, None,
        "conformance: add_deployment on a missing release must not create a release"
    );
    let recent = must(
        store.recent_deployments(project, None, 10).await,
        "recent_deployments",
    )
    .records;
    assert!(
        recent.is_empty(),
        "conformance: a failed add_deployment must not record a deployment, found {recent:?}"
    );
}

/// A project without releases: no latest release, an empty first page that
/// ends the listing, no deployments.
pub async fn release_store_empty_project(store: &dyn ReleaseStore, project: &ProjectId) {
    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest, None,
        "conformance: a project without releases has no latest release"
    );
    let request = PageRequest::first(10).expect("conformance: page limit is valid");
    let page = must(
        store.list_releases(project, &request).await,
        "list_releases (empty project)",
    );
    assert!(
        page.items.is_empty(),
        "conformance: an empty project listed {} releases",
        page.items.len()
    );
    assert_eq!(
        page.next, None,
        "conformance: the empty listing of an empty project must have no next cursor"
    );
    let recent = must(
        store.recent_deployments(project, None, 10).await,
        "recent_deployments (empty project)",
    )
    .records;
    assert!(
        recent.is_empty(),
        "conformance: an empty project has no deployments, found {recent:?}"
    );
}

/// 25 releases with distinct `date_created` (whole and fractional seconds),
/// created in shuffled order and with ids that sort against their dates:
/// `latest_release` is the newest by date, and `list_releases` with pages of
/// 10 walked through cursors yields every release exactly once, newest
/// first.
pub async fn release_store_latest_and_listing(store: &dyn ReleaseStore, project: &ProjectId) {
    const COUNT: usize = 25;
    // Release `i` is created at i half-seconds; its id sorts the other way,
    // so ordering by id instead of date fails.
    let releases: Vec<Release> = (0..COUNT)
        .map(|i| {
            let id = format!("release-{:02}", COUNT - 1 - i);
            new_release(project, &id, at(i as i64 * SECOND / 2))
        })
        .collect();
    // 11 is coprime with 25: a deterministic permutation of 0..25.
    for i in 0..COUNT {
        create(store, &releases[(i * 11) % COUNT]).await;
    }
    let newest_first: Vec<Release> = releases.iter().rev().cloned().collect();

    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest.as_ref().map(Release::release_id),
        Some(newest_first[0].release_id()),
        "conformance: latest_release must be the release with the greatest date_created"
    );
    assert_eq!(
        latest.as_ref(),
        Some(&newest_first[0]),
        "conformance: latest_release must return the release as created"
    );

    let pages = walk(store, project, 10).await;
    let listed = pages.concat();
    let unique: BTreeSet<&str> = ids(&listed).into_iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "conformance: list_releases returned a release twice across pages: {:?}",
        ids(&listed)
    );
    assert_eq!(
        ids(&listed),
        ids(&newest_first),
        "conformance: list_releases must return every release once, newest first"
    );
    assert_eq!(
        listed, newest_first,
        "conformance: list_releases must return releases as created"
    );

    // The whole listing in one page: no cursor to follow.
    let request = PageRequest::first(COUNT + 5).expect("conformance: page limit is valid");
    let page = must(
        store.list_releases(project, &request).await,
        "list_releases",
    );
    assert_eq!(
        ids(&page.items),
        ids(&newest_first),
        "conformance: one page larger than the listing must hold every release, newest first"
    );
}

/// Releases created at the same time are ordered by release id, greatest
/// first, in `latest_release` and `list_releases` (also when a page boundary
/// falls between them); an older release with a greater id still comes
/// after them.
pub async fn release_store_ties(store: &dyn ReleaseStore, project: &ProjectId) {
    let same = at(SECOND);
    let tie_b = new_release(project, "tie-b", same);
    let tie_a = new_release(project, "tie-a", same);
    let older = new_release(project, "tie-z", at(0));
    // The newest is created first, so "the last one written" is wrong.
    for release in [&tie_b, &tie_a, &older] {
        create(store, release).await;
    }

    let latest = must(store.latest_release(project).await, "latest_release").release;
    assert_eq!(
        latest.as_ref().map(|r| r.release_id().as_str()),
        Some("tie-b"),
        "conformance: of two releases with the same date_created, latest_release must be the \
         greater release id"
    );
    let expected = ["tie-b", "tie-a", "tie-z"];
    let pages = walk(store, project, 10).await;
    assert_eq!(
        ids(&pages.concat()),
        expected,
        "conformance: list_releases must order equal date_created by release id, greatest first"
    );
    let pages = walk(store, project, 1).await;
    assert_eq!(
        ids(&pages.concat()),
        expected,
        "conformance: list_releases with pages of 1 must keep the tie order across pages"
    );
}

/// A cursor the store did not make is [`Error::InvalidCursor`].
pub async fn release_store_invalid_cursor(store: &dyn ReleaseStore, project: &ProjectId) {
    for (i, id) in ["release-a", "release-b"].into_iter().enumerate() {
        create(store, &new_release(project, id, at(i as i64 * SECOND))).await;
    }
    for garbage in ["not-a-cursor", ""] {
        let request = PageRequest::first(1)
            .expect("conformance: page limit is valid")
            .after(Cursor::new(garbage));
        match store.list_releases(project, &request).await {
            Err(Error::InvalidCursor { .. }) => {}
            Err(other) => panic!(
                "conformance: list_releases with cursor {garbage:?} must fail with \
                 InvalidCursor, got: {other}"
            ),
            Ok(page) => panic!(
                "conformance: list_releases accepted the cursor {garbage:?} and returned {:?}",
                ids(&page.items)
            ),
        }
    }
}
