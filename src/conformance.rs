//! Conformance checks for [`ImageStore`] and [`ReleaseStore`]
//! implementations (feature `conformance`).
//!
//! Every backend of this crate runs all of these in its tests; if you write
//! your own store, run them too. Each check is a test helper: it exercises
//! part of the contract in [`crate::store`] and **panics** with a message that
//! names the broken rule when the store violates it (or when a store call
//! fails).
//!
//! Each check takes the store and a project id that the caller guarantees is
//! unused in that store (no images, no releases), and writes only under that
//! project. Give every check its own project: checks do not clean up. Results
//! are deterministic: fixed ids, fixed timestamps, no randomness.
//!
//! The checks that read [`latest_release`](ReleaseStore::latest_release),
//! [`list_releases`](ReleaseStore::list_releases) or
//! [`recent_deployments`](ReleaseStore::recent_deployments) right after
//! writing assume those reads are up to date; run them against a backend (or
//! emulator) whose indexes are consistent.
//!
//! # Image store checks
//!
//! - [`image_store_put_get_overwrite`]: a written image reads back; writing
//!   again overwrites it.
//! - [`image_store_missing_image`]: a missing image is `None`, not an error.
//! - [`image_store_empty_label`]: an empty label is an empty map.
//! - [`image_store_labels_are_isolated`]: writing one label (`stage`) changes
//!   no other (`latest`, nor `stage-2`, whose name it prefixes).
//! - [`image_store_label_read_completely`]: a label of 37 images is read
//!   whole, however many pages the backend needs.
//!
//! # Release store checks
//!
//! - [`release_store_create_and_get`]: a created release reads back equal.
//! - [`release_store_create_conflict`]: creating an existing id fails with
//!   [`Error::ReleaseAlreadyExists`] and changes nothing.
//! - [`release_store_missing_release`]: a missing release is `None`;
//!   deploying it fails with [`Error::ReleaseNotFound`] and creates nothing.
//! - [`release_store_empty_project`]: a project without releases has no
//!   latest, an empty listing and no deployments.
//! - [`release_store_latest_and_listing`]: 25 releases created out of order
//!   list newest first, each exactly once, in pages no larger than asked.
//! - [`release_store_ties`]: on equal `date_created` the greater release id is
//!   newer, in `latest_release` and in listings, across page boundaries too.
//! - [`release_store_invalid_cursor`]: a cursor the store did not make is
//!   [`Error::InvalidCursor`].
//! - [`release_store_add_deployment`]: a deployment is appended in order and
//!   returned; `last_date_deployed` moves forward, never backward.
//! - [`release_store_recent_deployments`]: deployments across releases,
//!   newest first with the documented tie-breaks, filtered and limited.
//! - [`release_store_deployment_fields_survive`]: unknown deployment fields
//!   (`details`) and the legacy environment/requester shapes are kept.
//! - [`release_store_concurrent_deployments`]: 64 concurrent deployments of
//!   one release are all recorded.
//! - [`release_store_legacy_records`]: releases in every shape the old tools
//!   wrote are stored and read back as they were, and can be deployed.
//!
//! # Running them all
//!
//! [`for_each_conformance_check!`](crate::for_each_conformance_check) expands
//! a macro of yours once per check, so a test file runs every check, including
//! ones added in later versions of this crate:
//!
//! ```
//! use release_tracking::{conformance, InMemoryImageStore, InMemoryReleaseStore};
//!
//! macro_rules! image_check {
//!     ($check:ident) => {
//!         #[tokio::test]
//!         async fn $check() {
//!             let store = InMemoryImageStore::new(); // your store here
//!             conformance::$check(&store, &"fresh-project".parse().unwrap()).await;
//!         }
//!     };
//! }
//! macro_rules! release_check {
//!     ($check:ident) => {
//!         #[tokio::test]
//!         async fn $check() {
//!             let store = InMemoryReleaseStore::new(); // your store here
//!             conformance::$check(&store, &"fresh-project".parse().unwrap()).await;
//!         }
//!     };
//! }
//! release_tracking::for_each_conformance_check!(image_check, release_check);
//! # fn main() {}
//! ```

/// Expands `$image!(check_name);` for every image-store check of
/// [`conformance`](crate::conformance) and `$release!(check_name);` for every
/// release-store check (see the module docs for an example).
#[macro_export]
macro_rules! for_each_conformance_check {
    ($image:ident, $release:ident) => {
        $image!(image_store_put_get_overwrite);
        $image!(image_store_missing_image);
        $image!(image_store_empty_label);
        $image!(image_store_labels_are_isolated);
        $image!(image_store_label_read_completely);
        $release!(release_store_create_and_get);
        $release!(release_store_create_conflict);
        $release!(release_store_missing_release);
        $release!(release_store_empty_project);
        $release!(release_store_latest_and_listing);
        $release!(release_store_ties);
        $release!(release_store_invalid_cursor);
        $release!(release_store_add_deployment);
        $release!(release_store_recent_deployments);
        $release!(release_store_deployment_fields_survive);
        $release!(release_store_concurrent_deployments);
        $release!(release_store_legacy_records);
    };
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::names::{EnvironmentId, ImageUri, Label, ProjectId, ReleaseId, ServiceId};
use crate::release::{Deployment, DeploymentRecord, ImageEntry, NewRelease, Release};
use crate::release::{Requester, Timestamp};
use crate::store::{
    Cursor, ImageStore, LabelImages, Page, PageRequest, ReleaseStore, MAX_PAGE_SIZE,
};

// ---------------------------------------------------------------------------
// Helpers

/// Unwraps a store call, or panics naming the call and the error.
#[track_caller]
fn must<T>(result: Result<T>, what: impl Display) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("conformance: {what} failed: {e}"),
    }
}

/// 2020-01-01T00:00:00 plus `micros` microseconds.
fn at(micros: i64) -> Timestamp {
    "2020-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("conformance: the base timestamp parses")
        .add_micros(micros)
}

const SECOND: i64 = 1_000_000;

fn service(name: &str) -> ServiceId {
    ServiceId::new(name).expect("conformance: fixed service id is valid")
}

fn label(name: &str) -> Label {
    Label::new(name).expect("conformance: fixed label is valid")
}

fn image(value: &str) -> ImageUri {
    ImageUri::new(value).expect("conformance: fixed image URI is valid")
}

fn environment(name: &str) -> EnvironmentId {
    EnvironmentId::new(name).expect("conformance: fixed environment id is valid")
}

fn release_id(name: &str) -> ReleaseId {
    ReleaseId::new(name).expect("conformance: fixed release id is valid")
}

fn requester() -> Requester {
    Requester::new("arn:aws:sts::123456789012:assumed-role/conformance/check")
}

fn ecr(service: &str, tag: &str) -> ImageUri {
    image(&format!(
        "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"
    ))
}

/// A release of `project` with two images, created at `created`.
fn new_release(project: &ProjectId, id: &str, created: Timestamp) -> Release {
    let images = BTreeMap::from([
        (service("archivist"), ecr("archivist", "ref.3f2a9c1").into()),
        (
            service("bag-verifier"),
            ecr("bag-verifier", "ref.77b0e4d").into(),
        ),
    ]);
    Release::new(NewRelease {
        release_id: release_id(id),
        project_id: project.clone(),
        project_name: "Conformance project".to_owned(),
        date_created: created,
        requested_by: requester(),
        description: format!("release {id}"),
        images,
    })
}

fn deployment(env: &str, date: Timestamp, description: &str) -> Deployment {
    Deployment::new(environment(env), date, requester(), description)
}

fn deployment_from_json(value: Value) -> Deployment {
    serde_json::from_value(value).expect("conformance: fixed deployment JSON is valid")
}

fn ids(releases: &[Release]) -> Vec<&str> {
    releases.iter().map(|r| r.release_id().as_str()).collect()
}

fn descriptions(records: &[DeploymentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.deployment.description()).collect()
}

async fn create(store: &dyn ReleaseStore, release: &Release) {
    must(
        store.create_release(release).await,
        format_args!("create_release({})", release.release_id()),
    );
}

async fn read(store: &dyn ReleaseStore, project: &ProjectId, id: &ReleaseId) -> Option<Release> {
    must(
        store.release(project, id).await,
        format_args!("release({project}, {id})"),
    )
}

async fn deploy(
    store: &dyn ReleaseStore,
    project: &ProjectId,
    id: &ReleaseId,
    deployment: &Deployment,
) -> Release {
    must(
        store.add_deployment(project, id, deployment).await,
        format_args!(
            "add_deployment({project}, {id}, {})",
            deployment.description()
        ),
    )
}

/// Reads every page of the project's listing with pages of `limit`,
/// checking the page rules; returns the pages.
async fn walk(store: &dyn ReleaseStore, project: &ProjectId, limit: usize) -> Vec<Vec<Release>> {
    let mut request = PageRequest::first(limit).expect("conformance: page limit is valid");
    let mut pages = Vec::new();
    // A correct store needs at most one page per release plus one.
    for _ in 0..=100 {
        let Page { items, next, .. } = must(
            store.list_releases(project, &request).await,
            format_args!("list_releases({project}, {request:?})"),
        );
        assert!(
            items.len() <= limit,
            "conformance: list_releases returned {} releases for a page limit of {limit}",
            items.len()
        );
        let empty = items.is_empty();
        pages.push(items);
        match next {
            None => return pages,
            Some(cursor) => {
                assert!(
                    !empty,
                    "conformance: list_releases returned an empty page with a cursor ({cursor:?}); \
                     an empty page must end the listing"
                );
                request = PageRequest::first(limit)
                    .expect("conformance: page limit is valid")
                    .after(cursor);
            }
        }
    }
    panic!("conformance: list_releases never ended (more than 100 pages of {limit})");
}

// ---------------------------------------------------------------------------
// Image store checks

/// A written image reads back through [`ImageStore::image`] and
/// [`ImageStore::label_images`]; writing it again overwrites it.
pub async fn image_store_put_get_overwrite(store: &dyn ImageStore, project: &ProjectId) {
    let latest = Label::latest();
    let archivist = service("archivist");
    let first = ecr("archivist", "ref.3f2a9c1");
    let second = ecr("archivist", "ref.9e8d7c6");

    must(
        store.put_image(project, &latest, &archivist, &first).await,
        "put_image (first)",
    );
    let got = must(store.image(project, &latest, &archivist).await, "image");
    assert_eq!(
        got,
        Some(first.clone()),
        "conformance: image() does not return the image put_image wrote"
    );

    must(
        store.put_image(project, &latest, &archivist, &second).await,
        "put_image (overwrite)",
    );
    let got = must(store.image(project, &latest, &archivist).await, "image");
    assert_eq!(
        got,
        Some(second.clone()),
        "conformance: put_image did not overwrite the existing image"
    );
    let all = must(store.label_images(project, &latest).await, "label_images");
    assert_eq!(
        all.images,
        BTreeMap::from([(archivist, second)]),
        "conformance: label_images after an overwrite must hold exactly the new image"
    );
}

/// A service without an image at a label is `None`, whether the label is
/// empty or holds other services' images, and an image at one label is not
/// found at another.
pub async fn image_store_missing_image(store: &dyn ImageStore, project: &ProjectId) {
    let latest = Label::latest();
    let got = must(
        store.image(project, &latest, &service("archivist")).await,
        "image (empty label)",
    );
    assert_eq!(
        got, None,
        "conformance: image() on an empty label must be None"
    );

    must(
        store
            .put_image(
                project,
                &latest,
                &service("archivist"),
                &ecr("archivist", "ref.1"),
            )
            .await,
        "put_image",
    );
    let got = must(
        store.image(project, &latest, &service("bagger")).await,
        "image (other service)",
    );
    assert_eq!(
        got, None,
        "conformance: image() of a service that has no image must be None"
    );
    let got = must(
        store
            .image(project, &label("stage"), &service("archivist"))
            .await,
        "image (other label)",
    );
    assert_eq!(
        got, None,
        "conformance: an image written at `latest` must not be found at `stage`"
    );
}

/// A label without images reads as an empty map, not an error.
pub async fn image_store_empty_label(store: &dyn ImageStore, project: &ProjectId) {
    let got = must(
        store.label_images(project, &Label::latest()).await,
        "label_images (empty label)",
    );
    assert_eq!(
        got,
        LabelImages::default(),
        "conformance: an empty label must read as no images and no skipped parameters"
    );
}

/// Labels of one project are independent: writing `stage` leaves `latest`
/// alone, and `stage` does not pick up images of `stage-2`, whose name it is
/// a prefix of.
pub async fn image_store_labels_are_isolated(store: &dyn ImageStore, project: &ProjectId) {
    let (latest, stage, stage_2) = (Label::latest(), label("stage"), label("stage-2"));
    let latest_images = BTreeMap::from([
        (service("archivist"), ecr("archivist", "ref.new")),
        (service("bagger"), ecr("bagger", "ref.new")),
        (service("notifier"), ecr("notifier", "ref.new")),
    ]);
    let stage_images = BTreeMap::from([
        (service("archivist"), ecr("archivist", "ref.old")),
        (service("bagger"), ecr("bagger", "ref.old")),
    ]);
    let stage_2_images = BTreeMap::from([(service("replicator"), ecr("replicator", "ref.x"))]);

    for (label, images) in [
        (&latest, &latest_images),
        (&stage, &stage_images),
        (&stage_2, &stage_2_images),
    ] {
        for (service, image) in images {
            must(
                store.put_image(project, label, service, image).await,
                format_args!("put_image({project}, {label}, {service})"),
            );
        }
    }

    for (label, images) in [
        (&latest, &latest_images),
        (&stage, &stage_images),
        (&stage_2, &stage_2_images),
    ] {
        let got = must(
            store.label_images(project, label).await,
            format_args!("label_images({project}, {label})"),
        );
        assert_eq!(
            &got.images, images,
            "conformance: label `{label}` must hold exactly the images written to it"
        );
    }
}

/// A label with more images than any backend returns in one page (37; SSM
/// returns at most 10 per page) is read completely.
pub async fn image_store_label_read_completely(store: &dyn ImageStore, project: &ProjectId) {
    let latest = Label::latest();
    let expected: BTreeMap<ServiceId, ImageUri> = (0..37)
        .map(|i| {
            let name = format!("service-{i:02}");
            let uri = ecr(&name, &format!("ref.{i:07x}"));
            (service(&name), uri)
        })
        .collect();
    for (service, image) in &expected {
        must(
            store.put_image(project, &latest, service, image).await,
            format_args!("put_image({project}, latest, {service})"),
        );
    }
    let got = must(store.label_images(project, &latest).await, "label_images");
    assert_eq!(
        got.images.len(),
        expected.len(),
        "conformance: label_images returned {} of {} images (paging stopped early?)",
        got.images.len(),
        expected.len()
    );
    assert_eq!(
        got.images, expected,
        "conformance: label_images must return every image with its value"
    );
    assert!(
        got.skipped.is_empty(),
        "conformance: no parameter was skipped, yet label_images reports {:?}",
        got.skipped
    );
}

// ---------------------------------------------------------------------------
// Release store checks

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
}

/// Release records in every shape the old tools wrote (see the crate docs,
/// "Record shapes") are created, read back equal and in the same JSON shape,
/// and can be deployed without altering their old deployments.
pub async fn release_store_legacy_records(store: &dyn ReleaseStore, project: &ProjectId) {
    let records = legacy_records(project);
    let mut releases = Vec::new();
    for (name, record) in &records {
        let release = Release::from_json(record.clone(), name)
            .unwrap_or_else(|e| panic!("conformance: fixed legacy record {name}: {e}"));
        create(store, &release).await;
        let got = read(store, project, release.release_id())
            .await
            .unwrap_or_else(|| panic!("conformance: legacy record {name} did not read back"));
        assert_eq!(
            got, release,
            "conformance: legacy record {name} must read back equal"
        );
        assert_eq!(
            &got.to_json(),
            record,
            "conformance: legacy record {name} must read back in the shape it was written"
        );
        releases.push((name, record, release));
    }

    let new = deployment(
        "prod",
        at(400 * 24 * 3600 * SECOND),
        "deployed by this crate",
    );
    for (name, record, release) in releases {
        let updated = deploy(store, project, release.release_id(), &new).await;
        let mut expected = release.clone();
        expected.record_deployment(new.clone());
        assert_eq!(
            updated, expected,
            "conformance: deploying legacy record {name} must append the deployment and change \
             nothing else"
        );
        let stored = read(store, project, release.release_id())
            .await
            .unwrap_or_else(|| panic!("conformance: legacy record {name} did not read back"));
        assert_eq!(
            stored, expected,
            "conformance: legacy record {name} after a deployment"
        );
        let old: Vec<Value> = record
            .get("deployments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let json = stored.to_json();
        let now: Vec<Value> = json
            .get("deployments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            now.get(..old.len()),
            Some(old.as_slice()),
            "conformance: deploying legacy record {name} must keep its old deployments' shapes"
        );
        assert_eq!(
            json.get("release_manifest"),
            record.get("release_manifest"),
            "conformance: deploying legacy record {name} must keep unknown attributes"
        );
    }
}

/// One record per shape in `existing-records.md`, as (name, JSON).
fn legacy_records(project: &ProjectId) -> Vec<(String, Value)> {
    let p = project.as_str();
    let ecr = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome";
    vec![
        (
            "release_tooling (2019): {id, name} requesters, environment maps".to_owned(),
            json!({
                "release_id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2019-07-10T10:44:02.272898",
                "requested_by": {"id": "unknown", "name": "unknown"},
                "description": "No description provided",
                "images": {
                    "archivist": format!("{ecr}/archivist:3f2a9c1e5b7d9f0a1c3e5b7d9f0a1c3e5b7d9f0a"),
                    "bagger": format!("{ecr}/bagger:ref.3f2a9c1")
                },
                "deployments": [{
                    "date_created": "2019-07-10T11:00:00",
                    "description": "No description provided",
                    "environment": {"id": "stage", "name": "Staging",
                                    "aws_region_name": "eu-west-1"},
                    "requested_by": {"id": "unknown", "name": "unknown"}
                }],
                "last_date_deployed": "2019-07-10T11:00:00"
            }),
        ),
        (
            "weco-deploy 2.x: ARN requesters, environment maps".to_owned(),
            json!({
                "release_id": "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2020-03-02T16:20:11.000512",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/alice",
                "description": "Bump archivist",
                "images": {"archivist": format!("{ecr}/archivist:ref.9e8d7c6")},
                "deployments": [
                    {
                        "date_created": "2020-03-02T16:30:00",
                        "description": "to stage",
                        "environment": {"id": "stage", "name": "Staging"},
                        "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/alice"
                    },
                    {
                        "date_created": "2020-03-03T09:00:00.500000",
                        "description": "to prod",
                        "environment": {"id": "prod", "name": "Production"},
                        "requested_by": "arn:aws:iam::123456789012:user/bob"
                    }
                ],
                "last_date_deployed": "2020-03-03T09:00:00.500000"
            }),
        ),
        (
            "weco-deploy 4.x/5.x: id environments, details, bare tags and null images".to_owned(),
            json!({
                "release_id": "a3bb189e-8bf9-3888-9912-ace4e6543002",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2021-05-20T08:00:00",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/platform-ci/deploy",
                "description": "Nightly",
                "images": {
                    "archivist": "ref.3f2a9c1",
                    "notifier": null,
                    "replicator": format!("{ecr}/replicator:ref.77b0e4d")
                },
                "deployments": [{
                    "date_created": "2021-05-20T08:05:00.123456",
                    "description": "to stage",
                    "environment": "stage",
                    "requested_by": "arn:aws:sts::123456789012:assumed-role/platform-ci/deploy",
                    "details": {
                        "archivist": {
                            "ssm_result": {"old_image": "ref.1111111", "new_image": "ref.3f2a9c1"},
                            "tag_result": {"status": "success"},
                            "ecs_deployments": [{"service": "archivist", "desired_count": 1}]
                        }
                    }
                }],
                "last_date_deployed": "2021-05-20T08:05:00.123456"
            }),
        ),
        (
            "weco-deploy, Nov 2020: images as sets of tags".to_owned(),
            json!({
                "release_id": "c56a4180-65aa-42ec-a945-5fd21dec0538",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2020-11-10T12:00:00",
                "requested_by": "arn:aws:sts::123456789012:assumed-role/storage-ci/carol",
                "description": "Tag sets",
                "images": {
                    "archivist": ["env.stage", "ref.3f2a9c1"],
                    "bagger": ["ref.77b0e4d"]
                },
                "deployments": []
            }),
        ),
        (
            "never deployed, with an unknown top-level attribute".to_owned(),
            json!({
                "release_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
                "project_id": p,
                "project_name": "Storage service",
                "date_created": "2019-08-01T00:00:00",
                "requested_by": {"id": "unknown", "name": "unknown"},
                "description": "No description provided",
                "images": {"archivist": format!("{ecr}/archivist:3f2a9c1")},
                "deployments": [],
                "release_manifest": {"archivist": {"digest": "sha256:0123abcd"}}
            }),
        ),
    ]
}
