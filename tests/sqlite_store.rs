//! The SQLite store's file: creation, schema versions and migration, files
//! that are refused (and left byte-for-byte unchanged), rows written by
//! hand, lock waits, and several connections on one file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use release_tracking::sqlite::{OpenError, SqliteOptions, SqliteStore, SCHEMA_VERSION};
use release_tracking::{
    BackendErrorKind, Deployment, EnvironmentId, Error, ImageStore, ImageUri, Label, NewRelease,
    PageRequest, ProjectId, Release, ReleaseId, ReleaseStore, Requester, ServiceId, Timestamp,
};

fn project(name: &str) -> ProjectId {
    ProjectId::new(name).expect("valid project id")
}

fn at(seconds: i64) -> Timestamp {
    "2024-01-01T00:00:00"
        .parse::<Timestamp>()
        .expect("valid timestamp")
        .add_micros(seconds * 1_000_000)
}

fn release(p: &ProjectId, id: &str, created: Timestamp) -> Release {
    Release::new(NewRelease {
        release_id: ReleaseId::new(id).expect("valid release id"),
        project_id: p.clone(),
        project_name: "Project".into(),
        date_created: created,
        requested_by: Requester::new("tester"),
        description: String::new(),
        images: BTreeMap::new(),
    })
}

fn deployment(seconds: i64, description: &str) -> Deployment {
    Deployment::new(
        EnvironmentId::new("stage").expect("valid environment"),
        at(seconds),
        Requester::new("tester"),
        description,
    )
}

fn sidecars(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|p| p.exists())
        .collect()
}

/// A store with images, 40 releases (a few pages of the file) and
/// deployments, closed.
async fn filled_store(path: &Path) {
    let store = SqliteStore::open(path).expect("open a new store");
    let p = project("storage");
    for i in 0..40 {
        let service = ServiceId::new(format!("service-{i}")).expect("valid service");
        let uri = ImageUri::new(format!("ecr.example.com/service-{i}:ref.{i:040}")).expect("uri");
        store
            .put_image(&p, &Label::latest(), &service, &uri)
            .await
            .expect("put image");
        let r = release(&p, &format!("release-{i:02}"), at(i));
        store.create_release(&r).await.expect("create");
        store
            .add_deployment(&p, r.release_id(), &deployment(i + 100, &"x".repeat(200)))
            .await
            .expect("deploy");
    }
}

/// `open`'s refusal of `path`, which must leave it as it was.
fn refusal(path: &Path) -> OpenError {
    let before = std::fs::read(path).expect("read the file");
    let err = SqliteStore::open(path).expect_err("the file is refused");
    let after = std::fs::read(path).expect("read the file");
    assert!(
        before == after,
        "{} was changed by a refused open",
        path.display()
    );
    assert_eq!(
        sidecars(path),
        Vec::<PathBuf>::new(),
        "files left beside it"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("left unchanged"), "{text}");
    assert!(
        matches!(&err, release_tracking::Error::IncompatibleStore { location, .. }
            if location == &format!("SQLite file {}", path.display())),
        "a refusal is IncompatibleStore naming the file: {err:?}"
    );
    let source = std::error::Error::source(&err).expect("the refusal is the source");
    source
        .downcast_ref::<OpenError>()
        .unwrap_or_else(|| panic!("not an OpenError: {err}"))
        .clone()
}

#[tokio::test]
async fn a_new_file_is_a_store_of_the_current_version_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("new.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.path(), path);
    assert_eq!(
        format!("{store:?}"),
        format!("SqliteStore {{ path: {path:?} }}")
    );
    let raw = Connection::open(&path).expect("open raw");
    let version: u32 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    let application_id: i32 = raw
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .expect("application_id");
    assert_eq!((version, mode.as_str()), (SCHEMA_VERSION, "wal"));
    assert_eq!(application_id.to_be_bytes(), *b"RTrk");
    drop(raw);

    // An empty file (as `touch` or `mktemp` leave it) becomes a store too.
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").expect("write");
    let store = SqliteStore::open(&empty).expect("open an empty file");
    store
        .create_release(&release(&project("p"), "r1", at(0)))
        .await
        .expect("create");
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let clone = store.clone();
    store
        .create_release(&release(&project("p"), "r1", at(0)))
        .await
        .expect("create");
    drop(store);
    assert!(!sidecars(&path).is_empty(), "the clone still has it open");
    drop(clone);
    // The write-ahead log was checkpointed into the file and removed.
    assert_eq!(sidecars(&path), Vec::<PathBuf>::new());
}

/// The schema of version 1, as that version created it.
const VERSION_1: &str = "
    CREATE TABLE images (
        project_id TEXT NOT NULL, label TEXT NOT NULL, service TEXT NOT NULL, uri TEXT NOT NULL,
        PRIMARY KEY (project_id, label, service)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE releases (
        project_id TEXT NOT NULL, release_id TEXT NOT NULL, date_created TEXT,
        record TEXT NOT NULL, PRIMARY KEY (project_id, release_id)
    ) STRICT;
    CREATE INDEX releases_by_date_created ON releases (project_id, date_created, release_id);
    PRAGMA application_id = 1381266027; -- RTrk
    PRAGMA user_version = 1;
";

#[tokio::test]
async fn a_version_1_file_is_migrated_when_opened() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("v1.sqlite");
    let p = project("storage");
    let current = json!({
        "release_id": "current", "project_id": "storage", "date_created": "2024-01-01T00:00:01",
        "requested_by": "tester", "images": {"archivist": "ecr.example.com/archivist:ref.1"},
        "deployments": [{"date_created": "2024-01-01T00:00:05", "environment": "stage",
                         "requested_by": "tester", "description": "d1"}],
        "last_date_deployed": "2024-01-01T00:00:05"
    });
    // The oldest tools' shape: no last_date_deployed, a space in the date.
    let legacy = json!({
        "release_id": "legacy", "project_id": "storage", "date_created": "2024-01-01 00:00:02",
        "requested_by": {"id": "unknown", "name": "unknown"}, "images": {"archivist": null},
        "deployments": [{"date_created": "2024-01-01 00:00:09", "requested_by": "tester",
                         "environment": {"id": "prod", "name": "Production"}}]
    });
    let broken = json!({
        "release_id": "broken", "project_id": "storage", "date_created": "2024-01-01T00:00:03",
        "requested_by": 7, "images": {}, "last_date_deployed": "2024-01-01T00:00:07"
    });
    {
        let raw = Connection::open(&path).expect("create the v1 file");
        raw.execute_batch(VERSION_1).expect("v1 schema");
        raw.execute(
            "INSERT INTO images VALUES ('storage', 'latest', 'archivist', 'ecr.example.com/archivist:ref.1')",
            [],
        )
        .expect("image");
        for (id, created, record) in [
            ("current", "2024-01-01T00:00:01", &current),
            ("legacy", "2024-01-01T00:00:02", &legacy),
            ("broken", "2024-01-01T00:00:03", &broken),
        ] {
            raw.execute(
                "INSERT INTO releases VALUES ('storage', ?1, ?2, ?3)",
                (id, created, record.to_string()),
            )
            .expect("release");
        }
    }

    let store = SqliteStore::open(&path).expect("open migrates");
    let raw = Connection::open(&path).expect("open raw");
    let version: u32 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, SCHEMA_VERSION);
    let mut select = raw
        .prepare("SELECT release_id, last_date_deployed FROM releases ORDER BY release_id")
        .expect("select");
    let columns: Vec<(String, Option<String>)> = select
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        columns,
        [
            ("broken".into(), Some("2024-01-01T00:00:07".into())),
            ("current".into(), Some("2024-01-01T00:00:05".into())),
            // The newest deployment, canonical, though the record has none.
            ("legacy".into(), Some("2024-01-01T00:00:09".into())),
        ]
    );

    // Everything reads as before, through the new index too.
    let recent = store
        .recent_deployments(&p, None, 10)
        .await
        .expect("recent deployments");
    let ids: Vec<&str> = recent
        .records
        .iter()
        .map(|r| r.release_id.as_str())
        .collect();
    assert_eq!(ids, ["legacy", "current"]);
    let skipped: Vec<_> = recent
        .skipped
        .iter()
        .map(|s| s.release_id.clone())
        .collect();
    assert_eq!(skipped, [Some("broken".to_owned())]);
    let page = store
        .list_releases(&p, &PageRequest::first(10).expect("limit"))
        .await
        .expect("list");
    let ids: Vec<&str> = page.items.iter().map(|r| r.release_id().as_str()).collect();
    assert_eq!(ids, ["legacy", "current"]);
    assert_eq!(page.skipped.len(), 1);
    let legacy_back = store
        .release(&p, &ReleaseId::new("legacy").expect("id"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        legacy_back,
        Release::from_json(legacy, "the legacy record").expect("decodes")
    );
    assert_eq!(
        store
            .image(
                &p,
                &Label::latest(),
                &ServiceId::new("archivist").expect("service")
            )
            .await
            .expect("image")
            .map(ImageUri::into_string),
        Some("ecr.example.com/archivist:ref.1".to_owned())
    );
    // And it can be deployed, keeping its shape.
    let updated = store
        .add_deployment(&p, legacy_back.release_id(), &deployment(20, "again"))
        .await
        .expect("deploy");
    assert_eq!(updated.last_date_deployed(), Some(at(20)));
}

#[tokio::test]
async fn a_file_of_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("newer.sqlite");
    filled_store(&path).await;
    Connection::open(&path)
        .and_then(|raw| raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1))
        .expect("bump the version");
    match refusal(&path) {
        OpenError::NewerSchema {
            path: named,
            found,
            supported,
        } => {
            assert_eq!(named, path);
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("{other}"),
    }
    let text = SqliteStore::open(&path).expect_err("refused").to_string();
    assert!(
        text.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
            && text.contains(&format!("1 to {SCHEMA_VERSION}")),
        "{text}"
    );
}

/// Deterministic bytes that are no file format.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn files_that_are_not_stores_are_refused_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let not_a_store = |path: &Path, expected: &str| match refusal(path) {
        OpenError::NotAStore {
            path: named,
            reason,
        } => {
            assert_eq!(named, path);
            assert!(reason.contains(expected), "{reason}");
        }
        other => panic!("{}: {other}", path.display()),
    };

    not_a_store(
        &write("noise.bin", &noise(10_000)),
        "not an SQLite database",
    );
    not_a_store(&write("short.txt", b"hello\n"), "not an SQLite database");
    not_a_store(
        &write(".wellcome_project", br#"{"storage": {"environments": []}}"#),
        "not an SQLite database",
    );

    // SQLite databases of other programs, in both journal modes.
    for (name, wal) in [("other.db", false), ("other-wal.db", true)] {
        let path = dir.path().join(name);
        {
            let raw = Connection::open(&path).expect("create");
            if wal {
                let _: String = raw
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .expect("wal");
            }
            raw.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'a');")
                .expect("tables");
        }
        not_a_store(&path, "tables users");
    }
    let marked = dir.path().join("marked.db");
    Connection::open(&marked)
        .and_then(|raw| raw.pragma_update(None, "application_id", 0x4750_4B47))
        .expect("create");
    not_a_store(
        &marked,
        "another application's SQLite database (application_id 0x47504b47",
    );

    // The SQLite header followed by noise.
    let mut fake = b"SQLite format 3\0".to_vec();
    fake.extend(noise(8192));
    let fake = write("fake.sqlite", &fake);
    assert!(matches!(
        refusal(&fake),
        OpenError::NotAStore { .. } | OpenError::Corrupt { .. }
    ));

    // A directory.
    let err = SqliteStore::open(dir.path()).expect_err("a directory is refused");
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[tokio::test]
async fn damaged_stores_are_refused_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    filled_store(&path).await;
    let whole = std::fs::read(&path).expect("read");
    let page_size = 4096;
    assert!(whole.len() >= 6 * page_size, "{} bytes", whole.len());

    let truncated = dir.path().join("truncated.sqlite");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).expect("write");
    match refusal(&truncated) {
        OpenError::Corrupt { reason, .. } => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("{other}"),
    }

    // Noise over every page but the first (the header is intact).
    let damaged = dir.path().join("damaged.sqlite");
    let mut bytes = whole.clone();
    let len = bytes.len() - page_size;
    bytes[page_size..].copy_from_slice(&noise(len));
    std::fs::write(&damaged, &bytes).expect("write");
    assert!(matches!(refusal(&damaged), OpenError::Corrupt { .. }));

    // Only the header: refused, not taken for an empty database.
    let header = dir.path().join("header.sqlite");
    std::fs::write(&header, &whole[..100]).expect("write");
    assert!(matches!(refusal(&header), OpenError::Corrupt { .. }));

    // The original still opens.
    SqliteStore::open(&path).expect("the undamaged store opens");
}

#[tokio::test]
async fn an_open_that_cannot_create_the_file_names_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("no-such-directory").join("store.sqlite");
    let err = SqliteStore::open(&path).expect_err("no directory");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_lock_held_past_the_busy_timeout_is_throttled() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let options = SqliteOptions::default().busy_timeout(Duration::from_millis(200));
    let store = SqliteStore::open_with(&path, &options).expect("open");
    let p = project("p");
    let r = release(&p, "r1", at(0));
    store.create_release(&r).await.expect("create");

    let holder = Connection::open(&path).expect("second connection");
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let err = store
        .add_deployment(&p, r.release_id(), &deployment(1, "blocked"))
        .await
        .expect_err("the lock is held");
    match &err {
        Error::Backend { kind, .. } => assert_eq!(*kind, BackendErrorKind::Throttled, "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Readers do not wait for the writer.
    assert!(store
        .release(&p, r.release_id())
        .await
        .expect("read")
        .is_some());

    holder.execute_batch("ROLLBACK").expect("release the lock");
    let updated = store
        .add_deployment(&p, r.release_id(), &deployment(1, "now"))
        .await
        .expect("deploy once the lock is free");
    assert_eq!(
        updated.deployments().len(),
        1,
        "the blocked call wrote nothing"
    );
}

#[tokio::test]
async fn rows_written_by_hand_are_skipped_or_named() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let p = project("storage");
    store
        .create_release(&release(&p, "good", at(1)))
        .await
        .expect("create");
    let raw = Connection::open(&path).expect("second connection");
    raw.execute_batch(
        "INSERT INTO releases VALUES ('storage', 'not-json', '2024-01-01T00:00:05', '{oops', '2024-01-01T00:00:05');
         INSERT INTO releases VALUES ('storage', 'moved', '2024-01-01T00:00:04',
             '{\"release_id\": \"elsewhere\", \"project_id\": \"storage\", \"date_created\": \"2024-01-01T00:00:04\", \"requested_by\": \"x\", \"images\": {}}', NULL);
         INSERT INTO images VALUES ('storage', 'latest', 'Bad Name', 'ecr.example.com/a:1');
         INSERT INTO images VALUES ('storage', 'latest', 'archivist', '');
         INSERT INTO images VALUES ('storage', 'latest', 'notifier', 'ecr.example.com/notifier:1');",
    )
    .expect("hand-written rows");

    let latest = store.latest_release(&p).await.expect("latest");
    assert_eq!(
        latest.release.map(|r| r.release_id().to_string()),
        Some("good".to_owned())
    );
    let skipped: Vec<(Option<String>, String)> = latest
        .skipped
        .iter()
        .map(|s| (s.release_id.clone(), s.attribute.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            (Some("not-json".into()), "(the record itself)".into()),
            (Some("moved".into()), "release_id".into()),
        ]
    );
    assert!(latest.skipped[0]
        .record
        .contains(&path.display().to_string()));

    let err = store
        .release(&p, &ReleaseId::new("not-json").expect("id"))
        .await
        .expect_err("not JSON");
    assert!(
        matches!(&err, Error::InvalidRecord { attribute, .. } if attribute == "(the record itself)"),
        "{err}"
    );
    let err = store
        .add_deployment(
            &p,
            &ReleaseId::new("moved").expect("id"),
            &deployment(9, "x"),
        )
        .await
        .expect_err("stored under another id");
    assert!(err.to_string().contains("elsewhere"), "{err}");

    let label = store
        .label_images(&p, &Label::latest())
        .await
        .expect("label");
    let images: Vec<&str> = label.images.keys().map(ServiceId::as_str).collect();
    assert_eq!(images, ["notifier"]);
    let skipped: Vec<(&str, Option<&str>)> = label
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.service.as_ref().map(ServiceId::as_str)))
        .collect();
    assert_eq!(
        skipped,
        [
            ("/storage/images/latest/Bad Name", None),
            ("/storage/images/latest/archivist", Some("archivist")),
        ]
    );
    let err = store
        .image(
            &p,
            &Label::latest(),
            &ServiceId::new("archivist").expect("id"),
        )
        .await
        .expect_err("an empty uri");
    assert!(matches!(err, Error::InvalidRecord { .. }), "{err}");
}

#[tokio::test]
async fn insert_record_keeps_the_record_as_given() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let record = json!({
        "release_id": "r1", "project_id": "storage", "date_created": "2024-01-01T00:00:00",
        "requested_by": "tester", "images": {}, "release_manifest": {"kept": [1, 2]}
    });
    store.insert_record(record.clone()).await.expect("insert");
    let stored: String = Connection::open(&path)
        .and_then(|raw| raw.query_row("SELECT record FROM releases", [], |row| row.get(0)))
        .expect("read the row");
    assert_eq!(stored, record.to_string());
    // Replaces, as PutItem does.
    let mut changed = record.clone();
    changed["description"] = json!("second");
    store.insert_record(changed).await.expect("replace");
    let back = store
        .release(&project("storage"), &ReleaseId::new("r1").expect("id"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(back.description(), "second");

    for bad in [
        json!("r1"),
        json!({"release_id": 1, "project_id": "storage"}),
        json!({"release_id": "r2"}),
    ] {
        let err = store.insert_record(bad).await.expect_err("refused");
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "record",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = store
        .insert_record(json!({"release_id": "r2", "project_id": "Not A Project"}))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
}

/// Two stores on one file (two connections) see each other's writes; a
/// cursor from one is valid on the other, one from another store is not.
#[tokio::test]
async fn two_opens_of_one_file_share_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let (a, b) = (
        SqliteStore::open(&path).expect("open a"),
        SqliteStore::open(&path).expect("open b"),
    );
    let p = project("p");
    for i in 0..3 {
        a.create_release(&release(&p, &format!("r{i}"), at(i)))
            .await
            .expect("create");
    }
    let first = b
        .list_releases(&p, &PageRequest::first(2).expect("limit"))
        .await
        .expect("list");
    let cursor = first.next.expect("a second page");
    let rest = a
        .list_releases(
            &p,
            &PageRequest::first(2).expect("limit").after(cursor.clone()),
        )
        .await
        .expect("list");
    let ids: Vec<String> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|r| r.release_id().to_string())
        .collect();
    assert_eq!(ids, ["r2", "r1", "r0"]);
    let err = a
        .list_releases(
            &project("q"),
            &PageRequest::first(2).expect("limit").after(cursor),
        )
        .await
        .expect_err("another project's cursor");
    assert!(matches!(err, Error::InvalidCursor { .. }), "{err}");
}

/// Eight threads open one new file at the same moment: one creates the
/// schema, the others find it made; all of them work.
#[tokio::test]
async fn simultaneous_first_opens_make_one_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.sqlite");
    let start = std::sync::Barrier::new(8);
    let stores: Vec<SqliteStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    SqliteStore::open(&path)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic").expect("open"))
            .collect()
    });
    let p = project("p");
    for (i, store) in stores.iter().enumerate() {
        store
            .create_release(&release(&p, &format!("r{i}"), at(i as i64)))
            .await
            .expect("create");
    }
    let page = stores[0]
        .list_releases(&p, &PageRequest::first(100).expect("limit"))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 8);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Any bytes, with or without the SQLite header in front: refused with
    /// an error, never a panic, and left as they were.
    #[test]
    fn arbitrary_bytes_are_refused_unchanged(
        header in proptest::bool::ANY,
        body in proptest::collection::vec(proptest::num::u8::ANY, 1..6000),
    ) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("arbitrary.sqlite");
        let mut bytes = if header { b"SQLite format 3\0".to_vec() } else { Vec::new() };
        bytes.extend(body);
        std::fs::write(&path, &bytes).expect("write");
        refusal(&path);
    }

    /// A real store with bytes overwritten anywhere: opened (if SQLite finds
    /// nothing wrong, say in unused space) or refused unchanged, never a
    /// panic; an opened one answers every read with data or an error.
    #[test]
    fn damaged_stores_are_opened_or_refused(
        damage in proptest::collection::vec((0usize..1_000_000, proptest::num::u8::ANY), 1..20),
    ) {
        let original = store_bytes();
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("damaged.sqlite");
        let mut bytes = original.to_vec();
        for (at, value) in damage {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        std::fs::write(&path, &bytes).expect("write");
        let before = std::fs::read(&path).expect("read");
        match SqliteStore::open(&path) {
            Err(err) => {
                let after = std::fs::read(&path).expect("read");
                proptest::prop_assert!(before == after, "changed by a refused open: {}", err);
            }
            Ok(store) => futures::executor::block_on(async {
                let p = project("storage");
                let _ = store.label_images(&p, &Label::latest()).await;
                let _ = store.latest_release(&p).await;
                let _ = store.list_releases(&p, &PageRequest::first(7).expect("limit")).await;
                let _ = store.recent_deployments(&p, None, 1000).await;
                let _ = store.add_deployment(&p, &ReleaseId::new("release-03").expect("id"), &deployment(500, "after damage")).await;
            }),
        }
    }
}

/// The bytes of [`filled_store`], made once.
fn store_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.sqlite");
        futures::executor::block_on(filled_store(&path));
        std::fs::read(&path).expect("read")
    })
}
