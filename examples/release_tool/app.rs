//! Running one command: open the store, run the command, print its
//! report or its JSON document, or its error.

use std::error::Error as StdError;
use std::io::Write;
use std::sync::Arc;

use release_tracking::names::Escaped;
use release_tracking::{Manifest, ReleaseTracker, Requester, RequesterSource};
use serde_json::{Map, Value};

use crate::args::{Cli, Command};
use crate::commands::Tool;
use crate::human::Warnings;
use crate::json::strings;
use crate::{commands, stores, transfer};

/// Runs one command, writing its report (or, with `--json`, its document)
/// to `out`; warnings go to `warnings`.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    // Warnings are shown even when the manifest is invalid: a typo may be
    // the cause.
    let (manifest, manifest_warnings) = Manifest::from_path_with_warnings(&cli.manifest);
    warnings.extend(&manifest_warnings);
    let manifest = manifest?;
    let project = manifest.select(cli.project.as_deref())?.clone();
    let stores = stores::open(&cli, &project).await?;
    if !cli.json {
        eprintln!("store: {}", stores.info);
    }
    let json = cli.json;
    let mut doc = Map::new();
    doc.insert("command".into(), cli.command.name().into());
    doc.insert("store".into(), stores.info.to_json());
    let mut set = |key: &str, value: Value| {
        doc.insert(key.to_owned(), value);
    };
    // The report for people goes straight to `out` (so a deploy's plan is
    // shown even if its execution fails); with `--json`, nowhere, and the
    // document's fields go to `doc`.
    let mut sink = std::io::sink();
    match cli.command {
        // The export takes stdout; its report goes to stderr (`--json`
        // needs `--output`, so this is never a JSON run).
        Command::Export { output: None } => {
            let mut stderr = std::io::stderr();
            transfer::export(
                &project,
                &stores,
                None,
                out,
                &mut stderr,
                &mut set,
                warnings,
            )
            .await?;
        }
        command => {
            let human: &mut dyn Write = if json { &mut sink } else { &mut *out };
            match command {
                Command::Provision => {
                    let (state, line) = stores.provisioner.provision(&project).await?;
                    set("state", state.into());
                    writeln!(human, "{line}")?;
                }
                Command::Export { output } => {
                    let data = &mut std::io::sink();
                    transfer::export(
                        &project,
                        &stores,
                        output.as_deref(),
                        data,
                        human,
                        &mut set,
                        warnings,
                    )
                    .await?;
                }
                Command::Import { input } => {
                    let input = input.as_deref();
                    transfer::import(&project, &stores, input, human, &mut set, warnings).await?;
                }
                command => {
                    let requester: Arc<dyn RequesterSource> = match cli.requester {
                        Some(principal) => Arc::new(Requester::new(principal)),
                        None => stores.caller,
                    };
                    let tool: Tool =
                        ReleaseTracker::new(project, stores.images, stores.releases, requester)
                            .with_record_shape(cli.record_shape.into())
                            .with_write_concurrency(cli.write_concurrency)
                            .with_controls(stores.controls)
                            .with_lease_ttl(std::time::Duration::from_secs(cli.lease_ttl));
                    commands::run(&tool, command, human, &mut set, warnings).await?;
                }
            }
        }
    }
    if json {
        doc.insert("warnings".into(), strings(warnings.kept()));
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Value::Object(doc))?
        )?;
    }
    Ok(())
}

/// An error and its causes, one line each: `error: …`, then `  caused by: …`
/// for each cause that says something new (a message that already quotes
/// its cause is not followed by it again, and an empty one is left out).
/// Control characters are escaped, so every line is one line.
pub fn report(error: &(dyn StdError + 'static)) -> String {
    let mut lines = vec![format!("error: {}", Escaped::whole(&error.to_string()))];
    let mut shown = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        let text = text.trim();
        if !text.is_empty() && !shown.iter().any(|s| s.contains(text)) {
            lines.push(format!("  caused by: {}", Escaped::whole(text)));
            shown.push(text.to_owned());
        }
        source = cause.source();
    }
    lines.join("\n")
}

/// Parses the command line and runs the command; exits 1 if it fails.
pub async fn main() {
    // Parsing comes first: `--help` and usage errors exit here, before any
    // store (or AWS) is set up.
    let cli = Cli::parse_checked();
    let mut warnings = Warnings::new(cli.json);
    let mut stdout = std::io::stdout();
    if let Err(error) = run(cli, &mut stdout, &mut warnings).await {
        warnings.flush_to_stderr();
        eprintln!("{}", report(&*error));
        std::process::exit(1);
    }
}
