//! `index.html`: one self-contained page with inline CSS and inline SVG charts, no scripts and
//! no external assets, written as well-formed XHTML-style markup so any XML parser reads it.

use std::fmt::Write;

use results::RunReport;

use crate::charts::Chart;
use crate::details::{DETAIL_HEADERS, detail_rows};
use crate::markdown::{group_terms, limits_line};
use crate::scoreboard::{Scoreboard, column_note};
use crate::units;

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0 auto;
  max-width: 1240px; padding: 24px; color: #1f2328; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
p.meta { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; }
th { background: #f6f8fa; text-align: right; vertical-align: bottom; }
th.label { text-align: left; }
tr.group th { text-align: left; background: #eaeef2; font-size: 1.05em; padding: 5px 6px; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.number.wrap { white-space: normal; }
ul.answers { font-size: 1.05em; }
p.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; }
td.text { text-align: left; }
td.best { background: #dafbe1; font-weight: 600; }
td.label { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; min-width: 10em; max-width: 22em;
  overflow-wrap: anywhere; }
dl.columns { font-size: 0.85em; color: #59636e; display: grid; grid-template-columns: max-content auto;
  gap: 0 1em; }
dl.columns dt { font-weight: 600; }
dl.columns dd { margin: 0; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #59636e; font-size: 0.85em; }
footer { margin-top: 3em; color: #59636e; font-size: 0.8em; }
";

/// The HTML page of a report, embedding `charts` (from [`crate::charts`]) inline.
///
/// ```
/// let report = report::example_report();
/// let charts = report::charts(&report).unwrap();
/// let page = report::html_page(&report, &charts);
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// assert!(page.contains("<svg"));
/// assert!(!page.contains("<script"));
/// ```
pub fn html_page(report: &RunReport, charts: &[Chart]) -> String {
    let scenario = &report.scenario;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n");
    out.push_str("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n");
    out.push_str("<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(out, "<title>ratelab: {}</title>", escape(&scenario.name));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>ratelab: {}</h1>", escape(&scenario.name));
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(&scenario.description));
    }
    let groups = scenario
        .groups
        .iter()
        .map(|group| format!("{} ×{}{}", group.name, group.instances, group_terms(group)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "<p class=\"meta\">model <b>{}</b> · seed {} · {} of traffic + {} drain · clients: {} · time bins of {}</p>",
        escape(&scenario.model),
        scenario.seed,
        units::duration_ms(scenario.duration_ms),
        units::duration_ms(scenario.drain_ms),
        escape(&groups),
        units::duration_ms(scenario.bin_width_ms),
    );
    if !scenario.servers.is_empty() {
        out.push_str("<ul>\n");
        for server in &scenario.servers {
            let _ = writeln!(out, "<li>{}</li>", escape(&limits_line(server)));
        }
        out.push_str("</ul>\n");
    }

    out.push_str("<h2>Scoreboard</h2>\n");
    if report.runs.is_empty() {
        out.push_str("<p>No runs.</p>\n");
    } else {
        if let Some(warning) = crate::work::different_work_warning(report) {
            let _ = writeln!(
                out,
                "<p class=\"warning\"><b>Warning:</b> {}</p>",
                escape(&warning)
            );
        }
        out.push_str("<ul class=\"answers\">\n");
        for answer in crate::answers::answers(report) {
            let _ = writeln!(out, "<li>{}</li>", escape(&answer));
        }
        out.push_str("</ul>\n");
        let board = Scoreboard::of(report);
        scoreboard_table(&mut out, &board);
        let _ = writeln!(
            out,
            "<p class=\"meta\">Best value per column highlighted; {}.</p>",
            escape(&board.marking_rule())
        );
        if let Some(table) = crate::confidence::seeds_table(report) {
            seeds_table(&mut out, &table);
        }
        if let Some(rows) = report
            .tested
            .as_ref()
            .and_then(crate::side_by_side::seen_rows)
        {
            out.push_str(
                "<h2>What the server saw of the client</h2>\n<table class=\"details\">\n<tr>",
            );
            for header in crate::side_by_side::SEEN_HEADERS {
                let _ = write!(out, "<th>{}</th>", escape(header));
            }
            out.push_str("</tr>\n");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    let _ = write!(out, "<td>{}</td>", escape(&cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        let legend = crate::legend::strategy_legend(report);
        if !legend.is_empty() {
            out.push_str("<dl class=\"legend\">\n");
            for (label, spec) in legend {
                let _ = writeln!(
                    out,
                    "<dt>{}</dt><dd><code>{}</code></dd>",
                    escape(&label),
                    escape(&spec)
                );
            }
            out.push_str("</dl>\n");
        }
        for change in crate::legend::server_changes(report) {
            let _ = writeln!(out, "<p class=\"meta\">{}</p>", escape(&change));
        }
    }

    let (timelines, overview): (Vec<&Chart>, Vec<&Chart>) = charts
        .iter()
        .partition(|chart| chart.file_name.starts_with("timeline-"));
    for chart in overview {
        figure(&mut out, chart);
    }
    if !timelines.is_empty() {
        out.push_str("<h2>Timelines against the limits</h2>\n");
        for chart in timelines {
            figure(&mut out, chart);
        }
    }

    if !report.runs.is_empty() {
        out.push_str("<h2>More numbers per run</h2>\n<table class=\"details\">\n<tr>");
        for header in DETAIL_HEADERS {
            match header {
                "run" | "gave up by reason" | "429s by limit" => {
                    let _ = write!(out, "<th class=\"label\">{}</th>", escape(header));
                }
                _ => {
                    let _ = write!(out, "<th>{}</th>", escape(header));
                }
            }
        }
        out.push_str("</tr>\n");
        for row in detail_rows(report) {
            out.push_str("<tr>");
            for (index, cell) in row.iter().enumerate() {
                let class = match DETAIL_HEADERS[index] {
                    "run" => "label",
                    "gave up by reason" | "429s by limit" => "text",
                    // `2575 at 8m00s` and `1.2k (40% of TPM)` may wrap at their spaces.
                    _ => "number wrap",
                };
                let _ = write!(
                    out,
                    "<td class=\"{class}\">{}</td>",
                    escape(&keep_parenthesis_together(cell))
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    let _ = writeln!(
        out,
        "<footer>Generated by ratelab from report.json (format version {}). Every chart is also written as its own .svg file.</footer>",
        report.format_version
    );
    out.push_str("</body>\n</html>\n");
    out
}

/// The scoreboard as one table that fits the page: no server column (each server variant heads
/// its own group of rows), headers that wrap, and goodput's text free to wrap, so at 1,400 px
/// every column shows without a scroll bar.
fn scoreboard_table(out: &mut String, board: &Scoreboard) {
    out.push_str("<table class=\"scoreboard\">\n<tr><th class=\"label\">strategy</th>");
    for column in &board.columns {
        let _ = write!(out, "<th>{}</th>", escape(column.title));
    }
    out.push_str("</tr>\n");
    let mut previous_server: Option<&str> = None;
    for row in &board.rows {
        if board.several_servers && previous_server != Some(row.server.as_str()) {
            let _ = writeln!(
                out,
                "<tr class=\"group\"><th colspan=\"{}\">{}</th></tr>",
                board.columns.len() + 1,
                escape(&row.server)
            );
        }
        previous_server = Some(&row.server);
        out.push_str("<tr>");
        let _ = write!(out, "<td class=\"label\">{}</td>", escape(&row.strategy));
        for (column, cell) in board.columns.iter().zip(&row.cells) {
            let mut class = String::from("number");
            if column.title == "goodput" {
                class.push_str(" wrap");
            }
            if cell.best {
                class.push_str(" best");
            }
            let _ = write!(
                out,
                "<td class=\"{class}\">{}</td>",
                escape(&keep_parenthesis_together(&cell.text))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    let notes: Vec<(&str, &str)> = board
        .columns
        .iter()
        .filter_map(|column| column_note(column.title).map(|note| (column.title, note)))
        .collect();
    if !notes.is_empty() {
        out.push_str("<dl class=\"columns\">\n");
        for (title, note) in notes {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(title), escape(note));
        }
        out.push_str("</dl>\n");
    }
}

/// `217/min (43% of RPM)` with no-break spaces inside the parenthesis, so a narrow cell wraps
/// before it rather than inside it.
fn keep_parenthesis_together(text: &str) -> String {
    match text.split_once(" (") {
        // `note` keeps its closing parenthesis.
        Some((value, note)) => format!("{value} ({}", note.replace(' ', "\u{a0}")),
        None => text.to_owned(),
    }
}

/// The seeds table: each headline metric as `mean ± half-width` over the seeds.
fn seeds_table(out: &mut String, table: &crate::confidence::SeedsTable) {
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", escape(&table.caption()));
    out.push_str("<div class=\"table\"><table class=\"seeds\">\n<tr>");
    if table.several_servers {
        out.push_str("<th>server</th>");
    }
    out.push_str("<th>strategy</th>");
    for title in &table.titles {
        let _ = write!(out, "<th>{}</th>", escape(title));
    }
    out.push_str("</tr>\n");
    for (server, strategy, cells) in &table.rows {
        out.push_str("<tr>");
        if table.several_servers {
            let _ = write!(out, "<td class=\"label\">{}</td>", escape(server));
        }
        let _ = write!(out, "<td class=\"label\">{}</td>", escape(strategy));
        for cell in cells {
            let _ = write!(out, "<td class=\"number\">{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

fn figure(out: &mut String, chart: &Chart) {
    let _ = writeln!(
        out,
        "<figure>\n<h2>{}</h2>\n{}\n<figcaption>{}</figcaption>\n</figure>",
        escape(&chart.title),
        strip_xml_declaration(&chart.svg).trim_end(),
        escape(&chart.file_name)
    );
}

/// An SVG document without its `<?xml ...?>` line, so it can sit inside the page.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(svg, |(_, body)| body.trim_start()),
        None => svg,
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}
