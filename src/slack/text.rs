//! Slack text helpers: escaping, truncation within Slack's limits, user mentions and dates.

use chrono::{DateTime, Utc};

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Most characters in a section's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Most characters in one section field, and in one context element.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Most fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Most characters in a header.
pub const MAX_HEADER_TEXT: usize = 150;
/// Most characters in a button label.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Most characters in a button value.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Most characters in a block id or action id.
pub const MAX_ID: usize = 255;
/// Most elements in an actions block.
pub const MAX_ACTION_ELEMENTS: usize = 25;
/// Most elements in a context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Length we keep the top-level `text` fallback under (Slack advises at most 4,000).
pub const MAX_FALLBACK_TEXT: usize = 3000;

/// What replaces the end of a text that did not fit.
pub const TRUNCATION_MARK: &str = "…(truncated)";

/// Escapes the three characters Slack's mrkdwn reserves, so AWS text cannot inject mentions or
/// links.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a `plain_text` element (headers, button labels). Slack does not turn mentions in
/// plain text into pings, but a header is also what people copy and what other tools re-post as
/// mrkdwn; angle brackets become look-alike quotes so the text reads the same and can never be a
/// live `<!channel>` anywhere it travels. Entities would show literally here, so `&` stays.
pub fn plain(text: &str) -> String {
    text.replace('<', "‹").replace('>', "›")
}

/// The strings AWS or Slack text may carry to ping people or disguise links, as tests feed them
/// through every surface: `<!channel>`, `<!here>`, a user mention and a labelled link.
pub const INJECTIONS: [&str; 4] = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<https://evil.example|click>",
];

/// Which of [`INJECTIONS`] appear live (unescaped) in `sent`, the text or JSON of something we
/// send. Empty when every one was escaped.
pub fn live_injections(sent: &str) -> Vec<&'static str> {
    INJECTIONS
        .iter()
        .copied()
        .filter(|needle| sent.contains(needle))
        .collect()
}

/// `text` cut to at most `max` characters, ending in [`TRUNCATION_MARK`] when cut. A cut never
/// splits an `&amp;`-style entity or a `<...>` link of escaped mrkdwn.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mark_len = TRUNCATION_MARK.chars().count();
    if max <= mark_len {
        return text.chars().take(max).collect();
    }
    let mut kept: String = text.chars().take(max - mark_len).collect();
    // Back off to before an unfinished entity or link.
    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        kept.truncate(amp);
    }
    if let Some(open) = kept.rfind('<')
        && !kept[open..].contains('>')
    {
        kept.truncate(open);
    }
    kept.push_str(TRUNCATION_MARK);
    kept
}

/// `<@U123>` for a Slack user id, or the escaped text when it is not one (ids come from Slack's
/// own payloads, but they end up in mrkdwn, so they are checked).
pub fn user_mention(user_id: &str) -> String {
    let is_id = !user_id.is_empty()
        && user_id.len() <= 32
        && user_id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if is_id {
        format!("<@{user_id}>")
    } else {
        escape(user_id)
    }
}

/// A date Slack shows in each reader's time zone, with a UTC fallback for old clients.
pub fn slack_date(at: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

/// A mrkdwn link, with the URL's reserved characters encoded and the label escaped.
pub fn link(url: &str, label: &str) -> String {
    let url = url
        .replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E");
    format!("<{url}|{}>", escape(label).replace('|', "¦"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mrkdwn_control_characters() {
        assert_eq!(
            escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
    }

    #[test]
    fn truncation_is_visible_and_within_limit() {
        let long = "x".repeat(5000);
        let cut = truncate(&long, 3000);
        assert_eq!(cut.chars().count(), 3000);
        assert!(cut.ends_with(TRUNCATION_MARK));
        assert_eq!(truncate("short", 3000), "short");
        let multibyte = "é".repeat(200);
        assert_eq!(truncate(&multibyte, 150).chars().count(), 150);
    }

    #[test]
    fn truncation_does_not_split_entities_or_links() {
        let text = format!("{}&amp;{}", "a".repeat(20), "t".repeat(50));
        let cut = truncate(&text, 20 + 3 + TRUNCATION_MARK.chars().count());
        assert_eq!(cut, format!("{}{TRUNCATION_MARK}", "a".repeat(20)));
        let text = format!("{}<https://example.com|x> tail", "a".repeat(10));
        let cut = truncate(&text, 10 + 8 + TRUNCATION_MARK.chars().count());
        assert_eq!(cut, format!("{}{TRUNCATION_MARK}", "a".repeat(10)));
    }

    #[test]
    fn mentions_and_links_are_safe() {
        assert_eq!(user_mention("U0123ABC"), "<@U0123ABC>");
        assert_eq!(user_mention("<!channel>"), "&lt;!channel&gt;");
        assert_eq!(
            link("https://x.example/a?b=1&c=2|3", "Open <here>"),
            "<https://x.example/a?b=1&amp;c=2%7C3|Open &lt;here&gt;>"
        );
        let date = slack_date(DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap());
        assert_eq!(
            date,
            "<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>"
        );
    }
}
