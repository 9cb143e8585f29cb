//! `index.html` of a plan: one self-contained page (no scripts, no external assets) with the
//! verdict, the tier x growth grid coloured by verdict (success and p99 per cell), breaking
//! points per tier, the cost table, and the recommended tier's use of its limits over time as
//! an inline plotters SVG.

use std::fmt::Write;

use plotters::prelude::*;

use crate::document::{COST_COLUMNS, Cell, Plan, TierPlan};

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
td.meets{background:#d4f4dd}td.fails{background:#f8d7da}td.skipped{background:#eee;color:#777}\
.verdict li{margin:.3em 0}small{color:#555}";

/// The page, as a string.
pub fn html(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Capacity plan: {name}</title><style>{STYLE}</style></head><body>\n<h1>Capacity plan: {name}</h1>\n<p>{description}</p>\n<ul class=\"verdict\">",
        name = escape(&plan.scenario.name),
        description = escape(&plan.scenario.description),
    );
    for line in &plan.verdict.lines {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    let _ = write!(
        out,
        "</ul>\n<p><small>Model {}; {} strateg{} on {} seed{} per cell; {} simulations; breaking points bisected to {}. docs/plan.md explains every number.</small></p>\n",
        escape(&plan.scenario.model),
        plan.strategies.len(),
        if plan.strategies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        plan.seeds.len(),
        if plan.seeds.len() == 1 { "" } else { "s" },
        plan.simulations,
        plan.precision
    );
    for (index, rule) in plan.rules.iter().enumerate() {
        let title = if index == 0 {
            format!("Grid (rejections: {})", rule.rule)
        } else {
            format!("Grid if rejected requests count ({})", rule.rule)
        };
        let _ = write!(out, "<h2>{}</h2>\n<table><tr><th>tier</th>", escape(&title));
        for growth in &plan.growth {
            let _ = write!(out, "<th>{growth}</th>");
        }
        out.push_str("<th>breaks at</th><th>binds first</th><th>best there</th></tr>\n");
        for (tier, tier_plan) in plan.tiers.iter().zip(&rule.tiers) {
            let _ = write!(out, "<tr><th>{}</th>", escape(tier));
            for &growth in &plan.growth {
                let cell = rule
                    .cells
                    .iter()
                    .find(|cell| &cell.tier == tier && cell.growth == growth);
                out.push_str(&cell_html(cell));
            }
            let _ = writeln!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                tier_plan.breaking_point.describe(),
                tier_plan
                    .binding_limit
                    .as_deref()
                    .map_or("-".to_owned(), str::to_uppercase),
                escape(tier_plan.best_strategy.as_deref().unwrap_or("-"))
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Monthly cost at list prices (30 days)</h2>\n<table><tr>");
    for column in COST_COLUMNS {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr>\n");
    for row in &plan.cost {
        out.push_str("<tr>");
        for column in row.columns() {
            let _ = write!(out, "<td>{}</td>", escape(&column));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if let Some((cell, tier_plan)) = recommended(plan) {
        let _ = write!(
            out,
            "<h2>{} at {}: use of its limits, minute by minute</h2>\n<p><small>The best strategy ({}), first seed: admitted requests and charged tokens per minute as a share of the tier's RPM and TPM.</small></p>\n{}",
            escape(&cell.tier),
            cell.growth,
            escape(&cell.best),
            utilisation_svg(cell, tier_plan)
        );
    }
    out.push_str("</body></html>\n");
    out
}

fn cell_html(cell: Option<&Cell>) -> String {
    let Some(cell) = cell else {
        return "<td class=\"skipped\">skipped<br><small>failed at a smaller factor</small></td>"
            .to_owned();
    };
    let (success, p99) = cell.best_numbers();
    format!(
        "<td class=\"{}\">{success}<br><small>p99 {p99}</small></td>",
        if cell.meets { "meets" } else { "fails" }
    )
}

/// The cell of the recommended tier at the grid's smallest factor, with its tier.
fn recommended(plan: &Plan) -> Option<(&Cell, &TierPlan)> {
    let rule = plan.rules.first()?;
    let tier = plan.verdict.tier_now.as_deref()?;
    let growth = *plan.growth.first()?;
    let cell = rule
        .cells
        .iter()
        .find(|cell| cell.tier == tier && cell.growth == growth)?;
    let tier_plan = rule.tiers.iter().find(|plan| plan.tier == tier)?;
    Some((cell, tier_plan))
}

/// One line of the chart: its name, colour and (minute, percent of the limit) points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

/// Per-minute use of RPM and TPM as an SVG line chart; empty when it cannot be drawn.
fn utilisation_svg(cell: &Cell, tier: &TierPlan) -> String {
    let mut svg = String::new();
    let series: Vec<Series> = [
        ("RPM", RGBColor(31, 119, 180), tier.limits.rpm, 1usize),
        ("TPM", RGBColor(214, 39, 40), tier.limits.tpm, 2usize),
    ]
    .into_iter()
    .filter_map(|(name, colour, limit, column)| {
        let limit = limit.filter(|limit| *limit > 0)? as f64;
        let points = cell
            .per_minute
            .iter()
            .map(|&(start, requests, tokens)| {
                let used = if column == 1 { requests } else { tokens };
                (start as f64 / 60.0, 100.0 * used as f64 / limit)
            })
            .collect();
        Some((name, colour, points))
    })
    .collect();
    let minutes = cell
        .per_minute
        .last()
        .map_or(1.0, |(start, _, _)| *start as f64 / 60.0 + 1.0);
    let top = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|(_, y)| *y))
        .fold(100.0f64, f64::max)
        * 1.1;
    {
        let backend = SVGBackend::with_string(&mut svg, (720, 320));
        let root = backend.into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(0.0..minutes, 0.0..top)?;
            chart
                .configure_mesh()
                .x_desc("minute")
                .y_desc("% of the limit")
                .draw()?;
            for (name, colour, points) in &series {
                let colour = *colour;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(2),
                    ))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
            root.present()?;
            Ok(())
        })();
        if drawn.is_err() {
            return String::new();
        }
    }
    svg
}
