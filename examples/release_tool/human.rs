//! Output for people: warnings on stderr, one-line cells, aligned tables,
//! the `current` report.

use std::fmt;
use std::io::Write;

use release_tracking::names::Escaped;
use release_tracking::CurrentDeployment;

/// What a command passed over: on stderr as it happens, or (with `--json`)
/// kept for the document.
#[derive(Debug)]
pub struct Warnings {
    json: bool,
    kept: Vec<String>,
}

impl Warnings {
    /// Warnings for a run with or without `--json`.
    pub fn new(json: bool) -> Warnings {
        Warnings {
            json,
            kept: Vec::new(),
        }
    }

    /// Reports one warning.
    pub fn add(&mut self, warning: impl fmt::Display) {
        if self.json {
            self.kept.push(warning.to_string());
        } else {
            eprintln!("warning: {warning}");
        }
    }

    /// Reports each of `warnings`.
    pub fn extend<W: fmt::Display>(&mut self, warnings: impl IntoIterator<Item = W>) {
        for warning in warnings {
            self.add(warning);
        }
    }

    /// The warnings kept for the document.
    pub fn kept(&self) -> &[String] {
        &self.kept
    }

    /// Prints the kept warnings on stderr (when the command failed and no
    /// document is printed).
    pub fn flush_to_stderr(&mut self) {
        for warning in self.kept.drain(..) {
            eprintln!("warning: {warning}");
        }
    }
}

/// Text from a record, for one line of output (see [`Escaped::whole`]).
pub fn cell(value: impl fmt::Display) -> String {
    Escaped::whole(&value.to_string()).to_string()
}

/// Writes rows as columns two spaces apart, each column as wide as its
/// widest cell, so rows line up whatever the length of a requester or an
/// environment id; the last column is not padded.
pub fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|text| text.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(text);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(text.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The `current` report: the release deployed to `environment`, and
/// whether its label drifted.
pub fn print_current(
    out: &mut dyn Write,
    environment: &str,
    current: Option<&CurrentDeployment>,
) -> std::io::Result<()> {
    match current {
        None => writeln!(out, "{environment}: nothing deployed yet"),
        Some(current) => {
            writeln!(
                out,
                "{environment}: release {} deployed {} by {}",
                current.release.release_id(),
                current.deployment.date_created(),
                cell(current.deployment.requested_by())
            )?;
            if current.label_matches() {
                writeln!(out, "the label matches the release")
            } else {
                let drifted: Vec<_> = current.drifted.iter().map(|s| s.as_str()).collect();
                writeln!(out, "drifted since: {}", drifted.join(", "))
            }
        }
    }
}
