//! Scenarios 4 and 5: the exporter binary as a child process, catching up from the
//! simulated Wolkvox on loopback (no added latency), measured from /proc: CPU
//! time and peak resident memory during the catch-up, resident memory once idle.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wolkvox_sim::{SimConfig, Simulator, Wolkvox, WolkvoxConfig};

use crate::common::{proc_stats, Goal, ProcStats, Report, MB};

/// What one catch-up measured.
struct CatchUp {
    records: usize,
    wall: Duration,
    during: ProcStats,
    idle: ProcStats,
    exposition_bytes: usize,
    /// `wolkvox_api_requests_total` and `wolkvox_api_empty_responses_total` of agent_13.
    requests: u64,
    empty: u64,
}

/// A simulated operation of `agents` agents whose `span` of history holds about
/// `records` records, at the usual working-day and weekday shape.
fn simulation(agents: usize, span: chrono::Duration, records: f64) -> SimConfig {
    let now = DateTime::from_timestamp(Utc::now().timestamp() / 60 * 60, 0).unwrap();
    let mut config = SimConfig::bounded(now - span, now - chrono::Duration::minutes(2));
    config.agents = agents;
    config.peak_per_agent_hour = 1.0;
    let unit = Simulator::new(config.clone());
    let per_unit: f64 = minutes(&config)
        .map(|m| unit.expected_per_minute(DateTime::from_timestamp(m * 60 + 30, 0).unwrap()))
        .sum();
    config.peak_per_agent_hour = records / per_unit;
    config
}

/// The minutes of a bounded simulation.
fn minutes(config: &SimConfig) -> std::ops::RangeInclusive<i64> {
    (config.start.timestamp() / 60)..=(config.end.unwrap().timestamp() / 60)
}

/// A blocking HTTP/1.1 GET with `Connection: close`; returns the body.
fn get(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response")
        + 4;
    assert!(response.starts_with(b"HTTP/1.1 200"), "GET {path} failed");
    response.split_off(end)
}

fn catch_up(agents: usize, span: chrono::Duration, records: f64) -> CatchUp {
    let sim = simulation(agents, span, records);
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
        // As the container image and the systemd unit run it (README, "Memory").
        .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
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
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the exporter logs its address")
        .parse()
        .unwrap();

    // The landing page says "up" once the first cycle (the whole catch-up) succeeded;
    // it costs the exporter next to nothing, unlike rendering /metrics.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = String::from_utf8(get(addr, "/", "")).unwrap();
        if page.contains("<td>up</td>") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "catch-up did not finish:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    let during = proc_stats(pid).unwrap();

    // Let the state save finish, then scrape as Prometheus does, check the totals
    // against the simulator and read the idle footprint.
    std::thread::sleep(Duration::from_secs(2));
    let exposition = get(
        addr,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0\r\n",
    );
    get(
        addr,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0\r\nAccept-Encoding: gzip\r\n",
    );
    let counted: u64 = String::from_utf8_lossy(&exposition)
        .lines()
        .filter(|l| l.starts_with("wolkvox_agent_interactions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        counted as usize, truth,
        "the exporter counted every record once"
    );
    let health = |name: &str| -> u64 {
        String::from_utf8_lossy(&exposition)
            .lines()
            .filter(|l| l.starts_with(name) && l.contains("report=\"agent_13\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (requests, empty) = (
        health("wolkvox_api_requests_total{"),
        health("wolkvox_api_empty_responses_total{"),
    );
    std::thread::sleep(Duration::from_secs(1));
    let idle = proc_stats(pid).unwrap();

    let _ = child.kill();
    let _ = child.wait();
    let _ = logger.join();
    CatchUp {
        records: truth,
        wall,
        during,
        idle,
        exposition_bytes: exposition.len(),
        requests,
        empty,
    }
}

pub fn run_catch_up(report: &mut Report) {
    let r = catch_up(2_000, chrono::Duration::days(7), 500_000.0);
    println!(
        "(4) 7-day catch-up, 2000 agents: {} records, exposition {:.1} MB",
        r.records,
        r.exposition_bytes as f64 / MB
    );
    report.add(
        "4",
        "7-day catch-up, 2000 agents: records",
        "",
        r.records as f64,
        Goal::Info,
    );
    // The floor: every record in pages of 60,000, plus the empty answers nothing avoids.
    let floor = (r.records as u64).div_ceil(60_000) + r.empty;
    println!(
        "(4) requests {} against a floor of {floor}: {:.2}x",
        r.requests,
        r.requests as f64 / floor as f64
    );
    report.add(
        "4",
        "requests against the floor (records / 60,000, rounded up)",
        "x",
        r.requests as f64 / floor as f64,
        Goal::AtMost(1.25),
    );
    report.add(
        "4",
        "wall time (simulated API included)",
        "s",
        r.wall.as_secs_f64(),
        Goal::Info,
    );
    report.add(
        "4",
        "exporter CPU time",
        "s",
        r.during.cpu.as_secs_f64(),
        Goal::AtMost(2.0),
    );
    report.add(
        "4",
        "exporter peak RSS",
        "MB",
        r.during.hwm_bytes as f64 / MB,
        Goal::AtMost(200.0),
    );
}

pub fn run_idle(report: &mut Report) {
    for (agents, limit) in [(1_000, 20.0), (10_000, 100.0)] {
        let r = catch_up(agents, chrono::Duration::days(1), agents as f64 * 50.0);
        println!(
            "(5) {agents} agents: 1-day catch-up of {} records, exposition {:.1} MB",
            r.records,
            r.exposition_bytes as f64 / MB
        );
        report.add(
            "5",
            &format!("{agents:>6} agents: idle RSS after catch-up and a scrape"),
            "MB",
            r.idle.rss_bytes as f64 / MB,
            Goal::AtMost(limit),
        );
        report.add(
            "5",
            &format!("{agents:>6} agents: peak RSS during catch-up"),
            "MB",
            r.during.hwm_bytes as f64 / MB,
            Goal::Info,
        );
    }
}
