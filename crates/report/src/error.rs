//! Errors of the report crate: reading a `report.json` and drawing charts.

/// Why a report could not be read or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The text is not a `report.json` ratelab can read.
    #[error("not a ratelab report.json (re-create it with `ratelab run`)")]
    InvalidJson(#[source] serde_json::Error),
    /// The file was written by a ratelab with a report layout this one cannot read: a newer one,
    /// or one older than the oldest it still reads.
    #[error("{}", version_advice(*found, *expected))]
    UnsupportedVersion {
        /// The version in the file.
        found: u64,
        /// The newest version this build reads (it writes this one).
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

/// What to do about a `report.json` of a version this build cannot read.
fn version_advice(found: u64, newest: u32) -> String {
    let oldest = crate::json::OLDEST_READABLE_FORMAT_VERSION;
    let readable = if u64::from(oldest) == u64::from(newest) {
        format!("version {newest}")
    } else {
        format!("versions {oldest} to {newest}")
    };
    if found > u64::from(newest) {
        format!(
            "report.json has format_version {found}, newer than this ratelab reads ({readable}): render it with the ratelab that wrote it, or re-run the scenario with this one"
        )
    } else {
        format!(
            "report.json has format_version {found}, older than this ratelab reads ({readable}): re-run the scenario to write it again"
        )
    }
}
