//! Benchmarks of the hot paths: record decoding and encoding, manifest
//! parsing, deploy planning and deployment history on the in-memory stores.
//!
//! `cargo bench --bench release_tracking`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::{
    Deployment, Environment, ImageEntry, Label, Manifest, NewRelease, PrepareRequest, Project,
    Release, ReleaseRef, ReleaseStore, ReleaseTracker, Requester, ServiceId, Timestamp,
};
use serde_json::json;

fn start() -> Timestamp {
    "2024-01-01T00:00:00".parse().expect("timestamp")
}

/// A release item like a busy project's: 95 services, 100 deployments.
fn big_record() -> serde_json::Value {
    let images: serde_json::Map<_, _> = (0..95)
        .map(|i| {
            (
                format!("service-{i:03}"),
                json!(format!("760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/service-{i:03}:ref.3f2a9c1")),
            )
        })
        .collect();
    let deployments: Vec<_> = (0..100)
        .map(|i| {
            json!({
                "date_created": start().add_micros(i * 1_000_000).to_string(),
                "description": "Deploy",
                "environment": if i % 2 == 0 { json!("stage") } else { json!({"id": "prod", "name": "Production"}) },
                "requested_by": "arn:aws:sts::123456789012:assumed-role/ci/session",
            })
        })
        .collect();
    json!({
        "release_id": "0efcc940-e709-4a51-b264-809a670629b6",
        "project_id": "storage",
        "project_name": "Storage service",
        "date_created": "2019-07-10T10:44:02.272898",
        "requested_by": {"id": "unknown", "name": "unknown"},
        "description": "No description provided",
        "images": images,
        "deployments": deployments,
        "last_date_deployed": start().add_micros(99_000_000).to_string(),
    })
}

fn manifest_text(projects: usize) -> String {
    let body: serde_json::Map<_, _> = (0..projects)
        .map(|i| {
            (
                format!("project-{i}"),
                json!({
                    "name": format!("Project {i}"),
                    "environments": [{"id": "stage", "name": "Staging"}, {"id": "prod", "name": "Production"}],
                    "role_arn": "arn:aws:iam::760097843905:role/platform-ci",
                    "aws_region_name": "eu-west-1",
                    "image_repositories": [{"id": "repo", "services": ["a", "b", "c"]}],
                }),
            )
        })
        .collect();
    serde_json::to_string_pretty(&body).expect("json")
}

fn records(c: &mut Criterion) {
    let record = big_record();
    c.bench_function("decode release record (95 images, 100 deployments)", |b| {
        b.iter(|| Release::from_json(black_box(record.clone()), "bench").expect("decodes"))
    });
    let release = Release::from_json(record, "bench").expect("decodes");
    c.bench_function("encode release record (95 images, 100 deployments)", |b| {
        b.iter(|| black_box(&release).to_json())
    });
    c.bench_function("parse timestamp", |b| {
        b.iter(|| {
            black_box("2019-07-10T10:44:02.272898")
                .parse::<Timestamp>()
                .expect("parses")
        })
    });
}

fn manifests(c: &mut Criterion) {
    let text = manifest_text(20);
    c.bench_function("parse manifest (20 projects, JSON)", |b| {
        b.iter(|| Manifest::parse(black_box(&text), ".wellcome_project").expect("parses"))
    });
}

fn project() -> Project {
    Project::new(
        "storage".parse().expect("id"),
        "Storage service",
        vec![
            Environment::new("stage".parse().expect("id"), "Staging"),
            Environment::new("prod".parse().expect("id"), "Production"),
        ],
    )
    .expect("project")
}

fn workflows(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tracker = ReleaseTracker::new(
        project(),
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("arn:aws:sts::1:assumed-role/ci/bench"),
    );
    rt.block_on(async {
        for i in 0..95 {
            let service: ServiceId = format!("service-{i:03}").parse().expect("id");
            let image = format!("ecr.example.com/service-{i:03}:1")
                .parse()
                .expect("uri");
            tracker
                .publish(&Label::latest(), &service, &image)
                .await
                .expect("publish");
        }
        tracker
            .prepare(PrepareRequest::latest())
            .await
            .expect("prepare");
    });
    c.bench_function("plan deploy of 95 services (in-memory)", |b| {
        b.to_async(&rt).iter(|| async {
            tracker
                .plan(&ReleaseRef::Latest, "stage")
                .await
                .expect("plan")
        })
    });

    // 1,000 releases, each deployed once.
    let releases = InMemoryReleaseStore::new();
    let project_id = project().id().clone();
    rt.block_on(async {
        for i in 0..1000 {
            let at = start().add_micros(i * 1_000_000);
            let mut images = std::collections::BTreeMap::new();
            images.insert(
                "a".parse().expect("id"),
                ImageEntry::Uri("ecr.example.com/a:1".parse().expect("uri")),
            );
            let release = Release::new(NewRelease {
                release_id: format!("release-{i:04}").parse().expect("id"),
                project_id: project_id.clone(),
                project_name: "Storage service".into(),
                date_created: at,
                requested_by: Requester::new("bench"),
                description: String::new(),
                images,
            });
            releases.create_release(&release).await.expect("create");
            let deployment = Deployment::new(
                "stage".parse().expect("id"),
                at.add_micros(500_000),
                Requester::new("bench"),
                "d",
            );
            releases
                .add_deployment(&project_id, release.release_id(), &deployment)
                .await
                .expect("deploy");
        }
    });
    c.bench_function("newest 10 deployments of 1,000 releases (in-memory)", |b| {
        b.to_async(&rt).iter(|| async {
            releases
                .recent_deployments(&project_id, None, 10)
                .await
                .expect("history")
        })
    });
    c.bench_function("latest release of 1,000 (in-memory)", |b| {
        b.to_async(&rt)
            .iter(|| async { releases.latest_release(&project_id).await.expect("latest") })
    });
}

criterion_group!(benches, records, manifests, workflows);
criterion_main!(benches);
