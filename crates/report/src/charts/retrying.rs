//! Requests in retry over time, one line per run: how many requests had a failed attempt and
//! were waiting or retrying at the end of each time bin. One small multiple per server variant,
//! the legend below the plots.

use plotters::prelude::*;
use results::RunReport;

use super::{
    Chart, FONT, LegendStrip, append_to_svg, axis_top, coincidence_notes, coinciding,
    coinciding_style, draw_line, drawing_error, grid, minutes, run_style, server_groups,
    strategy_legend_entries,
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
    let curve = |index: usize| -> Vec<u64> {
        report.runs[index]
            .bins
            .iter()
            .map(|bin| bin.retrying)
            .collect()
    };

    let servers = server_groups(report);
    let coincide: Vec<(String, Vec<Vec<usize>>)> = servers
        .iter()
        .map(|(server, runs)| {
            (
                server.clone(),
                coinciding(runs, |first, other| curve(first) == curve(other)),
            )
        })
        .collect();
    let layout = grid(servers.len());
    let legend = LegendStrip::new(
        strategy_legend_entries(report),
        "Curves that coincide, drawn dashed over each other:",
        coincidence_notes(report, &coincide),
        layout.width,
    );

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (layout.width, layout.plots_height + legend.height()),
        )
        .into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let (plots, _) = root.split_vertically(layout.plots_height);
        let plots = plots.titled(&title, (FONT, 20)).map_err(&error)?;
        let panels = plots.split_evenly((layout.rows, layout.columns));
        for ((server, runs), (panel, (_, groups))) in
            servers.iter().zip(panels.iter().zip(&coincide))
        {
            let mut chart = ChartBuilder::on(panel)
                .caption(server, (FONT, 15))
                .margin(10)
                .margin_right(20)
                .x_label_area_size(35)
                .y_label_area_size(65)
                .build_cartesian_2d(0.0..end_minutes, 0.0..axis_top(largest))
                .map_err(&error)?;
            chart
                .configure_mesh()
                .x_desc("minutes since start")
                .y_desc("requests in retry")
                .x_labels(6)
                .x_label_formatter(&|minute| units::axis_time(*minute, end_minutes))
                .y_label_formatter(&|value| units::compact(*value))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(&error)?;
            for &index in runs {
                let run = &report.runs[index];
                let rank = groups
                    .iter()
                    .find_map(|group| group.iter().position(|&member| member == index))
                    .unwrap_or(0);
                let style = coinciding_style(run_style(report, run), rank);
                let points: Vec<(f64, f64)> = run
                    .bins
                    .iter()
                    .map(|bin| (minutes(bin.start_ms + bin_width_ms), bin.retrying as f64))
                    .collect();
                draw_line(&mut chart, points, style, 2).map_err(&error)?;
            }
        }
        root.present().map_err(&error)?;
    }
    let svg = append_to_svg(svg, &legend.svg(layout.plots_height, &file_name)?);
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}
