//! Classification of AWS SDK errors into what a reconciler does next: retry later (throttling,
//! service and network trouble), report the spec as invalid (terminal), or treat the resource as
//! absent (not found).

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS uses for throttling (the list the SDK's standard retry strategy treats as
/// throttling, less `LimitExceededException`, which several services use for quotas).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// Error codes that mean the caller lacks permission or valid credentials.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "AuthorizationErrorException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSecurity",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "NotAuthorized",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "OptInRequired",
];

/// Error codes that name a missing resource without following the `*NotFound*` pattern.
const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// Error codes for a malformed or invalid request besides those starting with `Invalid`,
/// `Malformed` or `Missing` or containing `Validation`.
const INVALID_REQUEST_CODES: &[&str] = &[
    "BadRequestException",
    "MessageRejected",
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "SerializationException",
];

/// Whether `code` is one of AWS's throttling error codes.
pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// What kind of failure an [`AwsError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// AWS throttled the call even after the SDK's retries: retry later, more slowly.
    Throttled,
    /// The resource does not exist.
    NotFound,
    /// Missing permission or invalid credentials: an IAM change is needed, not a spec change.
    AccessDenied,
    /// AWS rejected the request's content: terminal until the spec changes.
    InvalidRequest,
    /// Any other error answered by AWS: transient.
    Service,
    /// No answer from AWS (connection, timeout, credentials resolution): transient.
    Dispatch,
}

impl AwsErrorKind {
    /// A stable lower-case name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::NotFound => "not_found",
            AwsErrorKind::AccessDenied => "access_denied",
            AwsErrorKind::InvalidRequest => "invalid_request",
            AwsErrorKind::Service => "service",
            AwsErrorKind::Dispatch => "dispatch",
        }
    }

    /// Classifies an AWS error code, with the HTTP status as a fallback when the code is unknown.
    pub fn classify(code: Option<&str>, status: Option<u16>) -> AwsErrorKind {
        if let Some(code) = code {
            if is_throttling_code(code) {
                return AwsErrorKind::Throttled;
            }
            if ACCESS_DENIED_CODES.contains(&code) {
                return AwsErrorKind::AccessDenied;
            }
            if NOT_FOUND_CODES.contains(&code) || code.contains("NotFound") {
                return AwsErrorKind::NotFound;
            }
            if INVALID_REQUEST_CODES.contains(&code)
                || code.starts_with("Invalid")
                || code.starts_with("Malformed")
                || code.starts_with("Missing")
                || code.contains("Validation")
            {
                return AwsErrorKind::InvalidRequest;
            }
        }
        match status {
            Some(429) => AwsErrorKind::Throttled,
            Some(401 | 403) => AwsErrorKind::AccessDenied,
            Some(404) => AwsErrorKind::NotFound,
            _ => AwsErrorKind::Service,
        }
    }
}

impl fmt::Display for AwsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed AWS operation, classified.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// AWS kept throttling the operation through every SDK retry.
    #[error(
        "AWS throttled {operation} ({code}: {message}) after all retries; it will be retried \
         later (lower the client-side rate for this API if this persists)"
    )]
    Throttled {
        /// The operation, e.g. `PutMetricAlarm`.
        operation: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The resource the operation names does not exist.
    #[error("{operation}: the AWS resource was not found ({code}: {message})")]
    NotFound {
        /// The operation.
        operation: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The credentials are missing permission for the operation, or invalid.
    #[error(
        "AWS denied {operation} ({code}: {message}); grant the controller's IAM role \
         permission for this action, or check its credentials"
    )]
    AccessDenied {
        /// The operation.
        operation: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// AWS rejected the request's content; retrying the same request cannot succeed.
    #[error("AWS rejected {operation} as invalid ({code}: {message}); fix the resource's spec")]
    InvalidRequest {
        /// The operation.
        operation: String,
        /// The AWS error code (`ConstructionFailure` if the SDK refused to build the request).
        code: String,
        /// AWS's (or the SDK's) message.
        message: String,
    },
    /// Any other error answered by AWS; transient.
    #[error("AWS failed {operation} ({code}: {message}); it will be retried")]
    Service {
        /// The operation.
        operation: String,
        /// The AWS error code, or `HTTP <status>` when the answer had none.
        code: String,
        /// AWS's message, or a description of the unreadable answer.
        message: String,
    },
    /// The request got no answer: connection refused, timeout, or credentials not resolved.
    #[error(
        "could not reach AWS for {operation}: {message}; check the endpoint, the network and \
         the credentials (it will be retried)"
    )]
    Dispatch {
        /// The operation.
        operation: String,
        /// What went wrong, with its causes.
        message: String,
    },
}

impl AwsError {
    /// Classifies an SDK error of `operation` (e.g. `"PutMetricAlarm"`).
    pub fn from_sdk<E, R>(operation: &str, error: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + 'static,
    {
        let operation = operation.to_owned();
        let status = error
            .raw_response()
            .and_then(|raw| (raw as &dyn Any).downcast_ref::<HttpResponse>())
            .map(|response| response.status().as_u16());
        match &error {
            SdkError::ServiceError(service_error) => {
                let err = service_error.err();
                let code = err.code().map(str::to_owned);
                let message = err
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| DisplayErrorContext(err).to_string());
                let kind = AwsErrorKind::classify(code.as_deref(), status);
                let code = code.unwrap_or_else(|| match status {
                    Some(status) => format!("HTTP {status}"),
                    None => "Unknown".to_owned(),
                });
                AwsError::new(kind, operation, code, message)
            }
            SdkError::ConstructionFailure(_) => AwsError::InvalidRequest {
                operation,
                code: "ConstructionFailure".to_owned(),
                message: DisplayErrorContext(&error).to_string(),
            },
            SdkError::ResponseError(_) => AwsError::Service {
                operation,
                code: status.map_or_else(|| "ResponseError".to_owned(), |s| format!("HTTP {s}")),
                message: DisplayErrorContext(&error).to_string(),
            },
            // Timeouts, connection failures and credential resolution failures.
            _ => AwsError::Dispatch {
                operation,
                message: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    /// An error of the given kind (for [`AwsErrorKind::Dispatch`], `code` is dropped).
    pub fn new(
        kind: AwsErrorKind,
        operation: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> AwsError {
        let (operation, code, message) = (operation.into(), code.into(), message.into());
        match kind {
            AwsErrorKind::Throttled => AwsError::Throttled {
                operation,
                code,
                message,
            },
            AwsErrorKind::NotFound => AwsError::NotFound {
                operation,
                code,
                message,
            },
            AwsErrorKind::AccessDenied => AwsError::AccessDenied {
                operation,
                code,
                message,
            },
            AwsErrorKind::InvalidRequest => AwsError::InvalidRequest {
                operation,
                code,
                message,
            },
            AwsErrorKind::Service => AwsError::Service {
                operation,
                code,
                message,
            },
            AwsErrorKind::Dispatch => AwsError::Dispatch { operation, message },
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> AwsErrorKind {
        match self {
            AwsError::Throttled { .. } => AwsErrorKind::Throttled,
            AwsError::NotFound { .. } => AwsErrorKind::NotFound,
            AwsError::AccessDenied { .. } => AwsErrorKind::AccessDenied,
            AwsError::InvalidRequest { .. } => AwsErrorKind::InvalidRequest,
            AwsError::Service { .. } => AwsErrorKind::Service,
            AwsError::Dispatch { .. } => AwsErrorKind::Dispatch,
        }
    }

    /// Whether retrying cannot help until the spec changes (an invalid request). Access denied
    /// is not terminal: permissions can be granted without touching the spec.
    pub fn is_terminal(&self) -> bool {
        self.kind() == AwsErrorKind::InvalidRequest
    }

    /// Whether the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == AwsErrorKind::NotFound
    }

    /// Whether AWS throttled the operation.
    pub fn is_throttled(&self) -> bool {
        self.kind() == AwsErrorKind::Throttled
    }

    /// The operation that failed.
    pub fn operation(&self) -> &str {
        match self {
            AwsError::Throttled { operation, .. }
            | AwsError::NotFound { operation, .. }
            | AwsError::AccessDenied { operation, .. }
            | AwsError::InvalidRequest { operation, .. }
            | AwsError::Service { operation, .. }
            | AwsError::Dispatch { operation, .. } => operation,
        }
    }

    /// The AWS error code, if AWS answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Throttled { code, .. }
            | AwsError::NotFound { code, .. }
            | AwsError::AccessDenied { code, .. }
            | AwsError::InvalidRequest { code, .. }
            | AwsError::Service { code, .. } => Some(code),
            AwsError::Dispatch { .. } => None,
        }
    }

    /// The IAM action the call needs, e.g. `cloudwatch:DeleteAlarms`, for telling a person which
    /// permission is missing: the one AWS names in an AccessDenied message ("... is not
    /// authorized to perform: sns:Unsubscribe on resource ..."), else the operation's own.
    /// `None` for an operation whose name several services share (`TagResource`) when AWS did
    /// not name the action.
    pub fn iam_action(&self) -> Option<String> {
        if let Some(named) = action_named_in(self.message()) {
            return Some(named);
        }
        let operation = self.operation();
        IAM_SERVICE_OF_OPERATION
            .iter()
            .find(|(_, operations)| operations.contains(&operation))
            .map(|(service, _)| {
                // The batch calls are authorised by the single call's action.
                let action = operation.strip_suffix("Batch").unwrap_or(operation);
                format!("{service}:{action}")
            })
    }

    /// AWS's message (or a description of the failure).
    pub fn message(&self) -> &str {
        match self {
            AwsError::Throttled { message, .. }
            | AwsError::NotFound { message, .. }
            | AwsError::AccessDenied { message, .. }
            | AwsError::InvalidRequest { message, .. }
            | AwsError::Service { message, .. }
            | AwsError::Dispatch { message, .. } => message,
        }
    }
}

/// The IAM service prefix of every operation the gateway calls whose name only one of our
/// services uses (`ListTagsForResource`, `TagResource` and `UntagResource` are in several).
const IAM_SERVICE_OF_OPERATION: &[(&str, &[&str])] = &[
    (
        "cloudwatch",
        &["DescribeAlarms", "PutMetricAlarm", "DeleteAlarms"],
    ),
    (
        "events",
        &[
            "ListRules",
            "PutRule",
            "ListTargetsByRule",
            "PutTargets",
            "RemoveTargets",
            "DeleteRule",
        ],
    ),
    (
        "sns",
        &[
            "CreateTopic",
            "GetTopicAttributes",
            "SetTopicAttributes",
            "DeleteTopic",
            "ListSubscriptionsByTopic",
            "ListSubscriptions",
            "Subscribe",
            "GetSubscriptionAttributes",
            "SetSubscriptionAttributes",
            "Unsubscribe",
            "Publish",
        ],
    ),
    (
        "sqs",
        &[
            "GetQueueUrl",
            "ListQueueTags",
            "TagQueue",
            "UntagQueue",
            "GetQueueAttributes",
            "CreateQueue",
            "SetQueueAttributes",
            "DeleteQueue",
            "ReceiveMessage",
            "DeleteMessageBatch",
            "ChangeMessageVisibilityBatch",
        ],
    ),
    (
        "elasticmapreduce",
        &[
            "DescribeCluster",
            "ListClusters",
            "ListInstanceFleets",
            "ListInstanceGroups",
            "ListSteps",
            "ListBootstrapActions",
            "RunJobFlow",
        ],
    ),
    ("ses", &["SendEmail"]),
];

/// The action in AWS's AccessDenied wording "... not authorized to perform: svc:Action ...".
fn action_named_in(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("to perform: ")?;
    let action: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    let (service, name) = action.split_once(':')?;
    (!service.is_empty() && !name.is_empty()).then_some(action)
}

/// `result.aws("PutMetricAlarm")?` turns an SDK result into a classified [`AwsError`].
pub trait AwsResultExt<T> {
    /// Classifies the error of `operation`, if any.
    fn aws(self, operation: &str) -> Result<T, AwsError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + 'static,
{
    fn aws(self, operation: &str) -> Result<T, AwsError> {
        self.map_err(|error| AwsError::from_sdk(operation, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(
        status: u16,
        code: Option<&str>,
        message: &str,
    ) -> SdkError<GetQueueUrlError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            GetQueueUrlError::generic(meta.build()),
            HttpResponse::new(status.try_into().expect("valid status"), SdkBody::empty()),
        )
    }

    #[test]
    fn codes_are_classified() {
        let cases = [
            ("Throttling", AwsErrorKind::Throttled),
            ("ThrottlingException", AwsErrorKind::Throttled),
            ("TooManyRequestsException", AwsErrorKind::Throttled),
            ("ResourceNotFound", AwsErrorKind::NotFound),
            ("ResourceNotFoundException", AwsErrorKind::NotFound),
            ("NotFound", AwsErrorKind::NotFound),
            (
                "AWS.SimpleQueueService.NonExistentQueue",
                AwsErrorKind::NotFound,
            ),
            ("QueueDoesNotExist", AwsErrorKind::NotFound),
            ("AccessDenied", AwsErrorKind::AccessDenied),
            ("AuthorizationError", AwsErrorKind::AccessDenied),
            ("InvalidClientTokenId", AwsErrorKind::AccessDenied),
            ("ValidationError", AwsErrorKind::InvalidRequest),
            ("ValidationException", AwsErrorKind::InvalidRequest),
            ("InvalidParameterValue", AwsErrorKind::InvalidRequest),
            ("InvalidEventPatternException", AwsErrorKind::InvalidRequest),
            ("MissingParameter", AwsErrorKind::InvalidRequest),
            (
                "MalformedPolicyDocumentException",
                AwsErrorKind::InvalidRequest,
            ),
            ("MessageRejected", AwsErrorKind::InvalidRequest),
            ("InternalFailure", AwsErrorKind::Service),
            ("ServiceUnavailable", AwsErrorKind::Service),
            ("ConcurrentModificationException", AwsErrorKind::Service),
            ("LimitExceededException", AwsErrorKind::Service),
        ];
        for (code, kind) in cases {
            assert_eq!(
                AwsErrorKind::classify(Some(code), Some(400)),
                kind,
                "{code}"
            );
        }
    }

    #[test]
    fn status_decides_when_the_code_is_unknown_or_missing() {
        assert_eq!(
            AwsErrorKind::classify(None, Some(429)),
            AwsErrorKind::Throttled
        );
        assert_eq!(
            AwsErrorKind::classify(Some("Odd"), Some(403)),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(
            AwsErrorKind::classify(None, Some(404)),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            AwsErrorKind::classify(None, Some(500)),
            AwsErrorKind::Service
        );
        assert_eq!(AwsErrorKind::classify(None, None), AwsErrorKind::Service);
    }

    #[test]
    fn service_errors_keep_operation_code_and_message() {
        let error = AwsError::from_sdk(
            "GetQueueUrl",
            service_error(
                400,
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                "no such queue",
            ),
        );
        assert!(error.is_not_found());
        assert!(!error.is_terminal());
        assert_eq!(error.operation(), "GetQueueUrl");
        assert_eq!(
            error.code(),
            Some("AWS.SimpleQueueService.NonExistentQueue")
        );
        assert_eq!(error.message(), "no such queue");
        assert_eq!(
            error.to_string(),
            "GetQueueUrl: the AWS resource was not found \
             (AWS.SimpleQueueService.NonExistentQueue: no such queue)"
        );
    }

    #[test]
    fn invalid_requests_are_terminal_and_say_what_to_do() {
        let error = AwsError::from_sdk(
            "PutMetricAlarm",
            service_error(400, Some("ValidationError"), "Period must be 10, 30 or 60"),
        );
        assert!(error.is_terminal());
        assert_eq!(error.kind(), AwsErrorKind::InvalidRequest);
        assert!(error.to_string().contains("fix the resource's spec"));
        assert!(error.to_string().contains("Period must be 10, 30 or 60"));
    }

    #[test]
    fn throttling_access_and_server_errors_are_not_terminal() {
        for (status, code, kind) in [
            (400, Some("Throttling"), AwsErrorKind::Throttled),
            (403, Some("AccessDenied"), AwsErrorKind::AccessDenied),
            (500, Some("InternalFailure"), AwsErrorKind::Service),
            (503, None, AwsErrorKind::Service),
        ] {
            let error = AwsError::from_sdk("Publish", service_error(status, code, "m"));
            assert_eq!(error.kind(), kind);
            assert!(!error.is_terminal(), "{error}");
        }
        let unknown = AwsError::from_sdk("Publish", service_error(503, None, "m"));
        assert_eq!(unknown.code(), Some("HTTP 503"));
        let denied = AwsError::from_sdk("Publish", service_error(403, Some("AccessDenied"), "m"));
        assert!(denied.to_string().contains("IAM role"));
    }

    #[test]
    fn dispatch_and_timeout_failures_are_transient() {
        let dispatch: SdkError<GetQueueUrlError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let error = AwsError::from_sdk("GetQueueUrl", dispatch);
        assert_eq!(error.kind(), AwsErrorKind::Dispatch);
        assert_eq!(error.code(), None);
        assert!(!error.is_terminal());
        assert!(error.to_string().contains("connection refused"), "{error}");

        let timeout: SdkError<GetQueueUrlError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        let error = AwsError::from_sdk("GetQueueUrl", timeout);
        assert_eq!(error.kind(), AwsErrorKind::Dispatch);
    }

    #[test]
    fn construction_failures_are_invalid_requests() {
        let error: SdkError<GetQueueUrlError, HttpResponse> =
            SdkError::construction_failure("QueueName is required");
        let error = AwsError::from_sdk("GetQueueUrl", error);
        assert!(error.is_terminal());
        assert_eq!(error.code(), Some("ConstructionFailure"));
    }

    #[test]
    fn the_missing_permission_is_named_as_aws_names_it_or_from_the_operation() {
        let aws_wording = AwsError::new(
            AwsErrorKind::AccessDenied,
            "TagResource",
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/alertops/x is not authorized to \
             perform: SNS:TagResource on resource: arn:aws:sns:us-east-1:123456789012:t",
        );
        assert_eq!(aws_wording.iam_action().as_deref(), Some("SNS:TagResource"));
        let denied = |operation: &str| {
            AwsError::new(
                AwsErrorKind::AccessDenied,
                operation,
                "AccessDenied",
                "denied",
            )
            .iam_action()
        };
        assert_eq!(
            denied("DeleteAlarms").as_deref(),
            Some("cloudwatch:DeleteAlarms")
        );
        assert_eq!(denied("DeleteRule").as_deref(), Some("events:DeleteRule"));
        assert_eq!(denied("DeleteQueue").as_deref(), Some("sqs:DeleteQueue"));
        assert_eq!(
            denied("DeleteMessageBatch").as_deref(),
            Some("sqs:DeleteMessage")
        );
        assert_eq!(denied("TagResource"), None, "three services share the name");
    }

    #[test]
    fn result_extension_classifies() {
        let result: Result<(), _> = Err(service_error(400, Some("Throttling"), "slow down"));
        let error = result.aws("DescribeAlarms").expect_err("an error");
        assert!(error.is_throttled());
        assert_eq!(error.operation(), "DescribeAlarms");
    }
}
