//! How a release reads for people: its `Display`, beside those of
//! [`DeployPlan`](crate::DeployPlan) and [`ReleaseDiff`](crate::ReleaseDiff),
//! so every program shows a release the same way.

use std::fmt;

use crate::names::Escaped;
use crate::release::Release;

/// One line per fact, aligned; text read from records (requesters,
/// descriptions, images) is shown through [`Escaped`], so a report never
/// carries control characters to a terminal:
///
/// ```text
/// release 0efc9bd6-0b43-4a8e-9b3a-8b8a27a5c0a1
///   project      storage (Storage service)
///   created      2024-05-01T09:30:00 by alice
///   description  weekly
///   image        archivist  760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.3f2a9c1
///   image        notifier   (no image)
///   deployed     2024-05-01T10:00:00 to stage by alice: weekly deploy
/// ```
impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |text: &dyn fmt::Display| Escaped::whole(&text.to_string()).to_string();
        writeln!(f, "release {}", self.release_id())?;
        match self.project_name() {
            "" => writeln!(f, "  project      {}", self.project_id())?,
            name => writeln!(f, "  project      {} ({})", self.project_id(), shown(&name))?,
        }
        writeln!(
            f,
            "  created      {} by {}",
            self.date_created(),
            shown(self.requested_by())
        )?;
        writeln!(f, "  description  {}", shown(&self.description()))?;
        let width = self
            .images()
            .keys()
            .map(|s| s.as_str().chars().count())
            .max()
            .unwrap_or(0);
        for (service, image) in self.images() {
            // `ImageEntry`'s own Display escapes it.
            writeln!(f, "  image        {service:<width$}  {image}")?;
        }
        for d in self.deployments() {
            writeln!(
                f,
                "  deployed     {} to {} by {}: {}",
                d.date_created(),
                d.environment(),
                shown(d.requested_by()),
                shown(&d.description())
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::release::Release;

    #[test]
    fn a_release_reads_as_one_aligned_line_per_fact() {
        let release = Release::from_json(
            json!({
                "release_id": "r1", "project_id": "storage", "project_name": "Storage service",
                "date_created": "2024-05-01T09:30:00", "requested_by": "arn:aws:iam::1:user/alice",
                "description": "weekly\u{1b}[2J",
                "images": {"archivist": "ecr/archivist:ref.1", "bag-register": null},
                "deployments": [{"date_created": "2024-05-01T10:00:00", "environment": "stage",
                                 "requested_by": {"id": "unknown", "name": "unknown"},
                                 "description": "to stage"}],
            }),
            "release r1",
        )
        .expect("a valid record");
        let text = release.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "release r1");
        assert_eq!(lines[1], "  project      storage (Storage service)");
        assert_eq!(lines[2], "  created      2024-05-01T09:30:00 by alice");
        // An escape sequence from a record is shown, not sent to the terminal.
        assert_eq!(lines[3], "  description  weekly\\u{1b}[2J");
        assert_eq!(lines[4], "  image        archivist     ecr/archivist:ref.1");
        assert_eq!(lines[5], "  image        bag-register  (no image)");
        assert_eq!(
            lines[6],
            "  deployed     2024-05-01T10:00:00 to stage by unknown: to stage"
        );
        assert_eq!(lines.len(), 7, "{text}");
    }
}
