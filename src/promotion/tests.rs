//! Table-driven tests of the promotion gates.

use super::*;
use crate::release::{Deployment, NewRelease, Requester};
use std::collections::BTreeMap;

const R: &str = "release-r";

fn at(minutes: i64) -> Timestamp {
    "2024-03-01T00:00:00"
        .parse::<Timestamp>()
        .unwrap()
        .add_micros(minutes * 60_000_000)
}

fn env(id: &str) -> EnvironmentId {
    id.parse().unwrap()
}

fn deployment(environment: &str, minutes: i64) -> Deployment {
    Deployment::new(env(environment), at(minutes), Requester::new("x"), "d")
}

/// Release `R` deployed to `(environment, minute)` in order.
fn release(deployments: &[(&str, i64)]) -> Release {
    let mut release = Release::new(NewRelease {
        release_id: R.parse().unwrap(),
        project_id: "storage".parse().unwrap(),
        project_name: "Storage".into(),
        date_created: at(-1000),
        requested_by: Requester::new("x"),
        description: "r".into(),
        images: BTreeMap::new(),
    });
    for (environment, minute) in deployments {
        release.record_deployment(deployment(environment, *minute));
    }
    release
}

/// The deployments to `stage`, given oldest first as (release, minute),
/// in the newest-first order a store lists them.
fn stage(listed: &[(&str, i64)], truncated: bool) -> EnvironmentHistory {
    EnvironmentHistory {
        environment: env("stage"),
        deployments: listed
            .iter()
            .rev()
            .map(|(release, minute)| DeploymentRecord {
                release_id: release.parse().unwrap(),
                deployment: deployment("stage", *minute),
            })
            .collect(),
        truncated,
    }
}

fn prod(requires: &[&str], soak: Option<&str>) -> Environment {
    let mut prod = Environment::new(env("prod"), "Production")
        .with_requires(requires.iter().map(|id| env(id)));
    if let Some(soak) = soak {
        prod = prod.with_soak(soak.parse().unwrap());
    }
    prod
}

/// What each case expects: the messages of the unmet requirements.
fn verdict_text(verdict: &GateVerdict) -> Vec<String> {
    match verdict {
        GateVerdict::Pass => Vec::new(),
        GateVerdict::Unmet(unmet) => unmet.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn gates_table() {
    struct Case {
        name: &'static str,
        requires: &'static [&'static str],
        soak: Option<&'static str>,
        deployed: &'static [(&'static str, i64)],
        stage: Option<(&'static [(&'static str, i64)], bool)>,
        now: i64,
        expected: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "no gates",
            requires: &[],
            soak: None,
            deployed: &[],
            stage: None,
            now: 0,
            expected: &[],
        },
        Case {
            name: "required and deployed",
            requires: &["stage"],
            soak: None,
            deployed: &[("stage", 0)],
            stage: None,
            now: 1,
            expected: &[],
        },
        Case {
            name: "required and never deployed",
            requires: &["stage"],
            soak: None,
            deployed: &[("test", 0)],
            stage: None,
            now: 1,
            expected: &["release release-r has not been deployed to stage; prod requires stage"],
        },
        Case {
            name: "two required, one missing",
            requires: &["test", "stage"],
            soak: None,
            deployed: &[("test", 0)],
            stage: None,
            now: 1,
            expected: &["release release-r has not been deployed to stage; prod requires stage"],
        },
        Case {
            name: "still current, soaked",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: Some((&[("other", -50), (R, 0)], false)),
            now: 120,
            expected: &[],
        },
        Case {
            name: "still current, not soaked yet",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: Some((&[(R, 0)], false)),
            now: 35,
            expected: &["release release-r has been current in stage for 35m; prod requires 2h"],
        },
        Case {
            name: "replaced before the soak ended",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: Some((&[(R, 0), ("next", 35)], false)),
            now: 600,
            expected: &["release release-r has been current in stage for 35m; prod requires 2h"],
        },
        Case {
            name: "replaced after the soak ended",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: Some((&[(R, 0), ("next", 130)], false)),
            now: 600,
            expected: &[],
        },
        Case {
            name: "redeploying it does not end its time",
            requires: &["stage"],
            soak: Some("1h"),
            deployed: &[("stage", 0), ("stage", 30)],
            stage: Some((&[(R, 0), (R, 30), ("next", 70)], false)),
            now: 600,
            expected: &[],
        },
        Case {
            name: "the longest of two times counts",
            requires: &["stage"],
            soak: Some("1h"),
            deployed: &[("stage", 0), ("stage", 200)],
            stage: Some((&[(R, 0), ("next", 90), (R, 200), ("last", 210)], false)),
            now: 600,
            expected: &[],
        },
        Case {
            name: "two short times do not add up",
            requires: &["stage"],
            soak: Some("1h"),
            deployed: &[("stage", 0), ("stage", 100)],
            stage: Some((&[(R, 0), ("next", 40), (R, 100), ("last", 140)], false)),
            now: 600,
            expected: &["release release-r has been current in stage for 40m; prod requires 1h"],
        },
        Case {
            name: "a deployment the index does not show yet counts",
            requires: &["stage"],
            soak: Some("1h"),
            deployed: &[("stage", 0)],
            stage: Some((&[("before", -10)], false)),
            now: 20,
            expected: &["release release-r has been current in stage for 20m; prod requires 1h"],
        },
        Case {
            name: "a truncated list starting with it: at least",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0), ("stage", 10)],
            stage: Some((&[(R, 10), ("next", 40)], true)),
            now: 600,
            expected: &[
                "release release-r has been current in stage for at least 30m; prod \
                 requires 2h (counted from the oldest of the 20 deployments to stage read)",
            ],
        },
        Case {
            name: "a truncated list starting with it, long enough",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0), ("stage", 10)],
            stage: Some((&[(R, 10), ("next", 200)], true)),
            now: 600,
            expected: &[],
        },
        Case {
            name: "deployed only before a truncated list",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: Some((&[("next", 300), ("last", 400)], true)),
            now: 600,
            expected: &[
                "release release-r was deployed to stage only before the newest 2 \
                 deployments there, so how long it was current there is not known; prod \
                 requires 2h",
            ],
        },
        Case {
            name: "no history given",
            requires: &["stage"],
            soak: Some("2h"),
            deployed: &[("stage", 0)],
            stage: None,
            now: 600,
            expected: &[
                "release release-r was deployed to stage only before the newest 0 \
                 deployments there, so how long it was current there is not known; prod \
                 requires 2h",
            ],
        },
        Case {
            name: "a clock behind the deployment counts zero",
            requires: &["stage"],
            soak: Some("1m"),
            deployed: &[("stage", 10)],
            stage: Some((&[(R, 10)], false)),
            now: 5,
            expected: &["release release-r has been current in stage for 0s; prod requires 1m"],
        },
    ];
    for case in cases {
        let environment = prod(case.requires, case.soak);
        let history: Vec<_> = case
            .stage
            .map(|(listed, truncated)| stage(listed, truncated))
            .into_iter()
            .collect();
        let verdict = check_gates(
            &environment,
            &release(case.deployed),
            &history,
            at(case.now),
        );
        assert_eq!(verdict_text(&verdict), case.expected, "{}", case.name);
        assert_eq!(verdict.passed(), case.expected.is_empty(), "{}", case.name);
    }
}

#[test]
fn soaks_parse_and_print() {
    for (text, seconds, shown) in [
        ("2h", 7_200, "2h"),
        ("30m", 1_800, "30m"),
        ("1d", 86_400, "1d"),
        ("1h30m", 5_400, "1h30m"),
        ("90m", 5_400, "1h30m"),
        ("45s", 45, "45s"),
        ("1d2h3m4s", 93_784, "1d2h3m4s"),
    ] {
        let soak: Soak = text.parse().unwrap();
        assert_eq!(soak.as_seconds(), seconds, "{text}");
        assert_eq!(soak.to_string(), shown, "{text}");
    }
    for bad in [
        "", "2", "h", "2x", "2h 30m", "30m1h", "1h1h", "0m", "-1h", "1.5h", "2H",
    ] {
        let error = bad.parse::<Soak>().unwrap_err().to_string();
        assert!(error.contains("such as `2h`"), "{bad}: {error}");
    }
    assert!("99999999999999999999d".parse::<Soak>().is_err());
    assert!("9999999999999999d".parse::<Soak>().is_err());
}

#[test]
fn elapsed_times_print_in_minutes() {
    for (seconds, shown) in [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (2_135, "35m"),
        (7_259, "2h"),
        (90_061, "1d1h1m"),
    ] {
        assert_eq!(Elapsed { seconds }.to_string(), shown);
    }
}
