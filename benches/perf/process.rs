//! Scenarios 4 and 5: the exporter binary as a child process, run plainly (no allocator
//! settings), catching up from the simulated Wolkvox on loopback: requests against the
//! floor, CPU time and peak resident memory during the catch-up, resident memory after.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wolkvox_sim::{Burst, SimConfig, Simulator, Wolkvox, WolkvoxConfig};

use crate::common::{proc_stats, Goal, ProcStats, Report, MB};

/// What one catch-up measured.
struct CatchUp {
    records: usize,
    wall: Duration,
    during: ProcStats,
    /// After a gzip scrape, as Prometheus asks.
    scraped: ProcStats,
    /// After an uncompressed scrape besides.
    idle: ProcStats,
    exposition_bytes: usize,
    /// `wolkvox_api_requests_total` and `wolkvox_api_empty_responses_total` of agent_13.
    requests: u64,
    empty: u64,
}

/// What a history ends as, whatever day the bench runs: Thursday 2025-03-13, 11:00 in
/// Bogota, the late-morning peak of a working week.
const REFERENCE_END: i64 = 1_741_881_600;

/// A history of `agents` agents over `span` ending two minutes before the real clock
/// (the exporter binary reads it), holding about `records` records at the working-day and
/// weekday shape of the same span ending at [`REFERENCE_END`], and a `burst` of
/// `(records, after the start)` packed into five minutes.
fn simulation(
    agents: usize,
    span: chrono::Duration,
    records: f64,
    burst: Option<(usize, chrono::Duration)>,
) -> SimConfig {
    let now = DateTime::from_timestamp(Utc::now().timestamp() / 60 * 60, 0).unwrap();
    let mut config = SimConfig::bounded(now - span, now - chrono::Duration::minutes(2));
    config.anchor = DateTime::from_timestamp(REFERENCE_END, 0).unwrap() - span;
    config.agents = agents;
    config.peak_per_agent_hour = 1.0;
    let unit = Simulator::new(config.clone());
    let per_unit: f64 = minutes(&config)
        .map(|m| unit.expected_per_minute(DateTime::from_timestamp(m * 60 + 30, 0).unwrap()))
        .sum();
    let burst_records = burst.map_or(0, |(n, _)| n);
    config.peak_per_agent_hour = (records - burst_records as f64) / per_unit;
    config.bursts = burst
        .map(|(records, after)| Burst {
            start: config.start + after,
            duration: chrono::Duration::minutes(5),
            records,
        })
        .into_iter()
        .collect();
    config
}

/// The minutes of a bounded simulation.
fn minutes(config: &SimConfig) -> std::ops::RangeInclusive<i64> {
    (config.start.timestamp() / 60)..=(config.end.unwrap().timestamp() / 60)
}

/// A blocking HTTP/1.1 GET with `Connection: close`; returns the body.
fn get(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response") + 4;
    assert!(response.starts_with(b"HTTP/1.1 200"), "GET {path} failed");
    response.split_off(end)
}

fn catch_up(
    agents: usize,
    span: chrono::Duration,
    records: f64,
    burst: Option<(usize, chrono::Duration)>,
) -> CatchUp {
    let sim = simulation(agents, span, records, burst);
    let mut server = WolkvoxConfig::new(sim.clone());
    // Nothing reads the log here: the server keeps none, as the demo's.
    server.keep_log = false;
    let api = Wolkvox::start(server);
    // Generates (and caches) every minute up front, so the server answers fast.
    let truth: usize = minutes(&sim).map(|m| api.simulator().minute(m).len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let catch_up = span.num_seconds() + 600;
    std::fs::write(
        &config,
        format!(
            "poll:\n  interval: 1h\n  overlap: 30m\n  delay: 0s\n  catch_up: {catch_up}s\n\
             api:\n  timeout: 60s\n  requests_per_second: 1000\n\
             state:\n  path: {}\n",
            dir.path().join("state.json").display()
        ),
    )
    .unwrap();

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wolkvox-exporter"))
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .env("WOLKVOX_BASE_URL", api.base_url())
        .env("WOLKVOX_TOKEN", api.token())
        .env("WOLKVOX_OPERATION", "bench")
        .env("WOLKVOX_TIMEZONE", "America/Bogota")
        .env("WOLKVOX_LICENSES", "100")
        // The agent_13 catch-up alone, as measured before the other reports existed.
        .env("WOLKVOX_REPORTS", "agent_13")
        // Run plainly, as `cargo run` or anyone's own container starts it.
        .env_remove("GLIBC_TUNABLES")
        .envs(extra_env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the exporter binary starts");
    let pid = child.id();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let logger = std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(addr) = line.split("address=").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            if line.contains("level=error") || line.contains("level=warn") {
                eprintln!("    exporter: {line}");
            }
        }
    });
    let addr: SocketAddr =
        rx.recv_timeout(Duration::from_secs(30)).expect("the exporter logs its address").parse().unwrap();

    // The landing page says "up" once the first cycle (the whole catch-up) succeeded;
    // it costs the exporter next to nothing, unlike rendering /metrics.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = String::from_utf8(get(addr, "/", "")).unwrap();
        if page.contains("<td>up</td>") {
            break;
        }
        assert!(Instant::now() < deadline, "catch-up did not finish:\n{page}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    let during = proc_stats(pid).unwrap();

    // Let the state save finish, then scrape as Prometheus does (OpenMetrics, gzip) and
    // read the footprint; then once uncompressed, which a person or a script may ask
    // for and which stays cached too: the conservative idle figure. Its text is checked
    // against the simulator.
    std::thread::sleep(Duration::from_secs(2));
    get(addr, "/metrics", "Accept: application/openmetrics-text;version=1.0.0\r\nAccept-Encoding: gzip\r\n");
    std::thread::sleep(Duration::from_secs(1));
    let scraped = proc_stats(pid).unwrap();
    let exposition = get(addr, "/metrics", "Accept: application/openmetrics-text;version=1.0.0\r\n");
    let counted: u64 = String::from_utf8_lossy(&exposition)
        .lines()
        .filter(|l| l.starts_with("wolkvox_agent_interactions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted as usize, truth, "the exporter counted every record once");
    let health = |name: &str| -> u64 {
        String::from_utf8_lossy(&exposition)
            .lines()
            .filter(|l| l.starts_with(name) && l.contains("report=\"agent_13\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (requests, empty) =
        (health("wolkvox_api_requests_total{"), health("wolkvox_api_empty_responses_total{"));
    std::thread::sleep(Duration::from_secs(1));
    let idle = proc_stats(pid).unwrap();

    let _ = child.kill();
    let _ = child.wait();
    let _ = logger.join();
    CatchUp {
        records: truth,
        wall,
        during,
        scraped,
        idle,
        exposition_bytes: exposition.len(),
        requests,
        empty,
    }
}

/// Extra variables for the exporter, `PERF_EXPORTER_ENV="NAME=value ..."`: to compare
/// allocator settings side by side (the suite itself runs the binary plainly).
fn extra_env() -> Vec<(String, String)> {
    std::env::var("PERF_EXPORTER_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Reports a catch-up's requests against the floor: every record in pages of 60,000,
/// plus the empty answers nothing avoids.
fn requests(report: &mut Report, scenario: &str, what: &str, r: &CatchUp, at_most: f64) {
    let floor = (r.records as u64).div_ceil(60_000) + r.empty;
    println!(
        "({scenario}) {what}: {} records, {} requests against a floor of {floor}",
        r.records, r.requests
    );
    report.add(
        scenario,
        &format!("{what}: requests / floor ({} / {floor})", r.requests),
        "x",
        r.requests as f64 / floor as f64,
        Goal::AtMost(at_most),
    );
}

/// Peak and idle resident memory, each against its target if it has one.
fn memory(report: &mut Report, scenario: &str, what: &str, r: &CatchUp, targets: [Option<f64>; 2]) {
    let goal = |t: Option<f64>| t.map_or(Goal::Info, Goal::AtMost);
    report.add(
        scenario,
        &format!("{what}: peak RSS during catch-up"),
        "MB",
        r.during.hwm_bytes as f64 / MB,
        goal(targets[0]),
    );
    report.add(
        scenario,
        &format!("{what}: RSS after catch-up and a gzip scrape"),
        "MB",
        r.scraped.rss_bytes as f64 / MB,
        Goal::Info,
    );
    report.add(
        scenario,
        &format!("{what}: RSS after a plain scrape besides"),
        "MB",
        r.idle.rss_bytes as f64 / MB,
        goal(targets[1]),
    );
}

pub fn run_catch_up(report: &mut Report) {
    // The history: 30 hours of 361,000 records over 1,000 agents, 61,000 of them
    // in five minutes.
    let what = "30-hour burst, 1000 agents";
    let burst = Some((61_000, chrono::Duration::hours(14)));
    let r = catch_up(1_000, chrono::Duration::hours(30), 362_000.0, burst);
    requests(report, "4", what, &r, 1.15);
    report.add("4", &format!("{what}: exporter CPU time"), "s", r.during.cpu.as_secs_f64(), Goal::Info);
    memory(report, "4", what, &r, [None, Some(25.0)]);

    let what = "7-day catch-up, 2000 agents";
    let r = catch_up(2_000, chrono::Duration::days(7), 500_000.0, None);
    println!("(4) {what}: {} records, exposition {:.1} MB", r.records, r.exposition_bytes as f64 / MB);
    requests(report, "4", what, &r, 1.15);
    report.add(
        "4",
        &format!("{what}: wall time (simulated API included)"),
        "s",
        r.wall.as_secs_f64(),
        Goal::Info,
    );
    report.add(
        "4",
        &format!("{what}: exporter CPU time"),
        "s",
        r.during.cpu.as_secs_f64(),
        Goal::AtMost(2.0),
    );
    memory(report, "4", what, &r, [Some(200.0), None]);
}

pub fn run_idle(report: &mut Report) {
    for (agents, limit) in [(1_000, 20.0), (10_000, 70.0)] {
        let r = catch_up(agents, chrono::Duration::days(1), agents as f64 * 50.0, None);
        println!(
            "(5) {agents} agents: 1-day catch-up of {} records, exposition {:.1} MB",
            r.records,
            r.exposition_bytes as f64 / MB
        );
        // 1,000 agents: every window below the cap, so the floor exactly.
        let at_most = if r.records < 60_000 { 1.0 } else { 1.15 };
        requests(report, "5", &format!("{agents:>6} agents"), &r, at_most);
        memory(report, "5", &format!("{agents:>6} agents"), &r, [None, Some(limit)]);
    }
}
