//! Parsers of outside data never panic, whatever they are given; a valid
//! manifest reads back as it was generated.

use std::collections::BTreeMap;

use proptest::prelude::*;
use release_tracking::{Manifest, Release, Timestamp};
use serde_json::{json, Map, Value};

/// 256 cases keep the suite fast; set `PROPTEST_CASES` to search longer.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Any JSON value: scalars at the leaves, lists and objects (with keys that
/// are sometimes manifest or record keys) above them.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        any::<String>().prop_map(Value::String),
        "[a-z0-9_.-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Object keys: mostly ones the parsers look at, so generated values reach
/// deep into them.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "id", "name", "environments", "role_arn", "aws_region_name", "region_name",
            "account_id", "namespace", "image_repositories", "services", "github_repository",
            "tf_stack_root", "storage", "stage", "release_id", "project_id", "project_name",
            "date_created", "requested_by", "description", "images", "deployments",
            "last_date_deployed", "environment", "details",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Text with many JSON/YAML punctuation characters, which reaches further
/// into both parsers than uniformly random text does.
fn structured_text() -> impl Strategy<Value = String> {
    "[{}\\[\\]:,\"'#&*!|>?%@`\\- \n\ta-z0-9_.~]{0,200}"
}

fn timestamp_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,5}-[0-9]{0,3}-[0-9]{0,3}[T ][0-9:]{0,9}(\\.[0-9]{0,12})?([Z+-][0-9:]{0,6})?",
        "[0-9T:.+Z -]{0,40}",
    ]
}

/// A release record with plausible and implausible attribute values.
fn release_like() -> impl Strategy<Value = Value> {
    let timestamp = prop_oneof![
        timestamp_like().prop_map(Value::String),
        Just(json!("2019-07-10T10:44:02.272898")),
        json_value(),
    ];
    (
        prop_oneof![
            Just(json!("0efcd2c4-0e8f-4ef8-9a5e-0d2a7c6f7b0a")),
            json_value()
        ],
        prop_oneof![Just(json!("storage")), json_value()],
        timestamp.clone(),
        prop_oneof![
            Just(json!({"id": "unknown", "name": "unknown"})),
            Just(json!("arn:aws:sts::123456789012:assumed-role/ci/session")),
            json_value(),
        ],
        prop_oneof![
            Just(json!({"archivist": "760097843905.dkr.ecr.eu-west-1.amazonaws.com/a:ref.1"})),
            Just(json!({"archivist": null, "bags": ["ref.1", "ref.2"]})),
            json_value(),
        ],
        prop_oneof![
            Just(json!([])),
            (timestamp.clone(), json_value()).prop_map(|(date, environment)| json!([{
                "date_created": date,
                "description": "d",
                "environment": environment,
                "requested_by": "arn:aws:sts::1:assumed-role/ci/s",
            }])),
            json_value(),
        ],
        timestamp,
        proptest::collection::vec(any::<bool>(), 7),
    )
        .prop_map(
            |(id, project, created, requester, images, deployments, last, keep)| {
                let mut record = Map::new();
                let fields = [
                    ("release_id", id),
                    ("project_id", project),
                    ("date_created", created),
                    ("requested_by", requester),
                    ("images", images),
                    ("deployments", deployments),
                    ("last_date_deployed", last),
                ];
                for ((name, value), keep) in fields.into_iter().zip(keep) {
                    if keep {
                        record.insert(name.to_owned(), value);
                    }
                }
                Value::Object(record)
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifest_parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Manifest::parse(&text, "fuzz");
    }

    #[test]
    fn manifest_parse_never_panics_on_strings(text in any::<String>()) {
        let _ = Manifest::parse(&text, "fuzz");
    }

    #[test]
    fn manifest_parse_never_panics_on_structured_text(text in structured_text()) {
        let _ = Manifest::parse(&text, "fuzz");
    }

    #[test]
    fn manifest_parse_never_panics_on_json_values(value in json_value()) {
        let _ = Manifest::parse(&value.to_string(), "fuzz");
        let _ = Manifest::parse(&format!("{value:#}"), "fuzz");
        let _ = Manifest::parse(&json!({ "storage": value }).to_string(), "fuzz");
    }

    #[test]
    fn release_from_json_never_panics(value in json_value()) {
        let _ = Release::from_json(value, "record");
    }

    #[test]
    fn release_from_json_never_panics_on_record_shapes(value in release_like()) {
        let _ = Release::from_json(value, "record");
    }

    #[test]
    fn timestamp_parse_never_panics(text in timestamp_like()) {
        let _ = text.parse::<Timestamp>();
    }
}

// --- A valid manifest reads back as generated --------------------------------

#[derive(Debug, Clone)]
struct GeneratedProject {
    name: String,
    /// Environment id → display name; unique ids by construction.
    environments: Vec<(String, String)>,
    role_arn: Option<String>,
    account_id: Option<u64>,
}

/// Ids valid for every id type: segment characters, no reserved prefix, not
/// the reserved `latest`.
fn id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,15}".prop_filter("reserved name", |id| {
        let lower = id.to_ascii_lowercase();
        !(lower.starts_with("aws") || lower.starts_with("ssm") || id == "latest")
    })
}

fn generated_project() -> impl Strategy<Value = GeneratedProject> {
    (
        any::<String>(),
        proptest::collection::btree_map(id(), any::<String>(), 0..5),
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(name, environments, role_arn, account_id)| GeneratedProject {
                name,
                environments: environments.into_iter().collect(),
                role_arn,
                account_id,
            },
        )
}

fn project_json(project: &GeneratedProject) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(project.name));
    object.insert(
        "environments".into(),
        Value::Array(
            project
                .environments
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect(),
        ),
    );
    if let Some(role_arn) = &project.role_arn {
        object.insert("role_arn".into(), json!(role_arn));
    }
    if let Some(account_id) = project.account_id {
        object.insert("account_id".into(), json!(account_id));
    }
    Value::Object(object)
}

fn check_project(
    got: &release_tracking::Project,
    want: &GeneratedProject,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.name(), want.name.as_str());
    let environments: Vec<(String, String)> = got
        .environments()
        .iter()
        .map(|e| (e.id().to_string(), e.name().to_owned()))
        .collect();
    prop_assert_eq!(&environments, &want.environments);
    prop_assert_eq!(got.role_arn(), want.role_arn.as_deref());
    prop_assert_eq!(
        got.account_id().map(str::to_owned),
        want.account_id.map(|n| n.to_string())
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_manifests_round_trip(
        projects in proptest::collection::btree_map(id(), generated_project(), 1..4),
        pretty in any::<bool>(),
    ) {
        let document = Value::Object(
            projects.iter().map(|(id, p)| (id.clone(), project_json(p))).collect(),
        );
        let text = if pretty { format!("{document:#}") } else { document.to_string() };
        let manifest = Manifest::parse(&text, "generated").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());

        let got: BTreeMap<String, &release_tracking::Project> =
            manifest.projects().map(|p| (p.id().to_string(), p)).collect();
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), projects.keys().collect::<Vec<_>>());
        for (id, want) in &projects {
            let project = manifest.project(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_project(project, want)?;
        }
    }

    #[test]
    fn valid_oldest_form_round_trips(id in id(), project in generated_project()) {
        let mut document = project_json(&project);
        if let Some(object) = document.as_object_mut() {
            object.insert("id".into(), json!(id));
        }
        let manifest = Manifest::parse(&document.to_string(), "generated")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = manifest.select(None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.id().as_str(), id.as_str());
        check_project(got, &project)?;
    }
}
