//! The deployment-control commands: `lease status`, `unlock`, `freeze`,
//! `unfreeze`, `block`, `unblock`, `controls`, and the controls part of
//! `current`.

use std::error::Error as StdError;
use std::io::Write;

use release_tracking::control::{Block, ControlEvent, Freeze, Lease};
use serde_json::Value;

use crate::args::{Command, LeaseCommand};
use crate::commands::Tool;
use crate::human::{cell, write_table};

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Box<dyn StdError>> {
    Ok(serde_json::to_value(value)?)
}

fn optional<T: serde::Serialize>(value: Option<&T>) -> Result<Value, Box<dyn StdError>> {
    value.map_or(Ok(Value::Null), to_json)
}

/// `alice (release R on host H, since T, expires T2)`.
fn lease_line(lease: &Lease) -> String {
    format!(
        "{} by {} (release {}, host {}, since {} UTC, expires {} UTC)",
        lease.operation.as_str(),
        cell(lease.holder.display_name()),
        lease.release,
        cell(&lease.host),
        lease.acquired,
        lease.expires
    )
}

fn freeze_line(freeze: &Freeze) -> String {
    format!(
        "frozen by {} since {} UTC: {}",
        cell(freeze.by.display_name()),
        freeze.since,
        cell(freeze.reason.as_str())
    )
}

fn block_line(block: &Block) -> String {
    format!(
        "release {} blocked by {} since {} UTC: {}",
        block.release,
        cell(block.by.display_name()),
        block.since,
        cell(block.reason.as_str())
    )
}

/// Runs a control command.
pub async fn run(
    tool: &Tool,
    command: Command,
    out: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
) -> Result<(), Box<dyn StdError>> {
    match command {
        Command::Lease {
            action: LeaseCommand::Status { environment },
        } => {
            let lease = tool.lease_status(&environment).await?;
            set("environment", environment.as_str().into());
            set("lease", optional(lease.as_ref())?);
            match &lease {
                Some(lease) => writeln!(out, "{environment}: {}", lease_line(lease))?,
                None => writeln!(out, "{environment}: no lease")?,
            }
        }
        Command::Unlock {
            environment,
            reason,
            ..
        } => {
            let removed = tool.force_unlock(&environment, &reason).await?;
            set("environment", environment.as_str().into());
            set("removed", optional(removed.as_ref())?);
            match &removed {
                Some(lease) => writeln!(
                    out,
                    "{environment}: removed the lease of {}",
                    lease_line(lease)
                )?,
                None => writeln!(out, "{environment}: there was no lease")?,
            }
        }
        Command::Freeze {
            environment,
            reason,
        } => {
            let freeze = tool.freeze(&environment, &reason).await?;
            set("freeze", to_json(&freeze)?);
            writeln!(out, "{environment}: {}", freeze_line(&freeze))?;
        }
        Command::Unfreeze {
            environment,
            reason,
        } => {
            let lifted = tool.unfreeze(&environment, &reason).await?;
            set("environment", environment.as_str().into());
            set("lifted", optional(lifted.as_ref())?);
            match lifted {
                Some(_) => writeln!(out, "{environment}: unfrozen")?,
                None => writeln!(out, "{environment}: was not frozen")?,
            }
        }
        Command::Block { release, reason } => {
            let block = tool.block(&release, &reason).await?;
            set("block", to_json(&block)?);
            writeln!(out, "{}", block_line(&block))?;
        }
        Command::Unblock { release, reason } => {
            let lifted = tool.unblock(&release, &reason).await?;
            set("lifted", optional(lifted.as_ref())?);
            match lifted {
                Some(block) => writeln!(out, "release {} unblocked", block.release)?,
                None => writeln!(out, "release {release} was not blocked")?,
            }
        }
        Command::Controls { environment, limit } => {
            let events = tool.control_events(environment.as_deref(), limit).await?;
            set(
                "environment",
                environment.as_deref().map_or(Value::Null, Value::from),
            );
            set("events", to_json(&events)?);
            let header = ["#", "AT (UTC)", "ACTION", "ON", "BY", "REASON"];
            let rows: Vec<Vec<String>> = std::iter::once(header.map(str::to_owned).to_vec())
                .chain(events.iter().map(event_row))
                .collect();
            write_table(out, &rows)?;
        }
        _ => {}
    }
    Ok(())
}

fn event_row(event: &ControlEvent) -> Vec<String> {
    let on = serde_json::to_value(&event.change)
        .ok()
        .and_then(|v| {
            v.get("environment")
                .or_else(|| v.get("release"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    vec![
        event.sequence.to_string(),
        event.at.to_string(),
        event.change.kind().to_owned(),
        cell(on),
        cell(event.by.display_name()),
        cell(event.reason.as_str()),
    ]
}

/// The controls part of `current`: lease, freeze and blocks.
pub async fn current(
    tool: &Tool,
    environment: &str,
    out: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
) -> Result<(), Box<dyn StdError>> {
    let status = tool.controls_status(environment).await?;
    set("lease", optional(status.lease.as_ref())?);
    set("freeze", optional(status.freeze.as_ref())?);
    set("blocks", to_json(&status.blocks)?);
    match &status.lease {
        Some(lease) => writeln!(out, "lease: {}", lease_line(lease))?,
        None => writeln!(out, "lease: none")?,
    }
    match &status.freeze {
        Some(freeze) => writeln!(out, "freeze: {}", freeze_line(freeze))?,
        None => writeln!(out, "freeze: none")?,
    }
    for block in &status.blocks {
        writeln!(out, "block: {}", block_line(block))?;
    }
    Ok(())
}
