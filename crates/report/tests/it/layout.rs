//! Reports that read at any size: the default terminal table of every shipped scenario fits 100
//! columns and `--wide` shows every column; drain reads only where a real backlog formed; goodput
//! names the limit that binds.

use report::{Colour, Scoreboard, TableOptions};

use crate::accounting::{shipped_scenarios, simulate};

fn wide(report: &report::RunReport) -> String {
    report::terminal_table_with(
        report,
        TableOptions {
            wide: true,
            ..TableOptions::compact(Colour::Never)
        },
    )
}

#[test]
fn every_shipped_scenario_fits_100_columns_by_default_and_wide_shows_everything() {
    for path in shipped_scenarios() {
        let name = path.display().to_string();
        let report = simulate(&path);
        let compact = report::terminal_table(&report, Colour::Never);
        let legend_at = compact
            .lines()
            .position(|line| line.starts_with("* best in column"))
            .unwrap_or_else(|| panic!("{name}: no legend"));
        // The table, the marking rule and the column legend (which ends before `--wide adds`).
        for line in compact.lines().take(legend_at).chain(
            compact
                .lines()
                .skip(legend_at + 1)
                .take_while(|line| !line.starts_with("--wide adds")),
        ) {
            assert!(
                line.chars().count() <= report::DEFAULT_WIDTH,
                "{name}: a line of {} characters:\n{line}\n{compact}",
                line.chars().count()
            );
        }
        // Every strategy label is there in full, wrapped at most.
        // A line's label is its text up to the first gap of two spaces (labels have none).
        let squeezed: String = compact
            .lines()
            .take(legend_at)
            .map(|line| line.trim_start().split("  ").next().unwrap_or(""))
            .collect::<String>()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for run in &report.runs {
            let label: String = run
                .strategy
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            assert!(
                squeezed.contains(&label),
                "{name}: label {} cut",
                run.strategy
            );
            assert!(
                compact.contains(&run.server),
                "{name}: server {} missing",
                run.server
            );
        }
        let wide = wide(&report);
        let header = wide.lines().nth(1).unwrap();
        for column in &Scoreboard::of(&report).columns {
            assert!(
                header.contains(column.title),
                "{name}: --wide lacks {}",
                column.title
            );
        }
    }
}

#[test]
fn drain_reads_only_where_a_real_backlog_formed() {
    let paths = shipped_scenarios();
    let steady = paths
        .iter()
        .find(|path| path.ends_with("steady-under-limit.toml"))
        .expect("the steady scenario ships");
    let report = simulate(steady);
    let board = Scoreboard::of(&report);
    let drain = board
        .columns
        .iter()
        .position(|c| c.title == "drain")
        .unwrap();
    for (run, row) in report.runs.iter().zip(&board.rows) {
        assert_eq!(run.totals.rate_limited, 0);
        assert!(!report::real_backlog(&report, run));
        assert_eq!(row.cells[drain].text, "-", "{}", row.strategy);
        assert!(!row.cells[drain].best);
    }

    // A pacer that queues a spike locally builds a real backlog without a single 429.
    let spike = paths
        .iter()
        .find(|path| path.ends_with("traffic-spike.toml"))
        .expect("the spike scenario ships");
    let report = simulate(spike);
    let paced = report
        .runs
        .iter()
        .find(|run| run.strategy == "pace at 480 RPM")
        .unwrap();
    assert_eq!(paced.totals.rate_limited, 0);
    assert!(report::real_backlog(&report, paced));
    // Tier 2 serves the spike at once: its busiest bin is not a backlog.
    let served = report
        .runs
        .iter()
        .find(|run| run.server.starts_with("tier-2") && run.strategy == "no retries")
        .unwrap();
    assert!(!report::real_backlog(&report, served));
}

#[test]
fn goodput_names_the_limit_that_binds() {
    let paths = shipped_scenarios();
    let tpm_bound = paths
        .iter()
        .find(|path| path.ends_with("tpm-bound.toml"))
        .expect("the TPM-bound scenario ships");
    let report = simulate(tpm_bound);
    let board = Scoreboard::of(&report);
    let goodput = board
        .columns
        .iter()
        .position(|c| c.title == "goodput")
        .unwrap();
    for (run, row) in report.runs.iter().zip(&board.rows) {
        if run.totals.rate_limited > 0 {
            assert_eq!(
                report::binding_limit(&report, run).map(|(limit, _)| limit),
                Some(report::BindingLimit::Tpm)
            );
            assert!(
                row.cells[goodput].text.ends_with("% of TPM)"),
                "{}",
                row.cells[goodput].text
            );
        }
    }
}
