//! SDK errors → [`Error::Backend`] with a [`BackendErrorKind`].

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::{BackendErrorKind, Error};

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

/// The source of [`Error::Backend`] for an SDK failure: what AWS said, as
/// one line. A service error is `CODE: message`; a failure to get an answer
/// (connection, timeout, credentials) is the text of its causes, joined
/// once each.
///
/// It has no source of its own: the SDK's chain repeats itself (`service
/// error`, `unhandled error (CODE)`, then the error metadata as a debug
/// dump), and a reader of [`Error`]'s chain should see each cause once.
#[derive(Debug)]
pub(crate) struct AwsFailure {
    summary: String,
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl StdError for AwsFailure {}

/// `CODE: message`, `CODE` when AWS sent no message, or the message alone
/// when it sent no code.
fn service_summary(code: Option<&str>, message: Option<&str>) -> Option<String> {
    let code = code.map(str::trim).filter(|c| !c.is_empty());
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (code, message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (Some(code), None) => Some(code.to_owned()),
        (None, Some(message)) => Some(message.to_owned()),
        (None, None) => None,
    }
}

/// The texts of `first` and its causes, joined by `: `, each once: an empty
/// text, or one that an earlier text already contains (a wrapper that quotes
/// its cause), is left out.
fn causes(first: Option<&(dyn StdError + 'static)>) -> String {
    let mut texts: Vec<String> = Vec::new();
    let mut next = first;
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.trim();
        let repeated = texts.iter().any(|shown| shown.contains(text));
        if !text.is_empty() && !repeated {
            texts.push(text.to_owned());
        }
        next = e.source();
    }
    texts.join(": ")
}

/// What AWS said, as one line (see [`AwsFailure`]).
fn summary<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let detail = match err {
        SdkError::ServiceError(_) => Some(
            service_summary(err.code(), err.message())
                .unwrap_or_else(|| "an error response with no code and no message".to_owned()),
        ),
        // The connector's own text is its kind (`io error`, `other`), which
        // the error's kind already says; its causes say what happened.
        SdkError::DispatchFailure(failure) => failure
            .as_connector_error()
            .map(|connector| causes(connector.source().or(Some(connector)))),
        // `request has timed out`, `failed to construct request`, …: the
        // SDK's own text, then its causes.
        _ => Some(causes(Some(err))),
    };
    detail
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| causes(Some(err)))
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
    Error::Backend {
        operation: operation.into(),
        kind: classify(&err),
        source: Box::new(AwsFailure {
            summary: summary(&err),
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

    /// What the SDK reports when no provider in the chain had credentials.
    fn no_credentials() -> SdkError<GetParameterError, ()> {
        SdkError::dispatch_failure(ConnectorError::other(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            )
            .into(),
            None,
        ))
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
        let no_credentials = no_credentials();
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

    fn service_with(code: &str, message: Option<&str>) -> SdkError<GetParameterError, ()> {
        let mut meta = ErrorMetadata::builder().code(code);
        if let Some(message) = message {
            meta = meta.message(message);
        }
        SdkError::service_error(GetParameterError::generic(meta.build()), ())
    }

    /// The error's text and each cause's, as a chain printer sees them.
    fn chain(err: &Error) -> Vec<String> {
        let mut texts = vec![err.to_string()];
        let mut next = StdError::source(err);
        while let Some(cause) = next {
            texts.push(cause.to_string());
            next = cause.source();
        }
        texts
    }

    #[test]
    fn service_errors_are_code_and_message_once() {
        let err = backend("reading x", service_with("AccessDeniedException", Some("")));
        assert_eq!(
            chain(&err),
            [
                "reading x: access denied (check the IAM policy of the caller): AccessDeniedException",
                "AccessDeniedException"
            ]
        );
        let err = backend("reading x", service_with("AccessDeniedException", None));
        assert_eq!(chain(&err)[1], "AccessDeniedException");
        let err = backend(
            "reading x",
            service_with(
                "ValidationException",
                Some("The provided key element does not match the schema"),
            ),
        );
        assert_eq!(
            chain(&err),
            [
                "reading x: failed: ValidationException: The provided key element does not match the schema",
                "ValidationException: The provided key element does not match the schema"
            ]
        );
    }

    #[test]
    fn transport_failures_show_their_causes_without_debug_dumps() {
        let refused: SdkError<GetParameterError, ()> = SdkError::dispatch_failure(
            ConnectorError::io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()),
        );
        let timeout: SdkError<GetParameterError, ()> = SdkError::timeout_error("slow");
        let no_credentials = no_credentials();
        for (err, expected) in [
            (refused, "reading x: service unreachable: connection refused"),
            (timeout, "reading x: timed out: request has timed out: slow"),
            (
                no_credentials,
                "reading x: no valid credentials (set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                 or a role): the credential provider was not enabled: no providers in chain provided \
                 credentials",
            ),
        ] {
            let err = backend("reading x", err);
            let texts = chain(&err);
            assert_eq!(texts[0], expected);
            assert_eq!(texts.len(), 2, "{texts:?}");
            assert!(expected.ends_with(&texts[1]), "{texts:?}");
        }
    }

    /// An error that quotes its cause in its own text, as hyper's do.
    #[derive(Debug)]
    struct Quoting(&'static str, Option<Box<Quoting>>);

    impl fmt::Display for Quoting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Quoting {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn causes_are_joined_once_each() {
        let chain = Quoting(
            "client error (Connect)",
            Some(Box::new(Quoting(
                "tcp connect error: Connection refused",
                Some(Box::new(Quoting(
                    "",
                    Some(Box::new(Quoting("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            causes(Some(&chain)),
            "client error (Connect): tcp connect error: Connection refused"
        );
        assert_eq!(causes(None), "");
    }
}
