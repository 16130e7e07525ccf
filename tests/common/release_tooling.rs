//! What the `release_tooling` readers (the first implementation, a container
//! that was never packaged, so it cannot be run here) dereference in a
//! release item and in image values, written from reading its `release.py`.
//! Each check names the command that would crash and how.
//!
//! - `show-release [ID]`: `json.dumps` of the whole item (boto3 reads `N` as
//!   `Decimal`, sets as `set`: both make it raise; in the JSON form of an item
//!   that is any number, at any depth).
//! - `show-deployments [ID]`: for each release `r` and each `d` in
//!   `r['deployments']`: `r['release_id'][:8]`, `d['environment']['id']`,
//!   `dateutil.parser.parse(d['date_created'])`, `d['description']`.
//!   release_tooling wrote `requested_by` as an `{id, name}` map only; a
//!   deployment with another shape is reported too (a shape its users have
//!   never seen), although the readers read here do not dereference it.
//! - `deploy`: prints `project_id`, `project_name`, `description`,
//!   `date_created`, `release_id`; compares each `images` value with the
//!   environment's label by splitting it on the first `:`.
//! - `show-images`: each value at the label: `value.split('/')[2]`, then
//!   `.split(':')` unpacked into exactly two parts (`host/namespace/name:tag`).
//!   Deploying writes a release's images to the environment's label, so a
//!   release's image values are checked for this too.
//!
//! No reader dereferences a deployment's other attributes (weco-deploy's
//! `details`, this crate's audit trail: `deployment_id`, `kind`,
//! `replaced_release`, `changed_services`, `bypass_reason`); only
//! `show-release` prints them, so they are checked for numbers alone (and,
//! in stored items, for sets: `release_tooling_problems_in_item` in
//! `tests/common/aws.rs`).
//!
//! Include with `#[path = "common/release_tooling.rs"] mod release_tooling;`.

#![allow(dead_code)]

use serde_json::{Map, Value};

/// Every problem `release_tooling`'s readers would have with the JSON form
/// of a release item (`Release::to_json()`, or a stored item as JSON); empty
/// if they would read it.
pub fn release_item_problems(item: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(release) = item.as_object() else {
        problems.push(format!(
            "every reader: the item is {}, not a map",
            kind(item)
        ));
        return problems;
    };
    numbers(item, "", &mut problems);
    show_deployments(release, &mut problems);
    deploy(release, &mut problems);
    if let Some(images) = release.get("images").and_then(Value::as_object) {
        for (service, value) in images {
            if let Some(problem) = value.as_str().and_then(image_value_problem) {
                problems.push(format!(
                    "show-images (after a deploy): `images.{service}`: {problem}"
                ));
            }
        }
    }
    problems
}

/// Why `release_tooling show-images` cannot show the image value `value`
/// read from a label, or `None` if it can.
pub fn image_value_problem(value: &str) -> Option<String> {
    let segments: Vec<&str> = value.split('/').collect();
    let Some(third) = segments.get(2) else {
        return Some(format!(
            "{value:?} has {} `/`-separated segment(s), not at least 3 \
             (`value.split('/')[2]` raises IndexError)",
            segments.len()
        ));
    };
    let parts = third.split(':').count();
    if parts != 2 {
        return Some(format!(
            "the third `/`-segment of {value:?}, {third:?}, splits on `:` into {parts} part(s), \
             not 2 (`image_label, image_tag = ...` raises ValueError)"
        ));
    }
    None
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn numbers(value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::Number(n) => problems.push(format!(
            "show-release: `{path}` is the number {n}, which boto3 reads as Decimal; \
             json.dumps raises TypeError"
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                numbers(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                numbers(item, &child, problems);
            }
        }
        _ => {}
    }
}

/// `path` holds a string, or the problem `command` has with it.
fn string<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
    command: &str,
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    match map.get(key) {
        None => {
            problems.push(format!("{command}: `{path}` is missing (KeyError)"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            problems.push(format!(
                "{command}: `{path}` is {}, not a string",
                kind(other)
            ));
            None
        }
    }
}

fn show_deployments(release: &Map<String, Value>, problems: &mut Vec<String>) {
    const COMMAND: &str = "show-deployments";
    // `r['release_id'][:8]`
    string(release, "release_id", "release_id", COMMAND, problems);
    let deployments = match release.get("deployments") {
        None => {
            problems.push(format!("{COMMAND}: `deployments` is missing (KeyError)"));
            return;
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(format!(
                "{COMMAND}: `deployments` is {}, not a list",
                kind(other)
            ));
            return;
        }
    };
    for (i, deployment) in deployments.iter().enumerate() {
        let at = format!("deployments[{i}]");
        let Some(deployment) = deployment.as_object() else {
            problems.push(format!(
                "{COMMAND}: `{at}` is {}, not a map",
                kind(deployment)
            ));
            continue;
        };
        match deployment.get("environment") {
            None => problems.push(format!(
                "{COMMAND}: `{at}.environment` is missing (KeyError)"
            )),
            Some(Value::Object(environment)) => {
                if !environment.contains_key("id") {
                    problems.push(format!(
                        "{COMMAND}: `{at}.environment` has no `id` (KeyError)"
                    ));
                }
            }
            Some(Value::String(id)) => problems.push(format!(
                "{COMMAND}: `{at}.environment` is the string {id:?}, not a map with `id` \
                 (`d['environment']['id']` raises TypeError: string indices must be integers)"
            )),
            Some(other) => problems.push(format!(
                "{COMMAND}: `{at}.environment` is {}, not a map with `id`",
                kind(other)
            )),
        }
        let date_path = format!("{at}.date_created");
        if let Some(date) = string(deployment, "date_created", &date_path, COMMAND, problems) {
            if !is_iso_date_time(date) {
                problems.push(format!(
                    "{COMMAND}: `{date_path}` is {date:?}, not an ISO-8601 date and time \
                     (dateutil's parse)"
                ));
            }
        }
        if !deployment.contains_key("description") {
            problems.push(format!(
                "{COMMAND}: `{at}.description` is missing (KeyError)"
            ));
        }
        match deployment.get("requested_by") {
            Some(Value::Object(by)) if by.contains_key("id") && by.contains_key("name") => {}
            Some(other) => problems.push(format!(
                "{COMMAND}: `{at}.requested_by` is {}, not the {{id, name}} map \
                 release_tooling writes",
                if other.is_object() {
                    "a map without `id` and `name`"
                } else {
                    kind(other)
                }
            )),
            None => problems.push(format!(
                "{COMMAND}: `{at}.requested_by` is missing (release_tooling writes an \
                 {{id, name}} map)"
            )),
        }
    }
}

fn deploy(release: &Map<String, Value>, problems: &mut Vec<String>) {
    const COMMAND: &str = "deploy";
    for key in [
        "project_id",
        "project_name",
        "description",
        "date_created",
        "release_id",
    ] {
        if !release.contains_key(key) {
            problems.push(format!("{COMMAND}: `{key}` is missing (KeyError)"));
        }
    }
    let images = match release.get("images") {
        None => {
            problems.push(format!("{COMMAND}: `images` is missing (KeyError)"));
            return;
        }
        Some(Value::Object(images)) => images,
        Some(other) => {
            problems.push(format!("{COMMAND}: `images` is {}, not a map", kind(other)));
            return;
        }
    };
    for (service, value) in images {
        match value {
            Value::String(uri) if uri.contains(':') => {}
            Value::String(uri) => problems.push(format!(
                "{COMMAND}: `images.{service}` is {uri:?}, which has no `:` to split the tag at"
            )),
            other => problems.push(format!(
                "{COMMAND}: `images.{service}` is {}, not a string (`.split(':', 1)` raises \
                 AttributeError)",
                kind(other)
            )),
        }
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS` with an optional fraction and an optional `Z` or
/// `±HH:MM`: what the tools wrote, and what dateutil parses.
fn is_iso_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let fixed = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return false;
        }
        rest = &fraction[len..];
    }
    let offset = rest.as_bytes();
    rest.is_empty()
        || rest == "Z"
        || (offset.len() == 6
            && (offset[0] == b'+' || offset[0] == b'-')
            && offset[1..3].iter().all(u8::is_ascii_digit)
            && offset[3] == b':'
            && offset[4..6].iter().all(u8::is_ascii_digit))
}
