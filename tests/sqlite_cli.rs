//! `release_tool --store sqlite:PATH` as a process: the whole workflow on
//! one file, and `export`/`import` between files, with no AWS set-up at all
//! (the environment holds no region or credentials, so any AWS set-up would
//! fail).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli_common;

/// The tool in `dir` with a clean environment (`USER` is alice) and `vars`.
fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(cli_common::release_tool());
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "alice")
        .envs(vars.iter().copied());
    command
}

/// Runs the tool on `store` (a file in `dir`) with `stdin`; asserts it
/// succeeded and, in human mode, named the store first on stderr. Returns
/// stdout and stderr.
fn run_on(dir: &Path, store: &str, args: &[&str], stdin: &[u8]) -> (String, String) {
    let mut child = command(dir, &[])
        .args(["--store", &format!("sqlite:{store}")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run release_tool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let output = child.wait_with_output().expect("release_tool ends");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "release_tool {args:?} failed: {stderr}\n{stdout}"
    );
    // Human mode names the store on stderr; JSON mode puts it in the document.
    if !args.contains(&"--json") {
        assert_eq!(
            stderr.lines().next(),
            Some(format!("store: sqlite (path {store})").as_str()),
            "{args:?}: {stderr}"
        );
    } else {
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    (stdout, stderr)
}

fn run(dir: &Path, args: &[&str]) -> String {
    run_on(dir, "releases.db", args, b"").0
}

/// A directory with the two-environment manifest.
fn project_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join(".wellcome_project"),
        r#"{"storage": {"name": "Storage service", "environments":
            [{"id": "stage", "name": "Staging"}, {"id": "prod", "name": "Production"}]}}"#,
    )
    .expect("manifest");
    dir
}

#[test]
fn the_whole_workflow_runs_on_one_sqlite_file_without_aws() {
    let dir = project_dir("sqlite-cli");
    let image = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.1";
    run(&dir, &["publish", "archivist", image]);
    let prepared = run(&dir, &["prepare", "--description", "first release"]);
    let id = prepared
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("release "))
        .expect("the release id")
        .to_owned();
    assert!(prepared.contains("by alice"), "{prepared}");
    let deployed = run(
        &dir,
        &["deploy", "latest", "stage", "--description", "first"],
    );
    assert!(
        deployed.contains(&format!("deployed {id} to stage: 1 written")),
        "{deployed}"
    );
    let history = run(&dir, &["history"]);
    assert!(
        history.contains(&id) && history.contains("alice"),
        "{history}"
    );
    let current: serde_json::Value =
        serde_json::from_str(&run(&dir, &["--json", "current", "stage"]))
            .expect("one JSON document");
    assert_eq!(current["store"]["kind"], "sqlite", "{current:#}");
    assert!(current.to_string().contains(&id), "{current:#}");
    // A second process sees what the first wrote: the file is the store.
    assert!(dir.join("releases.db").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

/// The tool's failure: exit status and stderr.
fn fail(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let (code, stdout, stderr) = failure(dir, args, vars);
    assert!(stdout.is_empty(), "a failed {args:?} printed on stdout");
    (code, stderr)
}

/// A failed deploy: exit status and stderr; stdout holds at most the plan
/// it showed before it was refused.
fn fail_deploy(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (code, stdout, stderr) = failure(dir, args, &[]);
    assert!(
        stdout.is_empty() || stdout.starts_with("deploy "),
        "a refused {args:?} printed more than its plan: {stdout}"
    );
    (code, stderr)
}

fn failure(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command(dir, vars)
        .args(args)
        .output()
        .expect("run release_tool");
    assert!(!status.success(), "{args:?} succeeded");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn export_and_import_copy_a_project_from_one_file_to_another() {
    let dir = project_dir("sqlite-cli-transfer");
    let image = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.1";
    run(&dir, &["publish", "archivist", image]);
    run(&dir, &["prepare", "--description", "first release"]);
    run(
        &dir,
        &["deploy", "latest", "stage", "--description", "first"],
    );
    run(&dir, &["--requester", "bob", "deploy", "latest", "prod"]);

    // To stdout: the lines alone; the report goes to stderr after the store line.
    let (lines, stderr) = run_on(&dir, "releases.db", &["export"], b"");
    assert!(
        stderr
            .contains("exported project storage: 1 releases (2 deployments), 3 labels (3 images)"),
        "{stderr}"
    );
    assert!(lines.starts_with(r#"{"kind":"header","format":"release-tracking-export","version":1"#));
    assert_eq!(
        lines.lines().count(),
        6,
        "header, release, 3 labels, end: {lines}"
    );
    // To a file, with --json: the summary on stdout, the same lines in the file.
    let doc = json(&run(
        &dir,
        &["--json", "export", "--output", "storage.jsonl"],
    ));
    assert_eq!(doc["command"], "export");
    assert_eq!(doc["store"]["kind"], "sqlite");
    assert_eq!(doc["output"], "storage.jsonl");
    assert_eq!(
        doc["exported"],
        serde_json::json!({"releases": 1, "deployments": 2, "labels": 3, "images": 3, "skipped": 0})
    );
    let file = std::fs::read_to_string(dir.join("storage.jsonl")).expect("the export file");
    assert_eq!(file, lines);
    assert!(!dir.join("storage.jsonl.partial").exists());

    // Into another file, from the file, with the store from the environment.
    let output = command(&dir, &[("RELEASE_TRACKING_STORE", "sqlite:copy.db")])
        .args(["--json", "import", "storage.jsonl"])
        .output()
        .expect("run release_tool");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc = json(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(doc["command"], "import");
    assert_eq!(doc["store"]["path"], "copy.db");
    assert_eq!(doc["input"], "storage.jsonl");
    assert_eq!(
        doc["imported"],
        serde_json::json!({"releases": 1, "deployments": 2, "images": 3})
    );
    assert_eq!(
        doc["unchanged"],
        serde_json::json!({"releases": 0, "images": 0})
    );
    assert_eq!(doc["warnings"], serde_json::json!([]));
    // The copy reads as the original, and exports the same lines.
    for args in [
        &["--json", "history"][..],
        &["--json", "show-release", "latest"],
        &["--json", "current", "prod"],
    ] {
        let mut original = json(&run(&dir, args));
        let mut copy = json(&run_on(&dir, "copy.db", args, b"").0);
        original["store"] = Value::Null;
        copy["store"] = Value::Null;
        assert_eq!(copy, original, "{args:?}");
    }
    assert_eq!(run_on(&dir, "copy.db", &["export"], b"").0, lines);

    // Again, from stdin: everything is already there.
    let (report, _) = run_on(&dir, "copy.db", &["import"], lines.as_bytes());
    assert_eq!(
        report.trim_end(),
        "imported into project storage: 0 releases created (0 deployments), 1 already there; \
         0 images written, 3 already there"
    );
    let doc = json(
        &run_on(
            &dir,
            "copy.db",
            &["--json", "import", "-"],
            lines.as_bytes(),
        )
        .0,
    );
    assert_eq!(doc["input"], Value::Null);
    assert_eq!(
        doc["unchanged"],
        serde_json::json!({"releases": 1, "images": 3})
    );

    // An export whose release differs from the stored one writes nothing.
    let changed = lines.replace("first release", "rewritten");
    std::fs::write(dir.join("changed.jsonl"), &changed).expect("write");
    let (status, stderr) = fail(
        &dir,
        &["--store", "sqlite:copy.db", "import", "changed.jsonl"],
        &[],
    );
    assert_eq!(status, Some(1));
    assert!(
        stderr.contains("nothing was written") && stderr.contains("differs in description"),
        "{stderr}"
    );
    assert_eq!(run_on(&dir, "copy.db", &["export"], b"").0, lines);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_and_import_refuse_bad_usage_and_bad_input_by_line() {
    let dir = project_dir("sqlite-cli-transfer-errors");
    let store = [("RELEASE_TRACKING_STORE", "sqlite:releases.db")];
    // --json takes stdout, so the export needs a file: a usage error.
    let (status, stderr) = fail(&dir, &["--json", "export"], &store);
    assert_eq!(status, Some(2));
    assert!(
        stderr.contains("`export --json` needs `--output FILE`"),
        "{stderr}"
    );
    assert!(!stderr.contains("store: "), "opened a store: {stderr}");
    assert!(!dir.join("releases.db").exists(), "the store was opened");

    let header = r#"{"kind":"header","format":"release-tracking-export","version":1,"project_id":"storage"}"#;
    let cases = [
        (
            "not-json.jsonl",
            format!("{header}\n{{oops\n"),
            "line 2: not JSON",
        ),
        (
            "unknown-kind.jsonl",
            format!("{header}\n{{\"kind\":\"parameter\"}}\n"),
            "line 2: `kind`: unknown kind `parameter`",
        ),
        (
            "cut.jsonl",
            format!("{header}\n"),
            "ends after line 1 without its end line",
        ),
        (
            "other-project.jsonl",
            format!(
                "{}\n{{\"kind\":\"end\",\"releases\":0,\"labels\":0,\"skipped\":0}}\n",
                header.replace("storage", "elsewhere")
            ),
            "the export is of project `elsewhere`, not `storage`",
        ),
    ];
    for (file, text, says) in cases {
        std::fs::write(dir.join(file), text).expect("write");
        let (status, stderr) = fail(&dir, &["import", file], &store);
        assert_eq!(status, Some(1), "{file}: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(
            stderr.contains(file) || file == "other-project.jsonl",
            "{file}: {stderr}"
        );
    }
    let (status, stderr) = fail(&dir, &["import", "missing.jsonl"], &store);
    assert_eq!(status, Some(1));
    assert!(
        stderr.contains("reading the export missing.jsonl"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tool in `dir` on `releases.db`, expected to fail: exit status,
/// stdout (a deploy shows its plan first) and stderr.
fn refused(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = command(dir, &[])
        .args(["--store", "sqlite:releases.db"])
        .args(args)
        .output()
        .expect("run release_tool");
    assert!(!output.status.success(), "{args:?} succeeded");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Promotion on one file: `prod` requires `stage`; a deploy there is
/// refused with the plan's gates shown, `--bypass-gates` needs `--reason`
/// and records it, `rollback` returns to the release before, and
/// `history ENV` shows each entry's kind and the release it replaced, in
/// text and in `--json`.
#[test]
fn gates_bypass_and_rollback_on_one_sqlite_file() {
    let dir = project_dir("sqlite-cli-promotion");
    std::fs::write(
        dir.join(".wellcome_project"),
        "storage:\n  name: Storage service\n  environments:\n    - id: stage\n      name: \
         Staging\n    - id: prod\n      name: Production\n      requires: [stage]\n",
    )
    .expect("manifest");
    let image = |tag: &str| {
        format!("760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:{tag}")
    };
    let release_id = |prepared: &str| {
        prepared
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("release "))
            .expect("the release id")
            .to_owned()
    };
    run(&dir, &["publish", "archivist", &image("ref.1")]);
    let first = release_id(&run(&dir, &["prepare"]));

    let (status, stdout, stderr) = refused(&dir, &["deploy", &first, "prod"]);
    assert_eq!(status, Some(1), "{stderr}");
    let unmet = format!("release {first} has not been deployed to stage; prod requires stage");
    assert!(stdout.contains("gates: NOT MET"), "{stdout}");
    assert!(stderr.contains(&unmet), "{stderr}");
    let plan = json(&run(
        &dir,
        &["--json", "deploy", "--dry-run", &first, "prod"],
    ));
    assert_eq!(plan["plan"]["gates"]["pass"], false, "{plan:#}");
    assert_eq!(plan["plan"]["gates"]["requires"][0], "stage", "{plan:#}");
    assert_eq!(
        plan["plan"]["gates"]["unmet"][0],
        unmet.as_str(),
        "{plan:#}"
    );
    assert_eq!(plan["plan"]["kind"], "deploy", "{plan:#}");

    // A bypass needs a reason (a usage error, nothing run), then records it.
    let (status, _, stderr) = refused(&dir, &["deploy", &first, "prod", "--bypass-gates"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
    let bypassed = json(&run(
        &dir,
        &[
            "--json",
            "deploy",
            &first,
            "prod",
            "--bypass-gates",
            "--reason",
            "hotfix INC-123",
        ],
    ));
    let entry = &bypassed["deployed"]["deployment"];
    assert_eq!(entry["kind"], "bypass", "{bypassed:#}");
    assert_eq!(entry["bypass_reason"], "hotfix INC-123", "{bypassed:#}");
    assert_eq!(entry["requested_by"], "alice", "{bypassed:#}");

    // Through stage, a second release passes; then prod rolls back.
    run(&dir, &["publish", "archivist", &image("ref.2")]);
    let second = release_id(&run(&dir, &["prepare"]));
    run(&dir, &["deploy", &second, "stage"]);
    let out = run(&dir, &["deploy", &second, "prod"]);
    assert!(out.contains("gates: pass (deployed to stage)"), "{out}");
    let out = run(&dir, &["rollback", "prod", "--dry-run"]);
    assert!(
        out.contains(&format!("roll back prod to {first} (replacing {second})")),
        "{out}"
    );
    assert!(out.contains("gates: not checked"), "{out}");
    let out = run(&dir, &["rollback", "prod", "--description", "bad build"]);
    assert!(
        out.contains(&format!("rolled back prod to {first}: 1 written")),
        "{out}"
    );
    let (status, _, stderr) = refused(&dir, &["rollback", "prod", "--to", &first]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("is the one current there"), "{stderr}");

    let history = run(&dir, &["history", "prod"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    for (line, (release, kind, replaced)) in lines.iter().zip([
        (&first, "rollback", format!("replaced {second}")),
        (&second, "deploy", format!("replaced {first}")),
        (&first, "bypass", "replaced nothing".to_owned()),
    ]) {
        assert!(
            line.contains(release.as_str()) && line.contains(kind) && line.contains(&replaced),
            "{line}"
        );
    }
    assert!(lines[2].contains("[bypassed: hotfix INC-123]"), "{history}");
    let history = json(&run(&dir, &["--json", "history", "prod"]));
    let newest = &history["deployments"][0];
    assert_eq!(newest["kind"], "rollback", "{history:#}");
    assert_eq!(newest["replaced_release"], second.as_str(), "{history:#}");
    assert_eq!(newest["changed_services"], serde_json::json!(["archivist"]));
    assert_eq!(newest["description"], "bad build", "{history:#}");
    assert!(newest["deployment_id"].is_string(), "{history:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lease as a deploy that died would leave it: held by bob from another
/// host, expiring `ttl` from now.
fn dead_holders_lease(dir: &Path, release: &str, ttl: std::time::Duration) {
    use release_tracking::control::{LeaseOperation, LeaseRequest};
    use release_tracking::{Clock, ControlStore, Requester, SystemClock};
    let store = release_tracking::sqlite::SqliteStore::open(dir.join("releases.db")).expect("open");
    let request = LeaseRequest::new(
        Requester::new("arn:aws:iam::123456789012:user/bob"),
        LeaseOperation::Deploy,
        release.parse().expect("release id"),
        "ci-runner-9",
        ttl,
    )
    .expect("lease request");
    futures::executor::block_on(store.acquire_lease(
        &"storage".parse().expect("project"),
        &"prod".parse().expect("environment"),
        &request,
        SystemClock.now(),
    ))
    .expect("the lease is free");
}

#[test]
fn freeze_block_and_leases_stop_deploys_until_lifted_and_are_recorded() {
    let dir = project_dir("sqlite-cli-controls");
    let image = "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.1";
    run(&dir, &["publish", "archivist", image]);
    let release = json(&run(&dir, &["prepare", "--json"]))["release"]["release_id"]
        .as_str()
        .expect("release id")
        .to_owned();
    fn with_store<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--store", "sqlite:releases.db"][..], args].concat()
    }

    // Freeze: every deploy to prod stops, with who and why.
    run(&dir, &["freeze", "prod", "--reason", "INC-123 outage"]);
    let (code, err) = fail_deploy(&dir, &with_store(&["deploy", "latest", "prod"]));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("environment `prod` is frozen by alice"),
        "{err}"
    );
    assert!(err.contains("INC-123 outage"), "{err}");
    let current = json(&run(&dir, &["current", "prod", "--json"]));
    assert_eq!(current["freeze"]["reason"], "INC-123 outage");
    assert_eq!(current["lease"], Value::Null);
    run(&dir, &["deploy", "latest", "stage"]);
    run(&dir, &["unfreeze", "prod", "--reason", "resolved"]);

    // Block: not deployable where it is not current; where it is, it is.
    run(&dir, &["block", "latest", "--reason", "corrupts bags"]);
    let (_, err) = fail_deploy(&dir, &with_store(&["deploy", "latest", "prod"]));
    assert!(err.contains("is blocked by alice"), "{err}");
    run(&dir, &["deploy", "latest", "stage"]);
    let current = json(&run(&dir, &["current", "stage", "--json"]));
    assert_eq!(current["blocks"][0]["release"], release.as_str());
    run(&dir, &["unblock", "latest", "--reason", "fixed"]);

    // A deploy that died holds prod until its lease expires.
    dead_holders_lease(&dir, &release, std::time::Duration::from_secs(2));
    let (_, err) = fail_deploy(&dir, &with_store(&["deploy", "latest", "prod"]));
    assert!(
        err.contains("environment `prod` is being deployed by bob"),
        "{err}"
    );
    assert!(err.contains("ci-runner-9"), "{err}");
    let status = json(&run(&dir, &["lease", "status", "prod", "--json"]));
    assert_eq!(status["lease"]["host"], "ci-runner-9");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    run(&dir, &["deploy", "latest", "prod"]);
    let status = json(&run(&dir, &["lease", "status", "prod", "--json"]));
    assert_eq!(
        status["lease"],
        Value::Null,
        "a finished deploy gives its lease back"
    );

    // Or someone removes it, saying why.
    dead_holders_lease(&dir, &release, std::time::Duration::from_secs(600));
    let (code, err) = fail(&dir, &with_store(&["unlock", "prod", "--reason", "x"]), &[]);
    assert_eq!(code, Some(2), "--force is required: {err}");
    let removed = json(&run(
        &dir,
        &[
            "unlock",
            "prod",
            "--force",
            "--reason",
            "ci-runner-9 died",
            "--json",
        ],
    ));
    assert_eq!(removed["removed"]["host"], "ci-runner-9");
    run(&dir, &["deploy", "latest", "prod"]);

    let trail = json(&run(&dir, &["controls", "--json"]));
    let kinds: Vec<&str> = trail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        ["force_unlock", "unblock", "block", "unfreeze", "freeze"],
        "{trail}"
    );
}
