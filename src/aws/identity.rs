//! [`StsRequester`]: "who is making this change", from STS; and the role
//! session name derived from it.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sts::Client;
use tokio::sync::OnceCell;

use super::error::{backend, backend_message};
use crate::error::{BackendErrorKind, Result};
use crate::release::Requester;
use crate::tracker::RequesterSource;

/// A [`RequesterSource`] that answers with the caller's ARN from STS
/// `GetCallerIdentity` (`arn:aws:iam::123456789012:user/alice`), as
/// weco-deploy 2.0+ recorded.
///
/// STS is asked once, on first use; the answer is cached (a failed call is
/// not cached, so the next use asks again). Clones share the answer, so a
/// program that needs the caller in several places asks STS once.
/// `GetCallerIdentity` needs no IAM permission.
///
/// The answer is the identity of the credentials of the client it asks. With
/// a role assumed through [`AwsSettings`](super::AwsSettings), take the
/// requester from [`AwsContext::requester`](super::AwsContext::requester):
/// it reports the caller behind the role (as the earlier tools did), whereas
/// `StsRequester::new(context.config())` would report the role session.
#[derive(Clone, Debug)]
pub struct StsRequester {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    cached: OnceCell<Requester>,
}

impl StsRequester {
    /// A requester source using an STS client built from `config`: the
    /// identity of `config`'s credentials.
    pub fn new(config: &SdkConfig) -> StsRequester {
        StsRequester::from_client(Client::new(config))
    }

    /// A requester source using a ready client.
    pub fn from_client(client: Client) -> StsRequester {
        StsRequester {
            inner: Arc::new(Inner {
                client,
                cached: OnceCell::new(),
            }),
        }
    }
}

#[async_trait]
impl RequesterSource for StsRequester {
    async fn requester(&self) -> Result<Requester> {
        let operation = "finding out who is making the change (STS GetCallerIdentity)";
        self.inner
            .cached
            .get_or_try_init(|| async {
                let output = self
                    .inner
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

/// The role session name used when no valid one can be made from the
/// caller's ARN.
pub(crate) const FALLBACK_SESSION_NAME: &str = "release-tracking";

/// STS's limits on `RoleSessionName`: 2 to 64 characters of `[\w+=,.@-]`.
const SESSION_NAME_MAX: usize = 64;

fn session_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// A role session name that names the caller, so CloudTrail's record of the
/// role's calls shows the person: the last segment of `caller_arn`
/// (`arn:aws:iam::1:user/alice` → `alice`, `arn:aws:iam::1:root` → `root`),
/// with characters STS refuses replaced by `-`, cut to 64 characters.
/// [`FALLBACK_SESSION_NAME`] when that leaves fewer than two characters or
/// no letter or digit.
pub(crate) fn role_session_name(caller_arn: &str) -> String {
    let last = caller_arn.rsplit(['/', ':']).next().unwrap_or_default();
    let name: String = last
        .chars()
        .map(|c| if session_name_char(c) { c } else { '-' })
        .take(SESSION_NAME_MAX)
        .collect();
    if name.len() >= 2 && name.chars().any(|c| c.is_ascii_alphanumeric()) {
        name
    } else {
        FALLBACK_SESSION_NAME.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(name: &str) -> bool {
        (2..=SESSION_NAME_MAX).contains(&name.chars().count())
            && name.chars().all(session_name_char)
    }

    #[test]
    fn the_session_is_named_after_the_caller() {
        for (arn, name) in [
            ("arn:aws:iam::123456789012:user/alice", "alice"),
            ("arn:aws:iam::123456789012:user/people/alice", "alice"),
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123/alice.smith@example.com",
                "alice.smith@example.com",
            ),
            ("arn:aws:sts::123456789012:assumed-role/ci/i-0abc", "i-0abc"),
            ("arn:aws:iam::123456789012:root", "root"),
            ("arn:aws:sts::123456789012:federated-user/bob", "bob"),
            ("arn:aws:iam::123456789012:user/zoë smith", "zo--smith"),
        ] {
            assert_eq!(role_session_name(arn), name, "{arn}");
        }
    }

    #[test]
    fn names_sts_would_refuse_become_valid_or_the_fallback() {
        let long = format!("arn:aws:iam::1:user/{}", "a".repeat(100));
        assert_eq!(role_session_name(&long), "a".repeat(64));
        for arn in [
            "arn:aws:iam::1:user/a",
            "arn:aws:iam::1:user/",
            "arn:aws:iam::1:user/日本",
            "",
            "---",
        ] {
            assert_eq!(role_session_name(arn), FALLBACK_SESSION_NAME, "{arn:?}");
        }
        assert!(valid(FALLBACK_SESSION_NAME));
    }

    proptest! {
        #[test]
        fn every_session_name_is_one_sts_accepts(arn in "\\PC{0,120}") {
            let name = role_session_name(&arn);
            prop_assert!(valid(&name), "{arn:?} gave {name:?}");
        }
    }
}
