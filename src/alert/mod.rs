//! The alert model and the decoders of SNS, CloudWatch and EventBridge messages.
//!
//! Every SQS message becomes one [`Alert`] ([`decode_sqs_body`] never fails); routes select
//! alerts with [`matches`]; the `slack` module renders them.

pub(crate) mod decode;
pub(crate) mod matching;
pub(crate) mod model;

pub(crate) mod enrich;
pub(crate) mod log_lines;

pub use decode::{SnsEnvelope, decode_message, decode_sqs_body, unwrap_sns_envelope};
pub use enrich::{Enricher, Enrichment, MissingFacts, ResourceFacts};
pub use log_lines::{LogExcerpt, LogLine, LogLineFetcher};
pub use matching::matches;
pub use model::{
    Alert, Detail, EMR_FAILED_STATE, Fingerprint, Link, ORIGINAL_CLUSTER_TAG, RETRY_ATTEMPT_TAG,
    RUNBOOK_TAG, SEVERITY_TAG,
};
