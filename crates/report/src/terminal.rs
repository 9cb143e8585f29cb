//! The terminal summary: an aligned scoreboard with the best value per column marked by `*`,
//! and in bold green when colours are on (the CLI turns them on only on a TTY).
//!
//! By default the table fits [`DEFAULT_WIDTH`] columns: it shows the columns a reader needs
//! first, names each server variant once above its runs instead of in a column, and wraps long
//! strategy labels instead of cutting them. `--wide` ([`TableOptions::wide`]) shows every column
//! with the server on every row, whatever the width.

use std::fmt::Write;

use results::RunReport;

use crate::layout::{wrap, wrap_hanging};
use crate::scoreboard::{Scoreboard, column_note};

/// Whether to emit ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Plain text: for pipes, files and tests.
    Never,
    /// ANSI codes: for a terminal.
    Always,
}

/// The width the default table fits in.
pub const DEFAULT_WIDTH: usize = 100;

/// How the terminal table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Colours on or off.
    pub colour: Colour,
    /// Every column, the server on every row, no width limit.
    pub wide: bool,
    /// The width the compact table fits in (ignored when `wide`).
    pub width: usize,
}

impl TableOptions {
    /// The compact table at [`DEFAULT_WIDTH`].
    pub fn compact(colour: Colour) -> TableOptions {
        TableOptions {
            colour,
            wide: false,
            width: DEFAULT_WIDTH,
        }
    }
}

/// The columns of the compact table, in the order shown; batch columns appear only when the
/// scoreboard has them. Success, gave up and unfinished add up to every request.
const COMPACT_COLUMNS: [&str; 9] = [
    "success",
    "gave up",
    "unfinished",
    "not started",
    "makespan",
    "p99",
    "amplif.",
    "429s",
    "goodput",
];

/// Compact columns left out, in this order, when even the narrowest labels leave the table too
/// wide (a batch's columns, or cells that carry confidence intervals); `--wide` still shows
/// them. The columns that account for every request (success, gave up, unfinished, not
/// started) and goodput always stay.
const DROP_ORDER: [&str; 4] = ["429s", "p99", "makespan", "amplif."];

/// The narrowest the strategy column gets before columns are dropped instead.
const MIN_LABEL_WIDTH: usize = 16;

const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The compact scoreboard as an aligned text table, headed by the scenario name and seed, that
/// fits [`DEFAULT_WIDTH`] columns; see [`terminal_table_with`] for `--wide`.
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
    terminal_table_with(report, TableOptions::compact(colour))
}

/// The scoreboard as text, compact or wide.
///
/// ```
/// use report::{Colour, TableOptions, example_report, terminal_table_with};
///
/// let report = example_report();
/// let wide = terminal_table_with(&report, TableOptions { wide: true, ..TableOptions::compact(Colour::Never) });
/// let header = |table: &str| table.lines().nth(1).unwrap().to_owned();
/// assert!(header(&wide).contains("early retries"));
/// let compact = terminal_table_with(&report, TableOptions::compact(Colour::Never));
/// assert!(!header(&compact).contains("early retries"));
/// assert!(compact.contains("--wide adds: requests, attempts, p50, early retries"));
/// ```
pub fn terminal_table_with(report: &RunReport, options: TableOptions) -> String {
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
    let layout = if options.wide {
        wide_layout(&board)
    } else {
        compact_layout(report, &board, options.width)
    };
    out.push_str(&layout.render(options.colour));
    let _ = writeln!(out, "* best in column; {}", board.marking_rule());
    let notes: Vec<String> = layout
        .titles
        .iter()
        .filter_map(|title| column_note(title).map(|note| format!("{title}: {note}")))
        .collect();
    if !notes.is_empty() {
        let line = notes.join("; ");
        if options.wide {
            let _ = writeln!(out, "{line}");
        } else {
            for part in wrap(&line, options.width) {
                let _ = writeln!(out, "{part}");
            }
        }
    }
    if !layout.hidden.is_empty() {
        let _ = writeln!(out, "--wide adds: {}", layout.hidden.join(", "));
    }
    if let Some(table) = crate::confidence::seeds_table(report) {
        seeds_table(&mut out, &table, options);
    }
    for (label, spec) in crate::legend::strategy_legend(report) {
        let _ = writeln!(out, "{label}: {spec}");
    }
    for change in crate::legend::server_changes(report) {
        let _ = writeln!(out, "{change}");
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

/// Seeds-table columns left out, in this order, when the compact table would be wider than
/// allowed; `--wide` shows them all. Success stays.
const SEEDS_DROP_ORDER: [&str; 6] = [
    "early retries",
    "gave up",
    "429 share",
    "p50",
    "goodput",
    "amplif.",
];

/// The seeds table as aligned text: labels left, intervals right. Compact, each server variant
/// heads its own rows and columns are dropped (and named) until it fits `options.width`; wide,
/// every column with the server on each row.
fn seeds_table(out: &mut String, table: &crate::confidence::SeedsTable, options: TableOptions) {
    let grouped = table.several_servers && !options.wide;
    let server_column = table.several_servers && options.wide;
    let label_columns = if server_column { 2 } else { 1 };
    let indent = if grouped { "  " } else { "" };
    let mut shown: Vec<usize> = (0..table.titles.len()).collect();
    let mut hidden: Vec<&str> = Vec::new();
    let render = |shown: &[usize]| -> Vec<String> {
        let mut rows: Vec<(Option<&str>, Vec<String>)> = Vec::with_capacity(table.rows.len() + 1);
        let mut header: Vec<String> = Vec::new();
        if server_column {
            header.push("server".to_owned());
        }
        header.push("strategy".to_owned());
        header.extend(shown.iter().map(|&index| table.titles[index].to_owned()));
        rows.push((None, header));
        let mut last_server: Option<&str> = None;
        for (server, strategy, cells) in &table.rows {
            let mut row = Vec::new();
            if server_column {
                row.push(server.clone());
            }
            row.push(strategy.clone());
            row.extend(shown.iter().map(|&index| cells[index].clone()));
            let heading =
                (grouped && last_server != Some(server.as_str())).then_some(server.as_str());
            last_server = Some(server);
            rows.push((heading, row));
        }
        let widths: Vec<usize> = (0..rows[0].1.len())
            .map(|column| {
                rows.iter()
                    .map(|(_, row)| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut lines = Vec::new();
        for (heading, row) in &rows {
            if let Some(heading) = heading {
                lines.push((*heading).to_owned());
            }
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
            lines.push(format!("{indent}{}", cells.join("  ").trim_end()));
        }
        lines
    };
    let mut lines = render(&shown);
    if !options.wide {
        for title in SEEDS_DROP_ORDER {
            if lines.iter().all(|line| width_of(line) <= options.width) {
                break;
            }
            if let Some(position) = shown.iter().position(|&index| table.titles[index] == title) {
                shown.remove(position);
                hidden.push(title);
                lines = render(&shown);
            }
        }
        for part in wrap(&table.caption(), options.width) {
            let _ = writeln!(out, "{part}");
        }
    } else {
        let _ = writeln!(out, "{}", table.caption());
    }
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    if !hidden.is_empty() {
        let _ = writeln!(out, "--wide adds over seeds: {}", hidden.join(", "));
    }
}

/// A table ready to print: labels, the chosen number columns, and where server headings go.
struct Layout {
    /// Titles of the number columns shown.
    titles: Vec<String>,
    /// Titles of the scoreboard columns left out.
    hidden: Vec<String>,
    /// Label columns: `server` and `strategy` (wide), or `strategy` alone (compact).
    label_titles: Vec<&'static str>,
    /// Per row: its server heading when it starts a new server (compact only), its label cells
    /// each as wrapped lines, and its number cells as (text with star or space, best).
    rows: Vec<LayoutRow>,
    /// The width of each label column (wrapped labels fit it).
    label_widths: Vec<usize>,
    /// Spaces before each line of the table body and header.
    indent: usize,
}

struct LayoutRow {
    heading: Option<String>,
    labels: Vec<Vec<String>>,
    cells: Vec<(String, bool)>,
}

/// The number cells of row `row` in the columns `shown`, each as (text with a star or a space,
/// best). With `report`, goodput reads as its share of the binding limit alone, to save width.
fn number_cells(
    board: &Scoreboard,
    report: Option<&RunReport>,
    row: usize,
    shown: &[usize],
) -> Vec<(String, bool)> {
    shown
        .iter()
        .map(|&column| {
            let cell = &board.rows[row].cells[column];
            let text = match report {
                Some(report) if board.columns[column].title == "goodput" => {
                    crate::scoreboard::goodput_share_text(report, &report.runs[row])
                }
                _ => cell.text.clone(),
            };
            // The star is part of the text so widths line up without colour.
            let text = if cell.best {
                format!("{text}*")
            } else {
                format!("{text} ")
            };
            (text, cell.best)
        })
        .collect()
}

fn wide_layout(board: &Scoreboard) -> Layout {
    let shown: Vec<usize> = (0..board.columns.len()).collect();
    let mut label_titles = Vec::new();
    if board.several_servers {
        label_titles.push("server");
    }
    label_titles.push("strategy");
    let rows: Vec<LayoutRow> = board
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let mut labels = Vec::new();
            if board.several_servers {
                labels.push(vec![row.server.clone()]);
            }
            labels.push(vec![row.strategy.clone()]);
            LayoutRow {
                heading: None,
                labels,
                cells: number_cells(board, None, index, &shown),
            }
        })
        .collect();
    let label_widths = (0..label_titles.len())
        .map(|column| {
            rows.iter()
                .map(|row| width_of(&row.labels[column][0]))
                .chain([label_titles[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    Layout {
        titles: board.columns.iter().map(|c| c.title.to_owned()).collect(),
        hidden: Vec::new(),
        label_titles,
        rows,
        label_widths,
        indent: 0,
    }
}

fn compact_layout(report: &RunReport, board: &Scoreboard, width: usize) -> Layout {
    let mut shown: Vec<usize> = COMPACT_COLUMNS
        .iter()
        .filter_map(|title| board.columns.iter().position(|c| c.title == *title))
        .collect();
    let indent = if board.several_servers { 2 } else { 0 };
    let longest_label = board
        .rows
        .iter()
        .map(|row| width_of(&row.strategy))
        .chain(["strategy".len()])
        .max()
        .unwrap_or(0);
    let number_widths = |shown: &[usize]| -> usize {
        shown
            .iter()
            .map(|&column| {
                let values = (0..board.rows.len())
                    .flat_map(|row| number_cells(board, Some(report), row, &[column]))
                    .map(|(text, _)| width_of(&text));
                // Headers align with the numbers, not with the star column after them.
                values
                    .chain([board.columns[column].title.len() + 1])
                    .max()
                    .unwrap_or(0)
                    + 2
            })
            .sum()
    };
    let mut drops = DROP_ORDER.iter();
    let label_width = loop {
        let room = width.saturating_sub(indent + number_widths(&shown));
        if room >= longest_label.min(MIN_LABEL_WIDTH) || shown.len() <= 1 {
            break room
                .min(longest_label)
                .max(MIN_LABEL_WIDTH.min(longest_label));
        }
        let Some(drop) = drops.next() else {
            break MIN_LABEL_WIDTH.min(longest_label);
        };
        shown.retain(|&column| board.columns[column].title != *drop);
    };
    let mut previous_server: Option<&str> = None;
    let rows = board
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let heading = (board.several_servers && previous_server != Some(&row.server))
                .then(|| row.server.clone());
            previous_server = Some(&row.server);
            LayoutRow {
                heading,
                labels: vec![wrap_hanging(&row.strategy, label_width)],
                cells: number_cells(board, Some(report), index, &shown),
            }
        })
        .collect();
    let hidden = (0..board.columns.len())
        .filter(|column| !shown.contains(column))
        .map(|column| board.columns[column].title.to_owned())
        .collect();
    Layout {
        titles: shown
            .iter()
            .map(|&column| board.columns[column].title.to_owned())
            .collect(),
        hidden,
        label_titles: vec!["strategy"],
        rows,
        label_widths: vec![label_width],
        indent,
    }
}

impl Layout {
    fn render(&self, colour: Colour) -> String {
        let number_widths: Vec<usize> = (0..self.titles.len())
            .map(|column| {
                self.rows
                    .iter()
                    .map(|row| width_of(&row.cells[column].0))
                    .chain([self.titles[column].len() + 1])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let pad = " ".repeat(self.indent);
        // The header: label titles left, number titles right-aligned over the numbers.
        let mut header: Vec<(String, bool)> = Vec::new();
        for (title, width) in self.label_titles.iter().zip(&self.label_widths) {
            header.push((format!("{title:<width$}"), false));
        }
        for (title, width) in self.titles.iter().zip(&number_widths) {
            header.push((format!("{title:>w$} ", w = width - 1), false));
        }
        line(&mut out, &pad, &header, colour, true);
        for row in &self.rows {
            if let Some(heading) = &row.heading {
                match colour {
                    Colour::Always => {
                        let _ = writeln!(out, "{BOLD}{heading}{RESET}");
                    }
                    Colour::Never => {
                        let _ = writeln!(out, "{heading}");
                    }
                }
            }
            let lines = row.labels.iter().map(Vec::len).max().unwrap_or(1);
            for line_index in 0..lines {
                let mut cells: Vec<(String, bool)> = Vec::new();
                for (label, width) in row.labels.iter().zip(&self.label_widths) {
                    let text = label.get(line_index).map_or("", String::as_str);
                    cells.push((format!("{text:<width$}"), false));
                }
                // Numbers sit on a row's first line; wrapped label lines carry none.
                if line_index == 0 {
                    for ((text, best), width) in row.cells.iter().zip(&number_widths) {
                        cells.push((format!("{text:>width$}"), *best));
                    }
                }
                line(&mut out, &pad, &cells, colour, false);
            }
        }
        out
    }
}

/// Writes one table line: cells two spaces apart, trailing spaces trimmed.
fn line(out: &mut String, pad: &str, cells: &[(String, bool)], colour: Colour, header: bool) {
    let mut text = pad.to_owned();
    for (index, (cell, best)) in cells.iter().enumerate() {
        if index > 0 {
            text.push_str("  ");
        }
        // Trailing spaces go before any colour code so coloured and plain lines match.
        let cell = if index + 1 == cells.len() {
            cell.trim_end()
        } else {
            cell.as_str()
        };
        match (colour, *best, header) {
            (Colour::Always, true, _) => {
                let _ = write!(text, "{BOLD_GREEN}{cell}{RESET}");
            }
            (Colour::Always, false, true) => {
                let _ = write!(text, "{DIM}{cell}{RESET}");
            }
            _ => text.push_str(cell),
        }
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

fn width_of(text: &str) -> usize {
    text.chars().count()
}
