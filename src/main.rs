//! The `wolkvox-exporter` binary: parses flags, sets up logging, calls the library.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use wolkvox_exporter::cli::{Args, Command};
use wolkvox_exporter::{app, backfill, check, logging, server, web};

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    // The backfill's log prints above its progress bars.
    let bars = backfill::Bars::default();
    let logs = match args.command {
        Some(Command::Backfill(_)) => {
            logging::init_with(&args.log_level, args.log_format, bars.log_writer())
        }
        _ => logging::init(&args.log_level, args.log_format),
    };
    if let Err(e) = logs {
        eprintln!("wolkvox-exporter: {e}");
        std::process::exit(2);
    }
    // The demo's simulated Wolkvox serves until `run` returns.
    #[cfg(feature = "demo")]
    let demo = if args.demo {
        let sim = wolkvox_sim::WolkvoxConfig::demo(chrono::Utc::now());
        let api =
            wolkvox_sim::Wolkvox::spawn(sim).context("starting the demo's simulated Wolkvox")?;
        tracing::info!(base_url = %api.base_url(), "demo mode: polling a simulated operation");
        Some(api)
    } else {
        None
    };
    #[cfg(feature = "demo")]
    let demo_operation = demo
        .as_ref()
        .map(|api| wolkvox_exporter::cli::demo_operation(api.base_url(), api.token()));
    #[cfg(not(feature = "demo"))]
    let demo_operation = if args.demo {
        eprintln!("wolkvox-exporter: --demo: this build has no demo (cargo feature `demo`)");
        std::process::exit(2);
    } else {
        None
    };
    let config = match args.config(|k| std::env::var(k).ok(), demo_operation) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            eprintln!("wolkvox-exporter: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    if let Some(Command::Backfill(backfill_args)) = &args.command {
        let options = backfill_args.options();
        let clock = std::sync::Arc::new(wolkvox_exporter::clock::SystemClock);
        match backfill::run(&config, &options, clock, &bars, app::signal()).await {
            Ok(summary) => {
                let text = backfill::report(&summary, &options, &config.state_path);
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                std::process::exit(if summary.done() { 0 } else { 1 });
            }
            Err(e) => {
                tracing::error!(error = %e, "backfill refused");
                eprintln!("wolkvox-exporter: backfill: {e}");
                let usage = matches!(
                    e,
                    backfill::BackfillError::Usage(_)
                        | backfill::BackfillError::StateExists(_)
                        | backfill::BackfillError::Progress(_)
                );
                std::process::exit(if usage { 2 } else { 1 });
            }
        }
    }
    if args.command == Some(Command::Check) {
        let checked = check::run(&config, args.shard, chrono::Utc::now()).await;
        // A closed stdout (`check | head -1`) is not worth a panic.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), checked.render().as_bytes());
        std::process::exit(if checked.ok() { 0 } else { 1 });
    }
    let web = match &args.web_config_file {
        Some(path) => match web::WebConfig::load(path) {
            Ok(loaded) => web::WebConfigWatcher::start(path.clone(), loaded),
            Err(e) => {
                tracing::error!(error = %e, "invalid web configuration");
                eprintln!("wolkvox-exporter: invalid web configuration: {e}");
                std::process::exit(2);
            }
        },
        None => web::WebConfigHandle::fixed(web::LoadedWebConfig::disabled()),
    };
    let listener = server::bind(&args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    tracing::info!(
        address = %listener.local_addr()?,
        operations = config.operations.len(),
        version = wolkvox_exporter::metrics::VERSION,
        "listening"
    );
    let mut options = app::Options::new(config);
    options.telemetry_path = args.telemetry_path.clone();
    options.web = web;
    app::run(options, listener, app::signal()).await
}
