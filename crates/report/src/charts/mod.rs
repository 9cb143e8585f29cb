//! The charts, each drawn with plotters into an SVG string: per run a timeline against the
//! limits, retries in flight, the latency CDF, and a strategy comparison.

mod comparison;
mod latency;
mod retrying;
mod timeline;

use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use results::{RunReport, RunResult};

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

/// Colours of successive strategies: Tableau 10 and two more dark ones, each distinct from the
/// others on white. A strategy keeps its colour across charts and server variants.
const PALETTE: [RGBColor; 12] = [
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
    RGBColor(0, 0, 0),
    RGBColor(57, 59, 121),
];

/// Dash patterns (dash, gap) for strategies past the palette's twelve: the 13th strategy is
/// blue and dashed, the 25th blue and dotted.
const DASHES: [Option<(u32, u32)>; 4] = [None, Some((9, 4)), Some((2, 3)), Some((16, 4))];

/// How one series is drawn: its colour and, past twelve series, a dash pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesStyle {
    colour: RGBColor,
    dash: Option<(u32, u32)>,
}

/// The style of the strategy at `index` among a report's strategies.
fn series_style(index: usize) -> SeriesStyle {
    SeriesStyle {
        colour: PALETTE[index % PALETTE.len()],
        dash: DASHES[(index / PALETTE.len()) % DASHES.len()],
    }
}

/// The index of a run's strategy among the report's strategies (the scenario's order, then the
/// order of first appearance), so a strategy has one style in every chart.
fn strategy_index(report: &RunReport, run: &RunResult) -> usize {
    let mut labels: Vec<&str> = report
        .scenario
        .strategies
        .iter()
        .map(String::as_str)
        .collect();
    for other in &report.runs {
        if !labels.contains(&other.strategy.as_str()) {
            labels.push(&other.strategy);
        }
    }
    labels
        .iter()
        .position(|label| *label == run.strategy)
        .unwrap_or(0)
}

/// The style of a run: its strategy's.
fn run_style(report: &RunReport, run: &RunResult) -> SeriesStyle {
    series_style(strategy_index(report, run))
}

/// The server variants of a report in run order, each with the indices of its runs: one small
/// multiple each.
fn server_groups(report: &RunReport) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, run) in report.runs.iter().enumerate() {
        match groups.iter_mut().find(|(server, _)| *server == run.server) {
            Some((_, runs)) => runs.push(index),
            None => groups.push((run.server.clone(), vec![index])),
        }
    }
    groups
}

/// The strategies of a report in style order, once each, for a legend shared by small multiples.
fn strategy_legend_entries(report: &RunReport) -> Vec<LegendEntry> {
    let mut entries: Vec<(usize, LegendEntry)> = Vec::new();
    for run in &report.runs {
        let index = strategy_index(report, run);
        if !entries.iter().any(|(known, _)| *known == index) {
            entries.push((
                index,
                LegendEntry {
                    label: run.strategy.clone(),
                    style: series_style(index),
                    width: 2,
                },
            ));
        }
    }
    entries.sort_by_key(|(index, _)| *index);
    entries.into_iter().map(|(_, entry)| entry).collect()
}

/// A run's label in a chart title: the strategy, after the server when the report compares
/// several.
fn run_label(report: &RunReport, run: &RunResult) -> String {
    let several_servers = report.runs.iter().any(|other| other.server != run.server);
    if several_servers {
        format!("{} / {}", run.server, run.strategy)
    } else {
        run.strategy.clone()
    }
}

/// Draws `points` as a line in `style`, solid or dashed, `width` pixels wide.
fn draw_line<DB, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    points: Vec<(f64, f64)>,
    style: SeriesStyle,
    width: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let stroke = style.colour.stroke_width(width);
    match style.dash {
        None => chart.draw_series(LineSeries::new(points, stroke)).map(drop),
        Some((dash, gap)) => chart
            .draw_series(DashedLineSeries::new(points, dash, gap, stroke))
            .map(drop),
    }
}

/// Runs whose curves would be drawn on top of each other: groups (of run indices) of at least
/// two that are `same` as the group's first, in order.
fn coinciding(runs: &[usize], same: impl Fn(usize, usize) -> bool) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &run in runs {
        match groups.iter_mut().find(|group| same(group[0], run)) {
            Some(group) => group.push(run),
            None => groups.push(vec![run]),
        }
    }
    groups.retain(|group| group.len() > 1);
    groups
}

/// The style a run is drawn in when it coincides with earlier runs: the `rank`-th of a group
/// (0 for the first) is dashed with gaps that grow with the rank, so every colour of the group
/// shows through the ones drawn over it.
fn coinciding_style(style: SeriesStyle, rank: usize) -> SeriesStyle {
    if rank == 0 {
        style
    } else {
        SeriesStyle {
            colour: style.colour,
            dash: Some((6, 6 * rank as u32)),
        }
    }
}

/// The note under a chart naming the curves that coincide, one line per server variant:
/// `tier-2: none = sdk default = tenacity + sdk`.
fn coincidence_notes(report: &RunReport, groups: &[(String, Vec<Vec<usize>>)]) -> Vec<String> {
    let several_servers = report
        .runs
        .iter()
        .any(|run| run.server != report.runs[0].server);
    groups
        .iter()
        .flat_map(|(server, groups)| {
            groups.iter().map(move |group| {
                let names: Vec<&str> = group
                    .iter()
                    .map(|&run| report.runs[run].strategy.as_str())
                    .collect();
                if several_servers {
                    format!("{server}: {}", names.join(" = "))
                } else {
                    names.join(" = ")
                }
            })
        })
        .collect()
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

/// Minutes since the scenario start of a bin starting at `start_ms`.
fn minutes(start_ms: u64) -> f64 {
    start_ms as f64 / 60_000.0
}

const FONT: &str = "sans-serif";

/// Approximate width in pixels of `text` at `font_size` in a sans-serif font: 0.6 em per
/// character, generous for digits and lower case, so text laid out by it is not cut.
pub(crate) fn text_width(text: &str, font_size: u32) -> u32 {
    (text.chars().count() as f64 * f64::from(font_size) * 0.6).ceil() as u32
}

/// One legend entry: a line sample and its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LegendEntry {
    label: String,
    style: SeriesStyle,
    width: u32,
}

const LEGEND_FONT: u32 = 13;
const LEGEND_ROW: u32 = 20;
const LEGEND_SAMPLE: u32 = 28;

/// A legend laid out in columns across a strip of the chart below (or above) the plots, never
/// over them, with notes (e.g. which curves coincide) wrapped under it.
pub(crate) struct LegendStrip {
    entries: Vec<LegendEntry>,
    /// What the notes are, e.g. which curves coincide; drawn above them.
    notes_heading: &'static str,
    notes: Vec<String>,
    width: u32,
    column_width: u32,
    columns: u32,
}

impl LegendStrip {
    pub(crate) fn new(
        entries: Vec<LegendEntry>,
        notes_heading: &'static str,
        notes: Vec<String>,
        width: u32,
    ) -> LegendStrip {
        let widest = entries
            .iter()
            .map(|entry| text_width(&entry.label, LEGEND_FONT))
            .max()
            .unwrap_or(0);
        let column_width = (LEGEND_SAMPLE + 12 + widest + 24).min(width.saturating_sub(20));
        let columns = ((width.saturating_sub(20)) / column_width.max(1)).max(1);
        LegendStrip {
            entries,
            notes_heading,
            notes,
            width,
            column_width,
            columns,
        }
    }

    /// The notes wrapped to the strip's width, as (continuation, text): a continuation line is
    /// drawn indented.
    fn note_lines(&self) -> Vec<(bool, String)> {
        let characters = ((self.width.saturating_sub(40)) as f64 / (f64::from(LEGEND_FONT) * 0.6))
            .floor() as usize;
        self.notes
            .iter()
            .flat_map(|note| {
                crate::layout::wrap(note, characters)
                    .into_iter()
                    .enumerate()
                    .map(|(index, line)| (index > 0, line))
            })
            .collect()
    }

    fn entry_rows(&self) -> u32 {
        (self.entries.len() as u32).div_ceil(self.columns)
    }

    /// The strip's height in pixels.
    pub(crate) fn height(&self) -> u32 {
        let notes = self.note_lines().len() as u32;
        let title = u32::from(!self.notes.is_empty());
        12 + (self.entry_rows() + notes + title) * LEGEND_ROW
    }

    /// The strip as an SVG group at `top`, to append to a chart drawn `self.width` wide: a
    /// `<g class="legend">` of its own, so tests can tell it from the plots.
    pub(crate) fn svg(&self, top: u32, chart: &str) -> Result<String, ReportError> {
        let error = drawing_error(chart.to_owned());
        let mut svg = String::new();
        {
            let area =
                SVGBackend::with_string(&mut svg, (self.width, self.height())).into_drawing_area();
            let font = (FONT, LEGEND_FONT).into_font();
            let text_style = TextStyle::from(font.clone()).pos(Pos::new(HPos::Left, VPos::Center));
            let rows = self.entry_rows().max(1);
            for (index, entry) in self.entries.iter().enumerate() {
                // Filled column by column, so the legend reads down like the table.
                let column = index as u32 / rows;
                let row = index as u32 % rows;
                let x = 10 + (column * self.column_width) as i32;
                let y = (8 + row * LEGEND_ROW + LEGEND_ROW / 2) as i32;
                let stroke = entry.style.colour.stroke_width(entry.width + 1);
                let sample: Vec<(i32, i32)> = match entry.style.dash {
                    None => vec![(x, y), (x + LEGEND_SAMPLE as i32, y)],
                    Some(_) => Vec::new(),
                };
                if sample.is_empty() {
                    let (dash, gap) = entry.style.dash.unwrap_or((4, 4));
                    let mut start = 0;
                    while start < LEGEND_SAMPLE {
                        let end = (start + dash).min(LEGEND_SAMPLE);
                        area.draw(&PathElement::new(
                            vec![(x + start as i32, y), (x + end as i32, y)],
                            stroke,
                        ))
                        .map_err(&error)?;
                        start = end + gap;
                    }
                } else {
                    area.draw(&PathElement::new(sample, stroke))
                        .map_err(&error)?;
                }
                area.draw(&Text::new(
                    entry.label.clone(),
                    (x + LEGEND_SAMPLE as i32 + 8, y),
                    text_style.clone(),
                ))
                .map_err(&error)?;
            }
            let mut y = 8 + self.entry_rows() * LEGEND_ROW + LEGEND_ROW / 2;
            if !self.notes.is_empty() {
                area.draw(&Text::new(
                    self.notes_heading.to_owned(),
                    (10, y as i32),
                    text_style.clone(),
                ))
                .map_err(&error)?;
                y += LEGEND_ROW;
            }
            for (continuation, line) in self.note_lines() {
                let x = if continuation { 30 } else { 10 };
                area.draw(&Text::new(line, (x, y as i32), text_style.clone()))
                    .map_err(&error)?;
                y += LEGEND_ROW;
            }
            area.present().map_err(&error)?;
        }
        Ok(format!(
            "<g class=\"legend\" transform=\"translate(0,{top})\">{}</g>",
            svg_body(&svg)
        ))
    }
}

/// The inside of an SVG document: what lies between its `<svg ...>` tag and `</svg>`.
fn svg_body(svg: &str) -> &str {
    let start = svg
        .find("<svg")
        .and_then(|at| svg[at..].find('>').map(|end| at + end + 1))
        .unwrap_or(0);
    let end = svg.rfind("</svg>").unwrap_or(svg.len());
    &svg[start..end]
}

/// `chart` (an SVG document) with `extra` appended inside its root, before `</svg>`.
fn append_to_svg(chart: String, extra: &str) -> String {
    match chart.rfind("</svg>") {
        Some(end) => format!("{}{extra}\n{}", &chart[..end], &chart[end..]),
        None => chart,
    }
}

/// The width of every chart, in pixels: a page at 1,400 px shows it whole.
const CHART_WIDTH: u32 = 1160;

/// Where the small multiples of a chart go.
pub(crate) struct Grid {
    width: u32,
    rows: usize,
    columns: usize,
    /// The title and every panel, above the legend.
    plots_height: u32,
}

/// The grid of `panels` small multiples: one wide panel alone, else two columns.
fn grid(panels: usize) -> Grid {
    let columns = if panels <= 1 { 1 } else { 2 };
    let rows = panels.max(1).div_ceil(columns);
    let panel_height = if panels <= 1 { 380 } else { 300 };
    Grid {
        width: CHART_WIDTH,
        rows,
        columns,
        plots_height: 40 + rows as u32 * panel_height,
    }
}
