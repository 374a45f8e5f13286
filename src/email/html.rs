//! Safe HTML for email: [`Html`] fragments can only be built from escaped text or from the
//! builders below, so untrusted alert text can never become markup.
//!
//! Mail clients ignore `<style>` blocks and external CSS unevenly, so every element carries its
//! style inline, and layout uses tables.

use std::fmt;

/// Font stack and colours shared by the builders.
const FONT: &str = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif";
const TEXT_COLOR: &str = "color:#1d1c1d";
const MUTED_COLOR: &str = "color:#616061";
const BORDER: &str = "border:1px solid #d9d9d9";

/// A fragment of HTML that is safe to embed: escaped text, or markup made by this module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Escaped text: `&`, `<`, `>`, `"` and `'` become entities; control characters other than
    /// tab and newline are dropped (they have no business in mail and some clients choke on them).
    pub fn text(text: &str) -> Html {
        Html(escape(text))
    }

    /// An empty fragment.
    pub fn empty() -> Html {
        Html(String::new())
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends another fragment.
    pub fn push(&mut self, other: Html) {
        self.0.push_str(&other.0);
    }

    /// Appends escaped text.
    pub fn push_text(&mut self, text: &str) {
        self.0.push_str(&escape(text));
    }

    /// The fragments one after the other.
    pub fn concat(parts: impl IntoIterator<Item = Html>) -> Html {
        let mut out = Html::empty();
        for part in parts {
            out.push(part);
        }
        out
    }

    /// Whether the fragment is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A heading: level 1 for the title, 2 for sections.
pub fn heading(level: u8, text: &str) -> Html {
    let (tag, size, margin) = match level {
        0 | 1 => ("h1", "20px", "0 0 8px 0"),
        2 => ("h2", "16px", "24px 0 8px 0"),
        _ => ("h3", "14px", "16px 0 6px 0"),
    };
    Html(format!(
        "<{tag} style=\"{FONT};{TEXT_COLOR};font-size:{size};margin:{margin}\">{}</{tag}>",
        escape(text)
    ))
}

/// A paragraph.
pub fn paragraph(content: Html) -> Html {
    Html(format!(
        "<p style=\"{FONT};{TEXT_COLOR};font-size:14px;line-height:20px;margin:0 0 8px 0\">{content}</p>"
    ))
}

/// Small grey text, for secondary information inside a cell or paragraph.
pub fn muted(content: Html) -> Html {
    Html(format!(
        "<span style=\"{MUTED_COLOR};font-size:12px\">{content}</span>"
    ))
}

/// Preformatted text (log lines): escaped, in a monospace block that wraps long lines.
pub fn preformatted(text: &str) -> Html {
    Html(format!(
        "<pre style=\"font-family:Menlo,Consolas,monospace;font-size:12px;line-height:16px;{TEXT_COLOR};background:#f8f8f8;{BORDER};padding:8px;margin:0 0 8px 0;white-space:pre-wrap;word-break:break-all\">{}</pre>",
        escape(text)
    ))
}

/// A line break.
pub fn line_break() -> Html {
    Html("<br>".to_string())
}

/// A link when `url` is an absolute http(s) URL; otherwise just the label, so a hostile
/// `javascript:` URL never becomes clickable.
pub fn link(url: &str, label: &str) -> Html {
    if url.starts_with("https://") || url.starts_with("http://") {
        Html(format!(
            "<a href=\"{}\" style=\"color:#1264a3\">{}</a>",
            escape(url),
            escape(label)
        ))
    } else {
        Html::text(label)
    }
}

/// Alignment of a table column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table with a header row. `columns` gives each column's header and alignment; every row has
/// one cell per column (missing cells are left empty, extra cells are dropped).
pub fn table(columns: &[(&str, Align)], rows: &[Vec<Html>]) -> Html {
    let cell_style = |align: Align| {
        let align = match align {
            Align::Left => "left",
            Align::Right => "right",
        };
        format!(
            "{FONT};{TEXT_COLOR};font-size:13px;line-height:18px;padding:6px 8px;{BORDER};text-align:{align};vertical-align:top"
        )
    };
    let mut out = String::from(
        "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;width:100%;margin:0 0 12px 0\"><tr>",
    );
    for (header, align) in columns {
        out.push_str(&format!(
            "<th style=\"{};background:#f4f4f4;font-weight:600\">{}</th>",
            cell_style(*align),
            escape(header)
        ));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for (i, (_, align)) in columns.iter().enumerate() {
            let content = row.get(i).map(Html::as_str).unwrap_or_default();
            out.push_str(&format!(
                "<td style=\"{}\">{content}</td>",
                cell_style(*align)
            ));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    Html(out)
}

/// A whole HTML document around `body`, centred and at most 760 pixels wide.
pub fn document(title: &str, body: Html) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\
<body style=\"margin:0;padding:0;background:#ffffff\">\
<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"width:100%;border-collapse:collapse\"><tr><td style=\"padding:16px\">\
<div style=\"max-width:760px;margin:0 auto\">{body}</div></td></tr></table></body></html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let html = Html::text("<script>alert('x')</script> & \"q\"");
        assert_eq!(
            html.as_str(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(escape("a\u{0}b\u{1b}[31mc\nd"), "ab[31mc\nd");
    }

    #[test]
    fn builders_escape_their_text() {
        assert_eq!(
            heading(2, "<b>").as_str(),
            format!(
                "<h2 style=\"{FONT};{TEXT_COLOR};font-size:16px;margin:24px 0 8px 0\">&lt;b&gt;</h2>"
            )
        );
        assert!(
            link("https://x.example/?a=1&b=\"2\"", "<x>")
                .as_str()
                .contains("href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\"")
        );
    }

    #[test]
    fn only_http_links_are_clickable() {
        assert_eq!(link("javascript:alert(1)", "run").as_str(), "run");
        assert!(link("http://a.example", "a").as_str().starts_with("<a "));
    }

    #[test]
    fn table_has_one_cell_per_column() {
        let t = table(
            &[("Reason", Align::Left), ("Count", Align::Right)],
            &[
                vec![Html::text("a")],
                vec![Html::text("b"), Html::text("2"), Html::text("x")],
            ],
        );
        let s = t.as_str();
        assert_eq!(s.matches("<th ").count(), 2);
        assert_eq!(s.matches("<td ").count(), 4);
        assert!(!s.contains(">x<"), "extra cells are dropped");
        assert!(s.contains("text-align:right"));
    }

    #[test]
    fn document_escapes_title() {
        let doc = document("a<b", Html::text("body"));
        assert!(doc.contains("<title>a&lt;b</title>"));
        assert!(doc.contains(">body</div>"));
    }
}
