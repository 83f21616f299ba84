//! wolkvox-exporter: polls the Wolkvox agent_13 report ("transfer and detailed
//! conferences") within the API's limits and serves exact per-agent metrics.
//!
//! The pipeline: [`client`] talks to the API, [`windows`] plans the requests,
//! [`poller`] runs the cycles within [`limits`], [`ingest`] turns records into the
//! [`store`], [`metrics`] renders it, [`state`] persists it and [`server`] serves it.

pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod poller;
pub mod server;
pub mod state;
pub mod store;
pub mod web;
pub mod windows;
