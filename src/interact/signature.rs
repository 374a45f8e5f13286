//! Slack's request signature (`v0`): an HMAC-SHA256, under the app's signing secret, of
//! `v0:{X-Slack-Request-Timestamp}:{raw body}`, sent hex-encoded as `X-Slack-Signature: v0=...`.
//!
//! The signature is checked over the raw bytes before anything parses them, in constant time, and
//! a timestamp more than [`MAX_REQUEST_AGE`] away from now is refused so that a captured request
//! cannot be replayed later.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header carrying the request's Unix timestamp (seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// How far a request's timestamp may be from now, in either direction (Slack's recommendation).
pub const MAX_REQUEST_AGE: Duration = Duration::minutes(5);
/// The only signature version Slack sends.
const VERSION: &str = "v0";

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A required header is absent or not text.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp header is not a Unix time in seconds.
    #[error("request timestamp is not a Unix time")]
    MalformedTimestamp,
    /// The timestamp is too far from now: a replay, or a badly wrong clock.
    #[error("request timestamp is {skew_seconds} s away from now (at most {} s allowed)", MAX_REQUEST_AGE.num_seconds())]
    Stale {
        /// Now minus the timestamp (negative when it is in the future).
        skew_seconds: i64,
    },
    /// The signature header is not `v0=<hex>`.
    #[error("signature header is not v0=<hex>")]
    MalformedSignature,
    /// The signature does not match: forged, altered after signing, or another secret.
    #[error("signature does not match the request")]
    Mismatch,
}

/// Checks (and, for tests and the local mode, makes) Slack request signatures.
#[derive(Clone)]
pub struct SlackRequestVerifier {
    secret: Vec<u8>,
}

impl std::fmt::Debug for SlackRequestVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SlackRequestVerifier")
            .finish_non_exhaustive()
    }
}

impl SlackRequestVerifier {
    /// A verifier with the app's signing secret (Slack app settings, "Signing Secret").
    pub fn new(signing_secret: &[u8]) -> Self {
        SlackRequestVerifier {
            secret: signing_secret.to_vec(),
        }
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(VERSION.as_bytes());
        mac.update(b":");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac
    }

    /// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(&timestamp.to_string(), body);
        format!("{VERSION}={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Checks a request: its timestamp header, its signature header and its raw body.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let seconds: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::MalformedTimestamp)?;
        let skew_seconds = now.timestamp().saturating_sub(seconds);
        if skew_seconds.abs() > MAX_REQUEST_AGE.num_seconds() {
            return Err(SignatureError::Stale { skew_seconds });
        }
        let expected = signature
            .strip_prefix("v0=")
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .ok_or(SignatureError::MalformedSignature)?;
        // The MAC covers the header text exactly as sent.
        self.mac(timestamp, body)
            .verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_531_420_618, 0).unwrap()
    }

    #[test]
    fn slack_documented_example_verifies() {
        // The worked example of Slack's "Verifying requests from Slack" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let verifier = SlackRequestVerifier::new(SECRET);
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(verifier.sign(1_531_420_618, body), signature);
        assert_eq!(
            verifier.verify(Some("1531420618"), Some(signature), body, now()),
            Ok(())
        );
    }

    #[test]
    fn altered_body_wrong_secret_and_garbage_are_refused() {
        let verifier = SlackRequestVerifier::new(SECRET);
        let signature = verifier.sign(now().timestamp(), b"payload=a");
        let ts = now().timestamp().to_string();
        assert_eq!(
            verifier.verify(Some(&ts), Some(&signature), b"payload=b", now()),
            Err(SignatureError::Mismatch)
        );
        let other = SlackRequestVerifier::new(b"another secret");
        assert_eq!(
            other.verify(Some(&ts), Some(&signature), b"payload=a", now()),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "v0=", "v1=abcd", "v0=zz", "abcd"] {
            let result = verifier.verify(Some(&ts), Some(bad), b"payload=a", now());
            assert!(
                matches!(
                    result,
                    Err(SignatureError::MalformedSignature | SignatureError::Mismatch)
                ),
                "{bad:?}: {result:?}"
            );
        }
        assert_eq!(
            verifier.verify(None, Some(&signature), b"payload=a", now()),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verifier.verify(Some(&ts), None, b"payload=a", now()),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            verifier.verify(Some("yesterday"), Some(&signature), b"payload=a", now()),
            Err(SignatureError::MalformedTimestamp)
        );
    }

    #[test]
    fn timestamps_beyond_five_minutes_either_way_are_refused() {
        let verifier = SlackRequestVerifier::new(SECRET);
        for (offset, ok) in [(-300, true), (300, true), (-301, false), (301, false)] {
            let at = now().timestamp() + offset;
            let signature = verifier.sign(at, b"payload=a");
            let result =
                verifier.verify(Some(&at.to_string()), Some(&signature), b"payload=a", now());
            assert_eq!(result.is_ok(), ok, "offset {offset}: {result:?}");
            if !ok {
                assert_eq!(
                    result,
                    Err(SignatureError::Stale {
                        skew_seconds: -offset
                    })
                );
            }
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let verifier = SlackRequestVerifier::new(SECRET);
        assert!(!format!("{verifier:?}").contains("8f74"));
    }
}
