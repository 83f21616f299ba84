//! wolkvox-exporter: polls the Wolkvox report API within its limits and serves exact
//! per-agent metrics: transfers and conferences (agent_13) and more reports.
//!
//! The pipeline: [`client`] talks to the API; one [`engine`] per operation plans the
//! windows and spends the API's limits; each of the [`reports`] turns its rows into
//! changes of the [`store`]; [`metrics`] renders it, [`state`] persists it and
//! [`server`] serves it. [`app`] wires them together; [`check`] asks the API once
//! whether each operation can work, and [`shard`] splits operations between replicas.
#![forbid(unsafe_code)]

pub mod app;
pub mod backfill;
pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod reports;
pub mod server;
pub mod shard;
pub mod state;
pub mod store;
pub mod web;
