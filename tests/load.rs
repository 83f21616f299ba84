//! The load test: 200 concurrent scrapers and 100 connections that open and never send
//! a request, for 30 seconds, against the exporter binary following 1,000 agents. No
//! scrape may fail; latency percentiles and resident memory are printed and bounded.
//!
//! Too long for CI, so `cargo test` leaves it out (`test = false` in Cargo.toml); run it
//! with `cargo test --profile bench --test load -- --nocapture` (or `--release`)
//! (`WOLKVOX_LOAD_SECONDS` shortens or lengthens the run).

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::clock::anchored;
use support::config::{Operation, TestConfig};
use support::exporter::{rss_kib, Exporter};
use support::exposition::Exposition;
use support::http;
use support::inproc::{assert_exact, total};
use support::wait::{check, Wait};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::{TransfersTruth, Wolkvox, WolkvoxConfig};

const SCRAPERS: usize = 200;
const IDLE_CONNECTIONS: usize = 100;
const AGENTS: usize = 1_000;
/// Bounds for a release build on a small (2-CPU) machine, with a wide margin.
const MAX_P99: Duration = Duration::from_secs(2);
const MAX_RSS_MIB: u64 = 256;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn two_hundred_scrapers_and_a_hundred_idle_connections_hold() {
    let seconds: u64 = std::env::var("WOLKVOX_LOAD_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let (sim, _) = anchored(chrono::Duration::hours(12));
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.sim.agents = AGENTS;
    cfg.sim.peak_per_agent_hour = 3.0;
    let fake = Wolkvox::start(cfg);
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let config =
        TestConfig::new(&dir.path().join("state.json")).op(Operation::fake("load", &fake)).write(dir.path());
    let exporter = Exporter::start(&[&config]);
    let ready = exporter.wait_for_metrics(Duration::from_secs(120), |text| {
        total(&Exposition::parse(text), "load") == truth.total()
    });
    let agents = Exposition::parse(&ready).select("wolkvox_agent_info", &[("operation", "load")]).count();
    assert_eq!(agents, AGENTS, "every agent has its series");
    let plain_bytes = ready.len();
    let (rss_before, _) = rss_kib(exporter.pid());

    let url = exporter.url("/metrics");
    let addr = exporter.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(seconds);

    // Connections that open and never send anything; reopened when the server drops them.
    let reopened = Arc::new(AtomicU64::new(0));
    let idle = {
        let (stop, reopened) = (stop.clone(), reopened.clone());
        thread::spawn(move || {
            let open = || {
                let s = TcpStream::connect(addr).expect("idle connection");
                s.set_nonblocking(true).unwrap();
                s
            };
            let mut conns: Vec<TcpStream> = (0..IDLE_CONNECTIONS).map(|_| open()).collect();
            let mut byte = [0u8; 1];
            // Until the load is over, looking every 100 ms for connections to reopen.
            Wait::new("the end of the load", Duration::from_secs(seconds + 60))
                .every(Duration::from_millis(100))
                .until(|| {
                    for c in &mut conns {
                        let closed = match c.read(&mut byte) {
                            Ok(_) => true,
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        };
                        if closed {
                            *c = open();
                            reopened.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    check(stop.load(Ordering::SeqCst), || "the load goes on")
                });
        })
    };

    let latencies = Arc::new(Mutex::new(Vec::<Duration>::with_capacity(100_000)));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let bytes = Arc::new(AtomicU64::new(0));
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|i| {
            let (url, latencies, failures, bytes) =
                (url.clone(), latencies.clone(), failures.clone(), bytes.clone());
            thread::spawn(move || {
                // Half the scrapers ask for gzip, as Prometheus does.
                let headers: &[(&str, &str)] = if i % 2 == 0 { &[("Accept-Encoding", "gzip")] } else { &[] };
                let client = http::client();
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let result = http::get_on(&client, &url, headers);
                    let took = started.elapsed();
                    match result {
                        Ok(r) if r.status == 200 && !r.body.is_empty() => {
                            bytes.fetch_add(r.body.len() as u64, Ordering::Relaxed);
                            mine.push(took);
                        }
                        Ok(r) => failures.lock().unwrap().push(format!("status {} after {took:?}", r.status)),
                        Err(e) => failures.lock().unwrap().push(format!("{e} after {took:?}")),
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();

    // Resident memory sampled until every scraper has stopped (at the deadline).
    let mut rss_peak = rss_before;
    Wait::new("the scrapers to stop", Duration::from_secs(seconds + 60))
        .every(Duration::from_millis(250))
        .until(|| {
            rss_peak = rss_peak.max(rss_kib(exporter.pid()).0);
            let running = scrapers.iter().filter(|s| !s.is_finished()).count();
            check(running == 0, || format!("{running} scrapers running"))
        });
    for s in scrapers {
        s.join().expect("scraper thread");
    }
    stop.store(true, Ordering::SeqCst);
    idle.join().expect("idle thread");
    let (_, hwm) = rss_kib(exporter.pid());

    let failures = failures.lock().unwrap().clone();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    assert!(!lat.is_empty(), "no scrape completed");
    let p50 = percentile(&lat, 0.50);
    let p90 = percentile(&lat, 0.90);
    let p99 = percentile(&lat, 0.99);
    let max = *lat.last().unwrap();
    println!(
        "load: {SCRAPERS} scrapers + {IDLE_CONNECTIONS} idle connections for {seconds}s, \
         {AGENTS} agents, exposition {plain_bytes} bytes uncompressed\n\
         scrapes ok: {} ({:.0}/s), failed: {}, MiB sent: {:.0}\n\
         latency p50 {p50:?}, p90 {p90:?}, p99 {p99:?}, max {max:?}\n\
         RSS before {} MiB, peak sampled {} MiB, high-water mark {} MiB; idle connections reopened after the header timeout: {}",
        lat.len(),
        lat.len() as f64 / seconds as f64,
        failures.len(),
        bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
        rss_before / 1024,
        rss_peak / 1024,
        hwm / 1024,
        reopened.load(Ordering::SeqCst),
    );
    assert!(
        failures.is_empty(),
        "{} failed scrapes, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(p99 <= MAX_P99, "p99 {p99:?} over {MAX_P99:?}");
    assert!(hwm / 1024 <= MAX_RSS_MIB, "peak RSS {} MiB over {MAX_RSS_MIB} MiB", hwm / 1024);
    // The idle connections were cut by the header timeout, not left to pile up.
    if seconds > 12 {
        assert!(reopened.load(Ordering::SeqCst) >= IDLE_CONNECTIONS as u64);
    }
    // Still exact after the storm.
    let m = Exposition::parse(&exporter.metrics());
    assert_exact(&m, "load", &truth, &BUCKETS);
}
