//! `report.json`: the serde form of [`RunReport`], pretty-printed, and its reader with a
//! version check. The layout is documented in `docs/report-json.md`.

use results::{REPORT_FORMAT_VERSION, RunReport};

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

/// The oldest `format_version` this build reads. Every version from it to
/// [`REPORT_FORMAT_VERSION`] is read (fields added within a version carry defaults, and a
/// version bump adds its conversion here); anything else is refused with the versions it would
/// need.
pub const OLDEST_READABLE_FORMAT_VERSION: u32 = 1;

/// Reads a `report.json` of any version from [`OLDEST_READABLE_FORMAT_VERSION`] to the current
/// one, refusing others with a message that says which versions it reads and what to do.
///
/// ```
/// let error = report::parse_report_json(r#"{"format_version": 99}"#).unwrap_err();
/// assert!(error.to_string().starts_with(
///     "report.json has format_version 99, newer than this ratelab reads (version 1)"
/// ));
/// ```
pub fn parse_report_json(text: &str) -> Result<RunReport, ReportError> {
    // Check the version first: a newer layout fails to deserialize with a less useful message.
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReportError::InvalidJson)?;
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    match found {
        Some(version)
            if (u64::from(OLDEST_READABLE_FORMAT_VERSION)..=u64::from(REPORT_FORMAT_VERSION))
                .contains(&version) =>
        {
            serde_json::from_value(value).map_err(ReportError::InvalidJson)
        }
        Some(version) => Err(ReportError::UnsupportedVersion {
            found: version,
            expected: REPORT_FORMAT_VERSION,
        }),
        None => serde_json::from_value::<RunReport>(value).map_err(ReportError::InvalidJson),
    }
}
