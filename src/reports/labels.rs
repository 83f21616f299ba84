//! The `interaction` label's values. The exposition's label sets are prometheus-client's
//! arrays of `(name, value)` pairs (and pairs of those), borrowing their text from the
//! store so that rendering allocates no label strings.

use enum_map::Enum;
use prometheus_client::encoding::EncodeLabelValue;
use serde::{Deserialize, Serialize};

/// The `interaction` label: a transfer or conference record's `type_interaction`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, EncodeLabelValue, Serialize, Deserialize)]
pub enum Interaction {
    transfer,
    conference,
    other,
}

impl Interaction {
    pub fn parse(text: &str) -> Interaction {
        let t = text.trim();
        if t.eq_ignore_ascii_case("transfer") {
            Interaction::transfer
        } else if t.eq_ignore_ascii_case("conference") {
            Interaction::conference
        } else {
            Interaction::other
        }
    }
}
