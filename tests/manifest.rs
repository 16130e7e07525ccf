//! Reading `.wellcome_project` in every shape that exists, and every way it
//! can be wrong.

use std::path::Path;

use release_tracking::{Error, Manifest};
use serde_json::json;

const FILE: &str = "repo/.wellcome_project";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

fn parse(text: &str) -> Result<Manifest, Error> {
    Manifest::parse(text, FILE)
}

/// Parses text that must be rejected as invalid; returns (location, problem)
/// after checking that the message names the file and the location.
fn invalid(text: &str) -> (String, String) {
    match parse(text) {
        Err(e @ Error::ManifestInvalid { .. }) => {
            let message = e.to_string();
            let Error::ManifestInvalid {
                file,
                location,
                problem,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(file, FILE);
            assert!(message.contains(FILE), "{message}");
            assert!(message.contains(&format!("`{location}`")), "{message}");
            (location, problem)
        }
        other => panic!("expected ManifestInvalid for {text:?}, got {other:?}"),
    }
}

/// Parses text that must be a syntax error; returns (format, line, column).
fn syntax(text: &str) -> (&'static str, usize, usize) {
    match parse(text) {
        Err(e @ Error::ManifestSyntax { .. }) => {
            let message = e.to_string();
            let Error::ManifestSyntax {
                file,
                format,
                line,
                column,
                message: parser_message,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(file, FILE);
            assert!(
                message.starts_with(&format!("{FILE}:{line}:{column}: not valid {format}: ")),
                "{message}"
            );
            assert!(!parser_message.is_empty());
            // The parser's own "at line …" suffix is not repeated.
            assert!(!parser_message.contains(" at line "), "{parser_message}");
            (format, line, column)
        }
        other => panic!("expected ManifestSyntax for {text:?}, got {other:?}"),
    }
}

/// A valid classic project with `extra` merged into it.
fn with_project_keys(extra: serde_json::Value) -> String {
    let mut project = json!({
        "name": "Storage",
        "environments": [{"id": "stage", "name": "Staging"}],
    });
    if let (Some(project), Some(extra)) = (project.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            project.insert(k.clone(), v.clone());
        }
    }
    json!({ "storage": project }).to_string()
}

// --- Shapes that exist ------------------------------------------------------

#[test]
fn classic_json_from_the_rfc() {
    let path = fixture("classic.json");
    let manifest = Manifest::from_path(&path).unwrap();
    assert_eq!(manifest.file(), path.display().to_string());
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());

    let project = manifest.select(None).unwrap();
    assert_eq!(project.id().as_str(), "my_example_project");
    assert_eq!(project.name(), "Example project");
    let ids: Vec<_> = project
        .environments()
        .iter()
        .map(|e| (e.id().as_str(), e.name()))
        .collect();
    assert_eq!(ids, [("stage", "Staging"), ("prod", "Production")]);
    assert!(project.extra().is_empty());
    assert_eq!(project.role_arn(), None);
    assert_eq!(project.aws_region(), None);
    assert!(project.image_repositories().is_empty());
}

#[test]
fn oldest_single_object_form() {
    let manifest = Manifest::from_path(fixture("oldest.json")).unwrap();
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let project = manifest.select(None).unwrap();
    assert_eq!(project.id().as_str(), "storage");
    assert_eq!(project.name(), "Storage service");
    assert_eq!(project.environments().len(), 2);
    assert_eq!(
        project.role_arn(),
        Some("arn:aws:iam::975596993436:role/storage-ci")
    );
    // `id`, `name` and `environments` are the core of this form.
    let extra: Vec<_> = project.extra().keys().map(String::as_str).collect();
    assert_eq!(extra, ["role_arn"]);
}

#[test]
fn real_file_keys_are_typed_and_kept() {
    let manifest = Manifest::from_path(fixture("real.json")).unwrap();
    let ids: Vec<_> = manifest.projects().map(|p| p.id().as_str()).collect();
    assert_eq!(ids, ["catalogue_pipeline", "storage"]);

    let storage = manifest.project("storage").unwrap();
    assert_eq!(
        storage.role_arn(),
        Some("arn:aws:iam::975596993436:role/storage-ci")
    );
    assert_eq!(storage.aws_region(), Some("eu-west-1"));
    // Written as a number in the file: kept as its decimal string.
    assert_eq!(storage.account_id(), Some("975596993436"));
    assert_eq!(storage.namespace(), Some("uk.ac.wellcome"));
    assert_eq!(
        storage.github_repository(),
        Some("wellcomecollection/storage-service")
    );
    assert_eq!(storage.tf_stack_root(), Some("infrastructure"));
    let repositories: Vec<_> = storage
        .image_repositories()
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.services.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        repositories,
        [
            ("bag_register", vec!["bag-register"]),
            ("bag_unpacker", vec!["bag-unpacker", "bag-unpacker_v2"]),
        ]
    );
    // Every non-core key is kept as written, known or not.
    assert_eq!(storage.extra()["account_id"], json!(975596993436u64));
    assert_eq!(
        storage.extra()["image_repositories"][1]["services"][1],
        json!("bag-unpacker_v2")
    );
    let keys: Vec<_> = storage.extra().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "role_arn",
            "aws_region_name",
            "account_id",
            "namespace",
            "github_repository",
            "tf_stack_root",
            "image_repositories"
        ]
    );

    let pipeline = manifest.project("catalogue_pipeline").unwrap();
    // Only the older region key: it is the region.
    assert_eq!(pipeline.aws_region(), Some("eu-west-1"));
    assert_eq!(pipeline.account_id(), Some("760097843905"));
    let stage = pipeline.environment("stage").unwrap();
    assert_eq!(stage.extra()["colour"], json!("blue"));

    // The environment's extra key is kept, and reported.
    assert_eq!(manifest.warnings().len(), 1, "{:?}", manifest.warnings());
    let warning = &manifest.warnings()[0];
    assert_eq!(
        warning.location,
        "catalogue_pipeline.environments[0].colour"
    );
    assert!(warning.to_string().contains("real.json"), "{warning}");
}

#[test]
fn yaml_with_quoted_date_like_ids() {
    let manifest = Manifest::from_path(fixture("dated.yaml")).unwrap();
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let project = manifest.select(None).unwrap();
    assert_eq!(project.id().as_str(), "catalogue_pipeline");
    let ids: Vec<_> = project
        .environments()
        .iter()
        .map(|e| e.id().as_str())
        .collect();
    assert_eq!(ids, ["2021-09-27", "2021-10-04"]);
    assert_eq!(
        project.environment("2021-09-27").unwrap().name(),
        "Pipeline 2021-09-27"
    );
    assert_eq!(project.account_id(), Some("760097843905"));
    assert_eq!(project.aws_region(), Some("eu-west-1"));
    assert_eq!(
        project.image_repositories()[0].services[0],
        "transformer_mets"
    );
}

#[test]
fn yaml_scalars_stay_as_written() {
    let manifest = parse(
        "\"2021-09-27\":\n  name: Pipeline\n  account_id: 012345678901\n  environments:\n    - {id: '2021-09-27', name: Dated}\n    - {id: 1e3, name: y}\n",
    )
    .unwrap();
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let project = manifest.select(None).unwrap();
    assert_eq!(project.id().as_str(), "2021-09-27");
    assert_eq!(project.environments()[0].id().as_str(), "2021-09-27");
    // A number in YAML 1.2 but a string to YAML 1.1 readers: the text.
    assert_eq!(project.environments()[1].id().as_str(), "1e3");
    assert_eq!(project.environments()[1].name(), "y");
    // An account id keeps its leading zero.
    assert_eq!(project.account_id(), Some("012345678901"));
}

#[test]
fn merged_and_aliased_entries_are_read_as_pyyaml_reads_them() {
    let manifest = Manifest::from_path(fixture("merged.yaml")).unwrap();
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let catalogue = manifest.project("catalogue").unwrap();
    assert_eq!(
        catalogue.role_arn(),
        Some("arn:aws:iam::975596993436:role/storage-ci")
    );
    let ids: Vec<_> = catalogue
        .environments()
        .iter()
        .map(|e| e.id().as_str())
        .collect();
    assert_eq!(ids, ["stage", "2021-09-27"]);

    // The same file with the date unquoted: found through the merge too.
    let text = std::fs::read_to_string(fixture("merged.yaml")).unwrap();
    let text = text.replace("id: \"2021-09-27\"", "id: 2021-09-27");
    let (location, problem) = invalid(&text);
    assert_eq!(location, "catalogue.environments[1].id");
    assert!(problem.contains("a date"), "{problem}");
}

#[test]
fn json_is_read_only_as_json() {
    // A trailing comma: valid YAML, but the file is JSON.
    let text = "{\n  \"storage\": {\"name\": \"Storage\", \"environments\": [],},\n}\n";
    assert_eq!(syntax(text), ("JSON", 2, 53));
    // A comment.
    let text =
        "{\n  # the storage service\n  \"storage\": {\"name\": \"S\", \"environments\": []}\n}\n";
    assert_eq!(syntax(text), ("JSON", 2, 3));
    // A YAML flow mapping is not JSON either; blanks and a byte-order mark
    // before the brace do not change that.
    let text = "\u{feff}\n  {storage: {name: Storage, environments: []}}\n";
    assert_eq!(syntax(text), ("JSON", 2, 4));
    assert_eq!(syntax("[\"storage\",]"), ("JSON", 1, 12));
    // Anything else is YAML, flow collections included.
    let text = "# a comment first\n{storage: {name: Storage, environments: []}}\n";
    assert_eq!(parse(text).unwrap().select(None).unwrap().name(), "Storage");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let text = format!("\u{feff}{}", with_project_keys(json!({})));
    assert_eq!(parse(&text).unwrap().select(None).unwrap().id(), "storage");
}

#[test]
fn null_optional_keys_are_unset() {
    let manifest = parse(
        "storage:\n  name: Storage\n  role_arn:\n  account_id: ~\n  image_repositories:\n  environments: []\n",
    )
    .unwrap();
    let project = manifest.select(None).unwrap();
    assert_eq!(project.role_arn(), None);
    assert_eq!(project.account_id(), None);
    assert!(project.image_repositories().is_empty());
    assert!(project.environments().is_empty());
}

#[test]
fn equal_region_keys_are_fine() {
    let text =
        with_project_keys(json!({"aws_region_name": "eu-west-1", "region_name": "eu-west-1"}));
    let manifest = parse(&text).unwrap();
    assert_eq!(
        manifest.select(None).unwrap().aws_region(),
        Some("eu-west-1")
    );
}

// --- What YAML 1.1 readers read otherwise ----------------------------------------

/// A project `s` whose single environment has the given `id` and `name`,
/// written as given (unquoted unless the caller quotes them).
fn environment(id: &str, name: &str) -> String {
    format!("s:\n  name: S\n  environments:\n    - id: {id}\n      name: {name}\n")
}

#[test]
fn unquoted_ids_that_yaml_1_1_reads_otherwise_are_errors() {
    let cases = [
        // (document, location, how YAML 1.1 readers read the id)
        (environment("2021-09-27", "N"), "s.environments[0].id", "a date"),
        (environment("2021-09-27 10:00:00", "N"), "s.environments[0].id", "a timestamp"),
        (environment("yes", "N"), "s.environments[0].id", "the boolean true"),
        (environment("Off", "N"), "s.environments[0].id", "the boolean false"),
        (environment("1:20", "N"), "s.environments[0].id", "an integer"),
        (environment("017", "N"), "s.environments[0].id", "an integer"),
        (environment("0x1F", "N"), "s.environments[0].id", "an integer"),
        (environment("1_000", "N"), "s.environments[0].id", "an integer"),
        (environment("1.5", "N"), "s.environments[0].id", "a floating-point number"),
        (environment(".inf", "N"), "s.environments[0].id", "a floating-point number"),
        (environment("~", "N"), "s.environments[0].id", "null"),
        (environment("", "N"), "s.environments[0].id", "null"),
        (environment("!!int 5", "N"), "s.environments[0].id", "a `!!int` value"),
        (
            "2021-09-27:\n  name: S\n  environments: []\n".to_owned(),
            "2021-09-27",
            "a date",
        ),
        ("null:\n  name: S\n  environments: []\n".to_owned(), "null", "null"),
        ("~:\n  name: S\n  environments: []\n".to_owned(), "[\"~\"]", "null"),
        (
            "id: 2021-09-27\nname: S\nenvironments: []\n".to_owned(),
            "id",
            "a date",
        ),
        (
            "s:\n  name: S\n  environments: []\n  image_repositories:\n    - {id: on, services: []}\n"
                .to_owned(),
            "s.image_repositories[0].id",
            "the boolean true",
        ),
        (
            "s:\n  name: S\n  environments: []\n  image_repositories:\n    - {id: api, services: [api, 2021-09-27]}\n"
                .to_owned(),
            "s.image_repositories[0].services[1]",
            "a date",
        ),
        // Through a merge key.
        (
            "s:\n  <<: {name: S, environments: [{id: 2021-09-27, name: N}]}\n".to_owned(),
            "s.environments[0].id",
            "a date",
        ),
    ];
    for (text, expected_location, reading) in cases {
        let (location, problem) = invalid(&text);
        assert_eq!(location, expected_location, "{text}");
        assert!(
            problem.contains(&format!("read as {reading} by YAML 1.1 readers")),
            "{text}: {problem}"
        );
        assert!(problem.contains("quote it"), "{problem}");
    }
    let (_, problem) = invalid(&environment("2021-09-27", "N"));
    assert!(
        problem.starts_with("`2021-09-27` is read as a date"),
        "{problem}"
    );
    assert!(problem.ends_with("quote it: \"2021-09-27\""), "{problem}");
}

#[test]
fn quoted_ids_and_strings_to_yaml_1_1_readers_are_fine() {
    for id in [
        "\"2021-09-27\"",
        "'yes'",
        "!!str yes",
        "! stage",
        "y",
        "n",
        "0o17",
        "1e3",
        "stage-2",
    ] {
        let manifest = parse(&environment(id, "N")).unwrap();
        assert!(
            manifest.warnings().is_empty(),
            "{id}: {:?}",
            manifest.warnings()
        );
    }
}

#[test]
fn names_that_yaml_1_1_reads_otherwise_are_warnings() {
    let text = "s:\n  name: yes\n  environments:\n    - id: stage\n      name: 2021-09-27\n    - id: prod\n      name: \"1:20\"\n";
    let manifest = parse(text).unwrap();
    let project = manifest.select(None).unwrap();
    // Kept as written.
    assert_eq!(project.name(), "yes");
    assert_eq!(project.environments()[0].name(), "2021-09-27");
    assert_eq!(project.environments()[1].name(), "1:20");
    let warnings: Vec<_> = manifest
        .warnings()
        .iter()
        .map(|w| (w.location.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(warnings[0].0, "s.name");
    assert!(
        warnings[0]
            .1
            .contains("read as the boolean true by YAML 1.1 readers"),
        "{}",
        warnings[0].1
    );
    assert!(
        warnings[0].1.contains("another project name"),
        "{}",
        warnings[0].1
    );
    assert_eq!(warnings[1].0, "s.environments[0].name");
    assert!(
        warnings[1].1.contains("read as a date"),
        "{}",
        warnings[1].1
    );
    assert!(
        warnings[1].1.ends_with("quote it: \"2021-09-27\""),
        "{}",
        warnings[1].1
    );
}

#[test]
fn an_unquoted_date_fixture_is_refused() {
    match Manifest::from_path(fixture("unquoted-date.yaml")) {
        Err(Error::ManifestInvalid {
            location, problem, ..
        }) => {
            assert_eq!(location, "catalogue_pipeline.environments[0].id");
            assert!(problem.contains("a date"), "{problem}");
        }
        other => panic!("expected ManifestInvalid, got {other:?}"),
    }
}

/// Every scalar of a table made with PyYAML 6 (`yaml.compose`, the tag its
/// resolver gives each scalar written unquoted), in a name and in an id.
#[test]
fn ids_and_names_agree_with_pyyaml() {
    let table: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("pyyaml-scalars.json")).unwrap())
            .unwrap();
    assert!(table.len() > 150);
    for row in &table {
        let scalar = row["scalar"].as_str().unwrap();
        let text = row["text"].as_str().unwrap();
        let string = row["tag"] == "str";

        let manifest = parse(&environment("stage", scalar)).unwrap();
        assert_eq!(
            manifest.select(None).unwrap().environments()[0].name(),
            text
        );
        let warned = manifest
            .warnings()
            .iter()
            .any(|w| w.message.contains("YAML 1.1"));
        assert_eq!(
            warned,
            !string,
            "name {scalar:?}: {:?}",
            manifest.warnings()
        );

        match parse(&environment(scalar, "N")) {
            Ok(manifest) => {
                assert!(
                    string,
                    "id {scalar:?} accepted, PyYAML reads {}",
                    row["tag"]
                );
                assert_eq!(
                    manifest.select(None).unwrap().environments()[0]
                        .id()
                        .as_str(),
                    text
                );
            }
            Err(Error::ManifestInvalid { problem, .. }) => {
                // A string may still be an invalid id (a space, `.`).
                assert_eq!(
                    problem.contains("YAML 1.1"),
                    !string,
                    "id {scalar:?}: {problem}"
                );
            }
            Err(other) => panic!("id {scalar:?}: {other:?}"),
        }
    }
}

// --- Syntax errors ----------------------------------------------------------

#[test]
fn json_syntax_error_has_line_and_column() {
    // A missing comma after line 3: serde_json stops at the next key.
    let text = "{\n  \"storage\": {\n    \"name\": \"Storage\"\n    \"environments\": []\n  }\n}\n";
    assert_eq!(syntax(text), ("JSON", 4, 5));
}

#[test]
fn json_syntax_error_at_end_of_input() {
    assert_eq!(syntax("{\"storage\": {"), ("JSON", 1, 13));
    // serde_json reports column 0 for the start of a line; ours are 1-based.
    let (format, line, column) = syntax("{\"storage\": {\n");
    assert_eq!((format, line), ("JSON", 2));
    assert!(column >= 1);
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let text = "storage:\n  name: Storage\n  environments: [stage, prod\n";
    let (format, line, column) = syntax(text);
    assert_eq!(format, "YAML");
    // The unclosed bracket is at line 3, column 17.
    assert_eq!((line, column), (3, 17));

    let text = "storage:\n  name: Storage\n  environments: a: b\n";
    assert_eq!(syntax(text), ("YAML", 3, 18));
}

// --- Invalid documents ------------------------------------------------------

#[test]
fn not_an_object() {
    for text in [
        "[]",
        "\"storage\"",
        "42",
        "- storage\n",
        "just words\n",
        "null",
    ] {
        let (location, problem) = invalid(text);
        assert_eq!(location, "(top level)", "{text}");
        assert!(
            problem.contains("an object keyed by project id"),
            "{problem}"
        );
    }
}

#[test]
fn empty_manifests_are_errors() {
    for text in ["", "  \n\t", "{}", "# only a comment\n{}\n"] {
        let (location, problem) = invalid(text);
        assert_eq!(location, "(top level)");
        assert!(
            problem.contains("empty") || problem.contains("no projects"),
            "{problem}"
        );
    }
}

#[test]
fn project_value_not_an_object() {
    let (location, problem) = invalid(r#"{"storage": ["stage"]}"#);
    assert_eq!(location, "storage");
    assert!(problem.contains("found a list"), "{problem}");
}

#[test]
fn missing_or_mistyped_name() {
    let (location, problem) = invalid(r#"{"storage": {"environments": []}}"#);
    assert_eq!(location, "storage.name");
    assert!(problem.contains("missing"), "{problem}");

    let (location, problem) = invalid(r#"{"storage": {"name": 3, "environments": []}}"#);
    assert_eq!(location, "storage.name");
    assert!(problem.contains("expected a string"), "{problem}");
    assert!(problem.contains("found a number"), "{problem}");

    // The oldest form: locations are relative to the top.
    let (location, _) = invalid(r#"{"id": "storage", "environments": []}"#);
    assert_eq!(location, "name");
}

#[test]
fn missing_or_mistyped_environments() {
    let (location, problem) = invalid(r#"{"storage": {"name": "Storage"}}"#);
    assert_eq!(location, "storage.environments");
    assert!(problem.contains("missing"), "{problem}");

    let (location, problem) =
        invalid(r#"{"storage": {"name": "Storage", "environments": {"id": "stage"}}}"#);
    assert_eq!(location, "storage.environments");
    assert!(problem.contains("found an object"), "{problem}");
}

#[test]
fn bad_environment_entries() {
    let cases = [
        (r#"["stage"]"#, "storage.environments[0]", "found a string"),
        (
            r#"[{"id": "stage", "name": "Staging"}, {"name": "Production"}]"#,
            "storage.environments[1].id",
            "missing",
        ),
        (
            r#"[{"id": "stage"}]"#,
            "storage.environments[0].name",
            "missing",
        ),
        (
            r#"[{"id": 1, "name": "One"}]"#,
            "storage.environments[0].id",
            "found a number",
        ),
        (
            r#"[{"id": "stage", "name": null}]"#,
            "storage.environments[0].name",
            "found null",
        ),
        (
            r#"[{"id": "st age", "name": "Staging"}]"#,
            "storage.environments[0].id",
            "invalid environment id \"st age\"",
        ),
    ];
    for (environments, want_location, want_problem) in cases {
        let text =
            format!(r#"{{"storage": {{"name": "Storage", "environments": {environments}}}}}"#);
        let (location, problem) = invalid(&text);
        assert_eq!(location, want_location, "{text}");
        assert!(problem.contains(want_problem), "{text}: {problem}");
    }
}

#[test]
fn invalid_project_ids() {
    let (location, problem) = invalid(r#"{"aws-storage": {"name": "S", "environments": []}}"#);
    assert_eq!(location, "aws-storage");
    assert!(problem.contains("invalid project id"), "{problem}");
    assert!(problem.contains("reserved"), "{problem}");

    let (location, problem) = invalid(r#"{"a/../b": {"name": "S", "environments": []}}"#);
    assert_eq!(location, r#"["a/../b"]"#);
    assert!(problem.contains("'/'"), "{problem}");

    // The oldest form's `id`.
    let (location, problem) = invalid(r#"{"id": "", "name": "S", "environments": []}"#);
    assert_eq!(location, "id");
    assert!(problem.contains("empty"), "{problem}");
}

#[test]
fn duplicate_environment() {
    let text = r#"{"storage": {"name": "S", "environments": [
        {"id": "stage", "name": "Staging"}, {"id": "stage", "name": "Staging again"}]}}"#;
    match parse(text) {
        Err(
            ref e @ Error::DuplicateEnvironment {
                ref file,
                ref project,
                ref environment,
            },
        ) => {
            assert_eq!(file, FILE);
            assert_eq!(project.as_str(), "storage");
            assert_eq!(environment.as_str(), "stage");
            let message = e.to_string();
            assert!(message.contains(FILE), "{message}");
            assert!(message.contains("`storage`"), "{message}");
            assert!(message.contains("`stage`"), "{message}");
        }
        other => panic!("expected DuplicateEnvironment, got {other:?}"),
    }
}

#[test]
fn duplicate_project_in_json() {
    let text = "{\n  \"storage\": {\"name\": \"A\", \"environments\": []},\n  \"storage\": {\"name\": \"B\", \"environments\": []}\n}\n";
    let (location, problem) = invalid(text);
    assert_eq!(location, "storage");
    assert!(problem.contains("more than once"), "{problem}");
    assert!(problem.contains("line 3"), "{problem}");
}

#[test]
fn duplicate_project_in_yaml() {
    let text = "storage:\n  name: A\n  environments: []\nstorage:\n  name: B\n  environments: []\n";
    let (location, problem) = invalid(text);
    assert_eq!(location, "storage");
    assert!(problem.contains("more than once"), "{problem}");
    assert!(problem.contains("line 4"), "{problem}");
}

#[test]
fn duplicate_nested_key() {
    let text = r#"{"storage": {"name": "A", "environments": [{"id": "stage", "name": "S", "name": "T"}]}}"#;
    let (location, _) = invalid(text);
    assert_eq!(location, "storage.environments[0].name");
}

#[test]
fn wrongly_typed_optional_keys() {
    for key in [
        "role_arn",
        "aws_region_name",
        "region_name",
        "namespace",
        "github_repository",
        "tf_stack_root",
    ] {
        for bad in [json!(1), json!(true), json!(["x"]), json!({"a": "b"})] {
            let (location, problem) = invalid(&with_project_keys(json!({ key: bad })));
            assert_eq!(location, format!("storage.{key}"));
            assert!(problem.contains("expected a string"), "{problem}");
        }
    }
    for bad in [json!(1.5), json!(-1), json!(false), json!([1])] {
        let (location, problem) = invalid(&with_project_keys(json!({ "account_id": bad })));
        assert_eq!(location, "storage.account_id");
        assert!(problem.contains("expected a string"), "{problem}");
    }
}

#[test]
fn bad_image_repositories() {
    let cases = [
        (
            json!("bag_register"),
            "storage.image_repositories",
            "found a string",
        ),
        (
            json!(["bag_register"]),
            "storage.image_repositories[0]",
            "found a string",
        ),
        (
            json!([{"services": []}]),
            "storage.image_repositories[0].id",
            "missing",
        ),
        (
            json!([{"id": 1, "services": []}]),
            "storage.image_repositories[0].id",
            "found a number",
        ),
        (
            json!([{"id": "r"}]),
            "storage.image_repositories[0].services",
            "missing",
        ),
        (
            json!([{"id": "r", "services": "a"}]),
            "storage.image_repositories[0].services",
            "found a string",
        ),
        (
            json!([{"id": "r", "services": ["ok", "a/../../prod"]}]),
            "storage.image_repositories[0].services[1]",
            "invalid service id",
        ),
        (
            json!([{"id": "r", "services": [null]}]),
            "storage.image_repositories[0].services[0]",
            "found null",
        ),
    ];
    for (value, want_location, want_problem) in cases {
        let text = with_project_keys(json!({ "image_repositories": value }));
        let (location, problem) = invalid(&text);
        assert_eq!(location, want_location, "{text}");
        assert!(problem.contains(want_problem), "{text}: {problem}");
    }
}

#[test]
fn conflicting_region_keys() {
    let text =
        with_project_keys(json!({"aws_region_name": "eu-west-1", "region_name": "us-east-1"}));
    let (location, problem) = invalid(&text);
    assert_eq!(location, "storage.region_name");
    for part in [
        "aws_region_name",
        "\"eu-west-1\"",
        "region_name",
        "\"us-east-1\"",
    ] {
        assert!(problem.contains(part), "{problem}");
    }
}

// --- Warnings ---------------------------------------------------------------

#[test]
fn unknown_keys_warn_with_suggestions() {
    let text = "storage:\n  name: Storage\n  role_ar: arn:aws:iam::1:role/x\n  Namespace: x\n  team: platform\n  id: storage\n  environments:\n    - {id: stage, name: Staging, nmae: typo}\n  image_repositories:\n    - {id: r, services: [a], service: b}\n";
    let manifest = parse(text).unwrap();
    let project = manifest.select(None).unwrap();
    // Unknown keys are kept, never dropped.
    for key in ["role_ar", "Namespace", "team", "id"] {
        assert!(project.extra().contains_key(key), "{key}");
    }
    assert_eq!(project.role_arn(), None);
    assert_eq!(project.environments()[0].extra()["nmae"], json!("typo"));

    let warnings: Vec<_> = manifest
        .warnings()
        .iter()
        .map(|w| (w.location.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 6, "{warnings:#?}");
    let find = |location: &str| {
        warnings
            .iter()
            .find(|(l, _)| *l == location)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("no warning at {location}: {warnings:#?}"))
    };
    assert!(find("storage.role_ar").contains("did you mean `role_arn`?"));
    assert!(find("storage.Namespace").contains("did you mean `namespace`?"));
    assert!(!find("storage.team").contains("did you mean"));
    // `id` is a key only of the oldest form.
    assert!(find("storage.id").contains("unknown key"));
    assert!(find("storage.environments[0].nmae").contains("did you mean `name`?"));
    assert!(find("storage.image_repositories[0].service").contains("did you mean `services`?"));

    for warning in manifest.warnings() {
        assert_eq!(warning.file, FILE);
        let shown = warning.to_string();
        assert!(
            shown.contains(FILE) && shown.contains(&warning.location),
            "{shown}"
        );
    }
}

#[test]
fn a_missing_key_beside_its_typo_is_one_error() {
    let cases = [
        (
            "storage:\n  name: Storage\n  enviroments: []\n",
            "storage.environments",
            "enviroments",
        ),
        (
            "storage:\n  nmae: Storage\n  environments: []\n",
            "storage.name",
            "nmae",
        ),
        (
            "storage:\n  name: S\n  environments:\n    - {Id: stage, name: Staging}\n",
            "storage.environments[0].id",
            "Id",
        ),
        (
            "storage:\n  name: S\n  environments: []\n  image_repositories:\n    - {id: api, service: [api]}\n",
            "storage.image_repositories[0].services",
            "service",
        ),
    ];
    for (text, expected_location, typo) in cases {
        let (result, warnings) = Manifest::parse_with_warnings(text, FILE);
        match result {
            Err(Error::ManifestInvalid {
                location, problem, ..
            }) => {
                assert_eq!(location, expected_location, "{text}");
                let key = expected_location.rsplit('.').next().unwrap();
                let key = key.split('[').next().unwrap();
                assert!(
                    problem.starts_with(&format!(
                        "missing; did you mean `{key}` where you wrote `{typo}`?"
                    )),
                    "{problem}"
                );
            }
            other => panic!("expected ManifestInvalid for {text:?}, got {other:?}"),
        }
        // Not repeated as a warning.
        assert!(warnings.is_empty(), "{warnings:?}");
    }
    // Without a typo, the error stays short.
    let (_, problem) = invalid("storage:\n  name: Storage\n  team: x\n");
    assert!(problem.starts_with("missing; expected a list"), "{problem}");
}

#[test]
fn warnings_are_returned_with_errors() {
    // The first project is invalid; warnings about it and about the next
    // one are all returned.
    let text = "a:\n  name: A\n  role_ar: x\n  enviroments: []\nb:\n  name: yes\n  team: t\n  environments: []\n";
    let (result, warnings) = Manifest::parse_with_warnings(text, FILE);
    match result {
        Err(Error::ManifestInvalid { location, .. }) => assert_eq!(location, "a.environments"),
        other => panic!("expected ManifestInvalid, got {other:?}"),
    }
    let locations: Vec<_> = warnings.iter().map(|w| w.location.as_str()).collect();
    assert_eq!(locations, ["a.role_ar", "b.team", "b.name"]);
    assert!(warnings.iter().all(|w| w.file == FILE));

    // When another error comes first, the typo is still reported, as a
    // warning.
    let text = "a:\n  name: [A]\n  enviroments: []\n";
    let (result, warnings) = Manifest::parse_with_warnings(text, FILE);
    assert!(
        matches!(result, Err(Error::ManifestInvalid { ref location, .. }) if location == "a.name"),
        "{result:?}"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].location, "a.enviroments");

    // On success, they are the manifest's.
    let text = "a:\n  name: A\n  role_ar: x\n  environments: []\n";
    let (result, warnings) = Manifest::parse_with_warnings(text, FILE);
    assert_eq!(result.unwrap().warnings(), warnings);
    assert_eq!(warnings.len(), 1);

    // Not JSON or YAML: no warnings.
    let (result, warnings) = Manifest::parse_with_warnings("{\"a\": {\"role_ar\": 1,}}", FILE);
    assert!(
        matches!(result, Err(Error::ManifestSyntax { .. })),
        "{result:?}"
    );
    assert!(warnings.is_empty());
}

#[test]
fn from_path_returns_warnings_with_errors() {
    let dir = std::env::temp_dir().join(format!(
        "release-tracking-manifest-warnings-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".wellcome_project");
    std::fs::write(&path, "a:\n  name: A\n  role_ar: x\n").unwrap();
    let (result, warnings) = Manifest::from_path_with_warnings(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(result, Err(Error::ManifestInvalid { .. })),
        "{result:?}"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].file, path.display().to_string());
    assert_eq!(warnings[0].location, "a.role_ar");

    let (result, warnings) = Manifest::from_path_with_warnings(dir.join("missing"));
    assert!(
        matches!(result, Err(Error::ManifestRead { .. })),
        "{result:?}"
    );
    assert!(warnings.is_empty());
}

// --- Look-ups ---------------------------------------------------------------

const TWO_PROJECTS: &str = r#"{
    "storage": {"name": "Storage", "environments": [{"id": "stage", "name": "Staging"}, {"id": "prod", "name": "Production"}]},
    "catalogue": {"name": "Catalogue", "environments": []}
}"#;

#[test]
fn select_the_only_project() {
    let manifest = parse(&with_project_keys(json!({}))).unwrap();
    assert_eq!(manifest.select(None).unwrap().id(), "storage");
    assert_eq!(manifest.select(Some("storage")).unwrap().id(), "storage");
}

#[test]
fn select_without_a_name_among_several() {
    let manifest = parse(TWO_PROJECTS).unwrap();
    match manifest.select(None) {
        Err(e @ Error::ProjectNotChosen { .. }) => {
            let message = e.to_string();
            assert!(message.contains(FILE), "{message}");
            assert!(message.contains("catalogue, storage"), "{message}");
        }
        other => panic!("expected ProjectNotChosen, got {other:?}"),
    }
    assert_eq!(
        manifest.select(Some("catalogue")).unwrap().name(),
        "Catalogue"
    );
}

#[test]
fn select_in_an_empty_manifest_built_in_code() {
    let manifest = Manifest::from_projects(vec![]);
    match manifest.select(None) {
        Err(e @ Error::ProjectNotChosen { .. }) => {
            let message = e.to_string();
            assert!(!message.contains("several"), "{message}");
            assert!(message.contains("no projects"), "{message}");
        }
        other => panic!("expected ProjectNotChosen, got {other:?}"),
    }
}

#[test]
fn unknown_project_lists_known_ids() {
    let manifest = parse(TWO_PROJECTS).unwrap();
    match manifest.project("archive") {
        Err(e @ Error::UnknownProject { .. }) => {
            let message = e.to_string();
            assert!(message.contains(FILE), "{message}");
            assert!(message.contains("`archive`"), "{message}");
            assert!(message.contains("catalogue, storage"), "{message}");
        }
        other => panic!("expected UnknownProject, got {other:?}"),
    }
}

#[test]
fn unknown_environment_lists_known_ids() {
    let manifest = parse(TWO_PROJECTS).unwrap();
    let storage = manifest.project("storage").unwrap();
    match storage.environment("production") {
        Err(e @ Error::UnknownEnvironment { .. }) => {
            let message = e.to_string();
            assert!(message.contains("`storage`"), "{message}");
            assert!(message.contains("`production`"), "{message}");
            assert!(message.contains("stage, prod"), "{message}");
        }
        other => panic!("expected UnknownEnvironment, got {other:?}"),
    }
}

#[test]
fn from_path_on_a_missing_file() {
    let path = fixture("does-not-exist.json");
    match Manifest::from_path(&path) {
        Err(e @ Error::ManifestRead { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            let Error::ManifestRead { path: got, .. } = e else {
                unreachable!()
            };
            assert_eq!(got, path);
        }
        other => panic!("expected ManifestRead, got {other:?}"),
    }
}

#[test]
fn from_path_names_the_file_in_errors() {
    let dir =
        std::env::temp_dir().join(format!("release-tracking-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".wellcome_project");
    std::fs::write(&path, r#"{"storage": {"name": "S"}}"#).unwrap();
    let result = Manifest::from_path(&path);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(Error::ManifestInvalid { file, location, .. }) => {
            assert_eq!(file, path.display().to_string());
            assert_eq!(location, "storage.environments");
        }
        other => panic!("expected ManifestInvalid, got {other:?}"),
    }
}

// --- Hostile input -------------------------------------------------------------

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse(&json).is_err());
    let yaml = format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(parse(&yaml).is_err());
    let nested = format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth));
    assert!(parse(&nested).is_err());
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(parse(&text).is_err());
}

#[test]
fn an_environment_cannot_be_the_latest_label() {
    let err = Manifest::parse(
        r#"{"storage": {"name": "S", "environments": [{"id": "latest", "name": "Latest"}]}}"#,
        "m.json",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ManifestInvalid { .. }), "{err:?}");
    assert!(text.contains("storage.environments[0].id"), "{text}");
    assert!(text.contains("CI publishes"), "{text}");
}
