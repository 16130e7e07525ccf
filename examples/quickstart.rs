//! Release tracking end to end on the in-memory stores: no AWS, no set-up.
//!
//! `cargo run --example quickstart`
//!
//! Loads a manifest, publishes images the way CI does, prepares a release,
//! deploys it to stage, changes one image, deploys again, and prints the
//! release, the diff and the deployment history.

use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::{
    Label, Manifest, PrepareRequest, ReleaseRef, ReleaseTracker, Requester, UpdateRequest,
};

const MANIFEST: &str = r#"{
  "storage": {
    "name": "Storage service",
    "environments": [
      {"id": "stage", "name": "Staging"},
      {"id": "prod", "name": "Production"}
    ]
  }
}"#;

const REGISTRY: &str = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome";

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = Manifest::parse(MANIFEST, ".wellcome_project")?;
    for warning in manifest.warnings() {
        eprintln!("warning: {warning}");
    }
    // The file holds one project, so it is picked without naming it.
    let project = manifest.select(None)?.clone();
    let tracker = ReleaseTracker::new(
        project,
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("arn:aws:sts::123456789012:assumed-role/ci/quickstart"),
    );

    // CI publishes each build to the `latest` label.
    let latest = Label::latest();
    for service in ["archivist", "bag-register", "notifier"] {
        let image = format!("{REGISTRY}/{service}:ref.3f2a9c1").parse()?;
        tracker.publish(&latest, &service.parse()?, &image).await?;
    }

    let first = tracker
        .prepare(PrepareRequest::latest().description("First release"))
        .await?
        .release;
    print!("{first}");

    let deployed = tracker
        .deploy(&first.release_id().into(), "stage", "Initial deploy")
        .await?;
    println!(
        "\ndeployed {} to stage: {} parameters written",
        first.release_id(),
        deployed.written.len()
    );

    // A fix to one service is built and published...
    let fixed = format!("{REGISTRY}/bag-register:ref.9b1d77e").parse()?;
    tracker
        .publish(&latest, &"bag-register".parse()?, &fixed)
        .await?;
    // ...and released on top of the first release, changing nothing else.
    let second = tracker
        .update(
            UpdateRequest::new(first.release_id().into(), latest, ["bag-register".parse()?])
                .description("Fix bag-register"),
        )
        .await?
        .release;
    print!("\n{second}");

    // Plan once, show it, and execute exactly that plan: the release shown
    // is the release deployed, even if `latest` moves in between.
    let plan = tracker.plan(&ReleaseRef::Latest, "stage").await?;
    println!("\n{plan}");
    tracker
        .execute(plan, "Roll out the bag-register fix")
        .await?;

    let diff = tracker
        .diff(&first.release_id().into(), &second.release_id().into())
        .await?;
    println!("diff {diff}");

    println!("history of stage, newest first:");
    for record in tracker.history(Some("stage"), 10).await?.records {
        let d = &record.deployment;
        println!(
            "  {}  {}  by {:<10}  {}",
            d.date_created(),
            record.release_id,
            d.requested_by(),
            d.description()
        );
    }
    if let Some(current) = tracker.current("stage").await?.current {
        println!(
            "\nstage runs {} (label matches the release: {})",
            current.release.release_id(),
            current.label_matches()
        );
    }
    Ok(())
}
