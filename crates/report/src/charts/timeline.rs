//! Per run: offered attempts, admitted attempts and 429s per minute against the RPM limit, and
//! charged tokens per minute against the TPM limit, with one legend for both panels below them.

use plotters::prelude::*;
use results::{RunReport, RunResult};

use super::{
    CHART_WIDTH, Chart, FONT, LegendEntry, LegendStrip, SeriesStyle, append_to_svg, axis_top,
    drawing_error, minutes, run_file_stem, run_label,
};
use crate::error::ReportError;
use crate::scoreboard::server_limits;
use crate::units;

const OFFERED: RGBColor = RGBColor(31, 119, 180);
const ADMITTED: RGBColor = RGBColor(44, 160, 44);
const REJECTED: RGBColor = RGBColor(214, 39, 40);
const LIMIT: RGBColor = RGBColor(60, 60, 60);
const TOKENS: RGBColor = RGBColor(148, 103, 189);
/// The dash of a limit line.
const LIMIT_DASH: (u32, u32) = (6, 4);

pub(super) fn chart(
    report: &RunReport,
    index: usize,
    run: &RunResult,
) -> Result<Chart, ReportError> {
    let file_name = format!("timeline-{}.svg", run_file_stem(index, run));
    let title = format!("Timeline: {}", run_label(report, run));
    let limits = server_limits(report, &run.server);
    let bin_width_ms = report.scenario.bin_width_ms.max(1);
    let scale = 60_000.0 / bin_width_ms as f64;
    let end_minutes = run
        .bins
        .last()
        .map_or(1.0, |bin| minutes(bin.start_ms + bin_width_ms));
    let per_minute = |count: u64| count as f64 * scale;
    // Each bin is drawn flat from its start to its end: the rate held over the bin.
    let steps = |value: &dyn Fn(&results::TimeBin) -> u64| -> Vec<(f64, f64)> {
        run.bins
            .iter()
            .flat_map(|bin| {
                let rate = per_minute(value(bin));
                [
                    (minutes(bin.start_ms), rate),
                    (minutes(bin.start_ms + bin_width_ms), rate),
                ]
            })
            .collect()
    };

    let offered = steps(&|bin| bin.attempts);
    let admitted = steps(&|bin| bin.attempts.saturating_sub(bin.rate_limited));
    let rejected = steps(&|bin| bin.rate_limited);
    let tokens = steps(&|bin| bin.admitted_tokens);
    let rpm = limits.and_then(|limits| limits.rpm).map(|rpm| rpm as f64);
    let tpm = limits.and_then(|limits| limits.tpm).map(|tpm| tpm as f64);

    let entry = |label: &str, colour: RGBColor, dash: Option<(u32, u32)>, width: u32| LegendEntry {
        label: label.to_owned(),
        style: SeriesStyle { colour, dash },
        width,
    };
    let mut entries = vec![
        entry("admitted attempts", ADMITTED, None, 2),
        entry("offered attempts", OFFERED, None, 1),
        entry("429s", REJECTED, None, 2),
    ];
    if let Some(rpm) = rpm {
        entries.push(entry(
            &format!("RPM limit {}", units::compact(rpm)),
            LIMIT,
            Some(LIMIT_DASH),
            2,
        ));
    }
    entries.push(entry("charged tokens", TOKENS, None, 2));
    if let Some(tpm) = tpm {
        entries.push(entry(
            &format!("TPM limit {}", units::compact(tpm)),
            LIMIT,
            Some(LIMIT_DASH),
            2,
        ));
    }
    let legend = LegendStrip::new(entries, "", Vec::new(), CHART_WIDTH);
    let plots_height = 560;

    let error = drawing_error(file_name.clone());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, plots_height + legend.height()))
            .into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let (root, _) = root.split_vertically(plots_height);
        // A long server and strategy label shrinks the title rather than running off the edge.
        let title_size = (f64::from(CHART_WIDTH - 40) / (0.6 * title.chars().count() as f64))
            .floor()
            .clamp(10.0, 20.0);
        let root = root.titled(&title, (FONT, title_size)).map_err(&error)?;
        let (top, bottom) = root.split_vertically(300);
        let request_lines = [
            Line {
                colour: ADMITTED,
                width: 2,
                filled: true,
                points: admitted,
            },
            Line {
                colour: OFFERED,
                width: 1,
                filled: false,
                points: offered,
            },
            Line {
                colour: REJECTED,
                width: 2,
                filled: false,
                points: rejected,
            },
        ];
        let requests = Panel {
            end_minutes,
            y_desc: "attempts per minute",
            x_desc: "",
            limit: rpm.map(|rpm| ("RPM", rpm)),
        };
        requests.draw(&top, &request_lines).map_err(&error)?;
        let token_lines = [Line {
            colour: TOKENS,
            width: 2,
            filled: false,
            points: tokens,
        }];
        let tokens = Panel {
            end_minutes,
            y_desc: "tokens per minute",
            x_desc: "minutes since start",
            limit: tpm.map(|tpm| ("TPM", tpm)),
        };
        tokens.draw(&bottom, &token_lines).map_err(&error)?;
        root.present().map_err(&error)?;
    }
    let svg = append_to_svg(svg, &legend.svg(plots_height, &file_name)?);
    Ok(Chart {
        file_name,
        title,
        svg,
    })
}

/// One series of a panel.
struct Line {
    colour: RGBColor,
    width: u32,
    filled: bool,
    points: Vec<(f64, f64)>,
}

/// A rate-over-time panel with an optional dashed limit line.
struct Panel {
    end_minutes: f64,
    y_desc: &'static str,
    x_desc: &'static str,
    limit: Option<(&'static str, f64)>,
}

impl Panel {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        lines: &[Line],
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let largest = lines
            .iter()
            .flat_map(|line| &line.points)
            .map(|point| point.1)
            .chain(self.limit.map(|limit| limit.1))
            .fold(0.0, f64::max);
        let end_minutes = self.end_minutes;
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_minutes, 0.0..axis_top(largest))?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .x_label_formatter(&|minute| units::axis_time(*minute, end_minutes))
            .y_label_formatter(&|value| units::compact(*value))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for line in lines {
            if line.filled {
                chart.draw_series(AreaSeries::new(
                    line.points.iter().copied(),
                    0.0,
                    line.colour.mix(0.25),
                ))?;
            }
            chart.draw_series(LineSeries::new(
                line.points.iter().copied(),
                line.colour.stroke_width(line.width),
            ))?;
        }
        if let Some((_, limit)) = self.limit {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, limit), (end_minutes, limit)],
                LIMIT_DASH.0,
                LIMIT_DASH.1,
                LIMIT.stroke_width(2),
            ))?;
        }
        Ok(())
    }
}
