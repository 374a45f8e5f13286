//! Email: safe HTML and plain-text rendering helpers, and delivery through Amazon SES v2.
//!
//! Rendering is pure ([`html`], [`text`]); [`send_email`] is the only part that talks to SES.
//! Every email carries an HTML part and a plain-text part with the same content.

pub(crate) mod html;
pub(crate) mod log_lines;
pub(crate) mod ses;
pub(crate) mod text;

pub use html::Html;
pub use ses::{EmailError, SentEmail, send_email};

/// A rendered email, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    /// Subject line, one line of plain text.
    pub subject: String,
    /// The HTML part, a whole document.
    pub html: String,
    /// The plain-text part.
    pub text: String,
}
