//! Log output of every workload: text or JSON lines on stderr.
//!
//! Colour codes belong on a terminal only: in a file, a pipe or a container log they are noise
//! that breaks `grep` and log parsers, so text lines carry ANSI colour only when stderr is one.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// The environment variable every subcommand reads its log format from.
pub const LOG_FORMAT_ENV: &str = "ALERTOPS_LOG_FORMAT";

/// Log output format.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON objects with the resource and alert fingerprint as fields.
    Json,
}

/// The default filter when `RUST_LOG` is unset: our info, the SDKs' warnings.
const DEFAULT_FILTER: &str = "info,aws_smithy_runtime=warn,aws_config=warn,kube=warn";

/// Installs the process's subscriber: stderr, colour only when stderr is a terminal.
pub fn init_logging(format: LogFormat) {
    let ansi = std::io::stderr().is_terminal();
    // `try_init` also forwards the `log` crate's records, as `.init()` did.
    if tracing_subscriber::util::SubscriberInitExt::try_init(subscriber(
        format,
        ansi,
        std::io::stderr,
    ))
    .is_err()
    {
        tracing::debug!("a log subscriber was already installed");
    }
}

/// The subscriber of [`init_logging`], writing to `writer`; `ansi` colours text lines.
pub fn subscriber<W>(
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
    }
}

/// Log lines kept in memory, for tests that check what a failure logs.
#[derive(Clone, Debug, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_have_no_colour_codes_off_a_terminal() {
        let logs = CapturedLogs::default();
        // A file or pipe is not a terminal; `init` passes exactly this for stderr.
        let file = tempfile::tempfile().unwrap();
        let plain = subscriber(LogFormat::Text, file.is_terminal(), logs.clone());
        tracing::subscriber::with_default(plain, || {
            tracing::warn!(route = "data/emr", "Slack call failed");
        });
        let written = logs.contents();
        assert!(written.contains("Slack call failed"), "{written}");
        assert!(
            !written.contains('\u{1b}'),
            "ANSI codes in a file: {written:?}"
        );

        let coloured = CapturedLogs::default();
        tracing::subscriber::with_default(
            subscriber(LogFormat::Text, true, coloured.clone()),
            || tracing::warn!("on a terminal"),
        );
        assert!(
            coloured.contents().contains('\u{1b}'),
            "a terminal gets colour"
        );
    }
}
