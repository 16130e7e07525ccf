//! Promotion gates in `.wellcome_project`: `requires` and `soak` per
//! environment, read from JSON and YAML, checked against the project's
//! environments, and absent from manifests that predate them.

use release_tracking::{Environment, EnvironmentId, Error, Manifest, Project, Soak};

const FILE: &str = "repo/.wellcome_project";

fn parse(text: &str) -> Result<Manifest, Error> {
    Manifest::parse(text, FILE)
}

/// (location, problem) of a manifest that must be invalid.
fn invalid(text: &str) -> (String, String) {
    match parse(text) {
        Err(Error::ManifestInvalid {
            file,
            location,
            problem,
        }) => {
            assert_eq!(file, FILE);
            (location, problem)
        }
        other => panic!("expected ManifestInvalid for {text}, got {other:?}"),
    }
}

/// A YAML manifest of project `storage` with these environment entries.
fn yaml(environments: &str) -> String {
    format!("storage:\n  name: Storage\n  environments:\n{environments}")
}

#[test]
fn requires_and_soak_are_read_from_yaml_and_json() {
    let text = yaml(
        "    - id: stage\n      name: Staging\n\
         \x20   - id: prod\n      name: Production\n      requires: [stage]\n      soak: 2h\n",
    );
    let manifest = parse(&text).expect("valid");
    assert!(manifest.warnings().is_empty(), "{:?}", manifest.warnings());
    let project = manifest.select(None).expect("project");
    let prod = project.environment("prod").expect("prod");
    assert_eq!(
        prod.requires(),
        ["stage".parse::<EnvironmentId>().expect("id")]
    );
    assert_eq!(prod.soak(), Some(Soak::from_seconds(7_200)));
    assert!(prod.extra().is_empty(), "gate keys are not extra");
    let stage = project.environment("stage").expect("stage");
    assert!(stage.requires().is_empty() && stage.soak().is_none());

    let json = r#"{"storage": {"name": "Storage", "environments": [
        {"id": "stage", "name": "Staging"},
        {"id": "test", "name": "Test"},
        {"id": "prod", "name": "Production", "requires": ["stage", "test"], "soak": "1h30m"}]}}"#;
    let manifest = parse(json).expect("valid");
    let prod = manifest
        .select(None)
        .and_then(|p| p.environment("prod"))
        .expect("prod")
        .clone();
    assert_eq!(prod.requires().len(), 2);
    assert_eq!(prod.soak().map(|s| s.to_string()), Some("1h30m".to_owned()));
}

#[test]
fn a_manifest_without_gates_reads_as_before() {
    let manifest = parse(
        r#"{"storage": {"name": "Storage", "environments": [
            {"id": "stage", "name": "Staging"}, {"id": "prod", "name": "Production"}]}}"#,
    )
    .expect("valid");
    for environment in manifest.select(None).expect("project").environments() {
        assert!(!environment.is_gated(), "{environment:?}");
        assert_eq!(environment.soak(), None);
    }
    assert!(manifest.warnings().is_empty());
}

#[test]
fn gate_mistakes_are_errors_naming_the_key_path() {
    let cases = [
        (
            "      requires: [stag]\n",
            "storage.environments[1].requires[0]",
            "`stag` is not an environment of this project; its environments are: stage, prod",
        ),
        (
            "      requires: [prod]\n",
            "storage.environments[1].requires[0]",
            "`prod` requires itself",
        ),
        (
            "      requires: [stage, stage]\n",
            "storage.environments[1].requires[1]",
            "`stage` is listed twice",
        ),
        (
            "      requires: stage\n",
            "storage.environments[1].requires",
            "expected a list of environment ids, such as `[stage]`, found a string",
        ),
        (
            "      soak: 2h\n",
            "storage.environments[1].soak",
            "add `requires`",
        ),
        (
            "      requires: [stage]\n      soak: 2 hours\n",
            "storage.environments[1].soak",
            "is not a soak time",
        ),
        (
            "      requires: [stage]\n      soak: 120\n",
            "storage.environments[1].soak",
            "expected a soak time such as `2h` or `30m` (a string), found a number",
        ),
        (
            "      requires: [stage]\n      soak: 0m\n",
            "storage.environments[1].soak",
            "it is zero",
        ),
        (
            "      requires: [yes]\n",
            "storage.environments[1].requires[0]",
            "YAML 1.1",
        ),
    ];
    for (prod_keys, location, problem) in cases {
        let text = yaml(&format!(
            "    - id: stage\n      name: Staging\n    - id: prod\n      name: Production\n\
             {prod_keys}"
        ));
        let (got_location, got_problem) = invalid(&text);
        assert_eq!(got_location, location, "{prod_keys}");
        assert!(
            got_problem.contains(problem),
            "{prod_keys}: {got_problem:?} lacks {problem:?}"
        );
    }
}

#[test]
fn environments_that_require_each_other_are_an_error() {
    let text = yaml(
        "    - id: stage\n      name: Staging\n      requires: [prod]\n\
         \x20   - id: prod\n      name: Production\n      requires: [test]\n\
         \x20   - id: test\n      name: Test\n      requires: [stage]\n",
    );
    let (location, problem) = invalid(&text);
    assert_eq!(location, "storage.environments[0].requires");
    assert!(
        problem.contains("cycle (stage requires prod requires test requires stage)"),
        "{problem}"
    );
}

#[test]
fn a_typo_of_requires_is_a_warning_with_a_suggestion() {
    let text = yaml(
        "    - id: stage\n      name: Staging\n\
         \x20   - id: prod\n      name: Production\n      require: [stage]\n",
    );
    let manifest = parse(&text).expect("valid");
    let warnings: Vec<String> = manifest.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("storage.environments[1].require")
            && warnings[0].contains("did you mean `requires`?"),
        "{warnings:?}"
    );
    let prod = manifest
        .select(None)
        .and_then(|p| p.environment("prod"))
        .expect("prod")
        .clone();
    assert!(!prod.is_gated(), "a typo gates nothing");
}

#[test]
fn projects_built_in_code_check_their_gates() {
    let stage = Environment::new("stage".parse().expect("id"), "Staging");
    let prod = Environment::new("prod".parse().expect("id"), "Production")
        .with_requires(["stage".parse().expect("id")])
        .with_soak("2h".parse().expect("soak"));
    let project = Project::new(
        "storage".parse().expect("id"),
        "Storage",
        vec![stage.clone(), prod],
    )
    .expect("valid gates");
    assert!(project.environment("prod").expect("prod").is_gated());

    let orphan = Environment::new("prod".parse().expect("id"), "Production")
        .with_requires(["qa".parse().expect("id")]);
    match Project::new(
        "storage".parse().expect("id"),
        "Storage",
        vec![stage, orphan],
    ) {
        Err(Error::ManifestInvalid {
            location, problem, ..
        }) => {
            assert_eq!(location, "environments[1].requires[0]");
            assert!(problem.contains("`qa` is not an environment"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}
