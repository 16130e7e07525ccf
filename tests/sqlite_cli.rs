//! `release_tool --store sqlite:PATH` as a process: the whole workflow on
//! one file, with no AWS set-up at all (the environment holds no region or
//! credentials, so any AWS set-up would fail).

use std::path::Path;
use std::process::Command;

#[path = "common/cli.rs"]
mod cli_common;

fn run(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(cli_common::release_tool())
        .current_dir(dir)
        .args(["--store", "sqlite:releases.db"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "alice")
        .output()
        .expect("run release_tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "release_tool {args:?} failed: {stderr}\n{stdout}"
    );
    // Human mode names the store on stderr; JSON mode puts it in the document.
    if !args.contains(&"--json") {
        assert!(
            stderr.contains("store: sqlite (path releases.db)"),
            "{stderr}"
        );
    }
    stdout
}

#[test]
fn the_whole_workflow_runs_on_one_sqlite_file_without_aws() {
    let dir = std::env::temp_dir().join(format!("sqlite-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join(".wellcome_project"),
        r#"{"storage": {"name": "Storage service", "environments":
            [{"id": "stage", "name": "Staging"}, {"id": "prod", "name": "Production"}]}}"#,
    )
    .expect("manifest");
    let image = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.1";
    run(&dir, &["publish", "archivist", image]);
    let prepared = run(&dir, &["prepare", "--description", "first release"]);
    let id = prepared
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("release "))
        .expect("the release id")
        .to_owned();
    assert!(prepared.contains("by alice"), "{prepared}");
    let deployed = run(
        &dir,
        &["deploy", "latest", "stage", "--description", "first"],
    );
    assert!(
        deployed.contains(&format!("deployed {id} to stage: 1 written")),
        "{deployed}"
    );
    let history = run(&dir, &["history"]);
    assert!(
        history.contains(&id) && history.contains("alice"),
        "{history}"
    );
    let current: serde_json::Value =
        serde_json::from_str(&run(&dir, &["--json", "current", "stage"]))
            .expect("one JSON document");
    assert_eq!(current["store"]["kind"], "sqlite", "{current:#}");
    assert!(current.to_string().contains(&id), "{current:#}");
    // A second process sees what the first wrote: the file is the store.
    assert!(dir.join("releases.db").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
