//! The end-to-end latency CDF per run, from the fixed quantiles of the HDR histogram, on a
//! logarithmic latency axis so both the median and the retry tail are readable: one small
//! multiple per server variant, one curve per strategy, the legend below the plots.

use plotters::prelude::*;
use results::{CdfPoint, RunReport};

use super::{
    Chart, FONT, LegendStrip, append_to_svg, coincidence_notes, coinciding, coinciding_style,
    draw_line, drawing_error, grid, run_style, server_groups, strategy_legend_entries,
};
use crate::error::ReportError;
use crate::units;

pub(super) fn chart(report: &RunReport) -> Result<Chart, ReportError> {
    let file_name = "latency-cdf.svg".to_owned();
    let title = "Latency CDF (succeeded requests, retries and waits included)".to_owned();
    let latencies = || {
        report
            .runs
            .iter()
            .flat_map(|run| &run.analysis.latency_cdf)
            .map(|point| point.latency_us.max(1) as f64 / 1e6)
    };
    let fastest = latencies().fold(f64::INFINITY, f64::min);
    let slowest = latencies().fold(0.0, f64::max);
    let (low, high) = if fastest.is_finite() && slowest > fastest {
        (fastest / 1.2, slowest * 1.2)
    } else if fastest.is_finite() {
        (fastest / 2.0, fastest * 2.0)
    } else {
        (0.01, 10.0)
    };

    let servers = server_groups(report);
    let coincide: Vec<(String, Vec<Vec<usize>>)> = servers
        .iter()
        .map(|(server, runs)| {
            let groups = coinciding(runs, |first, other| {
                close_curves(
                    &report.runs[first].analysis.latency_cdf,
                    &report.runs[other].analysis.latency_cdf,
                )
            });
            // A run without successes draws nothing, so it coincides with nothing.
            let groups = groups
                .into_iter()
                .filter(|group| !report.runs[group[0]].analysis.latency_cdf.is_empty())
                .collect();
            (server.clone(), groups)
        })
        .collect();
    let layout = grid(servers.len());
    let legend = LegendStrip::new(
        strategy_legend_entries(report),
        "Curves that coincide (within 3% at every quantile), drawn dashed over each other:",
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
                .y_label_area_size(55)
                .build_cartesian_2d((low..high).log_scale(), 0.0..1.0)
                .map_err(&error)?;
            chart
                .configure_mesh()
                .x_desc("latency")
                .y_desc("share of requests")
                .x_labels(6)
                .x_label_formatter(&|seconds| units::latency((seconds * 1e6).round() as u64))
                .y_label_formatter(&|share| format!("{:.0}%", share * 100.0))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(&error)?;
            for &index in runs {
                let run = &report.runs[index];
                if run.analysis.latency_cdf.is_empty() {
                    continue;
                }
                let rank = groups
                    .iter()
                    .find_map(|group| group.iter().position(|&member| member == index))
                    .unwrap_or(0);
                let style = coinciding_style(run_style(report, run), rank);
                // A step curve: the share reaches each quantile at its latency.
                let mut points = Vec::with_capacity(run.analysis.latency_cdf.len() * 2);
                let mut previous_share = 0.0;
                for point in &run.analysis.latency_cdf {
                    let seconds = point.latency_us.max(1) as f64 / 1e6;
                    points.push((seconds, previous_share));
                    points.push((seconds, point.quantile));
                    previous_share = point.quantile;
                }
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

/// Whether two latency CDFs would look like one curve: at every quantile, latencies within 3%
/// of each other (on the log axis, about a line's width).
fn close_curves(first: &[CdfPoint], other: &[CdfPoint]) -> bool {
    first.len() == other.len()
        && first.iter().zip(other).all(|(a, b)| {
            let (a, b) = (a.latency_us as f64, b.latency_us as f64);
            (a - b).abs() <= 0.03 * a.max(b)
        })
}
