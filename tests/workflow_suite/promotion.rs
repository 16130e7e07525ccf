//! Workflows of safe promotion: the audit trail each deployment records.

use std::collections::BTreeSet;

use release_tracking::{DeploymentKind, ReleaseRef};

use super::{prepare_latest, publish, publish_three, svc, tracker, Stores};

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
