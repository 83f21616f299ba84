//! Scenario 3: `/metrics` of 1,000 agents served over loopback to 50 concurrent
//! keep-alive clients, against a static buffer of the same size served by a bare hyper
//! HTTP/1 server (the same hyper connection settings, runtime and body type).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use hyper::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wolkvox_exporter::metrics::{Format, Renderer};
use wolkvox_exporter::server::{self, Limits, Site};
use wolkvox_exporter::web::{LoadedWebConfig, ReloadStats, WebConfigHandle};

use crate::common::{Goal, Report, MB};
use crate::fixtures;

const CLIENTS: usize = 50;
const AGENTS: usize = 1_000;
/// Rounds of the exporter and the static server, one after the other.
const ROUNDS: usize = 5;

/// What Prometheus sends.
const PROMETHEUS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

impl Run {
    /// The median of each figure over some runs.
    fn median(runs: Vec<Run>) -> Run {
        Run {
            rps: median_of(runs.iter().map(|r| r.rps)),
            p50: crate::common::median(&runs.iter().map(|r| r.p50).collect::<Vec<_>>()),
            p99: crate::common::median(&runs.iter().map(|r| r.p99).collect::<Vec<_>>()),
        }
    }
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The server side: a runtime with as many workers as cores, like `#[tokio::main]`.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start<F, Fut>(serve: F) -> Server
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, stop_rx).await;
            });
        });
        Server { addr: addr_rx.recv().unwrap(), stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn exporter_server(site: Arc<Site>) -> Server {
    Server::start(move |listener, stop| async move {
        let web = WebConfigHandle::fixed(LoadedWebConfig::disabled());
        server::serve(listener, site, Limits::default(), web, async {
            let _ = stop.await;
        })
        .await;
    })
}

/// A bare hyper server answering every request with the same bytes and headers.
fn static_server(body: Bytes, format: Format, gzip: bool) -> Server {
    Server::start(move |listener, mut stop| async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => r.unwrap().0,
                _ = &mut stop => break,
            };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let mut r = Response::new(Full::new(body.clone()));
                    let h = r.headers_mut();
                    h.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
                    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
                    if gzip {
                        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Limits::default().idle_timeout)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// Reads one response off a keep-alive connection; returns the body length.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    let header_end = loop {
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
        })
        .expect("a Content-Length");
    let mut have = buf.len() - header_end;
    let mut sink = vec![0u8; 256 * 1024];
    while have < length {
        let n = stream.read(&mut sink).await.unwrap();
        assert!(n > 0, "server closed the connection mid-body");
        have += n;
    }
    length
}

/// `total` requests spread over `CLIENTS` keep-alive connections, on a client runtime
/// of its own.
fn load(addr: SocketAddr, request: &str, total: usize, expect_len: usize) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let request: Arc<[u8]> = request.as_bytes().into();
        let mut conns = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            let s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            conns.push(s);
        }
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut stream) in conns.into_iter().enumerate() {
            let request = request.clone();
            let share = total / CLIENTS + usize::from(i < total % CLIENTS);
            tasks.spawn(async move {
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut latencies = Vec::with_capacity(share);
                for _ in 0..share {
                    let t = Instant::now();
                    stream.write_all(&request).await.unwrap();
                    let len = read_response(&mut stream, &mut buf).await;
                    latencies.push(t.elapsed());
                    assert_eq!(len, expect_len);
                }
                latencies
            });
        }
        let mut all = Vec::with_capacity(total);
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        let elapsed = started.elapsed();
        all.sort();
        Run {
            rps: total as f64 / elapsed.as_secs_f64(),
            p50: all[all.len() / 2],
            p99: all[all.len() * 99 / 100],
        }
    })
}

pub fn run(report: &mut Report) {
    let store = fixtures::store(AGENTS, 0);
    let site = Arc::new(Site {
        telemetry_path: "/metrics".into(),
        store: store.clone(),
        renderer: Renderer::new(store.clone(), Arc::new(ReloadStats::default()), true),
        status: Default::default(),
    });
    for (gzip, total, name) in [(true, 20_000, "OpenMetrics+gzip"), (false, 3_000, "text, no gzip")] {
        let (format, request) = if gzip {
            (
                Format::OpenMetrics,
                format!(
                    "GET /metrics HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: {PROMETHEUS_ACCEPT}\r\nAccept-Encoding: gzip\r\n\r\n"
                ),
            )
        } else {
            (Format::Text, "GET /metrics HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n".to_owned())
        };
        let body = site.renderer.get(format, gzip);
        println!(
            "(3) {AGENTS} agents, {name}: {:.2} MB a response, {CLIENTS} clients, {total} requests",
            body.len() as f64 / MB
        );
        // Alternated round by round, and judged by the median of each round's ratio: a
        // burst of load from elsewhere on the machine then falls on both servers alike.
        let (mut exporter, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let server = exporter_server(site.clone());
            exporter.push(load(server.addr, &request, total, body.len()));
            drop(server);
            let server = static_server(Bytes::copy_from_slice(&body), format, gzip);
            floor.push(load(server.addr, &request, total, body.len()));
        }
        let ratio = median_of(exporter.iter().zip(&floor).map(|(e, f)| e.rps / f.rps));
        let (exporter, floor) = (Run::median(exporter), Run::median(floor));
        let what = |w: &str| format!("{AGENTS} agents, {name}: {w}");
        report.add("3", &what("static buffer (floor)"), "req/s", floor.rps, Goal::Info);
        report.add("3", &what("exporter"), "req/s", exporter.rps, Goal::Info);
        report.add("3", &what("exporter / static req/s"), "x", ratio, Goal::AtLeast(0.8));
        report.add("3", &what("exporter p50"), "ms", exporter.p50.as_secs_f64() * 1e3, Goal::Info);
        // 50 clients each holding a request open: by Little's law p99 cannot be under
        // 10 ms unless the server moves 5,000 bodies a second, which 3 MB plain bodies
        // on two cores cannot; the target applies to the compressed scrape.
        report.add(
            "3",
            &what("exporter p99"),
            "ms",
            exporter.p99.as_secs_f64() * 1e3,
            if gzip { Goal::AtMost(10.0) } else { Goal::Info },
        );
        report.add("3", &what("static p99 (floor)"), "ms", floor.p99.as_secs_f64() * 1e3, Goal::Info);
    }
}
