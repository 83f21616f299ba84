//! The `wolkvox-exporter` binary: parses flags, runs the command, maps its exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use wolkvox_exporter::app::Exit;
use wolkvox_exporter::cli::Args;

/// jemalloc hands what a catch-up freed back to the system (glibc's malloc keeps it
/// resident once its adaptive mmap threshold has grown); `.cargo/config.toml` sets it
/// to purge at once.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = match Args::parse_from(std::env::args_os()) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One logfmt line, as every other error: clap's own first line, less its
            // `error: ` and the pointer to --help.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let shown = wolkvox_exporter::command::shown;
            let error = shown(first.trim_start_matches("error: "));
            let flag = match e.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(flag)) => Some(shown(flag)),
                _ => None,
            };
            let mut fields: Vec<_> = flag.iter().map(|flag| ("flag", flag.as_str())).collect();
            fields.push(("error", error.as_str()));
            wolkvox_exporter::logging::error("invalid command line", &fields);
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let exit = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(wolkvox_exporter::command::run(args)),
        Err(e) => {
            wolkvox_exporter::logging::error("cannot start", &[("error", &e.to_string())]);
            Exit::Failed
        }
    };
    ExitCode::from(exit as u8)
}
