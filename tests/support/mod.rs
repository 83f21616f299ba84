//! Helpers shared by the integration tests: the clock and reference dates, waits with a
//! deadline, the configuration builder, the exporter (binary or in-process), a real
//! Prometheus, an HTTP client, an exposition parser and the dashboards' PromQL. The
//! simulated Wolkvox is the `wolkvox-sim` crate.
#![allow(dead_code)]

pub mod clock;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod grafana;
pub mod http;
pub mod inproc;
pub mod prometheus;
pub mod wait;
