//! The simulated Wolkvox: one deterministic contact center (the call model), the answer
//! of every report it serves with the ground truth of those answers, and an HTTP server
//! on loopback with the vendor's limits and injectable faults. `--demo` and every test
//! of the exporter use it; it knows nothing of the exporter.
//!
//! Adding a report: a module in [`reports`] that implements [`Report`] (its `api=`, the
//! rows of a window drawn from the [`model`], how a row is written and identified) and
//! [`Truth`] (what a correct exporter counts from those rows), and one line in the
//! registry in `reports/mod.rs`. Only rows of a new kind (not transfers, calls or legs)
//! also need a generator in the model.
#![forbid(unsafe_code)]

mod answer;
pub mod model;
pub mod reports;
mod server;

pub use answer::{Answer, Format};
pub use model::{
    Burst, Newcomer, Rename, SimAgent, SimCall, SimConfig, SimDestination, SimLeg, SimRecord, Simulator,
    DEMO_HISTORY,
};
pub use reports::agent_12::{Difference, TotalsTruth};
pub use reports::agent_13::{SeriesTruth, TransfersTruth};
pub use reports::agent_13_1::{ChainsTruth, FlowsTruth};
pub use reports::cdr_1::{direction, CallsTruth};
pub use reports::{Query, Report, Truth};
pub use server::{
    real_clock, Clock, Fault, Reply, Request, Responder, Schedule, Served, Wolkvox, WolkvoxConfig,
    CALLER_REFUSED, UNLIMITED_TOKEN_LIMIT,
};
