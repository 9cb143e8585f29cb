//! `summary.md`: GitHub-flavoured Markdown that fits a PR comment or `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write;

use results::{RunReport, ScenarioSummary};

use crate::details::{DETAIL_HEADERS, detail_rows};
use crate::scoreboard::{Scoreboard, column_note};
use crate::units;

/// The Markdown summary of a report: the scenario in one line, the scoreboard with the best
/// value per column in bold, and the remaining numbers folded in a `<details>` block.
///
/// ```
/// let markdown = report::summary_markdown(&report::example_report());
/// assert!(markdown.starts_with("### ratelab: example\n"));
/// assert!(markdown.contains("| strategy |"));
/// ```
pub fn summary_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let scenario = &report.scenario;
    let _ = writeln!(out, "### ratelab: {}\n", escape(&scenario.name));
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "{}\n", escape(&scenario.description));
    }
    let _ = writeln!(out, "{}\n", scenario_line(scenario));
    for server in &scenario.servers {
        let _ = writeln!(out, "- {}", escape(&limits_line(server)));
    }
    if !scenario.servers.is_empty() {
        out.push('\n');
    }
    if report.runs.is_empty() {
        out.push_str("No runs.\n");
        return out;
    }
    if let Some(warning) = crate::work::different_work_warning(report) {
        let _ = writeln!(out, "> **Warning:** {}\n", escape(&warning));
    }
    for answer in crate::answers::answers(report) {
        let _ = writeln!(out, "- {}", escape(&answer));
    }
    out.push('\n');
    if let Some(rows) = report
        .tested
        .as_ref()
        .and_then(crate::side_by_side::seen_rows)
    {
        out.push_str("What the server saw of the client (`grading.json` has every field):\n\n");
        let _ = writeln!(out, "| {} |", crate::side_by_side::SEEN_HEADERS.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            "---|".repeat(crate::side_by_side::SEEN_HEADERS.len())
        );
        for row in rows {
            let cells: Vec<String> = row.iter().map(|cell| escape(cell)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    let board = Scoreboard::of(report);
    scoreboard_table(&mut out, &board);
    let _ = write!(
        out,
        "\nBest value per column in **bold**; {}.\n\n",
        board.marking_rule()
    );
    if let Some(table) = crate::confidence::seeds_table(report) {
        seeds_table(&mut out, &table);
    }
    let legend = crate::legend::strategy_legend(report);
    if !legend.is_empty() {
        out.push_str("Strategies:\n\n");
        for (label, spec) in legend {
            let _ = writeln!(out, "- **{}**: `{}`", escape(&label), spec);
        }
        out.push('\n');
    }
    for change in crate::legend::server_changes(report) {
        let _ = writeln!(out, "{}\n", escape(&change));
    }
    details_table(&mut out, report);
    out
}

/// `**model** · seed 7 · 1m00s of traffic + 2m00s drain · app x2`.
pub(crate) fn scenario_line(scenario: &ScenarioSummary) -> String {
    let groups = scenario
        .groups
        .iter()
        .map(|group| format!("{} x{}{}", group.name, group.instances, group_terms(group)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "**{}** · seed {} · {} of traffic + {} drain · clients: {}",
        escape(&scenario.model),
        scenario.seed,
        units::duration_ms(scenario.duration_ms),
        units::duration_ms(scenario.drain_ms),
        escape(&groups)
    )
}

/// What a group's requests are held to, after its name: ` (batch of 2000, deadline 2m00s)`,
/// or nothing for a group with neither.
pub(crate) fn group_terms(group: &results::GroupSummary) -> String {
    let terms: Vec<String> = [
        group
            .batch_requests
            .map(|requests| format!("batch of {requests}")),
        group
            .deadline_ms
            .map(|millis| format!("deadline {}", units::duration_ms(millis))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if terms.is_empty() {
        String::new()
    } else {
        format!(" ({})", terms.join(", "))
    }
}

/// `tier-1: 500 RPM · 200000 TPM · 10000 RPD`.
pub(crate) fn limits_line(server: &results::ServerSummary) -> String {
    let limits: Vec<String> = [
        (server.limits.rpm, "RPM"),
        (server.limits.tpm, "TPM"),
        (server.limits.rpd, "RPD"),
        (server.limits.tpd, "TPD"),
    ]
    .into_iter()
    .filter_map(|(limit, name)| limit.map(|limit| format!("{limit} {name}")))
    .collect();
    let limits = if limits.is_empty() {
        "no limits".to_owned()
    } else {
        limits.join(" · ")
    };
    format!("{}: {limits}", server.label)
}

/// The scoreboard as Markdown: one table per server variant under its name when the report
/// compares several (a server column would repeat it on every row and widen the table), then
/// a line explaining the columns that need it.
fn scoreboard_table(out: &mut String, board: &Scoreboard) {
    let mut header = vec!["strategy".to_owned()];
    let mut align = vec![":--"];
    for column in &board.columns {
        header.push(column.title.to_owned());
        align.push("--:");
    }
    let mut previous_server: Option<&str> = None;
    for row in &board.rows {
        if previous_server != Some(row.server.as_str()) {
            if board.several_servers {
                if previous_server.is_some() {
                    out.push('\n');
                }
                let _ = writeln!(out, "**{}**\n", escape(&row.server));
            }
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let _ = writeln!(out, "|{}|", align.join("|"));
        }
        previous_server = Some(&row.server);
        let mut cells = vec![format!("`{}`", row.strategy.replace('`', "'"))];
        for cell in &row.cells {
            let text = escape(&cell.text);
            cells.push(if cell.best {
                format!("**{text}**")
            } else {
                text
            });
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let notes: Vec<String> = board
        .columns
        .iter()
        .filter_map(|column| {
            column_note(column.title).map(|note| format!("*{}*: {}", column.title, escape(note)))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}.", notes.join("; "));
    }
}

/// The seeds table: each headline metric as `mean ± half-width` over the seeds.
fn seeds_table(out: &mut String, table: &crate::confidence::SeedsTable) {
    let _ = writeln!(out, "{}\n", escape(&table.caption()));
    let mut header = Vec::new();
    let mut align = Vec::new();
    if table.several_servers {
        header.push("server".to_owned());
        align.push(":--");
    }
    header.push("strategy".to_owned());
    align.push(":--");
    for title in &table.titles {
        header.push(escape(title));
        align.push("--:");
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", align.join("|"));
    for (server, strategy, cells) in &table.rows {
        let mut row = Vec::new();
        if table.several_servers {
            row.push(escape(server));
        }
        row.push(format!("`{}`", strategy.replace('`', "'")));
        row.extend(cells.iter().map(|cell| escape(cell)));
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn details_table(out: &mut String, report: &RunReport) {
    out.push_str("<details><summary>More numbers per run</summary>\n\n");
    let _ = writeln!(out, "| {} |", DETAIL_HEADERS.join(" | "));
    let align: Vec<&str> = DETAIL_HEADERS
        .iter()
        .enumerate()
        .map(|(index, _)| if index == 0 { ":--" } else { "--:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in detail_rows(report) {
        let cells: Vec<String> = row.iter().map(|cell| escape(cell)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push_str("\n</details>\n");
}

/// Escapes the characters that would break a table cell or start Markdown formatting.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                escaped.push('\\');
                escaped.push(character);
            }
            '\n' => escaped.push(' '),
            _ => escaped.push(character),
        }
    }
    escaped
}
