//! Lenient field access and small formatting helpers shared by the decoders.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A string field of an object; `None` when absent, null, empty or not a string.
pub(super) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A scalar field rendered as text: strings as they are, numbers and booleans formatted.
pub(super) fn scalar_text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the timestamps AWS sends: RFC 3339 (`2016-12-16T20:43:05Z`) and CloudWatch's
/// `2015-06-03T17:43:27.123+0000`, whose offset lacks the colon.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The parts of an ARN: `arn:partition:service:region:account:resource`.
pub(super) struct Arn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

pub(super) fn parse_arn(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let _service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    Some(Arn {
        region,
        account,
        resource,
    })
}

/// Whether `region` looks like a region code (`us-east-1`), not a display name.
pub(super) fn is_region_code(region: &str) -> bool {
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for URL paths and fragments.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The AWS console origin for a region: `https://us-east-1.console.aws.amazon.com`.
pub(super) fn console_origin(region: &str) -> String {
    format!("https://{region}.console.aws.amazon.com")
}

/// The first line of `text`, at most `max` characters, for titles.
pub(super) fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The last `/`-separated segment of an ARN's resource (`service/cluster/name` → `name`).
pub(super) fn last_segment(resource: &str) -> &str {
    resource.rsplit('/').next().unwrap_or(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_aws_time_formats() {
        let a = parse_time("2015-06-03T17:43:27.123+0000").expect("cloudwatch format");
        let b = parse_time("2015-06-03T17:43:27.123Z").expect("rfc3339");
        assert_eq!(a, b);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn arn_parts_keep_colons_in_resource() {
        let arn = parse_arn("arn:aws:cloudwatch:us-east-1:123456789012:alarm:high:cpu").unwrap();
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource, "alarm:high:cpu");
        assert!(parse_arn("not-an-arn").is_none());
    }

    #[test]
    fn percent_encoding_and_titles() {
        assert_eq!(percent_encode("a b/c:é"), "a%20b%2Fc%3A%C3%A9");
        assert_eq!(first_line("\n  hello world \nsecond", 100), "hello world");
        assert_eq!(first_line("abcdef", 4), "abc…");
        assert!(is_region_code("eu-west-1"));
        assert!(!is_region_code("US East (N. Virginia)"));
    }
}
