//! The built-in simulated Wolkvox behind `--demo`: a deterministic contact center, the
//! answers of every report and an HTTP server on loopback. The tests' fake reuses the
//! first two, so the demo and the tests see the same API.

pub mod answer;
pub mod server;
pub mod simulator;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use simulator::{SimConfig, Simulator};

use crate::config::{FileOperation, Token};
use crate::reports::KINDS;

/// The demo operation's licenses: its daily limit is this x 1000, enough for 1 s cycles
/// of every report (tests run it so).
pub const DEMO_LICENSES: u32 = 1000;

/// Where the running demo API is, and its task, so the caller can wait for it on shutdown.
#[derive(Debug)]
pub struct DemoHandle {
    /// `http://127.0.0.1:PORT`, to which the client appends the report path.
    pub base_url: String,
    pub token: String,
    pub task: JoinHandle<()>,
}

/// Starts the simulated API on 127.0.0.1 with a fresh random token; it serves until
/// `shutdown` completes.
pub async fn start(
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<DemoHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let sim = Arc::new(Simulator::new(config));
    let task = tokio::spawn(server::serve(listener, sim, token.clone(), shutdown));
    Ok(DemoHandle {
        base_url,
        token,
        task,
    })
}

impl DemoHandle {
    /// The demo's operation, as a configuration file would give it: every report.
    pub fn operation(&self) -> FileOperation {
        FileOperation {
            name: Some("demo".into()),
            base_url: Some(self.base_url.clone()),
            token: Some(Token::new(self.token.clone())),
            licenses: Some(DEMO_LICENSES),
            reports: Some(KINDS.iter().map(|k| (k.name.to_string(), None)).collect()),
            ..FileOperation::default()
        }
    }
}
