//! The `wolkvox-exporter` binary: parses flags, runs the command, maps its exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use wolkvox_exporter::app::Exit;
use wolkvox_exporter::cli::Args;

fn main() -> ExitCode {
    let args = match Args::parse_from(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let exit = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(wolkvox_exporter::command::run(args)),
        Err(e) => {
            eprintln!("wolkvox-exporter: cannot start the async runtime: {e}");
            Exit::Failed
        }
    };
    ExitCode::from(match exit {
        Exit::Done => 0,
        Exit::Failed => 1,
        Exit::Usage => 2,
    })
}
