//! wolkvox-exporter: polls the Wolkvox report API within its limits and serves exact
//! per-agent metrics: transfers and conferences (agent_13) and more reports.
//!
//! Layers point one way, from [`vocab`] (words every layer shares) and [`calendar`]
//! up: [`client`] talks to the API; each of the [`reports`] says how its rows decode and
//! what they count; [`config`] is what the user asked for; the [`store`] holds the
//! counters, the health and the ledger; one [`engine`] per operation plans the windows,
//! spends the API's limits and drives the reports; [`metrics`] renders the store,
//! [`state`] persists it and [`server`] serves it. [`app`] wires them together for every
//! command ([`backfill`], [`check`]); [`shard`] splits operations between replicas.
#![forbid(unsafe_code)]

pub mod app;
pub mod backfill;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod command;
pub mod config;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod reports;
pub mod server;
pub mod shard;
pub mod state;
pub mod store;
pub mod vocab;
pub mod web;

#[cfg(test)]
mod layers;
