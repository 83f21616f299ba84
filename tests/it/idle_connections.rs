//! Idle and slow connections cannot starve scrapes: with 5,000 connections held open
//! and some that send half a request, over plain HTTP and over TLS, every scrape stays
//! within a few hundred milliseconds, and the server closes all it was holding.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::clock::{reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::wait::{check, Wait};
use procfs::net::TcpState;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wolkvox_exporter::server::Limits;
use wolkvox_exporter::web::{WebConfig, WebConfigHandle};
use wolkvox_sim::{Wolkvox, WolkvoxConfig};

/// Idle connections held when the scrapes are timed, cumulatively (0 comes first).
const STEPS: [usize; 2] = [600, 5_000];
/// Connections that send half a request head, or stop inside or after a TLS handshake.
const SLOW: usize = 100;
/// Scrapes timed at each step.
const SCRAPES: usize = 10;
/// How much longer than on a server with no idle connection a scrape may take. A scrape
/// of this exposition on loopback takes a few milliseconds; a 2-core machine busy with
/// other builds adds scheduling hiccups of tens of milliseconds. A scrape that waits
/// for an idle connection to go away waits at least the first-request timeout (5 s),
/// and Prometheus gives up after 10 s. 300 ms is far from both.
const MAX_DELAY: Duration = Duration::from_millis(300);
/// How long a connection may take to be established: the kernel completes it without
/// the server unless its accept queue is full.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to accept a burst and shed down to its limit.
const SETTLE: Duration = Duration::from_secs(15);

/// The two scenarios hold thousands of descriptors and time scrapes; one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_scrapes_stay_fast_under_thousands_of_idle_connections() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_scrapes_stay_fast_under_thousands_of_idle_connections() {
    scenario(true).await;
}

async fn scenario(tls: bool) {
    let _serial = SERIAL.lock().await;
    let limits = Limits::default();
    let most = STEPS[STEPS.len() - 1];
    raise_descriptor_limit(most + SLOW + 2 * limits.max_connections + 256);
    let scheme = if tls { "TLS" } else { "plain HTTP" };

    let dir = tempfile::tempdir().unwrap();
    let end = reference_end();
    let clock = TestClock::at(end + chrono::Duration::minutes(1));
    let mut fake_config = WolkvoxConfig::bounded(end - chrono::Duration::hours(1), end);
    fake_config.clock = clock.sim_clock();
    let fake = Wolkvox::start(fake_config);
    let config =
        TestConfig::new(&dir.path().join("s.json")).op(Operation::fake("op", &fake)).catch_up("2h").config();
    let mut options = wolkvox_exporter::app::Options::new(config);
    options.clock = clock.shared();
    options.server_limits = limits.clone();
    if tls {
        options.web = WebConfigHandle::fixed(WebConfig::load(web_config(dir.path())).unwrap());
    }
    // Bound the way `main` binds, so the listener's accept queue is the exporter's own.
    let listener = wolkvox_exporter::server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = tokio::spawn(wolkvox_exporter::app::run(options, listener, async {
        let _ = stopped.await;
    }));
    let scraper = Scraper::new(tls, addr);
    Wait::new("the first scrape", Duration::from_secs(30))
        .until_async(|| async { scraper.scrape().await.map(|_| ()) })
        .await;

    let mut rows = vec![(0, scraper.time(SCRAPES).await)];
    let mut held = Held::default();
    for step in STEPS {
        let open = held.idle.len();
        held.idle.extend(blocking(move || open_idle(addr, step - open)).await);
        if step == most {
            // The slow ones come last, so they are among those the server keeps.
            held.slow_plain.extend(blocking(move || open_slow_plain(addr, tls, SLOW / 2)).await);
            if tls {
                held.slow_tls.extend(blocking(move || open_slow_tls(addr, SLOW / 2)).await);
            } else {
                held.slow_plain.extend(blocking(move || open_slow_plain(addr, tls, SLOW / 2)).await);
            }
        }
        // The burst is accepted and the server is down to its limit before timing.
        Wait::new("the server to shed down to its limit", SETTLE)
            .until_async(|| async {
                let open = server_side_open(addr.port());
                check(open <= limits.max_connections, || format!("{open} server-side connections open"))
            })
            .await;
        rows.push((step, scraper.time(SCRAPES).await));
    }

    let baseline = median(&rows[0].1);
    println!("{scheme}: scrape latency by idle connections held ({SCRAPES} scrapes each)");
    for (idle, took) in &rows {
        println!(
            "  {idle:>5} idle: min {:?}, median {:?}, max {:?}",
            took.iter().min().unwrap(),
            median(took),
            took.iter().max().unwrap()
        );
    }
    for (idle, took) in &rows[1..] {
        for t in took {
            assert!(
                *t <= baseline + MAX_DELAY,
                "{scheme}: a scrape with {idle} idle connections took {t:?}, more than \
                 {MAX_DELAY:?} over the {baseline:?} of an idle server: {took:?}"
            );
        }
    }

    // No leak: what the server kept is closed by the first-request timeout, and every
    // connection the test holds has been closed by the server (shed or timed out).
    let started = Instant::now();
    Wait::new("the server to close every held connection", limits.first_request_timeout + SETTLE)
        .every(Duration::from_millis(100))
        .until_async(|| async {
            let (server, client) = (server_side_open(addr.port()), client_side_open(addr.port()));
            check(server == 0 && client == 0, || {
                format!("{server} server-side and {client} client-side connections still open")
            })
        })
        .await;
    println!(
        "{scheme}: all {} held connections closed by the server {:?} after the last scrape",
        held.len(),
        started.elapsed()
    );
    drop(held);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), exporter)
        .await
        .expect("the exporter stops within 10 s")
        .expect("the exporter task")
        .expect("the exporter ends without an error");
}

/// Connections the test holds open; dropped at the end of a scenario.
#[derive(Default)]
struct Held {
    idle: Vec<TcpStream>,
    slow_plain: Vec<TcpStream>,
    slow_tls: Vec<StreamOwned<ClientConnection, TcpStream>>,
}

impl Held {
    fn len(&self) -> usize {
        self.idle.len() + self.slow_plain.len() + self.slow_tls.len()
    }
}

/// Connections that send nothing.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            // A server that stops accepting fills its accept queue, and connecting hangs.
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                .unwrap_or_else(|e| panic!("idle connection {i} of {n} to {addr}: {e}"))
        })
        .collect()
}

/// Connections that send the start of a request and stop: half a request head over
/// plain HTTP, the start of a ClientHello record over TLS.
fn open_slow_plain(addr: SocketAddr, tls: bool, n: usize) -> Vec<TcpStream> {
    let start: &[u8] = if tls {
        // A handshake record header announcing 512 bytes, and one of them.
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]
    } else {
        HALF_HEAD
    };
    open_idle(addr, n)
        .into_iter()
        .map(|mut s| {
            s.write_all(start).expect("write the start of a request");
            s
        })
        .collect()
}

const HALF_HEAD: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n";

/// TLS connections that complete the handshake, then send half a request head.
fn open_slow_tls(addr: SocketAddr, n: usize) -> Vec<StreamOwned<ClientConnection, TcpStream>> {
    let config = Arc::new(client_config());
    (0..n)
        .map(|_| {
            let name = ServerName::try_from("localhost").unwrap();
            let mut conn = ClientConnection::new(config.clone(), name).unwrap();
            let mut sock = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).expect("connect");
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).expect("TLS handshake");
            }
            let mut tls = StreamOwned::new(conn, sock);
            tls.write_all(HALF_HEAD).expect("write half a head");
            tls.flush().expect("flush");
            tls
        })
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Sockets the server side of `port` holds (accepted or waiting to be), as the kernel
/// sees them; one the server has closed is in FIN_WAIT or gone.
fn server_side_open(port: u16) -> usize {
    count_sockets(|local, _, state| {
        local == port && matches!(state, TcpState::Established | TcpState::SynRecv | TcpState::CloseWait)
    })
}

/// Sockets connected to `port` that the server has not closed (no FIN received).
fn client_side_open(port: u16) -> usize {
    count_sockets(|_, remote, state| remote == port && *state == TcpState::Established)
}

fn count_sockets(keep: impl Fn(u16, u16, &TcpState) -> bool) -> usize {
    let v4 = procfs::net::tcp().expect("read /proc/net/tcp");
    let v6 = procfs::net::tcp6().expect("read /proc/net/tcp6");
    v4.iter().chain(&v6).filter(|e| keep(e.local_address.port(), e.remote_address.port(), &e.state)).count()
}

/// Raises this process's soft descriptor limit to `needed` (within the hard limit).
fn raise_descriptor_limit(needed: usize) {
    let got = rlimit::increase_nofile_limit(needed as u64)
        .expect("raise the soft limit of open files (RLIMIT_NOFILE)");
    assert!(
        got >= needed as u64,
        "this test holds {needed} descriptors but the hard limit of open files is {got}: \
         raise it (ulimit -Hn, or LimitNOFILE for a service) to run it"
    );
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

fn web_config(dir: &Path) -> PathBuf {
    let path = dir.join("web.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {f}/server.crt\n  key_file: {f}/server.key\n",
            f = fixtures().display()
        ),
    )
    .unwrap();
    path
}

fn client_config() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixtures().join("ca.crt")).unwrap()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Scrapes `/metrics` on a new connection each time, as a scraper after its
/// keep-alive expired would.
struct Scraper {
    client: reqwest::Client,
    url: String,
}

impl Scraper {
    fn new(tls: bool, addr: SocketAddr) -> Scraper {
        let mut builder =
            reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).timeout(Duration::from_secs(15));
        let url = if tls {
            let ca = std::fs::read(fixtures().join("ca.crt")).unwrap();
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .resolve("localhost", addr);
            format!("https://localhost:{}/metrics", addr.port())
        } else {
            format!("http://{addr}/metrics")
        };
        Scraper { client: builder.build().unwrap(), url }
    }

    /// One complete scrape: status 200 and a body with the exporter's metrics.
    async fn scrape(&self) -> Result<(), String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status == 200 && body.contains("wolkvox_up{operation=\"op\"}") {
            Ok(())
        } else {
            Err(format!("status {status}, {} bytes", body.len()))
        }
    }

    /// The time each of `n` scrapes took, one after the other.
    async fn time(&self, n: usize) -> Vec<Duration> {
        let mut took = Vec::with_capacity(n);
        for i in 0..n {
            let started = Instant::now();
            let result = self.scrape().await;
            let elapsed = started.elapsed();
            if let Err(e) = result {
                panic!("scrape {i} failed after {elapsed:?}: {e}");
            }
            took.push(elapsed);
        }
        took
    }
}

fn median(took: &[Duration]) -> Duration {
    let mut sorted = took.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}
