//! `ratelab report DIR`: re-renders every format of a run directory from its `report.json`,
//! and the one place the CLI writes a run directory's files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Outcome;

/// Arguments of `ratelab report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run directory holding report.json (or the report.json file itself).
    pub dir: PathBuf,
    /// Write the rendered files here instead of next to report.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show every scoreboard column, with the server on every row, however wide the table gets
    /// (by default the table fits 100 columns).
    #[arg(long)]
    pub wide: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let (report, dir) = read_report(&args.dir)?;
    let out = args.out.unwrap_or(dir);
    crate::out!(
        "{}",
        report::terminal_table_with(&report, table_options(args.wide))
    )?;
    write_run_directory(&out, &report)?;
    Ok(Outcome::Success)
}

/// Reads `report.json` from a run directory or a file path; returns it with its directory.
pub fn read_report(path: &Path) -> anyhow::Result<(report::RunReport, PathBuf)> {
    let (file, dir) = if path.is_dir() {
        (path.join("report.json"), path.to_path_buf())
    } else {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        (path.to_path_buf(), dir)
    };
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read {} (expected a run directory written by `ratelab run`, or its report.json)",
            file.display()
        )
    })?;
    let report = report::parse_report_json(&text).with_context(|| format!("{}", file.display()))?;
    Ok((report, dir))
}

/// Renders every format of `report` and writes the files into `dir`, creating it if needed.
pub fn write_run_directory(dir: &Path, report: &report::RunReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    let files = report::render_all(report)?;
    for file in &files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::outln!(
        "wrote {} files to {} (open {})",
        files.len(),
        dir.display(),
        dir.join("index.html").display()
    )?;
    Ok(())
}

/// The terminal table's layout: compact unless `wide`, coloured as [`terminal_colour`] says.
pub fn table_options(wide: bool) -> report::TableOptions {
    report::TableOptions {
        wide,
        ..report::TableOptions::compact(terminal_colour())
    }
}

/// Colours only when stdout is a terminal and `NO_COLOR` is unset (no-color.org).
pub fn terminal_colour() -> report::Colour {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    if std::io::stdout().is_terminal() && !no_color {
        report::Colour::Always
    } else {
        report::Colour::Never
    }
}
