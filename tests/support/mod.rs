//! Helpers shared by the integration tests: the exporter process, a real Prometheus,
//! the fake Wolkvox, a tiny HTTP client and an exposition parser.
#![allow(dead_code)]

pub mod exporter;
pub mod exposition;
pub mod fake_wolkvox;
pub mod http;
pub mod inproc;
pub mod prometheus;
pub mod scenario;
pub mod scripted_api;
