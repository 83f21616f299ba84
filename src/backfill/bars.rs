//! The progress bars on stderr (one per operation: share of the range read, records,
//! requests, time left), drawn only on a terminal, and the log writer that goes with them.

use std::io::{self, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

/// The bars of one backfill; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Bars(MultiProgress);

/// The bars' length: the range read, in thousandths.
pub const BAR_LEN: u64 = 1000;

impl Bars {
    /// A bar for one operation.
    pub fn add(&self, operation: &str) -> ProgressBar {
        let bar = self.0.add(ProgressBar::new(BAR_LEN));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {percent:>3}% {msg}, {elapsed} elapsed, {eta} left",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(operation.to_owned());
        bar
    }

    /// A log writer that prints above the bars (suspending them) instead of through them.
    pub fn log_writer(&self) -> impl for<'a> MakeWriter<'a> + Send + Sync + 'static {
        let bars = self.0.clone();
        move || LogWriter(bars.clone())
    }
}

struct LogWriter(MultiProgress);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
