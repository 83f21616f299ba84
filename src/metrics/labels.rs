//! The exposition's label sets: typed, with enums for every fixed set of values, and
//! borrowing their text from the store so that rendering allocates no label strings.

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};

use crate::client::ErrorReason;
use crate::reports::{InvalidReason, ReportName};

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
        [
            ("operation", self.operation),
            ("agent_id", self.agent_id),
            ("agent_name", self.agent_name),
        ]
        .encode(e)
    }
}

impl EncodeLabelSet for OperationReport<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> std::fmt::Result {
        [("operation", self.operation)].encode(e)?;
        ReportLabel {
            report: self.report,
        }
        .encode(e)
    }
}
