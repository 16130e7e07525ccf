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
