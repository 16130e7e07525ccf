//! `export` and `import`: the library's `transfer` wired to files, stdin
//! and stdout.

use std::error::Error as StdError;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use release_tracking::names::Escaped;
use release_tracking::transfer::Snapshot;
use release_tracking::Project;
use serde_json::{json, Value};

use crate::human::Warnings;
use crate::stores::Stores;

/// An error with what was being done to which file.
#[derive(Debug)]
struct FileError {
    doing: &'static str,
    path: PathBuf,
    source: Box<dyn StdError>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.doing,
            Escaped::new(&self.path.display().to_string())
        )
    }
}

impl StdError for FileError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Wraps an error as what was being done to `path`.
fn in_file(doing: &'static str, path: &Path) -> impl FnOnce(Box<dyn StdError>) -> FileError {
    let path = path.to_owned();
    move |source| FileError {
        doing,
        path,
        source,
    }
}

/// Exports the project to `output`, or to `data` (stdout) without one:
/// written only once everything was read, and to a file only whole (it
/// replaces `output` when complete).
pub async fn export(
    project: &Project,
    stores: &Stores,
    output: Option<&Path>,
    data: &mut dyn Write,
    human: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    let snapshot = Snapshot::collect(project, &*stores.images, &*stores.releases).await?;
    warnings.extend(&snapshot.skipped);
    match output {
        None => snapshot.write_to(data)?,
        Some(path) => {
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let written = File::create(&partial)
                .map_err(|e| Box::new(e) as Box<dyn StdError>)
                .and_then(|mut file| {
                    snapshot.write_to(&mut file)?;
                    file.sync_all()?;
                    Ok(())
                })
                .and_then(|()| Ok(std::fs::rename(&partial, path)?));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(in_file("writing the export to", path)(e).into());
            }
        }
    }
    let (releases, deployments) = (snapshot.releases.len(), snapshot.deployment_count());
    let (labels, images) = (snapshot.labels.len(), snapshot.image_count());
    set("project_id", project.id().as_str().into());
    set(
        "output",
        output.map_or(Value::Null, |p| p.display().to_string().into()),
    );
    set(
        "exported",
        json!({
            "releases": releases, "deployments": deployments,
            "labels": labels, "images": images, "skipped": snapshot.skipped.len(),
        }),
    );
    writeln!(
        human,
        "exported project {}: {releases} releases ({deployments} deployments), {labels} labels \
         ({images} images){}",
        project.id(),
        output.map_or(String::new(), |p| format!(
            " to {}",
            Escaped::new(&p.display().to_string())
        ))
    )?;
    Ok(())
}

/// Imports the export at `input` (stdin if `None` or `-`) into the stores.
pub async fn import(
    project: &Project,
    stores: &Stores,
    input: Option<&Path>,
    human: &mut dyn Write,
    set: &mut dyn FnMut(&str, Value),
    warnings: &mut Warnings,
) -> Result<(), Box<dyn StdError>> {
    let input = input.filter(|path| *path != Path::new("-"));
    let read = match input {
        None => Snapshot::read_from(std::io::stdin().lock())
            .map_err(|e| in_file("reading the export from", Path::new("stdin"))(e.into()))?,
        Some(path) => File::open(path)
            .map_err(|e| Box::new(e) as Box<dyn StdError>)
            .and_then(|file| Ok(Snapshot::read_from(BufReader::new(file))?))
            .map_err(in_file("reading the export", path))?,
    };
    for skipped in &read.skipped {
        warnings.add(format_args!("in the export: {skipped}"));
    }
    let done = read
        .import_into(project.id(), &*stores.images, &*stores.releases)
        .await?;
    set("project_id", project.id().as_str().into());
    set(
        "input",
        input.map_or(Value::Null, |p| p.display().to_string().into()),
    );
    set(
        "imported",
        json!({
            "releases": done.releases_created,
            "deployments": done.deployments_created,
            "images": done.images_written,
        }),
    );
    set(
        "unchanged",
        json!({"releases": done.releases_unchanged, "images": done.images_unchanged}),
    );
    writeln!(
        human,
        "imported into project {}: {} releases created ({} deployments), {} already there; \
         {} images written, {} already there",
        project.id(),
        done.releases_created,
        done.deployments_created,
        done.releases_unchanged,
        done.images_written,
        done.images_unchanged
    )?;
    Ok(())
}
