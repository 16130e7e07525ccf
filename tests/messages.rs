//! Messages a person can read: values echoed from input are escaped and cut,
//! lists are capped, `latest` as an environment is called reserved.
//! In memory: no AWS.

use release_tracking::names::{Escaped, NameProblem, MAX_ECHO_CHARS};
use release_tracking::{
    Cursor, Environment, EnvironmentId, Error, ImageUri, InMemoryImageStore, InMemoryReleaseStore,
    Label, Manifest, PageRequest, PartialDeployment, PrepareRequest, Project, ProjectId, Release,
    ReleaseId, ReleaseRef, ReleaseStore, ReleaseTracker, Requester, ServiceId, SkippedParameter,
    SkippedRecord,
};

const ANSI_PROD: &str = "\x1b[31mprod\n";
const ANSI_PROD_SHOWN: &str = r"\u{1b}[31mprod\n";

/// No character that would change the terminal or hide text: C0 and C1
/// controls, DEL, and the bidirectional and zero-width format characters.
fn assert_printable(message: &str) {
    let bad = message.chars().find(|&c| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    assert!(bad.is_none(), "raw {bad:?} in message: {message:?}");
}

fn project(environments: &[&str]) -> Project {
    let environments = environments
        .iter()
        .map(|id| Environment::new(EnvironmentId::new(*id).expect("valid id"), *id))
        .collect();
    Project::new(
        ProjectId::new("storage").expect("valid id"),
        "Storage",
        environments,
    )
    .expect("valid project")
}

fn ids<T: std::str::FromStr>(prefix: &str, n: usize) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    (0..n)
        .map(|i| format!("{prefix}{i}").parse().expect("valid id"))
        .collect()
}

#[test]
fn escaped_shows_invisible_characters_and_keeps_text() {
    assert_eq!(Escaped::new(ANSI_PROD).to_string(), ANSI_PROD_SHOWN);
    assert_eq!(
        Escaped::new("a\u{9b}31m\u{7f}\u{202e}b\t").to_string(),
        r"a\u{9b}31m\u{7f}\u{202e}b\t"
    );
    // Readable text stays readable, quotes and backslashes as written.
    for text in ["Zürich", "東京", "e\u{301}", r#"say "hi" \o/"#, "it's"] {
        assert_eq!(Escaped::new(text).to_string(), text);
    }
    // A leading combining mark would join the character before the value.
    assert_eq!(Escaped::new("\u{301}x").to_string(), r"\u{301}x");
    // Escaping escaped text changes nothing.
    let once = Escaped::whole(ANSI_PROD).to_string();
    assert_eq!(Escaped::whole(&once).to_string(), once);
    // One length rule: MAX_ECHO_CHARS characters, then `…`.
    let exact = "x".repeat(MAX_ECHO_CHARS);
    assert_eq!(Escaped::new(&exact).to_string(), exact);
    let long = "é".repeat(MAX_ECHO_CHARS + 1);
    assert_eq!(
        Escaped::new(&long).to_string(),
        format!("{}…", "é".repeat(MAX_ECHO_CHARS))
    );
    assert_eq!(Escaped::whole(&long).to_string(), long);
}

#[test]
fn unknown_environment_is_escaped() {
    let project = project(&["stage", "prod"]);
    let err = project.environment(ANSI_PROD).unwrap_err();
    assert!(matches!(err, Error::UnknownEnvironment { .. }), "{err:?}");
    let message = err.to_string();
    assert_printable(&message);
    assert_eq!(
        message,
        format!(
            "project `storage` has no environment `{ANSI_PROD_SHOWN}`; its environments are: stage, prod"
        )
    );
}

#[tokio::test]
async fn unknown_environment_through_the_tracker_is_escaped() {
    let tracker = ReleaseTracker::new(
        project(&["stage", "prod"]),
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("alice"),
    );
    let err = tracker
        .plan(&ReleaseRef::Latest, ANSI_PROD)
        .await
        .unwrap_err();
    assert_printable(&err.to_string());
    assert!(err.to_string().contains(ANSI_PROD_SHOWN), "{err}");
    let err = tracker.history(Some(ANSI_PROD), 10).await.unwrap_err();
    assert!(err.to_string().contains(ANSI_PROD_SHOWN), "{err}");
}

#[test]
fn unknown_environment_among_5000_is_one_short_line() {
    let names: Vec<String> = (0..5000).map(|i| format!("env-{i:04}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let message = project(&names).environment("prdo").unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.len() < 250, "{} bytes: {message}", message.len());
    assert!(
        message.ends_with("env-0000, env-0001, env-0002, env-0003, env-0004, env-0005, env-0006, env-0007, env-0008, env-0009 and 4990 more"),
        "{message}"
    );
}

#[test]
fn latest_as_an_environment_is_reserved_as_in_a_manifest() {
    let in_manifest = Manifest::parse(
        r#"{"storage": {"name": "S", "environments": [{"id": "latest", "name": "L"}]}}"#,
        "m.json",
    )
    .unwrap_err();
    let Error::ManifestInvalid { problem, .. } = &in_manifest else {
        panic!("expected ManifestInvalid, got {in_manifest:?}");
    };

    let err = project(&["stage", "prod"])
        .environment("latest")
        .unwrap_err();
    match &err {
        Error::InvalidName(name) => {
            assert!(matches!(name.problem(), NameProblem::Reserved(_)), "{err}")
        }
        other => panic!("expected InvalidName, got {other:?}"),
    }
    assert_eq!(&err.to_string(), problem);
    assert!(problem.contains("reserved"), "{problem}");
}

#[test]
fn echoed_values_are_cut_by_one_rule() {
    let project = project(&["stage"]);
    let long = "x".repeat(10_000);
    let shown = format!("`{}…`", "x".repeat(MAX_ECHO_CHARS));
    let message = project.environment(&long).unwrap_err().to_string();
    assert!(message.contains(&shown), "{message}");

    let manifest = Manifest::from_projects([project]);
    let message = manifest.project(&long).unwrap_err().to_string();
    assert!(message.contains(&shown), "{message}");

    let message = ServiceId::new(long.clone()).unwrap_err().to_string();
    assert!(
        message.contains(&format!("\"{}…\"", "x".repeat(MAX_ECHO_CHARS))),
        "{message}"
    );
    let err = ReleaseId::new(long.clone()).unwrap_err();
    assert_eq!(err.value(), "x".repeat(MAX_ECHO_CHARS));

    let message = "2021-09-27T10:00:00x"
        .repeat(100)
        .parse::<release_tracking::Timestamp>()
        .unwrap_err()
        .to_string();
    assert!(message.contains('…'), "{message}");
}

#[test]
fn manifest_keys_and_values_are_escaped() {
    // serde_json's quoting escapes C0 controls only: not C1 (U+009B is a
    // one-byte CSI on some terminals), DEL or the bidirectional overrides.
    let text = "{\"storage\": {\"name\": \"S\", \"role_arn\u{9b}31m\": 1, \"x\u{202e}y\": 2, \
                \"environments\": [{\"id\": \"stage\", \"name\": \"S\", \"\u{7f}\": 3}]}}";
    let manifest = Manifest::parse(text, "m\u{1b}.json").expect("valid manifest");
    let warnings: Vec<String> = manifest.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for warning in &warnings {
        assert_printable(warning);
        assert!(warning.starts_with(r"m\u{1b}.json: "), "{warning}");
    }
    assert!(
        warnings.iter().any(|w| w.contains(r"role_arn\u{9b}31m")),
        "{warnings:?}"
    );

    for text in [
        "{\"p\u{202e}\": {\"name\": \"S\", \"environments\": []}}",
        r#"{"storage": {"name": "S", "environments": [{"id": "\u001b[2J", "name": "S"}]}}"#,
        "{\"storage\": {\"name\": \"S\", \"environments\": [], \"aws_region_name\": \"eu\u{9b}\", \"region_name\": \"us\"}}",
        "{\"storage\": {\"name\": \"S\", \"environments\": [], \"\u{9b}\": 1, \"\u{9b}\": 2}}",
    ] {
        let err = Manifest::parse(text, "m.json").unwrap_err();
        assert!(matches!(err, Error::ManifestInvalid { .. }), "{err:?}");
        assert_printable(&err.to_string());
    }
}

#[test]
fn skipped_parameter_names_are_escaped() {
    let skipped = SkippedParameter {
        name: "/storage/images/latest/a\u{1b}[2J\u{9b}".to_owned(),
        service: None,
        reason: "it contains '\u{1b}'".to_owned(),
    };
    let message = skipped.to_string();
    assert_printable(&message);
    assert!(message.contains(r"a\u{1b}[2J\u{9b}"), "{message}");

    let skipped = SkippedRecord {
        record: "release r\u{1b}[2J in table t".to_owned(),
        release_id: Some("r\u{1b}[2J".to_owned()),
        attribute: "images.\u{9b}".to_owned(),
        message: "unknown variant `\u{202e}`".to_owned(),
    };
    let message = skipped.to_string();
    assert_printable(&message);
    assert_eq!(
        message,
        r"skipped release r\u{1b}[2J in table t: attribute `images.\u{9b}` is malformed: unknown variant `\u{202e}`"
    );
}

#[tokio::test]
async fn record_attributes_are_escaped() {
    let tracker = ReleaseTracker::new(
        project(&["stage"]),
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("alice"),
    );
    let service = ServiceId::new("archivist").expect("valid id");
    let uri = ImageUri::new("ecr/archivist:ref.1").expect("valid uri");
    tracker
        .publish(&Label::latest(), &service, &uri)
        .await
        .expect("published");
    let release = tracker
        .prepare(PrepareRequest::from_label(Label::latest()))
        .await
        .expect("prepared")
        .release;

    let mut json = release.to_json();
    json["images"]["a\u{9b}31m\u{202e}"] = serde_json::json!("x");
    let message = Release::from_json(json, "release r\u{1b} in table t")
        .unwrap_err()
        .to_string();
    assert_printable(&message);
    assert!(message.contains(r"a\u{9b}31m\u{202e}"), "{message}");
    assert!(
        message.starts_with(r"release r\u{1b} in table t: "),
        "{message}"
    );
}

#[tokio::test]
async fn cursor_text_is_escaped_and_cut() {
    let store = InMemoryReleaseStore::new();
    let cursor = format!("\x1b[2J{}", "x".repeat(100_000));
    let page = PageRequest::first(10)
        .expect("valid limit")
        .after(Cursor::new(cursor));
    let project = ProjectId::new("storage").expect("valid id");
    let err = store.list_releases(&project, &page).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCursor { .. }), "{err:?}");
    let message = err.to_string();
    assert_printable(&message);
    assert!(message.len() < 2 * MAX_ECHO_CHARS + 200, "{message}");
    assert!(message.contains(r"\u{1b}[2Jxxx"), "{message}");
}

#[test]
fn every_list_in_a_message_is_capped() {
    let project = ProjectId::new("storage").expect("valid id");
    let release = ReleaseId::new("r1").expect("valid id");
    let environment = EnvironmentId::new("prod").expect("valid id");
    let services: Vec<ServiceId> = ids("service-", 95);
    let check = |err: Error, more: &str| {
        let message = err.to_string();
        assert!(message.contains(more), "{message}");
        assert!(message.len() < 600, "{} bytes: {message}", message.len());
        assert!(!message.contains("service-10,"), "{message}");
    };

    check(
        Error::PartialDeployment(Box::new(PartialDeployment {
            project: project.clone(),
            release: release.clone(),
            environment: environment.clone(),
            written: services[..50].to_vec(),
            failed: services[50].clone(),
            not_written: services[50..].to_vec(),
            source: Error::InvalidArgument {
                argument: "x",
                reason: "y".to_owned(),
            },
            also_failed: Vec::new(),
        })),
        "service-9 and 40 more; not written: service-50,",
    );
    check(
        Error::DeploymentNotRecorded {
            project: project.clone(),
            release: release.clone(),
            environment,
            written: services.clone(),
            source: Box::new(Error::NoReleases {
                project: project.clone(),
            }),
        },
        "service-9 and 85 more",
    );
    check(
        Error::UndeployableRelease {
            project: project.clone(),
            release: release.clone(),
            services: services.clone(),
            fix: "make a new release".to_owned(),
        },
        "service-9 and 85 more",
    );
    let parameters: Vec<String> = (0..95)
        .map(|i| format!("/storage/images/prod/s\u{1b}{i}"))
        .collect();
    let err = Error::ConflictingParameters {
        project: project.clone(),
        release,
        environment: EnvironmentId::new("prod").expect("valid id"),
        parameters,
    };
    assert_printable(&err.to_string());
    check(err, r"/storage/images/prod/s\u{1b}9 and 85 more");
    let projects: Vec<ProjectId> = ids("project-", 2000);
    check(
        Error::UnknownProject {
            file: "m.json".to_owned(),
            project: "nope".to_owned(),
            known: projects.clone(),
        },
        "project-9 and 1990 more",
    );
    check(
        Error::ProjectNotChosen {
            file: "m.json".to_owned(),
            known: projects,
        },
        "and 1990 more",
    );
}

/// A plan and a diff show values read from parameters and records with
/// their control characters escaped: the values themselves are kept.
#[tokio::test]
async fn plans_and_diffs_escape_stored_values() {
    let tracker = ReleaseTracker::new(
        project(&["stage"]),
        InMemoryImageStore::new(),
        InMemoryReleaseStore::new(),
        Requester::new("arn:aws:iam::123456789012:user/alice"),
    );
    let service = ServiceId::new("archivist").expect("id");
    let stage = Label::new("stage").expect("label");
    let hostile = ImageUri::new("\x1b[2Jecr.example.com/archivist:1\n").expect("any value");
    tracker
        .publish(&stage, &service, &hostile)
        .await
        .expect("publish");
    tracker
        .publish(&Label::latest(), &service, &hostile)
        .await
        .expect("publish");
    let first = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    let good = ImageUri::new("ecr.example.com/archivist:2").expect("uri");
    tracker
        .publish(&Label::latest(), &service, &good)
        .await
        .expect("publish");
    let second = tracker
        .prepare(PrepareRequest::latest())
        .await
        .expect("prepare")
        .release;
    let plan = tracker
        .plan(&second.release_id().into(), "stage")
        .await
        .expect("plan")
        .to_string();
    assert_printable(&plan.replace('\n', ""));
    assert!(
        plan.contains(r"\u{1b}[2Jecr.example.com/archivist:1\n"),
        "{plan}"
    );
    let diff = tracker
        .diff(&first.release_id().into(), &second.release_id().into())
        .await
        .expect("diff")
        .to_string();
    assert_printable(&diff.replace('\n', ""));
    assert!(diff.contains(r"\u{1b}[2J"), "{diff}");
}
