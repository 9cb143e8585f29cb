//! The strategy comparison: success rate, amplification, p99 latency and goodput, one
//! horizontal bar per run in each of four panels.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use scenario::{RunReport, RunResult};

use super::{Chart, FONT, axis_top, drawing_error, run_colour, run_label};
use crate::error::ReportError;
use crate::units;

/// One panel: a title, how to read a run's value and how to print it.
struct Panel {
    title: &'static str,
    value: fn(&RunResult) -> f64,
    text: fn(f64) -> String,
}

const PANELS: [Panel; 4] = [
    Panel {
        title: "success rate (higher is better)",
        value: |run| run.totals.success_rate() * 100.0,
        text: |value| format!("{value:.1}%"),
    },
    Panel {
        title: "amplification: attempts per request (lower is better)",
        value: |run| run.totals.amplification(),
        text: |value| format!("{value:.2}x"),
    },
    Panel {
        title: "p99 latency, seconds (lower is better)",
        value: |run| run.latency.p99_us as f64 / 1e6,
        text: |value| units::latency((value * 1e6).round() as u64),
    },
    Panel {
        title: "goodput: successes per minute (higher is better)",
        value: |run| run.analysis.goodput.requests_per_minute,
        text: units::per_minute,
    },
];

pub(super) fn chart(report: &RunReport) -> Result<Chart, ReportError> {
    let file_name = "comparison.svg".to_owned();
    let title = "Strategy comparison".to_owned();
    let labels: Vec<String> = report
        .runs
        .iter()
        .map(|run| run_label(report, run))
        .collect();
    let longest_label = labels
        .iter()
        .map(|label| label.chars().count())
        .max()
        .unwrap_or(0);
    // The naive font estimate is about 7px per character at 13px.
    let label_area = (longest_label as u32 * 7 + 16).clamp(60, 300);
    let rows = report.runs.len();
    let panel_height = (rows as u32 * 34 + 70).max(150);

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (960, panel_height * 2 + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let root = root.titled(&title, (FONT, 20)).map_err(&error)?;
        let areas = root.split_evenly((2, 2));
        for (panel, area) in PANELS.iter().zip(&areas) {
            // The first run is drawn at the top, in table order.
            let values: Vec<f64> = report.runs.iter().map(|run| (panel.value)(run)).collect();
            let largest = values.iter().copied().fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(panel.title, (FONT, 14))
                .margin(8)
                .margin_right(40)
                .x_label_area_size(25)
                .y_label_area_size(label_area)
                // Integer ranges are inclusive as discrete coordinates: `0..rows - 1` has `rows` slots.
                .build_cartesian_2d(0.0..axis_top(largest) * 1.1, (0..rows - 1).into_segmented())
                .map_err(&error)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows)
                .y_label_formatter(&|value| match value {
                    // Slots count from the bottom; the first run sits in the top slot.
                    SegmentValue::CenterOf(slot) => labels
                        .get(rows.saturating_sub(slot + 1))
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                })
                .x_labels(5)
                .x_label_formatter(&|value| units::compact(*value))
                .light_line_style(WHITE.mix(0.0))
                .label_style((FONT, 13))
                .draw()
                .map_err(&error)?;
            chart
                .draw_series(values.iter().enumerate().map(|(index, &value)| {
                    let slot = rows - 1 - index;
                    let mut bar = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(slot)),
                            (value, SegmentValue::Exact(slot + 1)),
                        ],
                        run_colour(index).filled(),
                    );
                    bar.set_margin(5, 5, 0, 0);
                    bar
                }))
                .map_err(&error)?;
            chart
                .draw_series(values.iter().enumerate().map(|(index, &value)| {
                    Text::new(
                        format!(" {}", (panel.text)(value)),
                        (value, SegmentValue::CenterOf(rows - 1 - index)),
                        TextStyle::from((FONT, 13).into_font())
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )
                }))
                .map_err(&error)?;
        }
        root.present().map_err(&error)?;
    }
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}
