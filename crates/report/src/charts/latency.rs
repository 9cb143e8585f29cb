//! The end-to-end latency CDF per run, from the fixed quantiles of the HDR histogram, on a
//! logarithmic latency axis so both the median and the retry tail are readable.

use plotters::prelude::*;
use scenario::RunReport;

use super::{Chart, FONT, draw_legend, drawing_error, legend_line, run_colour, run_label};
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

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, (FONT, 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d((low..high).log_scale(), 0.0..1.0)
            .map_err(&error)?;
        chart
            .configure_mesh()
            .x_desc("latency")
            .y_desc("share of requests")
            .x_label_formatter(&|seconds| units::latency((seconds * 1e6).round() as u64))
            .y_label_formatter(&|share| format!("{:.0}%", share * 100.0))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(&error)?;
        for (index, run) in report.runs.iter().enumerate() {
            if run.analysis.latency_cdf.is_empty() {
                continue;
            }
            let colour = run_colour(index);
            // A step curve: the share reaches each quantile at its latency.
            let mut points = Vec::with_capacity(run.analysis.latency_cdf.len() * 2);
            let mut previous_share = 0.0;
            for point in &run.analysis.latency_cdf {
                let seconds = point.latency_us.max(1) as f64 / 1e6;
                points.push((seconds, previous_share));
                points.push((seconds, point.quantile));
                previous_share = point.quantile;
            }
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(&error)?
                .label(run_label(report, run))
                .legend(legend_line(colour, 2));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(&error)?;
        root.present().map_err(&error)?;
    }
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}
