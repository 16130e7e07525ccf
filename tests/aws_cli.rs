//! The `release_tool` example against the moto emulator, end to end, run as
//! a process (as people run it): run by `scripts/test.sh`.

use std::process::{Command, Output};

use serde_json::Value;

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/cli.rs"]
mod cli_common;

struct Tool {
    manifest: std::path::PathBuf,
    endpoint: String,
}

/// A manifest for `project` with a stage and a prod environment, and
/// `extra` (more keys of the project, JSON) in it.
fn manifest_text(project: &str, extra: &str) -> String {
    format!(
        r#"{{"{project}": {{"name": "CLI test", "aws_region_name": "{}", {extra}
            "environments": [{{"id": "stage", "name": "Staging"}}, {{"id": "prod", "name": "Production"}}]}}}}"#,
        aws_common::REGION
    )
}

impl Tool {
    fn new(project: &str) -> Tool {
        Tool::with_manifest(project, &manifest_text(project, ""))
    }

    fn with_manifest(project: &str, text: &str) -> Tool {
        let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
        std::fs::write(&manifest, text).expect("write manifest");
        Tool {
            manifest,
            endpoint: aws_common::endpoint(),
        }
    }

    /// The tool with the test's credentials and nothing else from this
    /// process's environment.
    fn bare_command() -> Command {
        cli_common::release_tool_command(aws_common::ACCESS_KEY, aws_common::REGION)
    }

    /// Runs the tool on this manifest and endpoint with `args`.
    fn output(&self, args: &[&str]) -> Output {
        Tool::bare_command()
            .arg("--manifest")
            .arg(&self.manifest)
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .output()
            .expect("run release_tool")
    }

    /// Runs the tool: its stdout, or the error it printed (stderr from its
    /// `error:` line on, without the store line and warnings before it).
    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self.output(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        assert!(stdout.is_empty(), "a failed {args:?} printed: {stdout}");
        let at = stderr
            .find("error: ")
            .unwrap_or_else(|| panic!("{args:?} failed without an error line: {stderr}"));
        Err(stderr[at..].trim_end().to_owned())
    }

    async fn ok(&self, args: &[&str]) -> String {
        match self.run(args).await {
            Ok(out) => out,
            Err(e) => panic!("release_tool {args:?} failed: {e}"),
        }
    }

    /// Runs the tool with `--json` (after the command, as the option is
    /// global): stdout is one JSON object, stderr is empty.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let output = self.output(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
        let doc: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not one JSON document ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert!(doc.is_object(), "{args:?}: {doc}");
        doc
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
    let json = &json["release"];
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

/// Without a region anywhere, the tool says which setting is missing and
/// where to set it, before any AWS call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_region_is_named_with_where_to_set_it() {
    let project = aws_common::fresh_project("cli");
    let text = format!(
        r#"{{"{project}": {{"name": "CLI test",
            "environments": [{{"id": "stage", "name": "Staging"}}]}}}}"#
    );
    let tool = Tool::with_manifest(project.as_str(), &text);
    let output = Tool::bare_command()
        .env_remove("AWS_REGION")
        .arg("--manifest")
        .arg(&tool.manifest)
        .arg("--endpoint-url")
        .arg(&tool.endpoint)
        .arg("history")
        .output()
        .expect("run release_tool");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "project `{project}`: no AWS region; set `aws_region_name`"
        )),
        "{stderr}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_names_its_store_on_stderr() {
    let project = aws_common::fresh_project("clistore");
    let tool = Tool::new(project.as_str());
    let expected = format!(
        "store: aws (region {}, table wellcome-releases-{project}, endpoint url {})",
        aws_common::REGION,
        tool.endpoint
    );
    for args in [&["provision"][..], &["history"], &["current", "stage"]] {
        let output = tool.output(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().next(), Some(expected.as_str()), "{args:?}");
    }
    // Before the store is opened (a bad project), no store is named.
    let err = tool.output(&["--project", "nope", "history"]);
    assert!(!String::from_utf8_lossy(&err.stderr).contains("store:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_one_json_document() {
    let project = aws_common::fresh_project("clijson");
    let tool = Tool::new(project.as_str());
    let table = format!("wellcome-releases-{project}");

    let doc = tool.json(&["provision"]);
    assert_eq!(doc["command"], "provision");
    assert_eq!(doc["state"], "created");
    assert_eq!(doc["warnings"], serde_json::json!([]));
    assert_eq!(
        doc["store"],
        serde_json::json!({
            "kind": "aws", "region": aws_common::REGION, "table": table,
            "endpoint_url": tool.endpoint,
        })
    );
    assert_eq!(tool.json(&["provision"])["state"], "already_existed");

    let doc = tool.json(&["publish", "archivist", "ecr.example.com/archivist:ref.aaa"]);
    assert_eq!(doc["service"], "archivist");
    assert_eq!(doc["label"], "latest");
    assert_eq!(doc["image"], "ecr.example.com/archivist:ref.aaa");
    tool.json(&["publish", "notifier", "ecr.example.com/notifier:ref.bbb"]);

    let doc = tool.json(&["--requester", "alice", "prepare", "--description", "first"]);
    let first = doc["release"]["release_id"]
        .as_str()
        .expect("release_id")
        .to_owned();
    assert_eq!(doc["release"]["project_id"], project.as_str());
    assert_eq!(doc["release"]["requested_by"], "alice");
    assert_eq!(doc["release"]["description"], "first");
    assert_eq!(
        doc["release"]["images"],
        serde_json::json!({
            "archivist": "ecr.example.com/archivist:ref.aaa",
            "notifier": "ecr.example.com/notifier:ref.bbb",
        })
    );
    assert_eq!(doc["release"]["deployments"], serde_json::json!([]));

    let doc = tool.json(&["deploy", &first, "stage", "--dry-run"]);
    assert_eq!(doc["command"], "deploy");
    assert_eq!(doc["deployed"], Value::Null);
    assert_eq!(doc["plan"]["release_id"], first.as_str());
    assert_eq!(doc["plan"]["environment"], "stage");
    assert_eq!(doc["plan"]["changes"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["plan"]["changes"][0]["service"], "archivist");
    assert_eq!(doc["plan"]["changes"][0]["current"], Value::Null);
    assert_eq!(doc["plan"]["conflicts"], serde_json::json!([]));

    let doc = tool.json(&["current", "stage"]);
    assert_eq!(doc["environment"], "stage");
    assert_eq!(doc["current"], Value::Null);

    let doc = tool.json(&[
        "--requester",
        "bob",
        "deploy",
        &first,
        "stage",
        "--description",
        "go",
    ]);
    let deployed = &doc["deployed"];
    assert_eq!(deployed["release_id"], first.as_str());
    assert_eq!(
        deployed["written"],
        serde_json::json!(["archivist", "notifier"])
    );
    assert_eq!(deployed["unchanged"], serde_json::json!([]));
    assert_eq!(deployed["deployment"]["environment"], "stage");
    assert_eq!(deployed["deployment"]["requested_by"], "bob");
    assert_eq!(deployed["deployment"]["description"], "go");

    let doc = tool.json(&["current", "stage"]);
    assert_eq!(doc["current"]["release"]["release_id"], first.as_str());
    assert_eq!(doc["current"]["label_matches"], true);
    assert_eq!(doc["current"]["drifted"], serde_json::json!([]));

    tool.json(&["publish", "notifier", "ecr.example.com/notifier:ref.ccc"]);
    let doc = tool.json(&["--requester", "alice", "update", "latest", "notifier"]);
    let second = doc["release"]["release_id"]
        .as_str()
        .expect("release_id")
        .to_owned();
    let doc = tool.json(&["diff", &first, &second]);
    assert_eq!(doc["from"], first.as_str());
    assert_eq!(doc["to"], second.as_str());
    assert_eq!(
        doc["changed"],
        serde_json::json!([{
            "service": "notifier",
            "from": "ecr.example.com/notifier:ref.bbb",
            "to": "ecr.example.com/notifier:ref.ccc",
        }])
    );
    assert_eq!(doc["unchanged"], serde_json::json!(["archivist"]));
    assert_eq!(doc["added"], serde_json::json!({}));
    assert_eq!(doc["removed"], serde_json::json!({}));

    let doc = tool.json(&["--requester", "alice", "release-deploy", "prod"]);
    assert_eq!(doc["command"], "release-deploy");
    assert_eq!(doc["release"]["deployments"][0]["environment"], "prod");
    assert_eq!(doc["deployed"]["written"].as_array().map(Vec::len), Some(2));

    let doc = tool.json(&["history"]);
    assert_eq!(doc["environment"], Value::Null);
    let deployments = doc["deployments"].as_array().expect("deployments");
    assert_eq!(deployments.len(), 2, "{doc}");
    assert_eq!(deployments[0]["environment"], "prod");
    assert_eq!(deployments[1]["environment"], "stage");
    assert_eq!(deployments[1]["release_id"], first.as_str());
    let doc = tool.json(&["history", "--environment", "stage"]);
    assert_eq!(doc["environment"], "stage");
    assert_eq!(doc["deployments"].as_array().map(Vec::len), Some(1));

    // Pages: `next` is the cursor that `--after` takes.
    let doc = tool.json(&["releases", "--limit", "2"]);
    assert_eq!(doc["releases"].as_array().map(Vec::len), Some(2), "{doc}");
    let next = doc["next"].as_str().expect("a cursor").to_owned();
    let doc = tool.json(&["releases", "--limit", "2", "--after", &next]);
    let rest = doc["releases"].as_array().expect("releases");
    assert_eq!(rest.len(), 1, "{doc}");
    assert_eq!(rest[0]["release_id"], first.as_str());

    let doc = tool.json(&["show-release", &first]);
    assert_eq!(doc["release"]["release_id"], first.as_str());
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_warnings_go_into_the_document() {
    let project = aws_common::fresh_project("cliwarn");
    let tool = Tool::with_manifest(
        project.as_str(),
        &manifest_text(project.as_str(), r#""role_ar": "typo","#),
    );
    tool.ok(&["provision"]).await;
    let doc = tool.json(&["history"]);
    let warnings = doc["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{doc}");
    assert!(
        warnings[0].as_str().is_some_and(|w| w.contains("role_ar")),
        "{doc}"
    );
    // Without --json the same warning is on stderr.
    let output = tool.output(&["history"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("role_ar"),
        "{stderr}"
    );
    // A failing --json command prints no document: warnings and the error
    // go to stderr.
    let output = tool.output(&["--json", "current", "nowhere"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("role_ar"), "{stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_fall_back_to_environment_variables() {
    let project = aws_common::fresh_project("clienv");
    let tool = Tool::new(project.as_str());
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut command = Tool::bare_command();
        command
            .env("RELEASE_TRACKING_MANIFEST", &tool.manifest)
            .env("RELEASE_TRACKING_ENDPOINT_URL", &tool.endpoint);
        for (name, value) in vars {
            command.env(name, value);
        }
        command.args(args).output().expect("run release_tool")
    };
    let output = run(
        &[("RELEASE_TRACKING_PROJECT", project.as_str())],
        &["--json", "provision"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(doc["state"], "created");
    assert_eq!(doc["store"]["endpoint_url"], tool.endpoint.as_str());

    let output = run(&[("RELEASE_TRACKING_PROJECT", "elsewhere")], &["history"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("elsewhere"));
    // The command line wins over the variable.
    let output = run(
        &[("RELEASE_TRACKING_PROJECT", "elsewhere")],
        &["--project", project.as_str(), "history"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = run(&[("RELEASE_TRACKING_STORE", "aws")], &["history"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&[("RELEASE_TRACKING_STORE", "nowhere")], &["history"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown store") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

/// Promotion on the AWS stores: `prod` requires a day in `stage`; a deploy
/// there is refused after its plan shows the gates, a bypass with a reason
/// goes through and is recorded, `rollback` returns to the release before,
/// and `history ENV` (text and JSON) shows kinds and replaced releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_bypass_and_rollback_on_the_emulator() {
    let project = aws_common::fresh_project("cligate");
    let text = format!(
        r#"{{"{project}": {{"name": "CLI test", "aws_region_name": "{}",
            "environments": [{{"id": "stage", "name": "Staging"}},
              {{"id": "prod", "name": "Production", "requires": ["stage"], "soak": "1d"}}]}}}}"#,
        aws_common::REGION
    );
    let tool = Tool::with_manifest(project.as_str(), &text);
    tool.ok(&["provision"]).await;
    let image = |tag: &str| format!("ecr.example.com/uk.ac.wellcome/archivist:{tag}");
    tool.ok(&["publish", "archivist", &image("ref.1")]).await;
    let first = tool.json(&["prepare"])["release"]["release_id"]
        .as_str()
        .expect("id")
        .to_owned();
    tool.ok(&["deploy", &first, "stage"]).await;

    let output = tool.output(&["deploy", &first, "prod"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("gates: NOT MET"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "release {first} has been current in stage for 0s; prod requires 1d"
        )),
        "{stderr}"
    );
    let bypass = tool.json(&[
        "deploy",
        &first,
        "prod",
        "--bypass-gates",
        "--reason",
        "INC-7",
    ]);
    assert_eq!(bypass["plan"]["gates"]["soak"], "1d", "{bypass:#}");
    assert_eq!(bypass["deployed"]["deployment"]["kind"], "bypass");
    assert_eq!(bypass["deployed"]["deployment"]["bypass_reason"], "INC-7");

    tool.ok(&["publish", "archivist", &image("ref.2")]).await;
    let second = tool.json(&["prepare"])["release"]["release_id"]
        .as_str()
        .expect("id")
        .to_owned();
    tool.ok(&[
        "deploy",
        &second,
        "prod",
        "--bypass-gates",
        "--reason",
        "INC-8",
    ])
    .await;
    let rolled = tool.json(&["rollback", "prod"]);
    assert_eq!(rolled["plan"]["kind"], "rollback", "{rolled:#}");
    assert_eq!(rolled["plan"]["gates"], Value::Null, "{rolled:#}");
    assert_eq!(rolled["deployed"]["release_id"], first.as_str());
    assert_eq!(
        rolled["deployed"]["deployment"]["replaced_release"],
        second.as_str()
    );

    let history = tool.ok(&["history", "prod"]).await;
    let kinds: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert_eq!(kinds, ["rollback", "bypass", "bypass"], "{history}");
    assert!(history.contains(&format!("replaced {second}")), "{history}");
    let doc = tool.json(&["history", "prod"]);
    assert_eq!(doc["deployments"][0]["kind"], "rollback", "{doc:#}");
    assert_eq!(doc["deployments"][2]["replaced_release"], Value::Null);
}
