//! From parsed flags to an exit status: logging, the demo's simulated Wolkvox, the
//! configuration, then the command (serve, `check` or `backfill`). `main` only maps the
//! [`Exit`] it returns.

use std::sync::Arc;

use crate::app::{self, Exit};
use crate::cli::{Args, Command};
use crate::clock::SystemClock;
use crate::{backfill, check, logging, server, web};

pub async fn run(args: Args) -> Exit {
    // The backfill's log prints above its progress bars.
    let bars = backfill::Bars::default();
    let logs = match args.command {
        Some(Command::Backfill(_)) => {
            logging::init_with(&args.log_level, args.log_format, bars.log_writer())
        }
        _ => logging::init(&args.log_level, args.log_format),
    };
    if let Err(e) = logs {
        eprint!(
            "{}",
            logging::line("error", "invalid command line", &[("error", &e)])
        );
        return Exit::Usage;
    }
    // The demo's simulated Wolkvox serves until the command returns.
    #[cfg(feature = "demo")]
    let demo = match args.demo {
        false => None,
        true => match wolkvox_sim::Wolkvox::spawn(wolkvox_sim::WolkvoxConfig::demo(chrono::Utc::now())) {
            Ok(api) => {
                tracing::info!(base_url = %api.base_url(), "demo mode: polling a simulated operation");
                Some(api)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the demo's simulated Wolkvox");
                return Exit::Failed;
            }
        },
    };
    #[cfg(feature = "demo")]
    let demo_operation = demo.as_ref().map(|api| crate::cli::demo_operation(api.base_url(), api.token()));
    #[cfg(not(feature = "demo"))]
    let demo_operation = if args.demo {
        tracing::error!(flag = "--demo", "this build has no demo (cargo feature `demo`)");
        return Exit::Usage;
    } else {
        None
    };
    let config = match args.config(|k| std::env::var(k).ok(), demo_operation) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Exit::Usage;
        }
    };
    match &args.command {
        Some(Command::Backfill(backfill_args)) => {
            let options = backfill_args.options();
            backfill::command(config, options, Arc::new(SystemClock), &bars).await
        }
        Some(Command::Check) => check::command(&config, args.shard).await,
        None => serve(&args, config).await,
    }
}

/// Runs the exporter until SIGINT or SIGTERM.
async fn serve(args: &Args, config: crate::config::Config) -> Exit {
    let web = match &args.web_config_file {
        Some(path) => match web::WebConfig::load(path) {
            Ok(loaded) => web::WebConfigWatcher::start(path.clone(), loaded),
            Err(e) => {
                tracing::error!(flag = "--web.config.file", error = %e, "invalid web configuration");
                return Exit::Usage;
            }
        },
        None => web::WebConfigHandle::fixed(web::LoadedWebConfig::disabled()),
    };
    let listener = match server::bind(&args.listen_address).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(flag = "--web.listen-address", address = %shown(&args.listen_address), error = %e, "cannot listen");
            return Exit::Usage;
        }
    };
    tracing::info!(
        address = %listener.local_addr().map_or_else(|_| args.listen_address.clone(), |a| a.to_string()),
        operations = config.operations.len(),
        version = crate::metrics::VERSION,
        "listening"
    );
    let mut options = app::Options::new(config);
    options.telemetry_path = args.telemetry_path.clone();
    options.web = web;
    match app::run(options, listener, app::signal()).await {
        Ok(()) => Exit::Done,
        Err(e) => {
            tracing::error!(error = %e, "the exporter stopped on an error");
            Exit::Failed
        }
    }
}

/// A value as an error shows it: at most 200 characters.
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(200) {
        Some((at, _)) => format!("{}... ({} bytes)", &value[..at], value.len()),
        None => value.to_owned(),
    }
}
