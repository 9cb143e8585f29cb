//! Requests in retry over time, one line per run: how many requests had a failed attempt and
//! were waiting or retrying at the end of each time bin.

use plotters::prelude::*;
use scenario::RunReport;

use super::{
    Chart, FONT, draw_legend, drawing_error, legend_headroom, legend_line, minutes, run_colour,
    run_label,
};
use crate::error::ReportError;
use crate::units;

pub(super) fn chart(report: &RunReport) -> Result<Chart, ReportError> {
    let file_name = "retries-in-flight.svg".to_owned();
    let title = "Requests in retry over time".to_owned();
    let bin_width_ms = report.scenario.bin_width_ms.max(1);
    let end_minutes = report
        .runs
        .iter()
        .filter_map(|run| run.bins.last())
        .map(|bin| minutes(bin.start_ms + bin_width_ms))
        .fold(1.0 / 60.0, f64::max);
    let largest = report
        .runs
        .iter()
        .flat_map(|run| &run.bins)
        .map(|bin| bin.retrying as f64)
        .fold(0.0, f64::max);

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, (FONT, 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_minutes, 0.0..legend_headroom(largest))
            .map_err(&error)?;
        chart
            .configure_mesh()
            .x_desc("minutes since start")
            .y_desc("requests in retry")
            .x_label_formatter(&|minute| units::axis_time(*minute, end_minutes))
            .y_label_formatter(&|value| units::compact(*value))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(&error)?;
        for (index, run) in report.runs.iter().enumerate() {
            let colour = run_colour(index);
            let points: Vec<(f64, f64)> = run
                .bins
                .iter()
                .map(|bin| (minutes(bin.start_ms + bin_width_ms), bin.retrying as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(&error)?
                .label(run_label(report, run))
                .legend(legend_line(colour, 2));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&error)?;
        root.present().map_err(&error)?;
    }
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}
