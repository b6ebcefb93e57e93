//! `sparkvisor inspect`: the resolved config with each value's source, the detected resources and
//! the sizing, as text or JSON. Secrets are redacted ([`crate::config::Secret`] never serialises its value).

use serde::Serialize;

use crate::config::ResolvedConfig;
use crate::resources::{Resources, Sizing};

/// What `inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The resolved config (secrets redacted).
    pub config: ResolvedConfig,
    /// The detected limits and where they came from.
    pub resources: Resources,
    /// The derived Spark sizing.
    pub sizing: Sizing,
}

/// Builds the report (the seam the lead wires role loading into).
pub fn inspect_report(config: ResolvedConfig, resources: Resources, sizing: Sizing) -> Report {
    Report {
        config,
        resources,
        sizing,
    }
}
