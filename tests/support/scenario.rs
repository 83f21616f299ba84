//! The configuration helpers of before [`TestConfig`](super::config::TestConfig), kept
//! only for `tests/proptests.rs`, which this change leaves alone: thin wrappers over the
//! one builder. New tests use `TestConfig`.

use std::path::Path;

pub use super::config::Operation as OpSpec;
use super::config::TestConfig;

/// The knobs of old; only the defaults remain in use.
#[derive(Debug, Clone, Default)]
pub struct Knobs {}

/// `TestConfig` with these operations and the defaults, as YAML.
pub fn yaml(ops: &[OpSpec], _knobs: &Knobs, state: &Path) -> String {
    let config = ops
        .iter()
        .cloned()
        .fold(TestConfig::new(state), TestConfig::op);
    config.yaml()
}

/// Writes `yaml` into `dir` and returns the `--config.file=` argument.
pub fn config_arg(dir: &Path, yaml: &str) -> String {
    super::config::write_yaml(dir, yaml)
}
