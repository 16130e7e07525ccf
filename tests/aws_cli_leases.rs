//! Leases between `release_tool` processes on the emulator: two deploys to
//! one environment at once (one deploys, the other is told who holds it),
//! and a deploy killed while it holds the lease (the next deploy is refused
//! until the lease expires, then proceeds). The first process's calls are
//! slowed by the emulator (a per-key delay) so that it is surely still
//! deploying when the second starts. Run by `scripts/test.sh`.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use release_tracking::aws::DynamoDbReleaseStore;
use release_tracking::control::Lease;
use release_tracking::{ControlStore, EnvironmentId, ProjectId};

#[path = "common/aws.rs"]
mod aws_common;
#[path = "common/cli.rs"]
mod cli_common;

struct Scene {
    project: ProjectId,
    manifest: std::path::PathBuf,
    release: String,
}

impl Scene {
    async fn new() -> Scene {
        let project = aws_common::fresh_project("leases");
        let manifest = std::env::temp_dir().join(format!("{project}.wellcome_project"));
        std::fs::write(
            &manifest,
            format!(
                r#"{{"{project}": {{"name": "Leases", "aws_region_name": "{}",
                    "environments": [{{"id": "stage", "name": "Staging"}}, {{"id": "prod", "name": "Production"}}]}}}}"#,
                aws_common::REGION
            ),
        )
        .expect("write manifest");
        let mut scene = Scene {
            project,
            manifest,
            release: String::new(),
        };
        let key = aws_common::unique_access_key("SETUP");
        scene.ok(&key, &["provision"]);
        for i in 0..5 {
            let image = format!(
                "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/service-{i}:ref.1"
            );
            scene.ok(&key, &["publish", &format!("service-{i}"), &image]);
        }
        let prepared = scene.ok(&key, &["prepare", "--json"]);
        let doc: serde_json::Value = serde_json::from_str(&prepared).expect("JSON");
        scene.release = doc["release"]["release_id"]
            .as_str()
            .expect("release id")
            .to_owned();
        scene
    }

    fn command(&self, key: &str, requester: &str, args: &[&str]) -> Command {
        let mut command = cli_common::release_tool_command(key, aws_common::REGION);
        command
            .arg("--manifest")
            .arg(&self.manifest)
            .arg("--endpoint-url")
            .arg(aws_common::endpoint())
            .args(["--requester", requester])
            .args(args);
        command
    }

    fn ok(&self, key: &str, args: &[&str]) -> String {
        let output = self.command(key, "setup", args).output().expect("run");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A deploy of the release to `environment` by `requester`, under
    /// `key`, as a running process.
    fn spawn_deploy(&self, key: &str, requester: &str, environment: &str, ttl: u64) -> Child {
        self.command(
            key,
            requester,
            &[
                "--lease-ttl",
                &ttl.to_string(),
                "deploy",
                &self.release,
                environment,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start release_tool")
    }

    fn deploy(&self, key: &str, requester: &str, environment: &str) -> Output {
        self.command(key, requester, &["deploy", &self.release, environment])
            .output()
            .expect("run release_tool")
    }

    async fn lease(&self, environment: &str) -> Option<Lease> {
        let store = DynamoDbReleaseStore::new(&aws_common::sdk_config().await);
        let environment: EnvironmentId = environment.parse().expect("environment");
        store
            .lease(&self.project, &environment)
            .await
            .expect("read the lease")
    }

    /// Waits until `environment` has a lease (a deploy holds it).
    async fn wait_for_lease(&self, environment: &str) -> Lease {
        let started = Instant::now();
        loop {
            if let Some(lease) = self.lease(environment).await {
                return lease;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no deploy took the lease on {environment}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// A slow client: every call of `key` waits `ms` in the emulator.
fn slow(key: &str, ms: u32) {
    aws_common::emulator_control("PUT", &format!("/__delay/{key}?ms={ms}"));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_deploys_one_deploys_and_the_other_names_the_holder() {
    let scene = Scene::new().await;
    let alice = aws_common::unique_access_key("ALICE");
    slow(&alice, 250);
    let first = scene.spawn_deploy(&alice, "alice", "prod", 600);
    let lease = scene.wait_for_lease("prod").await;
    assert_eq!(lease.holder.id(), "alice");

    let second = scene.deploy(&aws_common::unique_access_key("BOB"), "bob", "prod");
    let text = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{text}");
    assert!(
        text.contains("environment `prod` is being deployed by alice"),
        "{text}"
    );
    assert!(
        text.contains(&scene.release),
        "the holder's release: {text}"
    );

    let first = first.wait_with_output().expect("the first deploy ends");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("5 written"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    assert!(
        scene.lease("prod").await.is_none(),
        "the lease was given back"
    );
    // Now the second deploy goes ahead (nothing left to write).
    let again = scene.deploy(&aws_common::unique_access_key("BOB"), "bob", "prod");
    assert!(again.status.success(), "{}", stderr(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploys_lease_expires_and_the_next_deploy_proceeds() {
    let scene = Scene::new().await;
    let carol = aws_common::unique_access_key("CAROL");
    slow(&carol, 250);
    let mut killed = scene.spawn_deploy(&carol, "carol", "stage", 3);
    let lease = scene.wait_for_lease("stage").await;
    killed.kill().expect("kill the deploy");
    let _ = killed.wait();

    let dave = aws_common::unique_access_key("DAVE");
    let refused = scene.deploy(&dave, "dave", "stage");
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("environment `stage` is being deployed by carol"),
        "{text}"
    );
    assert!(
        scene.lease("stage").await.is_some(),
        "the killed deploy's lease is left"
    );

    // Wait out the lease (it was taken at most 3 s ago), then deploy.
    let now = release_tracking::Clock::now(&release_tracking::SystemClock);
    let left = (lease.expires.unix_micros() - now.unix_micros()).max(0) as u64;
    tokio::time::sleep(Duration::from_micros(left) + Duration::from_millis(300)).await;
    let proceeded = scene.deploy(&dave, "dave", "stage");
    assert!(proceeded.status.success(), "{}", stderr(&proceeded));
    assert!(
        String::from_utf8_lossy(&proceeded.stdout).contains("deployed"),
        "{}",
        String::from_utf8_lossy(&proceeded.stdout)
    );
    assert!(scene.lease("stage").await.is_none());
}
