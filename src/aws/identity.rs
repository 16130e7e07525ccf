//! [`StsRequester`]: "who is making this change", from STS.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sts::Client;
use tokio::sync::OnceCell;

use super::error::{backend, backend_message};
use crate::error::{BackendErrorKind, Result};
use crate::release::Requester;
use crate::store::RequesterSource;

/// A [`RequesterSource`] that answers with the caller's ARN from STS
/// `GetCallerIdentity` (`arn:aws:sts::123456789012:assumed-role/ci/session`),
/// as weco-deploy 2.0+ recorded.
///
/// STS is asked once, on first use; the answer is cached for the life of the
/// value (a failed call is not cached, so the next use asks again).
/// `GetCallerIdentity` needs no IAM permission.
#[derive(Debug)]
pub struct StsRequester {
    client: Client,
    cached: OnceCell<Requester>,
}

impl StsRequester {
    /// A requester source using an STS client built from `config` (see
    /// [`load_config`](super::load_config)); with a role assumed there, the
    /// answer is the assumed role's session ARN.
    pub fn new(config: &SdkConfig) -> StsRequester {
        StsRequester::from_client(Client::new(config))
    }

    /// A requester source using a ready client.
    pub fn from_client(client: Client) -> StsRequester {
        StsRequester {
            client,
            cached: OnceCell::new(),
        }
    }
}

#[async_trait]
impl RequesterSource for StsRequester {
    async fn requester(&self) -> Result<Requester> {
        let operation = "finding out who is making the change (STS GetCallerIdentity)";
        self.cached
            .get_or_try_init(|| async {
                let output = self
                    .client
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| backend(operation, e))?;
                match output.arn() {
                    Some(arn) if !arn.is_empty() => Ok(Requester::new(arn)),
                    _ => Err(backend_message(
                        operation,
                        BackendErrorKind::Other,
                        "STS answered without an ARN",
                    )),
                }
            })
            .await
            .cloned()
    }
}
