//! The charts, each drawn with plotters into an SVG string: per run a timeline against the
//! limits, retries in flight, the latency CDF, and a strategy comparison.

mod comparison;
mod latency;
mod retrying;
mod timeline;

use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use scenario::{RunReport, RunResult};

use crate::error::ReportError;
use crate::units;

/// One rendered chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// File name in the run directory, e.g. `latency-cdf.svg`.
    pub file_name: String,
    /// What the chart shows, for headings and alt text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Every chart of a report: the comparison, the latency CDF, retries in flight, then one
/// timeline per run. A report without runs has no charts.
///
/// ```
/// let charts = report::charts(&report::example_report()).unwrap();
/// assert_eq!(charts[0].file_name, "comparison.svg");
/// assert!(charts.iter().all(|chart| chart.svg.starts_with("<svg")));
/// ```
pub fn charts(report: &RunReport) -> Result<Vec<Chart>, ReportError> {
    if report.runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut charts = vec![
        comparison::chart(report)?,
        latency::chart(report)?,
        retrying::chart(report)?,
    ];
    for (index, run) in report.runs.iter().enumerate() {
        charts.push(timeline::chart(report, index, run)?);
    }
    Ok(charts)
}

/// Colours of successive runs (Tableau 10), so a strategy keeps its colour across charts.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of run `index`.
fn run_colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// A run's label in legends: the strategy, prefixed by the server when the report compares
/// several.
fn run_label(report: &RunReport, run: &RunResult) -> String {
    let several_servers = report.runs.iter().any(|other| other.server != run.server);
    let label = if several_servers {
        format!("{} / {}", run.server, run.strategy)
    } else {
        run.strategy.clone()
    };
    shorten(&label, 40)
}

/// `text` cut to `limit` characters with an ellipsis, so long strategy specs fit a legend.
fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(limit.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// A file-name-safe run name: `01-tier-1-none`. The run number keeps it unique; long
/// strategy specs are cut so names stay readable.
fn run_file_stem(index: usize, run: &RunResult) -> String {
    let stem = format!(
        "{}-{}",
        units::slug(&run.server),
        units::slug(&run.strategy)
    );
    let short: String = stem.chars().take(48).collect();
    format!("{:02}-{}", index + 1, short.trim_end_matches('-'))
}

/// Turns a plotters error into a [`ReportError::Chart`] naming the chart.
fn drawing_error<E: std::fmt::Display>(chart: String) -> impl Fn(E) -> ReportError {
    move |error| ReportError::Chart {
        chart: chart.clone(),
        message: error.to_string(),
    }
}

/// The top of a y axis: a little above the largest value, never zero.
fn axis_top(largest: f64) -> f64 {
    if largest > 0.0 { largest * 1.1 } else { 1.0 }
}

/// The top of a y axis with room above the data for a legend in the upper corner.
fn legend_headroom(largest: f64) -> f64 {
    if largest > 0.0 { largest * 1.5 } else { 1.0 }
}

/// Minutes since the scenario start of a bin starting at `start_ms`.
fn minutes(start_ms: u64) -> f64 {
    start_ms as f64 / 60_000.0
}

const FONT: &str = "sans-serif";

/// The legend sample of a line series: a short stroke in its colour.
fn legend_line(colour: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width))
}

/// Draws a chart's legend in the house style at `position`.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
}
