//! Deployment controls on the SQLite store beyond the conformance checks:
//! several processes contending for one lease (exactly one wins, every
//! other is told who), several processes recording events at once (each
//! numbered once, none lost), and a file of schema version 2 migrated to
//! hold them.
//!
//! The process test runs its own binary; an environment variable puts the
//! copies in child mode. Each child opens the store, says `ready`, waits for
//! its stdin to close (the parent closes all at once), then acts and prints
//! one result line.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use release_tracking::sqlite::{SqliteOptions, SqliteStore, SCHEMA_VERSION};
use release_tracking::{
    ControlAction, ControlChange, ControlStore, EnvironmentId, Error, LeaseId, LeaseOperation,
    LeaseRequest, ProjectId, Reason, ReleaseId, ReleaseStore, Requester, Timestamp,
};
use rusqlite::Connection;

const CHILD: &str = "RELEASE_TRACKING_SQLITE_CONTROL_CHILD";
const PROCESSES: usize = 8;
const TEST: &str = "several_processes_contend_for_one_lease_and_record_events";
const READY: &str = "child ready";
const RESULT: &str = "child result:";

fn project() -> ProjectId {
    ProjectId::new("storage").expect("valid project id")
}

fn prod() -> EnvironmentId {
    EnvironmentId::new("prod").expect("valid environment id")
}

fn at(seconds: i64) -> Timestamp {
    "2024-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("valid timestamp")
        .add_micros(seconds * 1_000_000)
}

fn request(i: usize) -> LeaseRequest {
    LeaseRequest::new(
        Requester::new(format!("process-{i}")),
        LeaseOperation::Deploy,
        ReleaseId::new("release-1").expect("valid release id"),
        format!("host-{i}"),
        Duration::from_secs(600),
    )
    .expect("valid request")
    .with_lease_id(LeaseId::new(format!("lease-{i}")).expect("valid lease id"))
}

#[test]
fn several_processes_contend_for_one_lease_and_record_events() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");

    let exe = std::env::current_exe().expect("the test binary");
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
    let mut outputs = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
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
        outputs.push(lines);
    }
    for child in &mut children {
        drop(child.stdin.take());
    }
    let mut results = Vec::new();
    for (i, (child, mut stdout)) in children.into_iter().zip(outputs).enumerate() {
        let mut report = String::new();
        stdout.read_to_string(&mut report).expect("read");
        let output = child.wait_with_output().expect("wait for a child");
        assert!(
            output.status.success(),
            "child {i} failed ({}): {report}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let result = report
            .lines()
            .find_map(|l| l.split_once(RESULT).map(|(_, r)| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("child {i} printed no result: {report}"));
        results.push(result);
    }

    let winners: Vec<usize> = (0..PROCESSES).filter(|&i| results[i] == "won").collect();
    assert_eq!(winners.len(), 1, "exactly one process wins: {results:?}");
    let winner = winners[0];
    for (i, result) in results.iter().enumerate() {
        if i != winner {
            assert_eq!(
                result,
                &format!("busy lease-{winner} process-{winner}"),
                "process {i} is told who holds the lease"
            );
        }
    }
    futures::executor::block_on(async {
        let held = store.lease(&project(), &prod()).await.expect("lease");
        assert_eq!(
            held,
            Some(request(winner).lease_at(&project(), &prod(), at(0)))
        );
        // Every process froze its own environment: PROCESSES events, each
        // numbered once, none lost.
        let events = store
            .control_events(&project(), None, 100)
            .await
            .expect("events");
        let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        let expected: Vec<u64> = (1..=PROCESSES as u64).rev().collect();
        assert_eq!(sequences, expected);
        let mut frozen: Vec<String> = events
            .iter()
            .map(|e| match &e.change {
                ControlChange::Freeze { environment } => environment.to_string(),
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        frozen.sort();
        let mut expected: Vec<String> = (0..PROCESSES).map(|i| format!("env-{i}")).collect();
        expected.sort();
        assert_eq!(frozen, expected);
    });
}

/// A child: open, say ready, wait for the go, contend for the lease, then
/// freeze its own environment.
fn child(spec: &str) {
    let (index, path) = spec.split_once(':').expect("index:path");
    let i: usize = index.parse().expect("index");
    let options = SqliteOptions::default().busy_timeout(Duration::from_secs(120));
    let store = SqliteStore::open_with(path, &options).expect("child opens the store");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}").expect("write");
    stdout.flush().expect("flush");
    std::io::stdin()
        .read_to_end(&mut Vec::new())
        .expect("wait for stdin to close");
    let result = futures::executor::block_on(async {
        let result = match store
            .acquire_lease(&project(), &prod(), &request(i), at(0))
            .await
        {
            Ok(_) => "won".to_owned(),
            Err(Error::EnvironmentBusy { lease }) => {
                format!("busy {} {}", lease.lease_id, lease.holder.id())
            }
            Err(other) => panic!("process {i}: {other}"),
        };
        let action = ControlAction::new(
            Requester::new(format!("process-{i}")),
            Reason::new(format!("freeze by process {i}")).expect("reason"),
            at(1),
        )
        .expect("action");
        let environment = EnvironmentId::new(format!("env-{i}")).expect("environment");
        store
            .freeze(&project(), &environment, &action)
            .await
            .unwrap_or_else(|e| panic!("process {i} freezes: {e}"));
        result
    });
    writeln!(stdout, "{RESULT} {result}").expect("write");
}

/// The schema of version 2, as that version created it.
const VERSION_2: &str = "
    CREATE TABLE images (
        project_id TEXT NOT NULL, label TEXT NOT NULL, service TEXT NOT NULL, uri TEXT NOT NULL,
        PRIMARY KEY (project_id, label, service)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE releases (
        project_id TEXT NOT NULL, release_id TEXT NOT NULL, date_created TEXT,
        record TEXT NOT NULL, PRIMARY KEY (project_id, release_id)
    ) STRICT;
    CREATE INDEX releases_by_date_created ON releases (project_id, date_created, release_id);
    ALTER TABLE releases ADD COLUMN last_date_deployed TEXT;
    CREATE INDEX releases_by_last_date_deployed
        ON releases (project_id, last_date_deployed, release_id);
    PRAGMA application_id = 1381266027; -- RTrk
    PRAGMA user_version = 2;
";

#[tokio::test]
async fn a_version_2_file_is_migrated_to_hold_controls() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("v2.sqlite");
    let record = serde_json::json!({
        "release_id": "r1", "project_id": "storage", "date_created": "2024-01-01T00:00:01",
        "requested_by": "tester", "images": {}, "deployments": []
    });
    {
        let raw = Connection::open(&path).expect("create the v2 file");
        raw.execute_batch(VERSION_2).expect("v2 schema");
        raw.execute(
            "INSERT INTO releases (project_id, release_id, date_created, record)
             VALUES ('storage', 'r1', '2024-01-01T00:00:01', ?1)",
            (record.to_string(),),
        )
        .expect("release");
    }

    let store = SqliteStore::open(&path).expect("open migrates");
    let version: u32 = Connection::open(&path)
        .expect("open raw")
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!((version, SCHEMA_VERSION), (3, 3));
    let release = store
        .release(&project(), &ReleaseId::new("r1").expect("id"))
        .await
        .expect("read");
    assert!(release.is_some(), "the release survives the migration");

    let lease = store
        .acquire_lease(&project(), &prod(), &request(1), at(0))
        .await
        .expect("acquire")
        .lease;
    let action = ControlAction::new(
        Requester::new("ops"),
        Reason::new("incident").expect("reason"),
        at(5),
    )
    .expect("action");
    store
        .freeze(&project(), &prod(), &action)
        .await
        .expect("freeze");
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store.lease(&project(), &prod()).await.expect("lease"),
        Some(lease)
    );
    let events = store
        .control_events(&project(), Some(&prod()), 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason.as_str(), "incident");
}

/// A record in a control table that is not what the store wrote is an
/// error naming the record and the attribute, not a panic.
#[tokio::test]
async fn a_damaged_control_record_is_named() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    {
        let raw = Connection::open(&path).expect("open raw");
        raw.execute(
            "INSERT INTO leases VALUES ('storage', 'prod', 'x', '{\"lease_id\": \"x\"}')",
            [],
        )
        .expect("insert");
    }
    let message = store
        .lease(&project(), &prod())
        .await
        .expect_err("a damaged lease")
        .to_string();
    assert!(
        message.starts_with("lease of environment prod of project storage in SQLite store ")
            && message.contains("attribute `project` is malformed: missing field `project`"),
        "{message}"
    );
    let busy = store
        .acquire_lease(&project(), &prod(), &request(1), at(0))
        .await
        .expect_err("cannot judge a damaged lease");
    assert!(matches!(busy, Error::InvalidRecord { .. }), "{busy}");
}
