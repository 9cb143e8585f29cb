//! The terminal summary: an aligned scoreboard with the best value per column marked by `*`,
//! and in bold green when colours are on (the CLI turns them on only on a TTY).

use std::fmt::Write;

use scenario::RunReport;

use crate::scoreboard::Scoreboard;

/// Whether to emit ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Plain text: for pipes, files and tests.
    Never,
    /// ANSI codes: for a terminal.
    Always,
}

const BOLD_GREEN: &str = "\x1b[1;32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The scoreboard as an aligned text table, headed by the scenario name and seed.
///
/// ```
/// use report::{Colour, example_report, terminal_table};
///
/// let table = terminal_table(&example_report(), Colour::Never);
/// assert!(table.starts_with("example (seed 7)\n"));
/// assert!(table.contains("retry-after"));
/// // The best value of a column is marked with a star.
/// assert!(table.contains('*'));
/// assert!(!table.contains('\x1b'));
/// ```
pub fn terminal_table(report: &RunReport, colour: Colour) -> String {
    let board = Scoreboard::of(report);
    let mut out = match crate::confidence::seed_count(report) {
        Some(seeds) => format!(
            "{} (seed {} and {} more)\n",
            report.scenario.name,
            report.scenario.seed,
            seeds - 1
        ),
        None => format!("{} (seed {})\n", report.scenario.name, report.scenario.seed),
    };
    let mut header: Vec<String> = Vec::new();
    if board.several_servers {
        header.push("server".to_owned());
    }
    header.push("strategy".to_owned());
    header.extend(board.columns.iter().map(|column| column.title.to_owned()));
    let label_columns = if board.several_servers { 2 } else { 1 };

    // Cells as (text, best); the star is part of the text so widths line up without colour.
    let mut rows: Vec<Vec<(String, bool)>> =
        vec![header.iter().map(|title| (title.clone(), false)).collect()];
    for row in &board.rows {
        let mut cells = Vec::new();
        if board.several_servers {
            cells.push((row.server.clone(), false));
        }
        cells.push((row.strategy.clone(), false));
        for cell in &row.cells {
            let text = if cell.best {
                format!("{}*", cell.text)
            } else {
                format!("{} ", cell.text)
            };
            cells.push((text, cell.best));
        }
        rows.push(cells);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].0.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (row_index, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (column, ((text, best), width)) in row.iter().zip(&widths).enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let padded = if column < label_columns {
                format!("{text:<width$}")
            } else if row_index == 0 {
                // Headers align with the numbers, not with the star column after them.
                format!("{text:>w$} ", w = width.saturating_sub(1))
            } else {
                format!("{text:>width$}")
            };
            // Trailing spaces go before any colour code so coloured and plain lines match.
            let padded = if column + 1 == row.len() {
                padded.trim_end().to_owned()
            } else {
                padded
            };
            match (colour, *best, row_index == 0) {
                (Colour::Always, true, _) => {
                    let _ = write!(line, "{BOLD_GREEN}{padded}{RESET}");
                }
                (Colour::Always, false, true) => {
                    let _ = write!(line, "{DIM}{padded}{RESET}");
                }
                _ => line.push_str(&padded),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(out, "* best in column; {}", board.marking_rule());
    if let Some(table) = crate::confidence::seeds_table(report) {
        seeds_table(&mut out, &table);
    }
    for (label, spec) in crate::legend::strategy_legend(report) {
        let _ = writeln!(out, "{label}: {spec}");
    }
    if let Some(warning) = crate::work::different_work_warning(report) {
        out.push_str("Warning: ");
        out.push_str(&warning);
        out.push('\n');
    }
    for answer in crate::answers::answers(report) {
        out.push_str(&answer);
        out.push('\n');
    }
    out
}

/// The seeds table as aligned text: labels left, intervals right.
fn seeds_table(out: &mut String, table: &crate::confidence::SeedsTable) {
    let _ = writeln!(out, "{}", table.caption());
    let label_columns = if table.several_servers { 2 } else { 1 };
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(table.rows.len() + 1);
    let mut header: Vec<String> = Vec::new();
    if table.several_servers {
        header.push("server".to_owned());
    }
    header.push("strategy".to_owned());
    header.extend(table.titles.iter().map(|title| (*title).to_owned()));
    rows.push(header);
    for (server, strategy, cells) in &table.rows {
        let mut row = Vec::new();
        if table.several_servers {
            row.push(server.clone());
        }
        row.push(strategy.clone());
        row.extend(cells.iter().cloned());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (text, width))| {
                if column < label_columns {
                    format!("{text:<width$}")
                } else {
                    format!("{text:>width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
}
