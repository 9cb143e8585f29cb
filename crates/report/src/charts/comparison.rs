//! The strategy comparison: success rate, amplification, p99 latency and goodput side by side,
//! one row of bars per run, the runs grouped under their server variant. One label column serves
//! the four metrics, so the chart grows by a row per run instead of by four panels, and every
//! label is written whole (wrapped, never cut).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use results::{RunReport, RunResult};

use super::{
    CHART_WIDTH, Chart, FONT, axis_top, drawing_error, run_style, server_groups, text_width,
};
use crate::error::ReportError;
use crate::layout::wrap;
use crate::units;

/// One metric column: a title, which way is better, how to read a run's value and how to print
/// it (`None`: the run has no value, e.g. no latency without a success).
struct Metric {
    title: &'static str,
    better: &'static str,
    value: fn(&RunResult) -> Option<f64>,
    text: fn(f64) -> String,
}

const METRICS: [Metric; 4] = [
    Metric {
        title: "success rate",
        better: "higher is better",
        value: |run| Some(run.totals.success_rate() * 100.0),
        text: |value| format!("{value:.1}%"),
    },
    Metric {
        title: "amplification",
        better: "attempts per request, lower is better",
        value: |run| Some(run.totals.amplification()),
        text: |value| format!("{value:.2}x"),
    },
    Metric {
        title: "p99 latency",
        better: "lower is better",
        value: |run| (run.latency.count > 0).then(|| run.latency.p99_us as f64 / 1e6),
        text: |value| units::latency((value * 1e6).round() as u64),
    },
    Metric {
        title: "goodput",
        better: "successes per minute, higher is better",
        value: |run| Some(run.analysis.goodput.requests_per_minute),
        text: units::per_minute,
    },
];

const LABEL_FONT: u32 = 13;
const LINE: u32 = 16;
const TITLE_HEIGHT: u32 = 40;
const HEADER_HEIGHT: u32 = 48;
/// Room right of the longest bar for its value.
const VALUE_ROOM: u32 = 76;

/// One row of the chart: a server heading or a run.
enum Slot {
    Heading(String),
    Run { index: usize, lines: Vec<String> },
}

pub(super) fn chart(report: &RunReport) -> Result<Chart, ReportError> {
    let file_name = "comparison.svg".to_owned();
    let title = "Strategy comparison".to_owned();
    let several_servers = report
        .runs
        .iter()
        .any(|run| run.server != report.runs[0].server);
    let longest = report
        .runs
        .iter()
        .map(|run| text_width(&run.strategy, LABEL_FONT))
        .max()
        .unwrap_or(0);
    let label_area = (longest + 24).clamp(120, 340);
    let label_characters = ((label_area - 24) as f64 / (f64::from(LABEL_FONT) * 0.6)) as usize;
    let mut slots = Vec::new();
    for (server, runs) in server_groups(report) {
        if several_servers {
            slots.push(Slot::Heading(server));
        }
        for index in runs {
            slots.push(Slot::Run {
                index,
                lines: wrap(&report.runs[index].strategy, label_characters),
            });
        }
    }
    let slot_height = |slot: &Slot| match slot {
        Slot::Heading(_) => LINE + 12,
        Slot::Run { lines, .. } => lines.len() as u32 * LINE + 8,
    };
    let height = TITLE_HEIGHT + HEADER_HEIGHT + slots.iter().map(slot_height).sum::<u32>() + 12;
    let column_width = (CHART_WIDTH - label_area - 10) / METRICS.len() as u32;
    let bar_room = column_width.saturating_sub(VALUE_ROOM + 12);

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let left = |size: u32| {
            TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Left, VPos::Center))
        };
        let centre = |size: u32| {
            TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Center))
        };
        root.draw(&Text::new(
            title.clone(),
            ((CHART_WIDTH / 2) as i32, (TITLE_HEIGHT / 2) as i32),
            centre(20),
        ))
        .map_err(&error)?;
        let body_top = TITLE_HEIGHT + HEADER_HEIGHT;
        for (column, metric) in METRICS.iter().enumerate() {
            let x = label_area + column as u32 * column_width;
            let middle = (x + column_width / 2) as i32;
            root.draw(&Text::new(
                metric.title,
                (middle, (TITLE_HEIGHT + 14) as i32),
                centre(14),
            ))
            .map_err(&error)?;
            root.draw(&Text::new(
                metric.better,
                (middle, (TITLE_HEIGHT + 32) as i32),
                centre(11),
            ))
            .map_err(&error)?;
            // The baseline every bar starts from.
            root.draw(&PathElement::new(
                vec![
                    ((x + 8) as i32, body_top as i32),
                    ((x + 8) as i32, (height - 8) as i32),
                ],
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(&error)?;
        }

        let largest: Vec<f64> = METRICS
            .iter()
            .map(|metric| {
                axis_top(
                    report
                        .runs
                        .iter()
                        .filter_map(metric.value)
                        .fold(0.0, f64::max),
                )
            })
            .collect();
        let mut top = body_top;
        for slot in &slots {
            let slot_bottom = top + slot_height(slot);
            match slot {
                Slot::Heading(server) => {
                    root.draw(&PathElement::new(
                        vec![
                            (10, top as i32 + 2),
                            ((CHART_WIDTH - 10) as i32, top as i32 + 2),
                        ],
                        BLACK.mix(0.25).stroke_width(1),
                    ))
                    .map_err(&error)?;
                    let style = TextStyle::from((FONT, 14).into_font().style(FontStyle::Bold))
                        .pos(Pos::new(HPos::Left, VPos::Center));
                    root.draw(&Text::new(
                        server.clone(),
                        (10, (top + slot_height(slot) / 2 + 2) as i32),
                        style,
                    ))
                    .map_err(&error)?;
                }
                Slot::Run { index, lines } => {
                    let run = &report.runs[*index];
                    let style = run_style(report, run);
                    let middle = (top + slot_bottom) as i32 / 2;
                    let first_line = middle - ((lines.len() as i32 - 1) * LINE as i32) / 2;
                    for (number, line) in lines.iter().enumerate() {
                        root.draw(&Text::new(
                            line.clone(),
                            (16, first_line + number as i32 * LINE as i32),
                            left(LABEL_FONT),
                        ))
                        .map_err(&error)?;
                    }
                    for (column, metric) in METRICS.iter().enumerate() {
                        let x = (label_area + column as u32 * column_width + 8) as i32;
                        let Some(value) = (metric.value)(run) else {
                            root.draw(&Text::new("-", (x + 4, middle), left(LABEL_FONT)))
                                .map_err(&error)?;
                            continue;
                        };
                        let length = (value / largest[column] * f64::from(bar_room))
                            .round()
                            .max(0.0) as i32;
                        let bar = [(x, middle - 7), (x + length, middle + 7)];
                        // Past twelve strategies colours repeat: those bars are drawn hollow.
                        let bar_style = match style.dash {
                            None => style.colour.filled(),
                            Some(_) => style.colour.stroke_width(2),
                        };
                        root.draw(&Rectangle::new(bar, bar_style)).map_err(&error)?;
                        root.draw(&Text::new(
                            (metric.text)(value),
                            (x + length + 5, middle),
                            left(LABEL_FONT),
                        ))
                        .map_err(&error)?;
                    }
                }
            }
            top = slot_bottom;
        }
        root.present().map_err(&error)?;
    }
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}
