//! Helpers shared by the integration tests: the clock and reference dates, waits with a
//! deadline, the configuration builder, the exporter (binary or in-process), a real
//! Prometheus, the fake Wolkvox, an HTTP client and an exposition parser.
#![allow(dead_code)]

pub mod clock;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod fake_wolkvox;
pub mod http;
pub mod inproc;
pub mod prometheus;
pub mod scripted_api;
pub mod truth;
pub mod wait;
