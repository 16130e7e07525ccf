//! SDK errors → [`Error::Backend`] with a [`BackendErrorKind`].

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::{BackendErrorKind, BoxError, Error};

/// Error codes that mean "slow down".
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyUpdates",
    "TooManyRequestsException",
    "LimitExceededException",
];

/// Error codes that mean "you are not allowed".
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "AuthorizationError",
];

/// Error codes that mean "who are you?": missing, invalid or expired
/// credentials.
const CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InvalidAccessKeyId",
    "InvalidToken",
];

/// The error kept as the source of [`Error::Backend`]: a one-line summary
/// (service error code and message, or the whole chain of a transport
/// error) over the SDK's error.
#[derive(Debug)]
pub(crate) struct AwsFailure {
    summary: String,
    source: BoxError,
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl StdError for AwsFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Whether a credentials provider's failure is somewhere in `err`'s chain.
fn is_credentials_failure(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// The kind of an SDK failure, from its error code or transport failure.
pub(crate) fn classify<E, R>(err: &SdkError<E, R>) -> BackendErrorKind
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    match err {
        SdkError::TimeoutError(_) => BackendErrorKind::Timeout,
        SdkError::DispatchFailure(failure) => {
            if is_credentials_failure(err) {
                BackendErrorKind::Credentials
            } else if failure.is_timeout() {
                BackendErrorKind::Timeout
            } else if failure.is_io() || failure.is_other() {
                BackendErrorKind::Unreachable
            } else {
                BackendErrorKind::Other
            }
        }
        SdkError::ConstructionFailure(_) => {
            if is_credentials_failure(err) {
                BackendErrorKind::Credentials
            } else {
                BackendErrorKind::Other
            }
        }
        _ => match err.code() {
            Some(code) if THROTTLED.contains(&code) => BackendErrorKind::Throttled,
            Some(code) if ACCESS_DENIED.contains(&code) => BackendErrorKind::AccessDenied,
            Some(code) if CREDENTIALS.contains(&code) => BackendErrorKind::Credentials,
            _ => BackendErrorKind::Other,
        },
    }
}

/// Wraps an SDK failure as [`Error::Backend`]; `operation` says what was
/// being done to what.
pub(crate) fn backend<E, R>(operation: impl Into<String>, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let kind = classify(&err);
    let summary = match (&err, err.code()) {
        (SdkError::ServiceError(_), Some(code)) => match err.message() {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        },
        _ => DisplayErrorContext(&err).to_string(),
    };
    Error::Backend {
        operation: operation.into(),
        kind,
        source: Box::new(AwsFailure {
            summary,
            source: Box::new(err),
        }),
    }
}

/// A backend failure that is not an SDK error (an impossible response, a
/// wait that ran out of time).
pub(crate) fn backend_message(
    operation: impl Into<String>,
    kind: BackendErrorKind,
    message: impl Into<String>,
) -> Error {
    Error::Backend {
        operation: operation.into(),
        kind,
        source: message.into().into(),
    }
}
