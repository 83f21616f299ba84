//! From parsed flags to an [`Exit`] status: logging, the demo's simulated Wolkvox, the
//! configuration, then the command (serve, `check` or `backfill`).

use std::sync::Arc;

use crate::app::{self, Exit};
use crate::cli::{Args, Command};
use crate::clock::SystemClock;
use crate::{backfill, check, logging, server, web};

pub async fn run(args: Args) -> Exit {
    // The backfill's log prints above its progress bars.
    let bars = backfill::Bars::default();
    let logs = match args.command {
        Some(Command::Backfill(_)) => logging::init(&args.log_level, args.log_format, bars.log_writer()),
        _ => logging::init(&args.log_level, args.log_format, std::io::stderr),
    };
    if let Err(e) = logs {
        logging::error("invalid command line", &[("error", &shown(&e))]);
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
    let mut config = match args.config(|k| std::env::var(k).ok(), demo_operation) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %shown(&e.to_string()), "invalid configuration");
            return Exit::Usage;
        }
    };
    if args.command == Some(Command::Check) {
        return check::command(&config, args.shard).await;
    }
    let assignments = args.shard.assignments(&config);
    args.shard.select(&mut config);
    match &args.command {
        Some(Command::Backfill(_)) if config.operations.is_empty() => {
            tracing::error!(flag = "--shard", shard = %args.shard, operations = %assignments, "backfill refused: the shard follows none of the configured operations");
            Exit::Usage
        }
        Some(Command::Backfill(options)) => {
            backfill::command(config, options.clone(), Arc::new(SystemClock), &bars).await
        }
        _ => serve(&args, config).await,
    }
}

/// Runs the exporter until SIGINT or SIGTERM.
async fn serve(args: &Args, config: crate::config::Config) -> Exit {
    let web = match &args.web_config_file {
        Some(path) => match web::WebConfig::load(path) {
            Ok(loaded) => web::WebConfigHandle::watch(path.clone(), loaded, Default::default()),
            Err(e) => {
                tracing::error!(flag = "--web.config.file", error = %shown(&e.to_string()), "invalid web configuration");
                return Exit::Usage;
            }
        },
        None => web::WebConfigHandle::fixed(web::LoadedWebConfig::disabled()),
    };
    // Held until the exporter exits: no backfill or second exporter on this state.
    let _lock = match crate::state::lock(&config.state_path) {
        Ok(lock) => lock,
        Err(e) => {
            tracing::error!(flag = "--state.path", error = %e, "cannot start");
            return Exit::Usage;
        }
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

/// A value or an error as a log line shows it: each quoted part ("...", `...` or '...')
/// cut to 200 characters, and the whole to 1,000, each cut saying how long it was.
pub fn shown(text: &str) -> String {
    const QUOTED: usize = 200;
    let cut = |s: &str, max: usize| match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}... ({} bytes)", &s[..at], s.len()),
        None => s.to_owned(),
    };
    let mut out = String::with_capacity(text.len().min(2_000));
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`', '\'']) {
        let quote = rest.as_bytes()[open] as char;
        let before = rest[..open].chars().next_back();
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        if quote == '\'' && before.is_some_and(char::is_alphanumeric) {
            continue;
        }
        // The closing quote: not escaped, and for ' not inside a word.
        let mut escaped = false;
        let close = rest.char_indices().find(|&(i, c)| {
            let found = c == quote
                && !escaped
                && (quote != '\'' || !rest[i + 1..].starts_with(char::is_alphanumeric));
            escaped = !escaped && c == '\\';
            found
        });
        let end = close.map_or(rest.len(), |(i, _)| i);
        out.push_str(&cut(&rest[..end], QUOTED));
        rest = &rest[end..];
        if close.is_some() {
            out.push(quote);
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    cut(&out, 1_000)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn long_quoted_values_are_cut_and_the_rest_kept() {
        let long = "x".repeat(5_000);
        let text = format!(
            "invalid value '{long}' for '--poll.overlap <DURATION>': the operation's \"{long}\" and `{long}`"
        );
        let s = shown(&text);
        assert!(s.len() < 1_000, "{}", s.len());
        assert!(s.contains("for '--poll.overlap <DURATION>': the operation's \""), "{s}");
        assert_eq!(s.matches("... (5000 bytes)").count(), 3, "{s}");
        assert_eq!(shown("it's \"a \\\"b\\\" c\""), "it's \"a \\\"b\\\" c\"");
        assert!(shown(&long).ends_with("... (5000 bytes)"));
        assert_eq!(shown(&format!("\"{long}")).len(), 1 + 200 + "... (5000 bytes)".len());
    }
}
