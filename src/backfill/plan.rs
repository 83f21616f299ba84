//! The backfill's cost, said before its first report request: per operation the requests
//! its range needs against what today's allowance leaves once every report's polling
//! until midnight is kept. More is refused unless `--spread`.

use super::{BackfillError, Run};
use crate::check::read_token_info;
use crate::client::ErrorReason;
use crate::engine::Engine;

/// Prints the plan of every operation; `Err` when one needs more than today leaves it
/// and `spread` was not given: first by the configured limit, before any request, then
/// by what `token_info` (one request) says is left today.
pub(super) async fn check(run: &Run, engines: &mut [Engine], spread: bool) -> Result<(), BackfillError> {
    if !spread {
        let configured = vec!["configured licenses; token_info not asked yet".to_owned(); engines.len()];
        refuse_over(lines(run, engines, &configured))?;
    }
    let mut sources = Vec::new();
    for (engine, op) in engines.iter_mut().zip(&run.config.operations) {
        let answer = engine
            .probe(None, Default::default(), Default::default())
            .await
            .and_then(|(status, body)| read_token_info(status, &body));
        let licenses = format!("licenses: {} x 1000", op.licenses);
        let (limit, used, source) = match &answer {
            Ok(Some(info)) => (info.limit, info.all_today, "token_info, itself 1 request".to_owned()),
            Ok(None) => (None, None, format!("{licenses}; token_info not available (404)")),
            Err(e) => (None, None, format!("{licenses}; token_info failed: {}", e.reason().as_str())),
        };
        match &answer {
            // Every report request would be refused the same.
            Err(e) if e.is_configuration() || e.reason() == ErrorReason::forbidden => {
                return Err(BackfillError::Usage(format!(
                    "operation {:?}: token_info was refused: {e}; `wolkvox-exporter check` says more",
                    op.name
                )));
            }
            Err(e) if !e.was_sent() => {}
            _ => engine.token_info_seen(limit, used),
        }
        sources.push(source);
    }
    let lines = lines(run, engines, &sources);
    let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    // A closed stdout is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    match spread {
        true => Ok(()),
        false => refuse_over(lines),
    }
}

fn refuse_over(lines: Vec<(String, bool)>) -> Result<(), BackfillError> {
    let over: Vec<String> = lines.into_iter().filter(|(_, fits)| !fits).map(|(line, _)| line).collect();
    match over.is_empty() {
        true => Ok(()),
        false => Err(BackfillError::Usage(format!(
            "the backfill needs more requests than today's allowance leaves it, which would \
             take the exporter's polling: {} Pass --spread to read it over several days (it \
             stops when today's share is spent, and the same command, run again on a later \
             day, goes on from there), or shorten the range (--from, --to)",
            over.join("; ")
        ))),
    }
}

/// Each operation's plan line, and whether it fits today.
fn lines(run: &Run, engines: &[Engine], sources: &[String]) -> Vec<(String, bool)> {
    let plans = engines.iter().zip(&run.grids).zip(sources);
    plans
        .map(|((engine, grid), source)| {
            let requests = engine.backfill_requests(grid.start, grid.end);
            let total: u64 = requests.iter().map(|(_, n)| n).sum();
            let each: Vec<String> = requests.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            let b = engine.budget();
            let (fits, left) = (total <= b.left_today(), b.left_today());
            let local = |t| crate::calendar::local(t, grid.timezone).format("%Y-%m-%d %H:%M");
            let verdict = match (fits, b.days(total)) {
                (true, _) => "Fits today.".to_owned(),
                (false, Some(days)) => format!("Does NOT fit today; at this pace about {days} days."),
                (false, None) => {
                    "Does NOT fit: the reports' polling takes the whole allowance of a day.".to_owned()
                }
            };
            let line = format!(
                "backfill plan: operation {}, {} to {} ({}, {} days): about {total} requests \
                 ({}; more where a window holds over 60,000 records). Today it may spend \
                 {left}: {} a day for the exporter ({source}), less {} used today and {} kept \
                 for polling until the operation's midnight. {verdict}",
                engine.operation(),
                local(grid.start),
                local(grid.end),
                grid.timezone,
                ((grid.end - grid.start).num_seconds() + 86_399) / 86_400,
                each.join(", "),
                b.allowance,
                b.used,
                b.reserved,
            );
            (line, fits)
        })
        .collect()
}
