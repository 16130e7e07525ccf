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

    /// Runs the tool; an error is what `main` prints for it.
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
            .map_err(|e| release_tool::report(&*e))?;
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

/// No character that would change the terminal or hide text.
fn assert_printable(text: &str) {
    let bad = text
        .chars()
        .find(|&c| c != '\n' && (c.is_control() || matches!(c, '\u{202a}'..='\u{202e}')));
    assert!(bad.is_none(), "raw {bad:?} in: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_arguments_are_checked_and_escaped() {
    let project = aws_common::fresh_project("cli");
    let tool = Tool::new(project.as_str());
    let reserved =
        "error: invalid environment id \"latest\": `latest` (the label CI publishes to) is reserved";
    for args in [
        &["deploy", "latest", "latest"][..],
        &["deploy", "latest", "latest", "--dry-run"],
        &["current", "latest"],
        &["history", "--environment", "latest"],
        &["release-deploy", "latest"],
    ] {
        assert_eq!(tool.run(args).await.unwrap_err(), reserved, "{args:?}");
    }

    let err = tool
        .run(&["deploy", "latest", "\x1b[31mprod\n"])
        .await
        .unwrap_err();
    assert_printable(&err);
    assert_eq!(
        err,
        format!(
            "error: project `{project}` has no environment `\\u{{1b}}[31mprod\\n`; \
             its environments are: stage, prod"
        )
    );
    let err = tool
        .run(&["--project", "\u{9b}31m", "history"])
        .await
        .unwrap_err();
    assert_printable(&err);
    assert!(err.contains(r"`\u{9b}31m`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_chains_show_each_cause_once() {
    let project = aws_common::fresh_project("cli");

    // Nothing listens on the port: a dispatch failure.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mut tool = Tool::new(project.as_str());
    tool.endpoint = format!("http://127.0.0.1:{port}");
    let err = tool.run(&["history"]).await.unwrap_err();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(": service unreachable: "), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    for dump in ["DispatchFailure", "ConnectorError", "{", "dispatch failure"] {
        assert!(!err.contains(dump), "{err}");
    }

    // A table whose key is not `release_id`: DynamoDB (and moto) reject the
    // GetItem with a ValidationException.
    aws_common::dynamodb_client()
        .await
        .create_table()
        .table_name(format!("wellcome-releases-{project}"))
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    let tool = Tool::new(project.as_str());
    let err = tool.run(&["show-release", "abc"]).await.unwrap_err();
    assert_eq!(
        err,
        format!(
            "error: reading release abc of project {project} (DynamoDB GetItem on \
             wellcome-releases-{project}): failed: ValidationException: \
             The provided key element does not match the schema"
        )
    );
}

/// The character offset of `needle` in `line`.
fn column(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    line[..at].chars().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_align_whatever_the_requester() {
    let project = aws_common::fresh_project("cli");
    let tool = Tool::new(project.as_str());
    let long = "arn:aws:iam::123456789012:user/alice.smith-with-a-long-name@example.org";
    tool.ok(&["provision"]).await;
    tool.ok(&["publish", "archivist", "ecr.example.com/archivist:ref.aaa"])
        .await;
    tool.ok(&["--requester", "bob", "prepare", "--description", "first"])
        .await;
    tool.ok(&["--requester", long, "prepare", "--description", "second"])
        .await;
    tool.ok(&[
        "--requester",
        long,
        "deploy",
        "latest",
        "stage",
        "--description",
        "to-stage",
    ])
    .await;
    tool.ok(&[
        "--requester",
        "bob",
        "deploy",
        "latest",
        "prod",
        "--description",
        "to-prod",
    ])
    .await;

    let out = tool.ok(&["releases"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        column(lines[0], "second"),
        column(lines[1], "first"),
        "{out}"
    );
    assert_eq!(column(lines[0], "alice"), column(lines[1], "bob"), "{out}");

    let out = tool.ok(&["history"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        column(lines[0], "to-prod"),
        column(lines[1], "to-stage"),
        "{out}"
    );
    assert_eq!(column(lines[0], "bob"), column(lines[1], "alice"), "{out}");
    assert!(lines.iter().all(|l| l == &l.trim_end()), "{out}");
}
