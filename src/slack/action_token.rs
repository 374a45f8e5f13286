//! Tamper-evident button values.
//!
//! A Slack button's `value` comes back to the interaction endpoint from the user's client, so it
//! is signed: `v1.<payload>.<mac>`, where `payload` is the base64url of a compact JSON object
//! (action, route, alert fingerprint, EMR cluster ids, issued-at) and `mac` the base64url of its
//! HMAC-SHA256 under a key only alertops knows. Verification checks the MAC in constant time
//! before it reads the payload, then the token's age.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::alert::Fingerprint;

type HmacSha256 = Hmac<Sha256>;

/// Prefix naming the token format, so that a later format can be told apart.
const VERSION: &str = "v1";
/// Shortest accepted key: 256 bits, the HMAC-SHA256 block strength.
pub const MIN_KEY_BYTES: usize = 32;
/// Slack's limit on a button's `value`.
pub const MAX_TOKEN_CHARS: usize = 2000;
/// How far in the future an issued-at may be before the token is refused (clock skew).
pub const ALLOWED_CLOCK_SKEW: Duration = Duration::minutes(5);
/// A reasonable default for how long buttons stay usable.
pub const DEFAULT_MAX_AGE: Duration = Duration::days(7);

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ButtonAction {
    /// Mark the alert as being handled.
    #[serde(rename = "ack")]
    Acknowledge,
    /// Start a new attempt of a failed EMR cluster.
    #[serde(rename = "retry")]
    Retry,
}

/// The AlertRoute whose policy (allowed users, attempt cap) governs the button.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteRef {
    /// Namespace of the AlertRoute.
    pub namespace: String,
    /// Name of the AlertRoute.
    pub name: String,
}

/// What a button token says, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionPayload {
    /// What the button does.
    pub action: ButtonAction,
    /// The route that rendered it.
    pub route: RouteRef,
    /// The alert it belongs to.
    pub fingerprint: Fingerprint,
    /// For Retry: the failed EMR cluster to rebuild.
    pub cluster_id: Option<String>,
    /// For Retry: the cluster the chain of retries started from (the attempt cap counts from it).
    pub original_cluster_id: Option<String>,
    /// When the button was rendered (whole seconds).
    pub issued_at: DateTime<Utc>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionTokenError {
    /// The signing key is too short to be safe.
    #[error("action signing key has {actual} bytes; at least {min} are required")]
    KeyTooShort {
        /// Required length.
        min: usize,
        /// Given length.
        actual: usize,
    },
    /// The token is not `v1.<payload>.<mac>` with base64url parts.
    #[error("malformed action token: {0}")]
    Malformed(&'static str),
    /// The token names a format this version does not know.
    #[error("unsupported action token version {0:?}")]
    UnsupportedVersion(String),
    /// The MAC does not match: the token was altered or signed with another key.
    #[error("action token signature does not match")]
    BadSignature,
    /// The token is older than the allowed age.
    #[error("action token issued at {issued_at} has expired (older than {max_age_seconds} s)")]
    Expired {
        /// When it was issued.
        issued_at: DateTime<Utc>,
        /// The allowed age.
        max_age_seconds: i64,
    },
    /// The token claims to be issued in the future beyond the allowed clock skew.
    #[error("action token issued at {issued_at}, in the future")]
    IssuedInFuture {
        /// When it claims to be issued.
        issued_at: DateTime<Utc>,
    },
    /// The signed token would exceed Slack's 2,000-character button value.
    #[error("action token would be {length} characters, over Slack's {MAX_TOKEN_CHARS}")]
    TooLong {
        /// Length of the token.
        length: usize,
    },
}

/// The signed form, with short keys to keep tokens small.
#[derive(Serialize, Deserialize)]
struct WirePayload {
    #[serde(rename = "a")]
    action: ButtonAction,
    #[serde(rename = "ns")]
    namespace: String,
    #[serde(rename = "r")]
    route: String,
    #[serde(rename = "fp")]
    fingerprint: String,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
    #[serde(rename = "oc", default, skip_serializing_if = "Option::is_none")]
    original_cluster_id: Option<String>,
    #[serde(rename = "iat")]
    issued_at: i64,
}

/// Signs and verifies button tokens with one key.
#[derive(Clone)]
pub struct ActionSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for ActionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ActionSigner").finish_non_exhaustive()
    }
}

impl ActionSigner {
    /// A signer with `key`, which must be at least [`MIN_KEY_BYTES`] long.
    pub fn new(key: &[u8]) -> Result<Self, ActionTokenError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(ActionTokenError::KeyTooShort {
                min: MIN_KEY_BYTES,
                actual: key.len(),
            });
        }
        Ok(ActionSigner { key: key.to_vec() })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; `new` only guarantees a safe minimum.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// The token for `payload`; fails only when it would not fit in a Slack button value.
    pub fn sign(&self, payload: &ActionPayload) -> Result<String, ActionTokenError> {
        let wire = WirePayload {
            action: payload.action,
            namespace: payload.route.namespace.clone(),
            route: payload.route.name.clone(),
            fingerprint: payload.fingerprint.as_str().to_string(),
            cluster_id: payload.cluster_id.clone(),
            original_cluster_id: payload.original_cluster_id.clone(),
            issued_at: payload.issued_at.timestamp(),
        };
        let json = serde_json::to_vec(&wire).expect("plain strings and integers serialize");
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let token = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        if token.len() > MAX_TOKEN_CHARS {
            return Err(ActionTokenError::TooLong {
                length: token.len(),
            });
        }
        Ok(token)
    }

    /// Checks `token`'s signature (in constant time) and age, and returns what it says.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Result<ActionPayload, ActionTokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(ActionTokenError::Malformed("longer than a button value"));
        }
        let (signed, mac_text) = token
            .rsplit_once('.')
            .ok_or(ActionTokenError::Malformed("missing signature"))?;
        let (version, payload_text) = signed
            .split_once('.')
            .ok_or(ActionTokenError::Malformed("missing version"))?;
        if version != VERSION {
            return Err(ActionTokenError::UnsupportedVersion(
                version.chars().take(16).collect(),
            ));
        }
        let mac_bytes = URL_SAFE_NO_PAD
            .decode(mac_text)
            .map_err(|_| ActionTokenError::Malformed("signature is not base64url"))?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&mac_bytes)
            .map_err(|_| ActionTokenError::BadSignature)?;

        // Authentic from here on: a decoding failure means our own format changed.
        let json = URL_SAFE_NO_PAD
            .decode(payload_text)
            .map_err(|_| ActionTokenError::Malformed("payload is not base64url"))?;
        let wire: WirePayload = serde_json::from_slice(&json)
            .map_err(|_| ActionTokenError::Malformed("payload is not a known action"))?;
        let issued_at = DateTime::<Utc>::from_timestamp(wire.issued_at, 0)
            .ok_or(ActionTokenError::Malformed("issued-at out of range"))?;
        if issued_at > now + ALLOWED_CLOCK_SKEW {
            return Err(ActionTokenError::IssuedInFuture { issued_at });
        }
        if now - issued_at > max_age {
            return Err(ActionTokenError::Expired {
                issued_at,
                max_age_seconds: max_age.num_seconds(),
            });
        }
        Ok(ActionPayload {
            action: wire.action,
            route: RouteRef {
                namespace: wire.namespace,
                name: wire.route,
            },
            fingerprint: Fingerprint::from_raw(wire.fingerprint),
            cluster_id: wire.cluster_id,
            original_cluster_id: wire.original_cluster_id,
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::AlertKind;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn retry_payload() -> ActionPayload {
        ActionPayload {
            action: ButtonAction::Retry,
            route: RouteRef {
                namespace: "data".into(),
                name: "emr-failures".into(),
            },
            fingerprint: Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-2"]),
            cluster_id: Some("j-2".into()),
            original_cluster_id: Some("j-1".into()),
            issued_at: now(),
        }
    }

    #[test]
    fn round_trip() {
        let signer = ActionSigner::new(KEY).unwrap();
        let token = signer.sign(&retry_payload()).unwrap();
        assert!(token.starts_with("v1."));
        assert!(token.len() < 400, "compact: {} chars", token.len());
        let verified = signer.verify(&token, now(), DEFAULT_MAX_AGE).unwrap();
        assert_eq!(verified, retry_payload());
    }

    #[test]
    fn flipped_byte_is_rejected() {
        let signer = ActionSigner::new(KEY).unwrap();
        let token = signer.sign(&retry_payload()).unwrap();
        // Flip one character of the payload, the signature and the version, one at a time.
        for index in [5, token.len() - 3, 1] {
            let mut bytes = token.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            let error = signer.verify(&altered, now(), DEFAULT_MAX_AGE).unwrap_err();
            assert!(
                matches!(
                    error,
                    ActionTokenError::BadSignature
                        | ActionTokenError::UnsupportedVersion(_)
                        | ActionTokenError::Malformed(_)
                ),
                "index {index}: {error:?}"
            );
        }
        // A payload edited to another cluster, keeping the old signature.
        let (_, mac) = token.rsplit_once('.').unwrap();
        let mut edited = retry_payload();
        edited.cluster_id = Some("j-EVIL".into());
        let forged_payload = signer.sign(&edited).unwrap();
        let (forged_signed, _) = forged_payload.rsplit_once('.').unwrap();
        assert_eq!(
            signer.verify(&format!("{forged_signed}.{mac}"), now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_rejected() {
        let token = ActionSigner::new(KEY)
            .unwrap()
            .sign(&retry_payload())
            .unwrap();
        let other = ActionSigner::new(b"another key that is long enough!!").unwrap();
        assert_eq!(
            other.verify(&token, now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::BadSignature)
        );
    }

    #[test]
    fn expiry_and_future_tokens() {
        let signer = ActionSigner::new(KEY).unwrap();
        let token = signer.sign(&retry_payload()).unwrap();
        let max_age = Duration::hours(1);
        assert!(signer.verify(&token, now() + max_age, max_age).is_ok());
        assert!(matches!(
            signer.verify(&token, now() + max_age + Duration::seconds(1), max_age),
            Err(ActionTokenError::Expired {
                max_age_seconds: 3600,
                ..
            })
        ));
        assert!(
            signer
                .verify(&token, now() - Duration::minutes(4), max_age)
                .is_ok()
        );
        assert!(matches!(
            signer.verify(&token, now() - Duration::minutes(6), max_age),
            Err(ActionTokenError::IssuedInFuture { .. })
        ));
    }

    #[test]
    fn malformed_tokens_and_short_keys() {
        let signer = ActionSigner::new(KEY).unwrap();
        for token in ["", "v1", "v1.abc", "v1..", "v1.abc.!!!", "v2.abc.def"] {
            assert!(
                signer.verify(token, now(), DEFAULT_MAX_AGE).is_err(),
                "{token:?}"
            );
        }
        assert_eq!(
            signer.verify("v2.abc.def", now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::UnsupportedVersion("v2".into()))
        );
        assert_eq!(
            ActionSigner::new(b"short").unwrap_err(),
            ActionTokenError::KeyTooShort { min: 32, actual: 5 }
        );
        assert!(
            !format!("{signer:?}").contains("0123"),
            "Debug hides the key"
        );
    }

    #[test]
    fn oversized_payload_is_refused_at_signing() {
        let signer = ActionSigner::new(KEY).unwrap();
        let mut payload = retry_payload();
        payload.cluster_id = Some("j".repeat(2000));
        assert!(matches!(
            signer.sign(&payload),
            Err(ActionTokenError::TooLong { .. })
        ));
    }
}
