//! Checks of the [`ImageStore`] contract.

use std::collections::{BTreeMap, BTreeSet};

use crate::names::{ImageUri, Label, ProjectId, ServiceId};
use crate::store::{ImageStore, LabelImages};

use super::support::*;

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

/// A read by name ([`ImageStore::label_images_of`]) returns the images of
/// the services asked for that the label holds, with their values, and
/// nothing of the label's other services or of another label.
pub async fn image_store_label_read_by_name(store: &dyn ImageStore, project: &ProjectId) {
    let latest = Label::latest();
    let stage = Label::new("stage").expect("a valid label");
    let mut held = BTreeMap::new();
    for i in 0..37 {
        let name = format!("service-{i:02}");
        let uri = ecr(&name, &format!("ref.{i:07x}"));
        must(
            store
                .put_image(project, &latest, &service(&name), &uri)
                .await,
            format_args!("put_image({project}, latest, {name})"),
        );
        held.insert(service(&name), uri);
    }
    let elsewhere = service("only-at-stage");
    must(
        store
            .put_image(project, &stage, &elsewhere, &ecr("only-at-stage", "ref.1"))
            .await,
        "put_image(stage)",
    );
    // 25 held (past two batches of 10), 2 not held, 1 held at another label.
    let mut asked: BTreeSet<ServiceId> = held.keys().step_by(3).cloned().collect();
    asked.extend(held.keys().skip(1).step_by(3).take(12).cloned());
    asked.extend([service("not-held-1"), service("not-held-2"), elsewhere]);
    let expected: BTreeMap<ServiceId, ImageUri> = held
        .iter()
        .filter(|(s, _)| asked.contains(*s))
        .map(|(s, u)| (s.clone(), u.clone()))
        .collect();
    assert_eq!(
        expected.len(),
        25,
        "conformance: the check asks for 25 held images"
    );
    let got = must(
        store.label_images_of(project, &latest, &asked).await,
        "label_images_of",
    );
    assert_eq!(
        got.images, expected,
        "conformance: label_images_of must return exactly the images asked for that the label holds"
    );
    assert!(
        got.skipped.is_empty(),
        "conformance: no parameter was skipped, yet label_images_of reports {:?}",
        got.skipped
    );
    let none = must(
        store
            .label_images_of(project, &latest, &BTreeSet::new())
            .await,
        "label_images_of(no services)",
    );
    assert!(
        none.images.is_empty() && none.skipped.is_empty(),
        "conformance: label_images_of with no services must return nothing, got {none:?}"
    );
}
