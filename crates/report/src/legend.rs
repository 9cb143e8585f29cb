//! The strategy legend: tables and answers name strategies by their short labels, and the
//! legend gives each label's full spec.

use results::RunReport;

/// `(label, spec)` for every strategy whose label is not its own spec, in run order, once each.
///
/// ```
/// let mut report = report::example_report();
/// report.runs[1].spec = "honour-retry-after:inner=(full-jitter)".to_owned();
/// assert_eq!(
///     report::strategy_legend(&report),
///     vec![("retry-after".to_owned(), "honour-retry-after:inner=(full-jitter)".to_owned())]
/// );
/// ```
pub fn strategy_legend(report: &RunReport) -> Vec<(String, String)> {
    let mut legend: Vec<(String, String)> = Vec::new();
    for run in &report.runs {
        if run.spec.is_empty() || run.spec == run.strategy {
            continue;
        }
        if !legend.iter().any(|(label, _)| *label == run.strategy) {
            legend.push((run.strategy.clone(), run.spec.clone()));
        }
    }
    legend
}
