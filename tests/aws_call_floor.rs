//! The floor of AWS calls of `release_tool`'s commands, each run as a
//! process and counted by the emulator under the process's own access key,
//! for 1, 10, 95 and 300 services and 0, 1 or every service changed:
//!
//! - `prepare`: the label's ⌈N/10⌉ pages, 1 create (and 1 `Query` for the
//!   newest release, whose record shape it follows, unless a shape is given);
//! - `deploy`: 1 release read, then its services at the environment's label
//!   by name (⌈N/10⌉ `GetParameters`, side by side), 1 `Query` of
//!   the deployment index for the release current there (the audit trail's
//!   replaced release; when that is another release, 1 `GetItem` more, for
//!   the services the deploy changes), k writes, 1 record; and, as every
//!   deploy holds its environment's lease, 1 lease
//!   taken (`PutItem`), the environment's freeze and the release's block
//!   read side by side (2 `GetItem`), 1 lease given back (`DeleteItem`);
//! - `release-deploy`: the source label read once, for the release and its
//!   plan (the release is never read back), then as `deploy`;
//! - the requester (STS `GetCallerIdentity`) at most once per process, and
//!   only by the commands that record one.
//!
//! Page counts are what AWS returns (⌈n/10⌉, one for an empty label); moto
//! adds an empty page after a full last one, counted by
//! [`aws_common::label_pages`]. Also here: throttled calls are retried
//! (adaptive retry mode) and a burst of throttled writes slows a deploy
//! instead of failing it.

#![cfg(feature = "aws")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use futures::stream::{self, StreamExt};
use serde_json::Value;

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/cli.rs"]
mod cli_common;

use aws_common::{label_pages, name_reads};
use release_tracking::aws::AwsSettings;
use release_tracking::{Environment, Project, ProjectId};

const PAGES: &str = "ssm:GetParametersByPath";
const NAMES: &str = "ssm:GetParameters";
const STS: &str = "sts:GetCallerIdentity";
/// The reads a deploy makes of its controls: the freeze and the block.
const CONTROL_READS: u64 = 2;

/// A project in the emulator with its table, a manifest naming its
/// environments, and `n` services published at `latest`.
struct Fixture {
    project: ProjectId,
    manifest: PathBuf,
    services: Vec<String>,
}

/// The environments of [`Fixture`]'s manifest.
const ENVIRONMENTS: [&str; 5] = ["same", "one", "empty", "fresh", "stage"];

fn image(service: &str, tag: &str) -> String {
    format!("760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}")
}

impl Fixture {
    async fn new(prefix: &str, n: usize) -> Fixture {
        let project = aws_common::fresh_project(prefix);
        aws_common::release_store(&project).await;
        let environments: Vec<String> = ENVIRONMENTS
            .iter()
            .map(|e| format!(r#"{{"id": "{e}", "name": "{e}"}}"#))
            .collect();
        let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
        let text = format!(
            r#"{{"{project}": {{"name": "Call floor", "aws_region_name": "{}",
                "environments": [{}]}}}}"#,
            aws_common::REGION,
            environments.join(", ")
        );
        std::fs::write(&manifest, text).expect("write manifest");
        let fixture = Fixture {
            project,
            manifest,
            services: (0..n).map(|i| format!("service-{i:03}")).collect(),
        };
        fixture.put_label("latest", |_| "a").await;
        fixture
    }

    /// Writes every service's image at `label`, tagged `tag(service index)`,
    /// 16 at a time (set-up, not counted).
    async fn put_label(&self, label: &str, tag: impl Fn(usize) -> &'static str) {
        let ssm = aws_common::ssm_client().await;
        let writes = self.services.iter().enumerate().map(|(i, service)| {
            let ssm = ssm.clone();
            let name = format!("/{}/images/{label}/{service}", self.project);
            let value = image(service, tag(i));
            async move {
                ssm.put_parameter()
                    .name(&name)
                    .value(value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}"));
            }
        });
        stream::iter(writes)
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
    }

    /// Runs `release_tool` under `key` (whose calls the emulator counts).
    fn output(&self, key: &str, args: &[&str]) -> Output {
        cli_common::release_tool_command(key, aws_common::REGION)
            .arg("--manifest")
            .arg(&self.manifest)
            .arg("--endpoint-url")
            .arg(aws_common::endpoint())
            .args(args)
            .output()
            .expect("run release_tool")
    }

    /// Runs `release_tool --json ARGS` under a fresh access key; returns its
    /// document and the calls the emulator counted for it.
    fn run(&self, args: &[&str]) -> (Value, BTreeMap<String, u64>) {
        let key = aws_common::unique_access_key("FLOOR");
        let mut argv = vec!["--json"];
        argv.extend_from_slice(args);
        let output = self.output(&key, &argv);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "release_tool {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let doc = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("release_tool {args:?}: not JSON ({e}): {stdout}"));
        (doc, aws_common::operation_counts(&key))
    }

    /// The images at `label`, by service.
    async fn label(&self, label: &str) -> BTreeMap<String, String> {
        let ssm = aws_common::ssm_client().await;
        let mut pages = ssm
            .get_parameters_by_path()
            .path(format!("/{}/images/{label}", self.project))
            .recursive(true)
            .into_paginator()
            .send();
        let mut images = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for parameter in page.expect("read the label").parameters() {
                let name = parameter.name().unwrap_or_default();
                let service = name.rsplit('/').next().unwrap_or_default().to_owned();
                images.insert(service, parameter.value().unwrap_or_default().to_owned());
            }
        }
        images
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// Expected counts; operations counted 0 times are left out, as the
/// emulator leaves them out.
fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let made: Vec<(&str, u64)> = pairs.iter().copied().filter(|(_, n)| *n > 0).collect();
    aws_common::counts(&made)
}

fn written(doc: &Value) -> usize {
    doc["deployed"]["written"]
        .as_array()
        .map_or(usize::MAX, Vec::len)
}

/// Every command that writes, for `n` services: `prepare`, `deploy` with 0,
/// 1 and `n` changed (into a label that holds every service, or none), and
/// `release-deploy`.
async fn floor(n: usize) {
    let f = Fixture::new("floor", n).await;
    let pages = label_pages(n);

    let (doc, made) = f.run(&["prepare"]);
    assert_eq!(
        made,
        calls(&[
            (PAGES, pages),
            ("dynamodb:Query", 1),
            ("dynamodb:PutItem", 1),
            (STS, 1),
        ]),
        "prepare, {n} services"
    );
    let release = doc["release"]["release_id"]
        .as_str()
        .expect("a release id")
        .to_owned();
    // A fixed record shape needs no newest release; a given requester, no STS.
    let (_, made) = f.run(&[
        "--record-shape",
        "weco-deploy4",
        "--requester",
        "alice",
        "prepare",
    ]);
    assert_eq!(
        made,
        calls(&[(PAGES, pages), ("dynamodb:PutItem", 1)]),
        "prepare with a shape and a requester, {n} services"
    );

    f.put_label("same", |_| "a").await;
    f.put_label("one", |i| if i == 0 { "old" } else { "a" })
        .await;
    for (environment, changed, held) in [("same", 0, n), ("one", 1, n), ("empty", n, 0)] {
        let (doc, made) = f.run(&["deploy", &release, environment]);
        assert_eq!(
            made,
            calls(&[
                ("dynamodb:GetItem", 1 + CONTROL_READS),
                // The release's services, whatever the label holds.
                (NAMES, name_reads(n)),
                // Nothing deployed there yet: no release replaced to read.
                ("dynamodb:Query", 1),
                ("dynamodb:PutItem", 1),
                ("ssm:PutParameter", changed as u64),
                ("dynamodb:UpdateItem", 1),
                ("dynamodb:DeleteItem", 1),
                (STS, 1),
            ]),
            "deploy of {n} services, {changed} changed, into a label of {held}"
        );
        assert_eq!(written(&doc), changed, "{environment}: {doc}");
    }
    assert_eq!(f.label("empty").await, f.label("latest").await);

    let (doc, made) = f.run(&["release-deploy", "fresh"]);
    assert_eq!(
        made,
        calls(&[
            (PAGES, pages + label_pages(0)),
            // The newest release (its shape), and the release current in
            // the environment (none).
            ("dynamodb:Query", 2),
            // The release, and the lease.
            ("dynamodb:PutItem", 2),
            ("dynamodb:GetItem", CONTROL_READS),
            ("ssm:PutParameter", n as u64),
            ("dynamodb:UpdateItem", 1),
            ("dynamodb:DeleteItem", 1),
            (STS, 1),
        ]),
        "release-deploy of {n} services"
    );
    assert_eq!(written(&doc), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_floor_of_1_service() {
    floor(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_floor_of_10_services() {
    floor(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_floor_of_95_services() {
    floor(95).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_floor_of_300_services() {
    floor(300).await;
}

/// Only the commands that record a requester ask STS who the caller is,
/// and each asks once; the others make their floor of reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_commands_that_record_a_requester_ask_sts() {
    let f = Fixture::new("floorsts", 10).await;
    let pages = label_pages(10);
    let (doc, _) = f.run(&["prepare"]);
    let first = doc["release"]["release_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (doc, made) = f.run(&["update", &first, "service-000"]);
    assert_eq!(
        made,
        calls(&[
            ("dynamodb:GetItem", 1),
            ("ssm:GetParameter", 1),
            ("dynamodb:Query", 1),
            ("dynamodb:PutItem", 1),
            (STS, 1),
        ]),
        "update"
    );
    let second = doc["release"]["release_id"]
        .as_str()
        .expect("id")
        .to_owned();
    f.run(&["deploy", &first, "stage"]);

    let image = image("service-000", "b");
    let reads: [(&[&str], BTreeMap<String, u64>); 9] = [
        (&["show-release", &first], calls(&[("dynamodb:GetItem", 1)])),
        (&["show-release", "latest"], calls(&[("dynamodb:Query", 1)])),
        (&["releases"], calls(&[("dynamodb:Query", 1)])),
        (
            &["diff", &first, &second],
            calls(&[("dynamodb:GetItem", 2)]),
        ),
        (&["history"], calls(&[("dynamodb:Query", 1)])),
        (
            &["history", "--environment", "stage"],
            calls(&[("dynamodb:Query", 1)]),
        ),
        (
            &["current", "stage"],
            calls(&[
                ("dynamodb:Query", 1),
                // The release, and the lease, freeze and blocks it shows.
                ("dynamodb:GetItem", 1 + 3),
                (PAGES, pages),
            ]),
        ),
        (
            &["deploy", "--dry-run", &second, "stage"],
            // The release, and the one current in stage with its release
            // (the deployment index's items are whole releases).
            calls(&[
                ("dynamodb:GetItem", 1),
                ("dynamodb:Query", 1),
                (PAGES, pages),
            ]),
        ),
        (
            &["publish", "service-000", &image],
            calls(&[("ssm:PutParameter", 1)]),
        ),
    ];
    for (args, expected) in reads {
        let (_, made) = f.run(args);
        assert_eq!(made, expected, "{args:?}");
    }
    let (_, made) = f.run(&["provision"]);
    assert!(!made.contains_key(STS), "provision: {made:?}");
}

/// The configuration `release_tool` and [`AwsSettings`] build retries in
/// the SDK's adaptive mode: throttling answers make the client wait and
/// send more slowly, rather than use up attempts at full speed; 5 attempts,
/// at most 2 s apart, so that a throttled write waits seconds, not the
/// SDK's 20 s.
#[tokio::test]
async fn aws_settings_retry_in_adaptive_mode() {
    use aws_config::retry::RetryMode;
    use std::time::Duration;
    let project = Project::new(
        "adaptive".parse().expect("id"),
        "Adaptive",
        vec![Environment::new("stage".parse().expect("env"), "Staging")],
    )
    .expect("project")
    .with_aws_region("eu-west-1");
    let aws = AwsSettings::new().load(&project).await.expect("load");
    let retry = aws.config().retry_config().expect("a retry configuration");
    assert_eq!(
        (retry.mode(), retry.max_attempts(), retry.max_backoff()),
        (RetryMode::Adaptive, 5, Duration::from_secs(2))
    );
    let aws = AwsSettings::new()
        .max_attempts(2)
        .max_backoff(Duration::from_millis(500))
        .load(&project)
        .await
        .expect("load");
    let retry = aws.config().retry_config().expect("a retry configuration");
    assert_eq!(
        (retry.mode(), retry.max_attempts(), retry.max_backoff()),
        (RetryMode::Adaptive, 2, Duration::from_millis(500))
    );
}

/// Tells the emulator to answer the next `count` `operation` calls of
/// `key` with ThrottlingException.
fn throttle(key: &str, count: u32, operation: &str) {
    let url = aws_common::endpoint();
    let host = url.trim_start_matches("http://");
    let request = format!(
        "POST /__throttle/{key}?count={count}&operation={operation} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the emulator");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("read");
    assert!(
        response.starts_with("HTTP/1.1 204") || response.starts_with("HTTP/1.0 204"),
        "the emulator has no throttle control (scripts/moto_server.py): {response}"
    );
}

/// Five writes answered "Rate exceeded" at once: each is retried and the
/// deploy completes, the throttled attempts counted as calls. Written one
/// at a time, the first write gets all five answers, runs out of attempts,
/// and the deploy stops there, saying exactly what it wrote (nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_are_retried_and_the_deploy_completes() {
    let f = Fixture::new("throttle", 10).await;
    let (doc, _) = f.run(&["prepare"]);
    let release = doc["release"]["release_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let key = aws_common::unique_access_key("THROTTLE");
    throttle(&key, 5, "ssm:PutParameter");
    let output = f.output(&key, &["--requester", "alice", "deploy", &release, "empty"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("10 written"), "{text}");
    assert_eq!(
        aws_common::operation_counts(&key),
        calls(&[
            ("dynamodb:GetItem", 1 + CONTROL_READS),
            ("dynamodb:Query", 1),
            ("dynamodb:PutItem", 1),
            ("dynamodb:DeleteItem", 1),
            (NAMES, name_reads(10)),
            ("ssm:PutParameter", 10 + 5),
            ("dynamodb:UpdateItem", 1),
        ])
    );
    assert_eq!(f.label("empty").await, f.label("latest").await);

    let key = aws_common::unique_access_key("THROTTLE");
    throttle(&key, 5, "ssm:PutParameter");
    let output = f.output(
        &key,
        &[
            "--requester",
            "alice",
            "--write-concurrency",
            "1",
            "deploy",
            &release,
            "stage",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed at service `service-000`; written: (none); not written: service-000, service-001"),
        "{stderr}"
    );
    assert!(stderr.contains("throttled"), "{stderr}");
    assert_eq!(
        aws_common::operation_counts(&key),
        calls(&[
            ("dynamodb:GetItem", 1 + CONTROL_READS),
            ("dynamodb:Query", 1),
            ("dynamodb:PutItem", 1),
            ("dynamodb:DeleteItem", 1),
            (NAMES, name_reads(10)),
            ("ssm:PutParameter", 5),
        ])
    );
    assert!(f.label("stage").await.is_empty());
}
