//! The `release_tool` example against the moto emulator, end to end: run by
//! `scripts/test.sh`.

use clap::Parser;

#[path = "common/aws.rs"]
mod aws_common;
#[allow(dead_code)]
#[path = "../examples/release_tool.rs"]
mod release_tool;

struct Tool {
    manifest: std::path::PathBuf,
    endpoint: String,
}

impl Tool {
    fn new(project: &str) -> Tool {
        let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
        let text = format!(
            r#"{{"{project}": {{"name": "CLI test", "aws_region_name": "{}",
                "environments": [{{"id": "stage", "name": "Staging"}}, {{"id": "prod", "name": "Production"}}]}}}}"#,
            aws_common::REGION
        );
        std::fs::write(&manifest, text).expect("write manifest");
        Tool {
            manifest,
            endpoint: aws_common::endpoint(),
        }
    }

    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut argv = vec![
            "release_tool".to_owned(),
            "--manifest".to_owned(),
            self.manifest.display().to_string(),
            "--endpoint-url".to_owned(),
            self.endpoint.clone(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let cli = release_tool::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        release_tool::run(cli, &mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    async fn ok(&self, args: &[&str]) -> String {
        match self.run(args).await {
            Ok(out) => out,
            Err(e) => panic!("release_tool {args:?} failed: {e}"),
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_publish_prepare_deploy_and_report() {
    let project = aws_common::fresh_project("cli");
    let tool = Tool::new(project.as_str());

    let out = tool.ok(&["provision"]).await;
    assert!(
        out.contains(&format!("wellcome-releases-{project}")),
        "{out}"
    );
    assert!(out.contains("Created"), "{out}");
    assert!(tool.ok(&["provision"]).await.contains("AlreadyExisted"));

    tool.ok(&["publish", "archivist", "ecr.example.com/archivist:ref.aaa"])
        .await;
    tool.ok(&["publish", "notifier", "ecr.example.com/notifier:ref.bbb"])
        .await;
    let out = tool.ok(&["prepare", "--description", "first"]).await;
    assert!(out.contains("ecr.example.com/archivist:ref.aaa"), "{out}");
    // moto's GetCallerIdentity answers for the test credentials.
    assert!(out.contains("description  first"), "{out}");

    let out = tool.ok(&["deploy", "latest", "stage", "--dry-run"]).await;
    assert!(out.contains("2 to write"), "{out}");
    assert!(!out.contains("deployed"), "a dry run deployed: {out}");
    let out = tool.ok(&["current", "stage"]).await;
    assert!(out.contains("nothing deployed yet"), "{out}");

    let out = tool
        .ok(&["deploy", "latest", "stage", "--description", "go"])
        .await;
    assert!(out.contains("2 written, 0 unchanged"), "{out}");

    tool.ok(&["publish", "notifier", "ecr.example.com/notifier:ref.ccc"])
        .await;
    tool.ok(&["update", "latest", "notifier", "--description", "fix"])
        .await;
    let out = tool.ok(&["diff", "latest", "latest"]).await;
    assert!(out.contains("0 changed"), "{out}");

    let out = tool
        .ok(&["release-deploy", "prod", "--description", "to prod"])
        .await;
    assert!(out.contains("2 written"), "{out}");

    let out = tool.ok(&["history"]).await;
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("prod"), "{out}");
    assert!(lines[1].contains("stage"), "{out}");

    let out = tool.ok(&["releases", "--limit", "2"]).await;
    assert_eq!(
        out.lines().filter(|l| !l.starts_with("more")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("more: --after"), "{out}");

    let out = tool.ok(&["show-release", "latest", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(
        json["images"]["notifier"],
        "ecr.example.com/notifier:ref.ccc"
    );
    assert_eq!(json["deployments"][0]["environment"], "prod");

    let out = tool.ok(&["current", "stage"]).await;
    assert!(out.contains("the label matches the release"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_was_wrong() {
    let project = aws_common::fresh_project("cli");
    let tool = Tool::new(project.as_str());

    // Before provisioning: the missing table is named with the way out.
    let err = tool.run(&["history"]).await.unwrap_err();
    assert!(
        err.contains(&format!("wellcome-releases-{project}")),
        "{err}"
    );

    tool.ok(&["provision"]).await;
    let err = tool.run(&["prepare"]).await.unwrap_err();
    assert!(err.contains("has no images"), "{err}");
    let err = tool.run(&["deploy", "latest", "prdo"]).await.unwrap_err();
    assert!(err.contains("stage, prod"), "{err}");
    let err = tool
        .run(&["publish", "a/../../prod", "x"])
        .await
        .unwrap_err();
    assert!(err.contains("a/../../prod"), "{err}");
    let err = tool
        .run(&["prepare", "--image", "archivist"])
        .await
        .unwrap_err();
    assert!(err.contains("SERVICE=label:LABEL"), "{err}");
}
