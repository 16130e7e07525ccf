//! `transfer`: exports and imports between stores. A round trip SQLite →
//! memory → SQLite keeps every release, deployment and label exactly; bad
//! input is refused naming its line; an import writes nothing when the
//! target differs, and completes when run again after a failed write.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use release_tracking::memory::{InMemoryImageStore, InMemoryReleaseStore};
use release_tracking::sqlite::SqliteStore;
use release_tracking::store::{LatestRelease, Page, PageRequest, RecentDeployments};
use release_tracking::transfer::{Conflict, Snapshot, TransferError};
use release_tracking::{
    Deployment, EnvironmentId, Error, ImageStore, Label, Project, ProjectId, Release, ReleaseId,
    ReleaseStore, Warning,
};
use serde_json::{json, Value};

#[path = "common/transfer.rs"]
mod transfer_common;

/// A SQLite store filled with [`transfer_common::fill`].
async fn filled_sqlite(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(dir.join("from.sqlite")).expect("open");
    transfer_common::fill(&project(), &store, &store).await;
    store
}

fn project() -> Project {
    transfer_common::project("storage")
}

fn ecr(service: &str, tag: &str) -> String {
    transfer_common::ecr(service, tag)
}

fn write(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    snapshot.write_to(&mut out).expect("write");
    out
}

async fn collect(images: &dyn ImageStore, releases: &dyn ReleaseStore) -> Snapshot {
    Snapshot::collect(&project(), images, releases)
        .await
        .expect("collect")
}

#[tokio::test]
async fn sqlite_to_memory_to_sqlite_keeps_everything() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let from = filled_sqlite(dir.path()).await;
    let first = collect(&from, &from).await;
    assert_eq!(first.releases.len(), 4);
    assert_eq!(first.deployment_count(), 5);
    assert_eq!(first.labels.len(), 3, "latest, stage and prod");
    assert_eq!(first.image_count(), 9);
    assert!(first.skipped.is_empty(), "{:?}", first.skipped);
    let exported = write(&first);

    let (images, releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
    let read = Snapshot::read_from(exported.as_slice()).expect("read the export");
    assert_eq!(read, first, "an export reads back as what was written");
    let imported = read
        .import_into(&first.project, &images, &releases)
        .await
        .expect("import into memory");
    assert_eq!(imported.releases_created, 4);
    assert_eq!(imported.deployments_created, 5);
    assert_eq!(imported.images_written, 9);
    let in_memory = collect(&images, &releases).await;
    assert_eq!(in_memory, first, "memory holds what SQLite held");
    let again = write(&in_memory);
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&exported),
        "memory exports the same lines"
    );

    let to = SqliteStore::open(dir.path().join("to.sqlite")).expect("open");
    Snapshot::read_from(again.as_slice())
        .expect("read")
        .import_into(&first.project, &to, &to)
        .await
        .expect("import into SQLite");
    let last = collect(&to, &to).await;
    assert_eq!(
        last, first,
        "the second SQLite file holds what the first held"
    );
    assert_eq!(write(&last), exported);
    // Record shapes too: each stored record is the JSON it was exported as.
    for record in transfer_common::legacy_records(&first.project) {
        let id = ReleaseId::new(record["release_id"].as_str().expect("id")).expect("id");
        let stored = to.release(&"storage".parse().expect("project"), &id).await;
        assert_eq!(stored.expect("read").map(|r| r.to_json()), Some(record));
    }
    // History and latest work on the copy as on the original.
    let project_id: ProjectId = "storage".parse().expect("project");
    assert_eq!(
        from.recent_deployments(&project_id, None, 100)
            .await
            .expect("history"),
        to.recent_deployments(&project_id, None, 100)
            .await
            .expect("history"),
    );
    assert_eq!(
        from.latest_release(&project_id).await.expect("latest"),
        to.latest_release(&project_id).await.expect("latest"),
    );
}

/// A release of `storage` as an export line.
fn release_line(id: &str, description: &str) -> String {
    json!({"kind": "release", "release": {
        "release_id": id, "project_id": "storage", "project_name": "Storage service",
        "date_created": "2024-05-01T09:30:00", "requested_by": "alice",
        "description": description, "images": {"archivist": ecr("archivist", "ref.1")},
        "deployments": []
    }})
    .to_string()
}

const HEADER: &str =
    r#"{"kind":"header","format":"release-tracking-export","version":1,"project_id":"storage"}"#;

fn end(releases: usize, labels: usize) -> String {
    format!(r#"{{"kind":"end","releases":{releases},"labels":{labels},"skipped":0}}"#)
}

fn read(lines: &[&str]) -> Result<Snapshot, TransferError> {
    let mut text = lines.join("\n");
    text.push('\n');
    Snapshot::read_from(text.as_bytes())
}

#[test]
fn bad_lines_are_refused_naming_the_line_and_field() {
    let release = release_line("r1", "one");
    let end1 = end(1, 0);
    let end0 = end(0, 0);
    let (end2, end01) = (end(2, 0), end(0, 1));
    let bad_environment = release.replace(
        r#""deployments":[]"#,
        r#""deployments":[{"date_created":"2024-05-01T10:00:00","environment":7,"requested_by":"x"}]"#,
    );
    assert_ne!(bad_environment, release);
    let other_project = release.replace(r#""project_id":"storage""#, r#""project_id":"other""#);
    // (lines, the line named, the field named, words of the message)
    let cases: Vec<(Vec<&str>, usize, Option<&str>, &str)> = vec![
        (vec![&release, &end1], 1, Some("kind"), "must be the header"),
        (
            vec![r#"{"kind":"header","format":"other","version":1,"project_id":"storage"}"#],
            1,
            Some("format"),
            "not this format",
        ),
        (
            vec![
                r#"{"kind":"header","format":"release-tracking-export","version":"1","project_id":"storage"}"#,
            ],
            1,
            Some("version"),
            "format version",
        ),
        (
            vec![
                r#"{"kind":"header","format":"release-tracking-export","version":1,"project_id":"storage","x":1}"#,
            ],
            1,
            Some("x"),
            "unknown field `x`",
        ),
        (vec![HEADER, "{not json", &end0], 2, None, "not JSON"),
        (vec![HEADER, "[1]", &end0], 2, None, "not a JSON object"),
        (
            vec![HEADER, r#"{"release":{}}"#],
            2,
            Some("kind"),
            "missing",
        ),
        (
            vec![HEADER, r#"{"kind":"image"}"#],
            2,
            Some("kind"),
            "unknown kind `image`",
        ),
        (vec![HEADER, "", &end0], 2, None, "empty line"),
        (vec![HEADER, HEADER], 2, Some("kind"), "second header"),
        (
            vec![HEADER, &bad_environment, &end1],
            2,
            Some("release.deployments[0].environment"),
            "",
        ),
        (
            vec![HEADER, &other_project, &end1],
            2,
            Some("release.project_id"),
            "project `other`",
        ),
        (
            vec![HEADER, &release, &release, &end2],
            3,
            Some("release.release_id"),
            "also on line 2",
        ),
        (
            vec![
                HEADER,
                r#"{"kind":"label","label":"a/b","images":{}}"#,
                &end01,
            ],
            2,
            Some("label"),
            "",
        ),
        (
            vec![
                HEADER,
                r#"{"kind":"label","label":"stage","images":{"archivist":""}}"#,
            ],
            2,
            Some("images.archivist"),
            "",
        ),
        (
            vec![
                HEADER,
                r#"{"kind":"label","label":"stage","images":{},"extra":1}"#,
            ],
            2,
            Some("extra"),
            "unknown field `extra`",
        ),
        (
            vec![HEADER, &release, &end0],
            3,
            Some("releases"),
            "counts 0",
        ),
        (vec![HEADER, &end0, &end0], 3, None, "after the end line"),
    ];
    for (lines, line, field, words) in cases {
        match read(&lines) {
            Err(TransferError::InvalidLine {
                line: got_line,
                field: got_field,
                message,
            }) => {
                let shown = format!("{:?}", (got_line, &got_field, &message));
                assert_eq!(got_line, line, "{lines:?}: {shown}");
                assert_eq!(got_field.as_deref(), field, "{lines:?}: {shown}");
                let text = read(&lines).expect_err("refused").to_string();
                assert!(text.starts_with(&format!("line {line}: ")), "{text}");
                assert!(text.contains(words), "{lines:?}: {text}");
            }
            other => panic!("{lines:?}: expected an invalid line, got {other:?}"),
        }
    }
}

#[test]
fn empty_cut_short_newer_and_non_text_inputs_are_refused() {
    match Snapshot::read_from(&b""[..]) {
        Err(TransferError::InvalidLine {
            line: 1, message, ..
        }) => {
            assert!(message.contains("empty"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let release = release_line("r1", "one");
    match read(&[HEADER, &release]) {
        Err(e @ TransferError::Truncated { lines: 2 }) => {
            assert!(e.to_string().contains("incomplete"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let newer = HEADER.replace(r#""version":1"#, r#""version":2"#);
    match read(&[&newer, r#"{"kind":"what-v2-adds"}"#]) {
        Err(e @ TransferError::UnsupportedVersion { version: 2 }) => {
            assert!(e.to_string().contains("newer"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let mut bytes = format!("{HEADER}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    match Snapshot::read_from(bytes.as_slice()) {
        Err(TransferError::InvalidLine {
            line: 2, message, ..
        }) => {
            assert!(message.contains("UTF-8"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // CRLF line ends are read as line ends.
    let text = format!("{HEADER}\r\n{release}\r\n{}\r\n", end(1, 0));
    let snapshot = Snapshot::read_from(text.as_bytes()).expect("CRLF export");
    assert_eq!(snapshot.releases.len(), 1);
}

#[tokio::test]
async fn an_import_that_meets_a_difference_writes_nothing() {
    let (images, releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
    let project: ProjectId = "storage".parse().expect("project");
    let stage: Label = "stage".parse().expect("label");
    // The target holds r1 with another description, and another image at stage.
    let r1 = read(&[HEADER, &release_line("r1", "theirs"), &end(1, 0)]).expect("export");
    r1.import_into(&project, &images, &releases)
        .await
        .expect("import");
    let archivist = "archivist".parse().expect("service");
    images
        .put_image(
            &project,
            &stage,
            &archivist,
            &ecr("archivist", "ref.9").parse().expect("uri"),
        )
        .await
        .expect("put");

    let label = json!({"kind": "label", "label": "stage", "images": {
        "archivist": ecr("archivist", "ref.1"), "notifier": ecr("notifier", "ref.1")}})
    .to_string();
    let ours = read(&[
        HEADER,
        &release_line("r0", "new"),
        &release_line("r1", "ours"),
        &label,
        &end(2, 1),
    ])
    .expect("export");
    let err = ours
        .import_into(&project, &images, &releases)
        .await
        .expect_err("conflicts");
    let text = err.to_string();
    match &err {
        TransferError::Conflicts { conflicts, .. } => {
            assert_eq!(conflicts.len(), 2, "{text}");
            assert!(
                matches!(&conflicts[0], Conflict::Release { release, reason }
                if release.as_str() == "r1" && reason.contains("description")),
                "{text}"
            );
            assert!(
                matches!(&conflicts[1], Conflict::Image { label, service, reason }
                if label.as_str() == "stage" && service.as_str() == "archivist"
                    && reason.contains("ref.9")),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        text.contains("nothing was written") && text.contains("`r1`"),
        "{text}"
    );
    // Nothing was written: not r0, not the stage label's notifier.
    let r0 = ReleaseId::new("r0").expect("id");
    assert_eq!(releases.release(&project, &r0).await.expect("read"), None);
    let stage_images = images.label_images(&project, &stage).await.expect("label");
    assert_eq!(stage_images.images.len(), 1, "{stage_images:?}");

    // Another project's export is refused before anything is read.
    let other: ProjectId = "other".parse().expect("project");
    match ours.import_into(&other, &images, &releases).await {
        Err(e @ TransferError::WrongProject { .. }) => {
            assert!(e.to_string().contains("`storage`"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_import_twice_skips_what_is_there() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let from = filled_sqlite(dir.path()).await;
    let snapshot = collect(&from, &from).await;
    let (images, releases) = (InMemoryImageStore::new(), InMemoryReleaseStore::new());
    let first = snapshot
        .import_into(&snapshot.project, &images, &releases)
        .await
        .expect("import");
    let second = snapshot
        .import_into(&snapshot.project, &images, &releases)
        .await
        .expect("import again");
    assert_eq!((first.releases_created, first.releases_unchanged), (4, 0));
    assert_eq!((first.images_written, first.images_unchanged), (9, 0));
    assert_eq!(
        second.releases_created + second.images_written,
        0,
        "{second:?}"
    );
    assert_eq!((second.releases_unchanged, second.images_unchanged), (4, 9));
}

/// The in-memory store, failing the `fail_at`-th `create_release` (from 0).
#[derive(Debug)]
struct FailingCreate {
    inner: InMemoryReleaseStore,
    calls: AtomicUsize,
    fail_at: usize,
}

#[async_trait]
impl ReleaseStore for FailingCreate {
    async fn create_release(&self, release: &Release) -> Result<(), Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            return Err(Error::InvalidArgument {
                argument: "release",
                reason: "the store went away".to_owned(),
            });
        }
        self.inner.create_release(release).await
    }
    async fn release(&self, project: &ProjectId, id: &ReleaseId) -> Result<Option<Release>, Error> {
        self.inner.release(project, id).await
    }
    async fn latest_release(&self, project: &ProjectId) -> Result<LatestRelease, Error> {
        self.inner.latest_release(project).await
    }
    async fn list_releases(
        &self,
        project: &ProjectId,
        page: &PageRequest,
    ) -> Result<Page<Release>, Error> {
        self.inner.list_releases(project, page).await
    }
    async fn add_deployment(
        &self,
        project: &ProjectId,
        id: &ReleaseId,
        deployment: &Deployment,
    ) -> Result<Release, Error> {
        self.inner.add_deployment(project, id, deployment).await
    }
    async fn recent_deployments(
        &self,
        project: &ProjectId,
        environment: Option<&EnvironmentId>,
        limit: usize,
    ) -> Result<RecentDeployments, Error> {
        self.inner
            .recent_deployments(project, environment, limit)
            .await
    }
}

#[tokio::test]
async fn an_import_stopped_by_a_failed_write_says_how_far_and_completes_when_run_again() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let from = filled_sqlite(dir.path()).await;
    let snapshot = collect(&from, &from).await;
    let images = InMemoryImageStore::new();
    let failing = FailingCreate {
        inner: InMemoryReleaseStore::new(),
        calls: AtomicUsize::new(0),
        fail_at: 2,
    };
    let err = snapshot
        .import_into(&snapshot.project, &images, &failing)
        .await
        .expect_err("the third create fails");
    let text = err.to_string();
    match &err {
        TransferError::Interrupted(stopped) => {
            assert_eq!(stopped.done.releases_created, 2, "{text}");
            assert_eq!(stopped.releases_left, 2, "{text}");
            assert_eq!(stopped.images_left, 9, "{text}");
            assert!(stopped.source.to_string().contains("went away"));
        }
        other => panic!("{other:?}"),
    }
    assert!(text.contains("run the import again"), "{text}");
    let done = snapshot
        .import_into(&snapshot.project, &images, &failing.inner)
        .await
        .expect("the second run completes");
    assert_eq!((done.releases_created, done.releases_unchanged), (2, 2));
    assert_eq!(collect(&images, &failing.inner).await, snapshot);
}

#[tokio::test]
async fn unreadable_records_and_parameters_are_carried_as_skipped_lines() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let from = filled_sqlite(dir.path()).await;
    from.insert_record(json!({
        "release_id": "broken", "project_id": "storage", "date_created": "2021-01-01T00:00:00",
        "images": {}
    }))
    .await
    .expect("insert a record without requested_by");
    let snapshot = collect(&from, &from).await;
    assert_eq!(snapshot.releases.len(), 4, "the readable ones");
    match snapshot.skipped.as_slice() {
        [Warning::SkippedRecord(skipped)] => {
            assert_eq!(skipped.release_id.as_deref(), Some("broken"));
            assert_eq!(skipped.attribute, "requested_by");
        }
        other => panic!("{other:?}"),
    }
    let text = String::from_utf8(write(&snapshot)).expect("UTF-8");
    let skipped_line = text
        .lines()
        .find(|l| l.contains(r#""kind":"skipped_record""#))
        .expect("a skipped_record line");
    assert!(
        skipped_line.contains(r#""release_id":"broken""#),
        "{skipped_line}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains(r#""skipped":1"#)),
        "{text}"
    );
    let read = Snapshot::read_from(text.as_bytes()).expect("read");
    assert_eq!(read.skipped, snapshot.skipped);

    // A parameter under a label that is not an image is carried too.
    let images = InMemoryImageStore::new();
    let project: ProjectId = "storage".parse().expect("project");
    let parameter = Warning::SkippedParameter(release_tracking::SkippedParameter {
        name: "/storage/images/stage/archivist".to_owned(),
        service: Some("archivist".parse().expect("service")),
        reason: "a SecureString parameter, not an image".to_owned(),
    });
    let mut with_parameter = Snapshot {
        project: project.clone(),
        releases: Vec::new(),
        labels: Default::default(),
        skipped: vec![parameter],
    };
    with_parameter
        .labels
        .insert("stage".parse().expect("label"), Default::default());
    let read = Snapshot::read_from(write(&with_parameter).as_slice()).expect("read");
    assert_eq!(read, with_parameter);
    let imported = read
        .import_into(&project, &images, &InMemoryReleaseStore::new())
        .await
        .expect("import");
    assert_eq!(imported, Default::default());
}

#[tokio::test]
async fn an_export_reads_every_page_of_releases() {
    let releases = InMemoryReleaseStore::new();
    let count = release_tracking::store::MAX_PAGE_SIZE + 5;
    for i in 0..count {
        let line = release_line(&format!("r{i:05}"), "many");
        let value: Value = serde_json::from_str(&line).expect("JSON");
        releases
            .insert_record(value["release"].clone())
            .expect("insert");
    }
    let snapshot = collect(&InMemoryImageStore::new(), &releases).await;
    assert_eq!(snapshot.releases.len(), count);
    let last = snapshot.releases.last().expect("releases");
    assert_eq!(last.release_id().as_str(), "r00000", "newest first");
}
