//! [`SsmImageStore`]: images as SSM Parameter Store parameters.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_sdk_ssm::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::error::{backend, backend_message};
use crate::error::{BackendErrorKind, Error, Result};
use crate::names::{
    image_parameter_name, label_path, parse_image_parameter_name, ImageUri, Label, ProjectId,
    ServiceId,
};
use crate::store::{ImageStore, LabelImages, SkippedParameter};

/// The most results SSM returns per `GetParametersByPath` page.
const PAGE_SIZE: i32 = 10;

/// The most names SSM takes per `GetParameters` call.
const NAMES_PER_CALL: usize = 10;

/// `GetParameters` calls in flight at once in one read by name: 100
/// parameters a round trip. Reads have a quota of their own (40 per second
/// by default, shared by the account's `GetParameter*` calls), far above
/// the writes'; the SDK's retry absorbs a throttled call.
const READS_IN_FLIGHT: usize = 10;

/// A bound on the pages read for one label (100,000 parameters), so a
/// misbehaving endpoint that never stops returning `NextToken` cannot keep
/// a call running forever.
const MAX_PAGES: usize = 10_000;

/// Images in SSM Parameter Store: the image of service `s` at label `l` of
/// project `p` is the `String` parameter `/{p}/images/{l}/{s}`, whose value is
/// the image URI. This is the layout the old tools wrote and Terraform reads.
///
/// # Calls and IAM actions
///
/// | method | SSM call | IAM action (resource `arn:aws:ssm:{region}:{account}:parameter/{project}/images/*`) |
/// | --- | --- | --- |
/// | [`label_images`](ImageStore::label_images) | `GetParametersByPath` (`Recursive`, every page of 10) | `ssm:GetParametersByPath` |
/// | [`label_images_of`](ImageStore::label_images_of) (a deploy's read) | `GetParameters` (10 names a call, 10 calls side by side) | `ssm:GetParameters` |
/// | [`image`](ImageStore::image) | `GetParameter` | `ssm:GetParameter` |
/// | [`put_image`](ImageStore::put_image) | `PutParameter` (type `String`, overwrite) | `ssm:PutParameter` |
///
/// # Decryption
///
/// Reads ask for `WithDecryption = false`. Image parameters are plain
/// `String` parameters, so nothing is lost and no `kms:Decrypt` permission is
/// needed. A `SecureString` (or `StringList`) parameter under a label path is
/// not an image: [`label_images`](ImageStore::label_images) reports it in
/// [`LabelImages::skipped`] and [`image`](ImageStore::image) fails with
/// [`Error::InvalidRecord`], rather than treating ciphertext as an image URI.
///
/// # Reading a label
///
/// `GetParametersByPath` is called with `Recursive = true` so that
/// parameters nested below a service (`/{p}/images/{l}/{s}/x`) are seen and
/// reported in [`LabelImages::skipped`] instead of silently ignored, as are
/// parameters whose last segment is not a valid [`ServiceId`] and values that
/// are not valid [`ImageUri`]s. Every `NextToken` page is read (one old tool
/// read only the first page and truncated releases).
///
/// A deploy needs only its release's services, so it reads them by name
/// ([`label_images_of`](ImageStore::label_images_of)): ⌈n/10⌉
/// `GetParameters` calls side by side, one or two round trips however many
/// services, where the label's pages are ⌈n/10⌉ round trips one after
/// another (31 for 300 services). Parameters nested below a service are
/// then not seen; they are in no service's way.
#[derive(Clone, Debug)]
pub struct SsmImageStore {
    client: Client,
}

impl SsmImageStore {
    /// A store using an SSM client built from `config` (see
    /// [`AwsContext::config`](super::AwsContext::config)).
    pub fn new(config: &SdkConfig) -> SsmImageStore {
        SsmImageStore::from_client(Client::new(config))
    }

    /// A store using a ready client (custom endpoint, interceptors, …).
    pub fn from_client(client: Client) -> SsmImageStore {
        SsmImageStore { client }
    }

    /// The SSM client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Why a parameter's type or value makes it no image, if it does.
fn value_problem(parameter: &Parameter) -> Option<String> {
    match parameter.r#type() {
        Some(ParameterType::String) | None => None,
        Some(ParameterType::SecureString) => Some(
            "it is a SecureString parameter; image parameters are plain String parameters \
             (its value was not decrypted)"
                .to_owned(),
        ),
        Some(other) => Some(format!(
            "it is a {} parameter; image parameters are plain String parameters",
            other.as_str()
        )),
    }
}

/// The image a parameter holds, or the attribute that is wrong and why.
fn image_value(parameter: &Parameter) -> std::result::Result<ImageUri, (&'static str, String)> {
    if let Some(problem) = value_problem(parameter) {
        return Err(("Type", problem));
    }
    let value = parameter.value().unwrap_or_default();
    ImageUri::new(value).map_err(|e| ("Value", format!("its value is not an image URI: {e}")))
}

/// One `GetParameters` call, its failure described as `operation`.
async fn get_parameters(
    client: &Client,
    names: Vec<String>,
    operation: String,
) -> Result<aws_sdk_ssm::operation::get_parameters::GetParametersOutput> {
    client
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(false)
        .send()
        .await
        .map_err(|e| backend(operation, e))
}

#[async_trait]
impl ImageStore for SsmImageStore {
    fn label_location(&self, project: &ProjectId, label: &Label) -> String {
        format!("SSM path {}/", label_path(project, label))
    }

    async fn label_images(&self, project: &ProjectId, label: &Label) -> Result<LabelImages> {
        let path = label_path(project, label);
        let operation = || {
            format!("reading label {label} of project {project} (SSM GetParametersByPath {path})")
        };
        let mut images = BTreeMap::new();
        let mut skipped = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .get_parameters_by_path()
                .path(&path)
                .recursive(true)
                .with_decryption(false)
                .max_results(PAGE_SIZE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| backend(operation(), e))?;
            for parameter in page.parameters() {
                let name = parameter.name().unwrap_or_default();
                let service = match parse_image_parameter_name(project, label, name) {
                    Ok(service) => service,
                    Err(problem) => {
                        skipped.push(SkippedParameter {
                            name: name.to_owned(),
                            service: None,
                            reason: problem.to_string(),
                        });
                        continue;
                    }
                };
                // A service's parameter name is its only name (parsing
                // checked it is exactly `label_path/service`), so two
                // parameters never share a service; a repeat is the same
                // parameter on a repeated page.
                if images.contains_key(&service) {
                    continue;
                }
                match image_value(parameter) {
                    Ok(image) => {
                        images.insert(service, image);
                    }
                    Err((_, reason)) => skipped.push(SkippedParameter {
                        name: name.to_owned(),
                        service: Some(service),
                        reason,
                    }),
                }
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => {
                    if token.as_deref() == Some(next) {
                        return Err(backend_message(
                            operation(),
                            BackendErrorKind::Other,
                            "SSM returned the same NextToken twice",
                        ));
                    }
                    token = Some(next.to_owned());
                }
                _ => return Ok(LabelImages { images, skipped }),
            }
        }
        Err(backend_message(
            operation(),
            BackendErrorKind::Other,
            format!("more than {MAX_PAGES} pages of parameters; stopped reading"),
        ))
    }

    async fn label_images_of(
        &self,
        project: &ProjectId,
        label: &Label,
        services: &BTreeSet<ServiceId>,
    ) -> Result<LabelImages> {
        let names: Vec<(String, &ServiceId)> = services
            .iter()
            .map(|service| (image_parameter_name(project, label, service), service))
            .collect();
        let by_name: HashMap<&str, &ServiceId> =
            names.iter().map(|(name, s)| (name.as_str(), *s)).collect();
        // Owned batches: the futures then borrow nothing but the client.
        let batches: Vec<(Vec<String>, String)> = names
            .chunks(NAMES_PER_CALL)
            .map(|batch| {
                let first = batch.first().map(|(name, _)| name.as_str()).unwrap_or("");
                let operation = format!(
                    "reading images at label {label} of project {project} \
                     (SSM GetParameters of {} names from {first})",
                    batch.len()
                );
                (
                    batch.iter().map(|(name, _)| name.clone()).collect(),
                    operation,
                )
            })
            .collect();
        let client = &self.client;
        let calls = batches
            .into_iter()
            .map(|(names, operation)| get_parameters(client, names, operation));
        let outputs: Vec<_> = stream::iter(calls)
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut images = BTreeMap::new();
        let mut skipped = Vec::new();
        // Names SSM does not hold come back as `InvalidParameters`: no image.
        for parameter in outputs.iter().flat_map(|output| output.parameters()) {
            let name = parameter.name().unwrap_or_default();
            let Some(&service) = by_name.get(name) else {
                continue;
            };
            match image_value(parameter) {
                Ok(image) => {
                    images.insert(service.clone(), image);
                }
                Err((_, reason)) => skipped.push(SkippedParameter {
                    name: name.to_owned(),
                    service: Some(service.clone()),
                    reason,
                }),
            }
        }
        // In name order, as a label's pages list them, whatever order the
        // calls answered in.
        skipped.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(LabelImages { images, skipped })
    }

    async fn image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
    ) -> Result<Option<ImageUri>> {
        let name = image_parameter_name(project, label, service);
        let result = self
            .client
            .get_parameter()
            .name(&name)
            .with_decryption(false)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(backend(
                    format!(
                    "reading the image of service {service} at label {label} of project {project} \
                         (SSM GetParameter {name})"
                ),
                    e,
                ))
            }
        };
        let Some(parameter) = output.parameter() else {
            return Ok(None);
        };
        image_value(parameter)
            .map(Some)
            .map_err(|(attribute, message)| Error::InvalidRecord {
                record: format!("SSM parameter {name}"),
                attribute: attribute.to_owned(),
                message,
            })
    }

    async fn put_image(
        &self,
        project: &ProjectId,
        label: &Label,
        service: &ServiceId,
        image: &ImageUri,
    ) -> Result<()> {
        let name = image_parameter_name(project, label, service);
        self.client
            .put_parameter()
            .name(&name)
            .value(image.as_str())
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| {
                backend(
                    format!(
                        "writing the image of service {service} to label {label} of project {project} \
                         (SSM PutParameter {name})"
                    ),
                    e,
                )
            })?;
        Ok(())
    }
}
