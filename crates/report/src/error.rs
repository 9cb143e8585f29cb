//! Errors of the report crate: reading a `report.json` and drawing charts.

/// Why a report could not be read or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The text is not a `report.json` ratelab can read.
    #[error("not a ratelab report.json (re-create it with `ratelab run`)")]
    InvalidJson(#[source] serde_json::Error),
    /// The file was written by a ratelab with another report layout.
    #[error(
        "report.json has format_version {found}, this ratelab reads version {expected} (re-run the scenario with this ratelab)"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u64,
        /// The version this build reads.
        expected: u32,
    },
    /// plotters failed to draw a chart.
    #[error("cannot draw chart {chart}: {message}")]
    Chart {
        /// The chart's file name.
        chart: String,
        /// What plotters said.
        message: String,
    },
}
