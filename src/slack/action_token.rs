//! Tamper-evident button values.
//!
//! A Slack button's `value` comes back to the interaction endpoint from the user's client, so it
//! is signed: `v1.<payload>.<mac>`, where `payload` is the base64url of a compact JSON object
//! (action, route, alert fingerprint, EMR cluster ids, issued-at) and `mac` the base64url of its
//! HMAC-SHA256 under a key only alertops knows. Verification checks the MAC in constant time
//! before it trusts the payload, then the token's age.
//!
//! Keys are per route. The chart's Secret holds a master key that only the controller and the
//! interaction server read; each AlertRoute's consumer gets its route's key — HMAC-SHA256 of the
//! master over [`ROUTE_KEY_LABEL`] and `namespace/name` ([`route_key`]), in hex
//! ([`route_key_text`]) — and signs with that alone. The
//! interaction server ([`ButtonVerifier`]) reads the route named in the token (not yet
//! authenticated), derives that route's key and checks the MAC with it, so a consumer's key
//! cannot mint buttons for another route, and a token signed for one route and edited to name
//! another fails the MAC.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::alert::Fingerprint;
pub use crate::slack::snooze::SnoozeChoice;

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

/// Domain-separation label of [`route_key`], so the derived keys serve no other purpose.
pub const ROUTE_KEY_LABEL: &[u8] = b"alertops.dev/v1/button-key/route\0";

/// The key of `route`'s buttons: HMAC-SHA256 of `master` over [`ROUTE_KEY_LABEL`] followed by
/// `namespace/name` (Kubernetes names contain no `/`, so the input is unambiguous). 32 bytes.
pub fn route_key(master: &[u8], route: &RouteRef) -> Result<[u8; 32], ActionTokenError> {
    check_key_length(master)?;
    let mut mac = HmacSha256::new_from_slice(master).expect("HMAC accepts keys of any length");
    mac.update(ROUTE_KEY_LABEL);
    mac.update(route.namespace.as_bytes());
    mac.update(b"/");
    mac.update(route.name.as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

/// [`route_key`] as the text a route's consumer and its verifier use as the HMAC key: 64 hex
/// digits. Text because the key travels in a Secret to an environment variable, which cannot
/// hold every byte (NUL).
pub fn route_key_text(master: &[u8], route: &RouteRef) -> Result<String, ActionTokenError> {
    Ok(hex::encode(route_key(master, route)?))
}

fn check_key_length(key: &[u8]) -> Result<(), ActionTokenError> {
    if key.len() < MIN_KEY_BYTES {
        return Err(ActionTokenError::KeyTooShort {
            min: MIN_KEY_BYTES,
            actual: key.len(),
        });
    }
    Ok(())
}

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ButtonAction {
    /// Mark the alert as being handled.
    #[serde(rename = "ack")]
    Acknowledge,
    /// Start a new attempt of a failed EMR cluster.
    #[serde(rename = "retry")]
    Retry,
    /// Silence the alert's problem for a while ([`ActionPayload::snooze`] says how long).
    #[serde(rename = "snz")]
    Snooze,
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
    /// For Snooze: how long. Signed with the rest, so a press cannot choose another length.
    pub snooze: Option<SnoozeChoice>,
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
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    snooze: Option<SnoozeChoice>,
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
        check_key_length(key)?;
        Ok(ActionSigner { key: key.to_vec() })
    }

    /// The signer of `route`'s buttons, with the key [`route_key_text`] derives from `master`:
    /// what a consumer given that key in its environment signs with.
    pub fn for_route(master: &[u8], route: &RouteRef) -> Result<Self, ActionTokenError> {
        ActionSigner::new(route_key_text(master, route)?.as_bytes())
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
            snooze: payload.snooze,
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
            snooze: wire.snooze,
            issued_at,
        })
    }
}

/// Verifies any route's buttons with the master key: the interaction server's side of the
/// per-route keys (see the module docs).
#[derive(Clone)]
pub struct ButtonVerifier {
    master: Vec<u8>,
}

impl std::fmt::Debug for ButtonVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ButtonVerifier").finish_non_exhaustive()
    }
}

impl ButtonVerifier {
    /// A verifier holding `master`, which must be at least [`MIN_KEY_BYTES`] long.
    pub fn new(master: &[u8]) -> Result<Self, ActionTokenError> {
        check_key_length(master)?;
        Ok(ButtonVerifier {
            master: master.to_vec(),
        })
    }

    /// Reads the route the token claims (unauthenticated, only to pick the key), then checks
    /// the token with that route's key exactly as [`ActionSigner::verify`] does.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Result<ActionPayload, ActionTokenError> {
        let claimed = claimed_route(token)?;
        ActionSigner::for_route(&self.master, &claimed)?.verify(token, now, max_age)
    }
}

/// The route a token names, before its MAC is checked: only ever used to choose the key.
fn claimed_route(token: &str) -> Result<RouteRef, ActionTokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(ActionTokenError::Malformed("longer than a button value"));
    }
    let (signed, _) = token
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
    let json = URL_SAFE_NO_PAD
        .decode(payload_text)
        .map_err(|_| ActionTokenError::Malformed("payload is not base64url"))?;
    let wire: WirePayload = serde_json::from_slice(&json)
        .map_err(|_| ActionTokenError::Malformed("payload is not a known action"))?;
    Ok(RouteRef {
        namespace: wire.namespace,
        name: wire.route,
    })
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
            snooze: None,
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

    fn route(namespace: &str, name: &str) -> RouteRef {
        RouteRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn route_keys_are_hmac_of_the_master_over_label_and_route() {
        // Computed independently: Python's hmac.new(master, label + b"data/emr-failures", sha256).
        let expected = "178af33a89634d792d8558be6d0c60cd871462eb9a6cabb04c03e20779898e9c";
        let key = route_key(KEY, &route("data", "emr-failures")).unwrap();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(
            route_key_text(KEY, &route("data", "emr-failures")).unwrap(),
            expected
        );
        // The consumer, given the text in its environment, signs what the verifier accepts.
        let consumer = ActionSigner::new(expected.as_bytes()).unwrap();
        let token = consumer.sign(&retry_payload()).unwrap();
        assert!(
            ButtonVerifier::new(KEY)
                .unwrap()
                .verify(&token, now(), DEFAULT_MAX_AGE)
                .is_ok()
        );
        // Namespace and name are not interchangeable, and every route differs.
        let keys = [
            route_key(KEY, &route("data", "emr-failures")).unwrap(),
            route_key(KEY, &route("data", "emr-failures2")).unwrap(),
            route_key(KEY, &route("datax", "emr-failures")).unwrap(),
            route_key(KEY, &route("emr-failures", "data")).unwrap(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            route_key(b"short", &route("a", "b")),
            Err(ActionTokenError::KeyTooShort { min: 32, actual: 5 })
        );
    }

    #[test]
    fn the_verifier_accepts_a_routes_own_tokens() {
        let verifier = ButtonVerifier::new(KEY).unwrap();
        let payload = retry_payload();
        let token = ActionSigner::for_route(KEY, &payload.route)
            .unwrap()
            .sign(&payload)
            .unwrap();
        assert_eq!(verifier.verify(&token, now(), DEFAULT_MAX_AGE), Ok(payload));
    }

    #[test]
    fn a_token_minted_for_one_route_is_refused_for_another() {
        let verifier = ButtonVerifier::new(KEY).unwrap();
        let own = retry_payload();
        let other_route = route("data", "someone-elses-route");
        let own_signer = ActionSigner::for_route(KEY, &own.route).unwrap();

        // A consumer's key used to sign a button naming another route.
        let mut claiming_other = own.clone();
        claiming_other.route = other_route.clone();
        let token = own_signer.sign(&claiming_other).unwrap();
        assert_eq!(
            verifier.verify(&token, now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::BadSignature)
        );

        // A genuine token edited to name another route, keeping its MAC.
        let genuine = own_signer.sign(&own).unwrap();
        let (_, mac) = genuine.rsplit_once('.').unwrap();
        let edited = own_signer.sign(&claiming_other).unwrap();
        let (edited_signed, _) = edited.rsplit_once('.').unwrap();
        assert_eq!(
            verifier.verify(&format!("{edited_signed}.{mac}"), now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::BadSignature)
        );

        // The master itself signs nothing a verifier accepts: only derived keys do.
        let with_master = ActionSigner::new(KEY).unwrap().sign(&own).unwrap();
        assert_eq!(
            verifier.verify(&with_master, now(), DEFAULT_MAX_AGE),
            Err(ActionTokenError::BadSignature)
        );
        // Another route's own token is fine: the refusal is about the key, not the route.
        let other_token = ActionSigner::for_route(KEY, &other_route)
            .unwrap()
            .sign(&claiming_other)
            .unwrap();
        assert!(
            verifier
                .verify(&other_token, now(), DEFAULT_MAX_AGE)
                .is_ok()
        );
    }

    #[test]
    fn the_verifier_keeps_the_age_version_and_signature_checks() {
        let verifier = ButtonVerifier::new(KEY).unwrap();
        let payload = retry_payload();
        let token = ActionSigner::for_route(KEY, &payload.route)
            .unwrap()
            .sign(&payload)
            .unwrap();
        let max_age = Duration::hours(1);
        assert!(matches!(
            verifier.verify(&token, now() + max_age + Duration::seconds(1), max_age),
            Err(ActionTokenError::Expired { .. })
        ));
        assert!(matches!(
            verifier.verify(&token, now() - Duration::minutes(6), max_age),
            Err(ActionTokenError::IssuedInFuture { .. })
        ));
        assert_eq!(
            verifier.verify(&format!("v2{}", &token[2..]), now(), max_age),
            Err(ActionTokenError::UnsupportedVersion("v2".into()))
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verifier.verify(&String::from_utf8(flipped).unwrap(), now(), max_age),
            Err(ActionTokenError::BadSignature)
        );
        for malformed in ["", "v1", "v1.abc", "v1..", "v1.!!!.abc"] {
            assert!(
                matches!(
                    verifier.verify(malformed, now(), max_age),
                    Err(ActionTokenError::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
        assert_eq!(
            ButtonVerifier::new(b"short").unwrap_err(),
            ActionTokenError::KeyTooShort { min: 32, actual: 5 }
        );
        assert!(
            !format!("{verifier:?}").contains("0123"),
            "Debug hides the key"
        );
    }
}
