//! A run as the store keeps it: what the Kubeflow API was given (name,
//! description, the manifest as sent, the experiment) and the driver's
//! state. One JSON row per run; the parsed pipeline is not stored but
//! read again from the manifest (it parsed at create, and the reader is
//! deterministic).

use serde::{Deserialize, Serialize};

use super::metrics::RunMetric;
use super::PipelineRun;

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub description: String,
    /// `pipeline_spec.workflow_manifest` as the caller sent it.
    pub manifest: String,
    /// `pipeline_spec.parameters` as the caller sent them.
    pub overrides: Vec<(String, String)>,
    /// The EXPERIMENT resource reference's id, if any.
    pub experiment_id: Option<String>,
    /// `STORAGESTATE_AVAILABLE` or `STORAGESTATE_ARCHIVED`.
    pub storage_state: String,
    pub created_ms: i64,
    pub run: PipelineRun,
    /// Metrics reported with `ReportRunMetricsV1`, in the order kept
    /// (defaulted: rows stored before metrics existed have none).
    #[serde(default)]
    pub metrics: Vec<RunMetric>,
    /// Who created it (the caller's recorded name): its node jobs are
    /// theirs (defaulted: rows stored before had none).
    #[serde(default)]
    pub owner: String,
}

impl RunRecord {
    pub fn id(&self) -> &str {
        &self.run.id
    }
}
