//! Plain-text helpers shared by the HTML and text parts: untrusted text made to fit one line
//! and a length budget.

/// Marks text that was cut.
pub const ELLIPSIS: char = '…';

/// The text on one line: runs of whitespace (newlines included) become one space, control
/// characters are dropped, and the ends are trimmed.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !c.is_control() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// At most `max` characters (not bytes), ending with [`ELLIPSIS`] when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push(ELLIPSIS);
    out
}

/// The first `max` items joined by `", "`, followed by `+N more` when there are more.
pub fn capped_list<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let mut out = items
        .iter()
        .take(max)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("+{} more", items.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_whitespace_and_drops_controls() {
        assert_eq!(one_line("  a\n\n b\t\u{7}c  "), "a b c");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 6), "héllo…");
        assert_eq!(truncate("ab", 0), "…");
    }

    #[test]
    fn capped_list_says_how_many_are_left_out() {
        assert_eq!(capped_list(&["a", "b"], 3), "a, b");
        assert_eq!(capped_list(&["a", "b", "c", "d"], 2), "a, b +2 more");
        assert_eq!(capped_list(&["a", "b"], 0), "+2 more");
        assert_eq!(capped_list::<&str>(&[], 2), "");
    }
}
