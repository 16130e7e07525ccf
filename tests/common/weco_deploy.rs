//! Runs the real `weco-deploy` 4.1.6 (PyPI; `scripts/test.sh` installs it
//! into `.venv-weco/` and sets [`PROGRAM_VAR`]) against the emulator, as a
//! child process, to check that earlier readers read what this crate writes.
//!
//! What it needs to run against moto:
//! - `AWS_ENDPOINT_URL`: boto3 ≥ 1.28 sends every client there (weco-deploy
//!   has no endpoint option).
//! - A manifest with `role_arn` and `aws_region_name` (a `KeyError`
//!   without them). It assumes the role through STS for each of its five
//!   clients; moto accepts any role, and serves the assumed credentials the
//!   data of the role's account, so the role is in moto's default account
//!   (123456789012), where the tests' other clients write.
//! - At start-up it also calls `GetCallerIdentity` and lists ECS clusters and
//!   services (none on the emulator) and calls `DescribeTable`, creating the
//!   table only when it is missing: the tests provision it first with
//!   `DynamoDbReleaseStore::ensure_table`, so that table is the one read.
//!   4.1.6 makes no other network call (no update check).
//! - `TZ=UTC`: `show-deployments` compares the (UTC) deployment dates with
//!   the local time and fails an `assert` on a date in its future.
//!
//! Include with `#[path = "common/weco_deploy.rs"] mod weco_deploy;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The variable `scripts/test.sh` sets to the `weco-deploy` executable.
pub const PROGRAM_VAR: &str = "RELEASE_TRACKING_WECO_DEPLOY";

/// The role the manifests name: in moto's default account, which holds the
/// data every test writes (see the module docs).
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/weco-deploy-reader";

/// How long one run may take before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The `weco-deploy` executable. Panics (fails the test, never skips it)
/// when [`PROGRAM_VAR`] is not set or names no file.
pub fn program() -> PathBuf {
    let path = match std::env::var_os(PROGRAM_VAR) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{PROGRAM_VAR} is not set. These tests run the real weco-deploy 4.1.6: run them \
             with `bash scripts/test.sh`, which installs it into .venv-weco and sets it"
        ),
    };
    assert!(
        path.is_file(),
        "{PROGRAM_VAR}={} names no file; `bash scripts/test.sh` installs weco-deploy there",
        path.display()
    );
    path
}

/// A manifest for `project` in the shape weco-deploy 4.1.6 reads, with
/// environments `stage` and `prod`.
pub fn manifest(project: &str, region: &str) -> String {
    serde_json::json!({
        project: {
            "name": "weco-deploy reader test",
            "role_arn": ROLE_ARN,
            "aws_region_name": region,
            "environments": [
                {"id": "stage", "name": "Staging"},
                {"id": "prod", "name": "Production"}
            ]
        }
    })
    .to_string()
}

/// One project's `weco-deploy`: a private working directory holding its
/// `.wellcome_project`, removed on drop.
pub struct WecoDeploy {
    program: PathBuf,
    dir: PathBuf,
    project: String,
    endpoint: String,
    region: String,
}

/// What one run did.
#[derive(Debug)]
pub struct Run {
    /// The arguments after `weco-deploy`.
    pub args: Vec<String>,
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The `AWS_ACCESS_KEY_ID` it ran with, unique to this run: the emulator
    /// counts its calls under it (its own STS calls; the calls it makes with
    /// the assumed role's credentials are counted under those).
    pub access_key: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weco-deploy {:?}: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.status, self.stdout, self.stderr
        )
    }
}

impl WecoDeploy {
    /// `weco-deploy` for `project` on the emulator at `endpoint`, with
    /// [`manifest`].
    pub fn new(endpoint: &str, project: &str, region: &str) -> WecoDeploy {
        WecoDeploy::with_manifest(endpoint, project, region, &manifest(project, region))
    }

    /// `weco-deploy` for `project` with the manifest text `manifest`.
    pub fn with_manifest(
        endpoint: &str,
        project: &str,
        region: &str,
        manifest: &str,
    ) -> WecoDeploy {
        let program = program();
        let dir = std::env::temp_dir().join(format!(
            "weco-deploy-{project}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let file = dir.join(".wellcome_project");
        std::fs::write(&file, manifest).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        WecoDeploy {
            program,
            dir,
            project: project.to_owned(),
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
        }
    }

    /// The manifest's path.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(".wellcome_project")
    }

    /// The full command line of a run with `args` (for messages and docs).
    pub fn command_line(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![
            self.program.display().to_string(),
            "--project-file".to_owned(),
            self.manifest_path().display().to_string(),
            "--project-id".to_owned(),
            self.project.clone(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// Runs `weco-deploy --project-file … --project-id … ARGS` in its
    /// working directory with only the environment it needs (no inherited
    /// AWS settings, no `~/.aws`), and a fresh access key. Panics if it cannot
    /// start or runs longer than two minutes.
    pub fn run(&self, args: &[&str]) -> Run {
        let argv = self.command_line(args);
        let access_key = unique_key();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("TZ", "UTC")
            .env("PYTHONIOENCODING", "utf-8")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", &self.region)
            .env("AWS_REGION", &self.region)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("no-aws-credentials"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{argv:?} ran over {TIMEOUT:?}; killed");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for {argv:?}: {e}"),
            }
        };
        let join = |handle: std::thread::JoinHandle<String>| handle.join().unwrap_or_default();
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            status,
            stdout: join(stdout),
            stderr: join(stderr),
            access_key,
        }
    }

    /// [`run`](WecoDeploy::run), asserting it exits 0; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(run.status.success(), "expected exit 0 from {run}");
        run.stdout
    }
}

impl Drop for WecoDeploy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique_key() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("WECO{}", &id[..16])
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The rows of a table that `tabulate` printed in its default format
/// (headers, a line of dash groups, rows), each keyed by header. Panics
/// (with the output) if `output` holds no such table.
pub fn parse_table(output: &str) -> Vec<BTreeMap<String, String>> {
    let lines: Vec<&str> = output.lines().collect();
    let Some(rule) = lines
        .iter()
        .position(|l| !l.trim().is_empty() && l.chars().all(|c| c == '-' || c == ' '))
    else {
        panic!("no table (no line of dashes) in:\n{output}");
    };
    assert!(rule > 0, "a table with no header line in:\n{output}");
    // Column spans, from the dash groups.
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in lines[rule].char_indices().chain([(lines[rule].len(), ' ')]) {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    let cell = |line: &str, column: usize| -> String {
        let (from, to) = spans[column];
        let to = if column + 1 == spans.len() {
            line.len()
        } else {
            to
        };
        line.get(from.min(line.len())..to.min(line.len()))
            .unwrap_or_else(|| panic!("a table cell is not at a character boundary in:\n{output}"))
            .trim()
            .to_owned()
    };
    let headers: Vec<String> = (0..spans.len()).map(|c| cell(lines[rule - 1], c)).collect();
    lines[rule + 1..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            headers
                .iter()
                .enumerate()
                .map(|(c, header)| (header.clone(), cell(line, c)))
                .collect()
        })
        .collect()
}
