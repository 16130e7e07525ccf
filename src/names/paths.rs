//! SSM parameter names, built and parsed here and nowhere else:
//! `/{project_id}/images/{label}/{service_id}`.

use std::fmt;

use super::{Label, NameError, ProjectId, ServiceId};

/// The SSM path that holds every image of `label`: `/{project}/images/{label}`.
pub fn label_path(project: &ProjectId, label: &Label) -> String {
    format!("/{project}/images/{label}")
}

/// The SSM parameter name of one image:
/// `/{project}/images/{label}/{service}`.
pub fn image_parameter_name(project: &ProjectId, label: &Label, service: &ServiceId) -> String {
    format!("/{project}/images/{label}/{service}")
}

/// Why a parameter under a label path is not an image of that label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParameterNameProblem {
    /// The name is not under `/{project}/images/{label}/`.
    OutsideLabel,
    /// The name has more segments below the label (`…/{label}/a/b`).
    TooDeep,
    /// The last segment is not a valid service id.
    InvalidServiceId(NameError),
}

impl fmt::Display for ParameterNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterNameProblem::OutsideLabel => f.write_str("it is not under the label's path"),
            ParameterNameProblem::TooDeep => {
                f.write_str("it is nested below a service id (`…/{label}/{service}/…`)")
            }
            ParameterNameProblem::InvalidServiceId(e) => e.fmt(f),
        }
    }
}

/// The service id of parameter `name` if it is an image of `label`
/// (`/{project}/images/{label}/{service}`), or why it is not.
pub fn parse_image_parameter_name(
    project: &ProjectId,
    label: &Label,
    name: &str,
) -> Result<ServiceId, ParameterNameProblem> {
    let prefix = label_path(project, label);
    let rest = name
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or(ParameterNameProblem::OutsideLabel)?;
    if rest.contains('/') {
        return Err(ParameterNameProblem::TooDeep);
    }
    ServiceId::new(rest).map_err(ParameterNameProblem::InvalidServiceId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_round_trip() {
        let p = ProjectId::new("storage").unwrap();
        let l = Label::latest();
        let s = ServiceId::new("archivist").unwrap();
        let name = image_parameter_name(&p, &l, &s);
        assert_eq!(name, "/storage/images/latest/archivist");
        assert_eq!(parse_image_parameter_name(&p, &l, &name).unwrap(), s);
        assert_eq!(
            parse_image_parameter_name(&p, &l, "/storage/images/latest/a/b"),
            Err(ParameterNameProblem::TooDeep)
        );
        assert_eq!(
            parse_image_parameter_name(&p, &l, "/storage/images/latestx/a"),
            Err(ParameterNameProblem::OutsideLabel)
        );
        assert!(matches!(
            parse_image_parameter_name(&p, &l, "/storage/images/latest/a b"),
            Err(ParameterNameProblem::InvalidServiceId(_))
        ));
    }
}
