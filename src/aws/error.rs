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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ssm::operation::get_parameter::GetParameterError;

    fn service(code: &str) -> SdkError<GetParameterError, ()> {
        SdkError::service_error(
            GetParameterError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("the service said no")
                    .build(),
            ),
            (),
        )
    }

    #[test]
    fn service_error_codes_map_to_kinds() {
        for (code, kind) in [
            ("ThrottlingException", BackendErrorKind::Throttled),
            (
                "ProvisionedThroughputExceededException",
                BackendErrorKind::Throttled,
            ),
            ("RequestLimitExceeded", BackendErrorKind::Throttled),
            ("TooManyUpdates", BackendErrorKind::Throttled),
            ("AccessDeniedException", BackendErrorKind::AccessDenied),
            ("UnrecognizedClientException", BackendErrorKind::Credentials),
            ("ExpiredTokenException", BackendErrorKind::Credentials),
            ("InvalidSignatureException", BackendErrorKind::Credentials),
            ("ValidationException", BackendErrorKind::Other),
        ] {
            assert_eq!(classify(&service(code)), kind, "{code}");
        }
    }

    #[test]
    fn transport_failures_map_to_kinds() {
        let timeout: SdkError<GetParameterError, ()> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), BackendErrorKind::Timeout);
        let io: SdkError<GetParameterError, ()> = SdkError::dispatch_failure(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        assert_eq!(classify(&io), BackendErrorKind::Unreachable);
        let connect_timeout: SdkError<GetParameterError, ()> =
            SdkError::dispatch_failure(ConnectorError::timeout("connect".into()));
        assert_eq!(classify(&connect_timeout), BackendErrorKind::Timeout);
        let no_credentials: SdkError<GetParameterError, ()> =
            SdkError::dispatch_failure(ConnectorError::other(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                )
                .into(),
                None,
            ));
        assert_eq!(classify(&no_credentials), BackendErrorKind::Credentials);
    }

    #[test]
    fn messages_say_what_was_done_and_what_aws_said() {
        let err = backend(
            "reading label latest of project storage (SSM GetParametersByPath /storage/images/latest)",
            service("ThrottlingException"),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("reading label latest of project storage"),
            "{text}"
        );
        assert!(text.contains("throttled"), "{text}");
        assert!(
            text.contains("ThrottlingException: the service said no"),
            "{text}"
        );
        assert!(matches!(
            err,
            Error::Backend {
                kind: BackendErrorKind::Throttled,
                ..
            }
        ));
    }
}
