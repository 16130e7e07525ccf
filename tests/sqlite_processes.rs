//! Several processes on one SQLite file at once lose nothing: sixteen
//! processes append deployments to one release at the same time, and every
//! deployment is recorded.
//!
//! The test runs its own binary sixteen times; an environment variable
//! puts the copies in child mode. Each child opens the store, says `ready`
//! on stdout, and waits for its stdin to close; the parent closes every
//! stdin once all sixteen are ready, so the appends overlap.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use release_tracking::sqlite::{SqliteOptions, SqliteStore};
use release_tracking::{
    Deployment, EnvironmentId, NewRelease, ProjectId, Release, ReleaseId, ReleaseStore, Requester,
    Timestamp,
};

/// Set in a child: `{index}:{path of the store}`.
const CHILD: &str = "RELEASE_TRACKING_SQLITE_TEST_CHILD";
const PROCESSES: i64 = 16;
const EACH: i64 = 15;
const TEST: &str = "sixteen_processes_append_to_one_release";
/// What a child prints once it has the store open.
const READY: &str = "child ready";

fn project() -> ProjectId {
    ProjectId::new("storage").expect("valid project id")
}

fn release_id() -> ReleaseId {
    ReleaseId::new("shared-release").expect("valid release id")
}

fn at(seconds: i64) -> Timestamp {
    "2024-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("valid timestamp")
        .add_micros(seconds * 1_000_000)
}

/// The `j`th deployment of process `i`.
fn deployment(i: i64, j: i64) -> Deployment {
    let env = if j % 2 == 0 { "stage" } else { "prod" };
    Deployment::new(
        EnvironmentId::new(env).expect("valid environment"),
        at(1 + i * EACH + j),
        Requester::new(format!("process-{i}")),
        format!("p{i}-d{j}"),
    )
}

#[test]
fn sixteen_processes_append_to_one_release() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let release = Release::new(NewRelease {
        release_id: release_id(),
        project_id: project(),
        project_name: "Storage".into(),
        date_created: at(0),
        requested_by: Requester::new("parent"),
        description: String::new(),
        images: BTreeMap::new(),
    });
    futures::executor::block_on(store.create_release(&release)).expect("create");

    let exe = std::env::current_exe().expect("the test binary");
    let started = Instant::now();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("{i}:{}", path.display()))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a child")
        })
        .collect();
    // Wait until every child has the store open...
    let mut outputs = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // libtest may print `test … ... ` before it on the same line.
        while !line.trim_end().ends_with(READY) {
            line.clear();
            if lines.read_line(&mut line).expect("read a child's stdout") == 0 {
                let mut stderr = String::new();
                let _ = child
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut stderr));
                panic!("child {i} exited before it was ready: {stderr}");
            }
        }
        // Kept open: the child still writes its test report.
        outputs.push(lines);
    }
    // ...then let them all go at once.
    for child in &mut children {
        drop(child.stdin.take());
    }
    for (i, (child, mut stdout)) in children.into_iter().zip(outputs).enumerate() {
        let mut report = String::new();
        stdout
            .read_to_string(&mut report)
            .expect("read a child's stdout");
        let output = child.wait_with_output().expect("wait for a child");
        assert!(
            output.status.success(),
            "child {i} failed ({}): {report}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let elapsed = started.elapsed();

    let stored = futures::executor::block_on(store.release(&project(), &release_id()))
        .expect("read")
        .expect("exists");
    let deployments = stored.deployments();
    let turns = deployments
        .windows(2)
        .filter(|pair| pair[0].requested_by() != pair[1].requested_by())
        .count();
    eprintln!(
        "{PROCESSES} processes x {EACH} deployments on one release: {:.2} s, \
         {turns} changes of process along the list",
        elapsed.as_secs_f64()
    );
    assert_eq!(
        deployments.len(),
        (PROCESSES * EACH) as usize,
        "a deployment was lost or doubled"
    );
    for i in 0..PROCESSES {
        // Each process's deployments, in the order it made them.
        let mine: Vec<&Deployment> = deployments
            .iter()
            .filter(|d| d.requested_by().id() == format!("process-{i}"))
            .collect();
        let expected: Vec<Deployment> = (0..EACH).map(|j| deployment(i, j)).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "process {i}");
    }
    assert_eq!(
        stored.last_date_deployed(),
        Some(at(PROCESSES * EACH)),
        "last_date_deployed is the newest deployment"
    );
    let recent = futures::executor::block_on(store.recent_deployments(&project(), None, 1000))
        .expect("recent deployments");
    assert_eq!(recent.records.len(), (PROCESSES * EACH) as usize);
    assert_eq!(
        recent.records[0].deployment,
        deployment(PROCESSES - 1, EACH - 1)
    );
}

/// A child: open, say ready, wait for the go, append `EACH` deployments.
fn child(spec: &str) {
    let (index, path) = spec.split_once(':').expect("index:path");
    let i: i64 = index.parse().expect("index");
    // The test is about losing nothing, not about lock waits: a machine
    // busy with other tests must not make a child give up.
    let options = SqliteOptions::default().busy_timeout(Duration::from_secs(120));
    let store = SqliteStore::open_with(path, &options).expect("child opens the store");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}").expect("write");
    stdout.flush().expect("flush");
    std::io::stdin()
        .read_to_end(&mut Vec::new())
        .expect("wait for stdin to close");
    futures::executor::block_on(async {
        for j in 0..EACH {
            store
                .add_deployment(&project(), &release_id(), &deployment(i, j))
                .await
                .unwrap_or_else(|e| panic!("process {i}, deployment {j}: {e}"));
        }
    });
}
