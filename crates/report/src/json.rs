//! `report.json`: the serde form of [`RunReport`], pretty-printed, and its reader with a
//! version check. The layout is documented in `docs/report-json.md`.

use scenario::{REPORT_FORMAT_VERSION, RunReport};

use crate::error::ReportError;

/// The `report.json` text of a report: pretty JSON with a trailing newline.
///
/// Every map in a report is ordered and every ratio rounded, so the same report always gives
/// the same bytes.
///
/// ```
/// let report = report::example_report();
/// let text = report::report_json(&report);
/// assert!(text.starts_with("{\n  \"format_version\": "));
/// assert_eq!(report::parse_report_json(&text).unwrap(), report);
/// ```
pub fn report_json(report: &RunReport) -> String {
    // Serializing plain structs, ordered maps and finite numbers cannot fail.
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads a `report.json`, refusing other layout versions with a message that says what to do.
///
/// ```
/// let error = report::parse_report_json(r#"{"format_version": 99}"#).unwrap_err();
/// assert!(error.to_string().contains("format_version 99"));
/// ```
pub fn parse_report_json(text: &str) -> Result<RunReport, ReportError> {
    // Check the version first: a newer layout fails to deserialize with a less useful message.
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReportError::InvalidJson)?;
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    match found {
        Some(version) if version == u64::from(REPORT_FORMAT_VERSION) => {
            serde_json::from_value(value).map_err(ReportError::InvalidJson)
        }
        Some(version) => Err(ReportError::UnsupportedVersion {
            found: version,
            expected: REPORT_FORMAT_VERSION,
        }),
        None => serde_json::from_value::<RunReport>(value).map_err(ReportError::InvalidJson),
    }
}
