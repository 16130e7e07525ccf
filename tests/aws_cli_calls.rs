//! `release_tool deploy` run as a process against the emulator, its AWS
//! calls counted by the emulator under the process's own access key: the
//! requester asked once, a dry run that writes nothing, warnings, the reads
//! gates add, a rollback. The floor of every command for 1 to 300 services
//! is in `tests/aws_call_floor.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/cli.rs"]
mod cli_common;

use aws_common::{label_pages, name_reads};
use cli_common::release_tool_command;

use release_tracking::{
    Environment, Label, PrepareRequest, Project, ProjectId, ReleaseTracker, Requester,
};

/// A project of `services` services published at `latest`, a release of
/// them, and `unchanged` of them already at `stage`. Returns the release id
/// and the manifest's path.
async fn release_with_services(
    project: &ProjectId,
    services: usize,
    unchanged: usize,
) -> (String, PathBuf) {
    let environments = vec![Environment::new("stage".parse().expect("env"), "Staging")];
    let tracker = ReleaseTracker::new(
        Project::new(project.clone(), "Call counts", environments).expect("project"),
        aws_common::image_store().await,
        aws_common::release_store(project).await,
        Requester::new("arn:aws:iam::123456789012:user/alice"),
    );
    let stage: Label = "stage".parse().expect("label");
    let mut images = Vec::new();
    for i in 0..services {
        let service = format!("service-{i:03}").parse().expect("service");
        let image = format!("ecr.example.com/service-{i:03}:ref.{i}")
            .parse()
            .expect("uri");
        tracker
            .publish(&Label::latest(), &service, &image)
            .await
            .expect("publish");
        images.push((service, image));
    }
    let release = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    for (service, image) in images.iter().take(unchanged) {
        tracker
            .publish(&stage, service, image)
            .await
            .expect("publish");
    }
    let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
    let text = format!(
        r#"{{"{project}": {{"name": "Call counts", "aws_region_name": "{}",
            "environments": [{{"id": "stage", "name": "Staging"}}]}}}}"#,
        aws_common::REGION
    );
    std::fs::write(&manifest, text).expect("write manifest");
    (release.release_id().to_string(), manifest)
}

/// `release_tool` on `manifest` and the emulator, under `access_key`.
fn tool_command(manifest: &PathBuf, access_key: &str) -> Command {
    let mut command = release_tool_command(access_key, aws_common::REGION);
    command
        .arg("--manifest")
        .arg(manifest)
        .arg("--endpoint-url")
        .arg(aws_common::endpoint());
    command
}

/// Runs `release_tool` with `args` under a fresh access key; returns its
/// stdout and the calls the emulator counted for it.
fn run_counted(manifest: &PathBuf, args: &[&str]) -> (String, BTreeMap<String, u64>) {
    let (stdout, _, calls) = run(manifest, args);
    (stdout, calls)
}

/// Runs `release_tool` with `args` under a fresh access key; returns its
/// stdout, its stderr and the calls the emulator counted for it.
fn run(manifest: &PathBuf, args: &[&str]) -> (String, String, BTreeMap<String, u64>) {
    let key = aws_common::unique_access_key("CLI");
    let output = tool_command(manifest, &key)
        .args(args)
        .output()
        .expect("run release_tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "release_tool {args:?} failed: {stderr}\n{stdout}"
    );
    (stdout, stderr, aws_common::operation_counts(&key))
}

/// The environment's lease: taken (`PutItem`), the freeze and the block
/// read (2 `GetItem`), given back (`DeleteItem`), as every deploy of the
/// tool holds it.
const LEASE: [(&str, u64); 3] = [
    ("dynamodb:PutItem", 1),
    ("dynamodb:GetItem", 2),
    ("dynamodb:DeleteItem", 1),
];

/// `calls` with the lease's added.
fn with_lease(calls: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let mut all = aws_common::counts(calls);
    for (operation, n) in LEASE {
        *all.entry(operation.to_owned()).or_default() += n;
    }
    all
}

/// The floor: 1 release read, its services at the environment's label read
/// by name (10 a call), 1 `Query` of the deployment index
/// for the release current in the environment (none here: the index is
/// empty, so one page), `written` writes, 1 record, the lease, and the
/// requester once when STS is asked.
fn expected(services: usize, written: usize, requester: bool) -> BTreeMap<String, u64> {
    let mut calls = vec![
        ("dynamodb:GetItem", 1),
        ("ssm:GetParameters", name_reads(services)),
        ("dynamodb:Query", 1),
        ("dynamodb:UpdateItem", 1),
    ];
    if written > 0 {
        calls.push(("ssm:PutParameter", written as u64));
    }
    if requester {
        calls.push(("sts:GetCallerIdentity", 1));
    }
    with_lease(&calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_asks_sts_for_the_requester_once() {
    let project = aws_common::fresh_project("clists");
    let (release, manifest) = release_with_services(&project, 10, 9).await;
    let (_, calls) = run_counted(&manifest, &["deploy", &release, "stage"]);
    assert_eq!(calls, expected(10, 1, true));
    let _ = std::fs::remove_file(&manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_and_writes_nothing() {
    let project = aws_common::fresh_project("clidry");
    let (release, manifest) = release_with_services(&project, 10, 0).await;
    let (stdout, calls) = run_counted(&manifest, &["deploy", "--dry-run", &release, "stage"]);
    assert_eq!(
        calls,
        aws_common::counts(&[
            ("dynamodb:GetItem", 1),
            ("ssm:GetParametersByPath", label_pages(0)),
            ("dynamodb:Query", 1),
        ]),
        "{stdout}"
    );
    assert!(stdout.contains("10 to write"), "{stdout}");
    let _ = std::fs::remove_file(&manifest);
}

/// Parameters under the environment's label that are not images are shown
/// as warnings by `deploy --dry-run`, which reads the whole label, as
/// `prepare` shows them. A deploy reads only its release's services, by
/// name: a parameter nested below one is in no service's way, and is
/// neither read nor reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_warns_of_parameters_a_deploy_passes_over() {
    let project = aws_common::fresh_project("cliwarn");
    let (release, manifest) = release_with_services(&project, 2, 0).await;
    let nested = format!("/{project}/images/stage/service-000/extra");
    aws_common::ssm_client()
        .await
        .put_parameter()
        .name(&nested)
        .value("ecr.example.com/x:1")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put a nested parameter");
    let dry_run = [
        "--requester",
        "alice",
        "deploy",
        "--dry-run",
        &release,
        "stage",
    ];
    let (_, stderr, _) = run(&manifest, &dry_run);
    assert!(
        stderr.contains("warning: skipped parameter") && stderr.contains(&nested),
        "{stderr}"
    );
    let (stdout, stderr, calls) = run(
        &manifest,
        &["--requester", "alice", "deploy", &release, "stage"],
    );
    assert!(stdout.contains("2 written"), "{stdout}");
    assert!(!stderr.contains(&nested), "{stderr}");
    assert_eq!(calls.get("ssm:GetParameters"), Some(&1), "{calls:?}");
    assert!(!calls.contains_key("ssm:GetParametersByPath"), "{calls:?}");
    let _ = std::fs::remove_file(&manifest);
}

/// Arguments, environment variables, the exit status and a text the tool
/// prints.
type UsageCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

/// `--help`, `--version` and usage errors exit before any AWS set-up: the
/// emulator counts no call under the process's access key, and the parser's
/// exit status and message are what the user sees.
#[test]
fn help_and_usage_errors_make_no_aws_call() {
    let project = aws_common::fresh_project("clihelp");
    let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
    let text = format!(
        r#"{{"{project}": {{"name": "Help", "aws_region_name": "{}",
            "environments": [{{"id": "stage", "name": "Staging"}}]}}}}"#,
        aws_common::REGION
    );
    std::fs::write(&manifest, text).expect("write manifest");
    let cases: [UsageCase; 9] = [
        (&["--help"], &[], 0, "RELEASE_TRACKING_STORE"),
        (&["history", "--help"], &[], 0, "--json"),
        (&["--version"], &[], 0, "release_tool"),
        (&["releases", "--limit", "0"], &[], 2, "1..=1000"),
        (&["history", "--limit", "1001"], &[], 2, "1..=1000"),
        (&["--store", "nowhere", "history"], &[], 2, "unknown store"),
        (
            &["--store", "sqlite:", "history"],
            &[],
            2,
            "`sqlite:` needs the file's path",
        ),
        (
            &["history"],
            &[("RELEASE_TRACKING_STORE", "nowhere")],
            2,
            "unknown store",
        ),
        (&["deploy", "latest"], &[], 2, "<ENVIRONMENT>"),
    ];
    for (args, vars, status, says) in cases {
        let key = aws_common::unique_access_key("CLIHELP");
        let output = tool_command(&manifest, &key)
            .args(args)
            .envs(vars.iter().copied())
            .output()
            .expect("run release_tool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(status), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(!text.contains("store: "), "{args:?} opened a store: {text}");
        assert_eq!(
            aws_common::operation_counts(&key),
            BTreeMap::new(),
            "{args:?}"
        );
    }
    let _ = std::fs::remove_file(&manifest);
}

/// A manifest for `project` with `stage` and a `prod` whose entry has
/// `gates` (JSON members, such as `"requires": ["stage"]`).
fn gated_manifest(project: &ProjectId, gates: &str) -> PathBuf {
    let manifest = std::env::temp_dir().join(format!(
        "{project}-{}.wellcome_project",
        uuid::Uuid::new_v4()
    ));
    let text = format!(
        r#"{{"{project}": {{"name": "Call counts", "aws_region_name": "{}",
            "environments": [{{"id": "stage", "name": "Staging"}},
                             {{"id": "prod", "name": "Production"{gates}}}]}}}}"#,
        aws_common::REGION
    );
    std::fs::write(&manifest, text).expect("write manifest");
    manifest
}

/// Gates cost a read only when they have a soak time: `requires` alone is
/// answered from the release record the deploy reads anyway; with `soak`
/// the deploy also reads the required environment's newest deployments
/// (1 `Query` here), and when refused it stops there: no write, no record,
/// not even the requester.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_add_a_read_only_with_a_soak_and_a_refusal_stops_before_writing() {
    const SERVICES: usize = 10;
    let project = aws_common::fresh_project("cligates");
    let (release, ungated) = release_with_services(&project, SERVICES, 0).await;
    // Into stage first (no gates there).
    run_counted(
        &ungated,
        &["--requester", "alice", "deploy", &release, "stage"],
    );

    let requires = gated_manifest(&project, r#", "requires": ["stage"]"#);
    let (stdout, calls) = run_counted(
        &requires,
        &["--requester", "alice", "deploy", &release, "prod"],
    );
    assert_eq!(calls, expected(SERVICES, SERVICES, false), "{stdout}");
    assert!(stdout.contains("gates: pass"), "{stdout}");

    let soak = gated_manifest(&project, r#", "requires": ["stage"], "soak": "1d""#);
    let key = aws_common::unique_access_key("CLIGATE");
    let output = tool_command(&soak, &key)
        .args(["--requester", "alice", "deploy", &release, "prod"])
        .output()
        .expect("run release_tool");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("prod requires 1d"), "{stderr}");
    assert_eq!(
        aws_common::operation_counts(&key),
        aws_common::counts(&[
            ("dynamodb:GetItem", 1),
            ("ssm:GetParameters", name_reads(SERVICES)),
            // The release current in prod, and stage's newest deployments.
            ("dynamodb:Query", 2),
        ]),
        "{stderr}"
    );
    for manifest in [ungated, requires, soak] {
        let _ = std::fs::remove_file(&manifest);
    }
}

/// A rollback reads the environment's history once (one `Query`), then
/// deploys: the release rolled back to and the one it replaces (2
/// `GetItem`), the label, the lease, the changed parameter and the record.
/// A deploy that replaces another release gets that release (for the
/// services it changes) from its one `Query`: the deployment index's items
/// are whole releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_one_history_read_and_a_deploy() {
    const SERVICES: usize = 10;
    let project = aws_common::fresh_project("cliroll");
    let (first, manifest) = release_with_services(&project, SERVICES, 0).await;
    let tracker = ReleaseTracker::new(
        Project::new(
            project.clone(),
            "Call counts",
            vec![Environment::new("stage".parse().expect("env"), "Staging")],
        )
        .expect("project"),
        aws_common::image_store().await,
        // The table exists already.
        release_tracking::aws::DynamoDbReleaseStore::new(&aws_common::sdk_config().await),
        Requester::new("arn:aws:iam::123456789012:user/alice"),
    );
    tracker
        .publish(
            &Label::latest(),
            &"service-000".parse().expect("service"),
            &"ecr.example.com/service-000:ref.new".parse().expect("uri"),
        )
        .await
        .expect("publish");
    let second = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release
        .release_id()
        .to_string();
    for release in [&first, &second] {
        run_counted(
            &manifest,
            &["--requester", "alice", "deploy", release, "stage"],
        );
    }

    let (stdout, calls) = run_counted(&manifest, &["--requester", "alice", "rollback", "stage"]);
    assert!(
        stdout.contains(&format!("rolled back stage to {first}: 1 written")),
        "{stdout}"
    );
    let expected = |releases_read, label_read| {
        with_lease(&[
            ("dynamodb:Query", 1),
            ("dynamodb:GetItem", releases_read),
            label_read,
            ("ssm:PutParameter", 1),
            ("dynamodb:UpdateItem", 1),
        ])
    };
    // A rollback reads the whole label beside the history (it knows the
    // release only after the history).
    let pages = ("ssm:GetParametersByPath", label_pages(SERVICES));
    assert_eq!(calls, expected(2, pages), "{stdout}");

    let (stdout, calls) = run_counted(
        &manifest,
        &["--requester", "alice", "deploy", &second, "stage"],
    );
    assert!(stdout.contains(&format!("(replacing {first})")), "{stdout}");
    // A deploy reads the release it replaces from the history read.
    let by_name = ("ssm:GetParameters", name_reads(SERVICES));
    assert_eq!(calls, expected(1, by_name), "{stdout}");
    let _ = std::fs::remove_file(&manifest);
}
