//! The exposition's label sets: typed, with enums for every fixed set of values, and
//! borrowing their text from the store so that rendering allocates no label strings.

use enum_map::Enum;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelSetEncoder};
use serde::{Deserialize, Serialize};

use crate::vocab::{ErrorReason, InvalidReason, ReportName};

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

/// `{interaction}`
#[derive(Debug, Clone, Copy, EncodeLabelSet)]
pub struct InteractionLabel {
    pub interaction: Interaction,
}

/// `{operation}`
#[derive(Debug, Clone, Copy)]
pub struct OperationLabel<'a> {
    pub operation: &'a str,
}

/// `{operation, agent_id}`
#[derive(Debug, Clone, Copy)]
pub struct OperationAgent<'a> {
    pub operation: &'a str,
    pub agent_id: &'a str,
}

/// `{operation, agent_id, agent_name}`
#[derive(Debug, Clone, Copy)]
pub struct AgentInfoLabels<'a> {
    pub operation: &'a str,
    pub agent_id: &'a str,
    pub agent_name: &'a str,
}

/// `{operation, report}`
#[derive(Debug, Clone, Copy)]
pub struct OperationReport<'a> {
    pub operation: &'a str,
    pub report: ReportName,
}

/// `{reason}` of a failed request.
#[derive(Debug, Clone, Copy, EncodeLabelSet)]
pub struct ErrorLabel {
    pub reason: ErrorReason,
}

/// `{reason}` of a rejected row.
#[derive(Debug, Clone, Copy, EncodeLabelSet)]
pub struct InvalidLabel {
    pub reason: InvalidReason,
}

#[derive(Debug, Clone, Copy, EncodeLabelSet)]
struct ReportLabel {
    report: ReportName,
}

impl EncodeLabelSet for OperationLabel<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> std::fmt::Result {
        [("operation", self.operation)].encode(e)
    }
}

impl EncodeLabelSet for OperationAgent<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> std::fmt::Result {
        [("operation", self.operation), ("agent_id", self.agent_id)].encode(e)
    }
}

impl EncodeLabelSet for AgentInfoLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> std::fmt::Result {
        [("operation", self.operation), ("agent_id", self.agent_id), ("agent_name", self.agent_name)]
            .encode(e)
    }
}

impl EncodeLabelSet for OperationReport<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> std::fmt::Result {
        [("operation", self.operation)].encode(e)?;
        ReportLabel { report: self.report }.encode(e)
    }
}
