//! Whether the runs of a report did the same work: open-loop clients send every strategy the
//! same requests, but closed-loop workers send only as fast as their strategy lets them, so
//! strategies can end a run having started different numbers of requests. Their success rates
//! then describe different work, and the tables say so.

use results::RunReport;

use crate::scoreboard::has_batch;
use crate::units;

/// A sentence warning that the runs started different numbers of requests, or `None` when they
/// all started the same number.
///
/// ```
/// let mut report = report::example_report();
/// assert_eq!(report::different_work_warning(&report), None);
/// report.runs[0].totals.requests -= 40;
/// let warning = report::different_work_warning(&report).unwrap();
/// assert!(warning.starts_with("Strategies did different work: 200 to 240 requests"));
/// ```
pub fn different_work_warning(report: &RunReport) -> Option<String> {
    let requests = report.runs.iter().map(|run| run.totals.requests);
    let (fewest, most) = (requests.clone().min()?, requests.max()?);
    if fewest == most {
        return None;
    }
    let duration = units::duration_ms(report.scenario.duration_ms);
    if has_batch(report) {
        let planned: u64 = report
            .scenario
            .groups
            .iter()
            .filter_map(|group| group.batch_requests)
            .sum();
        return Some(format!(
            "Strategies did different work: {fewest} to {most} requests started, of a batch of \
             {planned}, before clients stopped sending at {duration}. Compare them on not started \
             and makespan, not on success alone."
        ));
    }
    Some(format!(
        "Strategies did different work: {fewest} to {most} requests started in {duration}, as \
         closed-loop workers send only as fast as their strategy lets them. Compare them on \
         goodput, not on success alone."
    ))
}
