//! The integration tests, one binary: a module per area, the shared support compiled
//! once. Tests share the process: none may change its environment variables or current
//! directory, and each server a test starts listens on a port of its own (port 0).

#[path = "../support/mod.rs"]
mod support;

mod backfill;
mod chains;
mod check;
mod cost;
mod dashboards;
mod deploy;
mod e2e;
mod faults;
mod hostile;
mod idle_connections;
mod late;
mod paging;
mod prometheus_live;
mod proptests;
mod reconcile;
mod refusals;
mod rules;
mod scrape;
mod secrets;
mod shard;
mod web_config;
mod web_server;
