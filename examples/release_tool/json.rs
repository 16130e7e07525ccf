//! The JSON document's objects, whose field names are stable (listed in
//! the tool's documentation).

use std::fmt;

use release_tracking::{
    DeployPlan, Deployed, Deployment, GateCheck, GateVerdict, ImageEntry, Release, ServiceId,
};
use serde_json::{json, Value};

/// Strings of `items`, as a JSON array.
pub fn strings<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|i| Value::from(i.to_string()))
            .collect(),
    )
}

/// An image entry: its URI, an array of tags, or `null`.
pub fn image_json(entry: &ImageEntry) -> Value {
    match entry {
        ImageEntry::Uri(uri) => uri.as_str().into(),
        ImageEntry::Tags(tags) => strings(tags),
        // `Missing`, and any entry without a URI.
        _ => Value::Null,
    }
}

/// Service → image.
pub fn images_json<'a>(images: impl IntoIterator<Item = (&'a ServiceId, &'a ImageEntry)>) -> Value {
    Value::Object(
        images
            .into_iter()
            .map(|(service, entry)| (service.to_string(), image_json(entry)))
            .collect(),
    )
}

/// A deployment, with its audit trail (`null` where not recorded).
pub fn deployment_json(d: &Deployment) -> Value {
    json!({
        "date_created": d.date_created().to_string(),
        "environment": d.environment().to_string(),
        "requested_by": d.requested_by().id(),
        "description": d.description(),
        "deployment_id": d.deployment_id(),
        "kind": d.kind().map(|k| k.as_str()),
        "replaced_release": d.replaced_release().map(|r| r.as_str()),
        "changed_services": d.changed_services().map(strings),
        "bypass_reason": d.bypass_reason(),
    })
}

/// A plan's promotion gates: `null` when the environment has none (or for
/// a rollback).
fn gates_json(gates: Option<&GateCheck>) -> Value {
    let Some(gates) = gates else {
        return Value::Null;
    };
    let unmet = match &gates.verdict {
        GateVerdict::Pass => Vec::new(),
        GateVerdict::Unmet(unmet) => unmet.iter().map(ToString::to_string).collect(),
    };
    json!({
        "requires": strings(&gates.requires),
        "soak": gates.soak.map(|s| s.to_string()),
        "pass": gates.verdict.passed(),
        "unmet": unmet,
    })
}

/// A release.
pub fn release_json(r: &Release) -> Value {
    json!({
        "release_id": r.release_id().to_string(),
        "project_id": r.project_id().to_string(),
        "date_created": r.date_created().to_string(),
        "requested_by": r.requested_by().id(),
        "description": r.description(),
        "images": images_json(r.images()),
        "deployments": r.deployments().iter().map(deployment_json).collect::<Vec<_>>(),
    })
}

/// A deploy plan.
pub fn plan_json(plan: &DeployPlan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            json!({
                "service": c.service.to_string(),
                "current": c.current.as_ref().map(|u| u.as_str()),
                "image": c.image.as_str(),
                "resolved_from": c.resolved_from.as_ref().map(|u| u.as_str()),
            })
        })
        .collect();
    json!({
        "release_id": plan.release_id.to_string(),
        "environment": plan.environment.to_string(),
        "kind": plan.kind.as_str(),
        "replaces": plan.replaces.as_ref().map(|r| r.as_str()),
        "gates": gates_json(plan.gates.as_ref()),
        "changed_services": strings(plan.changed_services()),
        "changes": changes,
        "unchanged": strings(&plan.unchanged),
        "untouched": plan.untouched.as_ref().map(strings),
        "conflicts": strings(&plan.conflicts),
    })
}

/// What a deploy did.
pub fn deployed_json(deployed: &Deployed) -> Value {
    json!({
        "release_id": deployed.release.release_id().to_string(),
        "deployment": deployment_json(&deployed.deployment),
        "written": strings(&deployed.written),
        "unchanged": strings(&deployed.unchanged),
    })
}
