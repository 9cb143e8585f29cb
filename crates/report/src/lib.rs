//! ratelab reports: every format a run is read in, rendered from a [`RunReport`].
//!
//! Renderers are pure functions from results to strings: [`report_json`] (the versioned
//! `report.json`), [`summary_markdown`] (`summary.md`, for a PR comment or
//! `$GITHUB_STEP_SUMMARY`), [`html_page`] (`index.html`, one self-contained file with inline
//! SVG), [`charts`] (each chart as its own `.svg`, drawn with plotters) and [`terminal_table`].
//! [`render_all`] gathers the files of a run directory; only the command line writes them.
//!
//! Around the renderers: [`Scoreboard`] derives the per-strategy numbers every format shows and
//! marks the best value per column; [`evaluate`] turns a scenario's `[expect]` table into
//! [`Verdict`]s, rendered for people ([`verdicts_markdown`]) and CI ([`junit_xml`]);
//! [`ReportDiff`] compares two runs for review.
//!
//! ```
//! let report = report::example_report();
//! let files = report::render_all(&report).unwrap();
//! let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
//! assert!(names.contains(&"report.json"));
//! assert!(names.contains(&"summary.md"));
//! assert!(names.contains(&"index.html"));
//! assert!(names.iter().any(|name| name.ends_with(".svg")));
//! ```

mod answers;
mod charts;
mod confidence;
mod details;
mod diff;
mod error;
mod example;
mod html;
mod json;
mod junit;
mod layout;
mod legend;
mod markdown;
mod scoreboard;
mod side_by_side;
mod terminal;
pub mod units;
mod verdict;
mod work;

pub use answers::{SURVIVAL_SUCCESS_RATE, answers, success_floor};
pub use charts::{Chart, charts};
pub use diff::{
    Change, DiffOptions, MIN_GATE_SEEDS, MetricDelta, PairingError, ReportDiff, RunDelta,
};
pub use error::ReportError;
pub use example::example_report;
pub use html::html_page;
pub use json::{OLDEST_READABLE_FORMAT_VERSION, parse_report_json, report_json};
pub use junit::junit_xml;
pub use legend::{server_changes, strategy_legend};
pub use markdown::summary_markdown;
pub use scoreboard::{
    Better, BindingLimit, Cell, Column, REAL_BACKLOG_MIN_EXCESS, Row, Scoreboard, binding_limit,
    column_note, real_backlog,
};
pub use terminal::{Colour, DEFAULT_WIDTH, TableOptions, terminal_table, terminal_table_with};
pub use verdict::{
    CheckedScenario, PlanCheck, Verdict, VerdictListing, evaluate, format_value, metric_value,
    verdicts_markdown, verdicts_terminal,
};
pub use work::different_work_warning;

pub use results::RunReport;

/// One file of a run directory, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name within the run directory, e.g. `summary.md`.
    pub name: String,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

/// Every file of a run directory: `report.json`, `summary.md`, `index.html` and one `.svg` per
/// chart, in that order. The same report always renders to the same bytes.
pub fn render_all(report: &RunReport) -> Result<Vec<RenderedFile>, ReportError> {
    let charts = charts(report)?;
    let mut files = vec![
        RenderedFile {
            name: "report.json".to_owned(),
            bytes: report_json(report).into_bytes(),
        },
        RenderedFile {
            name: "summary.md".to_owned(),
            bytes: summary_markdown(report).into_bytes(),
        },
        RenderedFile {
            name: "index.html".to_owned(),
            bytes: html_page(report, &charts).into_bytes(),
        },
    ];
    files.extend(charts.into_iter().map(|chart| RenderedFile {
        name: chart.file_name,
        bytes: chart.svg.into_bytes(),
    }));
    Ok(files)
}
