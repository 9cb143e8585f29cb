//! The answers of a tested client's report (`ratelab test`, `ratelab serve --scenario`): does
//! the real program survive, and how does it compare with the simulated model of the strategy
//! the scenario declares for it, on the same server, workload and seed.

use results::{ServerSaw, TestedClient};

use crate::answers::{Judge, Judged};

/// The answer lines of a report whose `tested` is set: the client's verdict first, then one
/// line per simulated model beside it.
///
/// What the comparison concludes depends only on who survives: both (the client behaves at
/// least as well as the model needs to), the model only (the strategy copes with this traffic
/// and the client falls short of it: look for retries it does not declare, such as an outer
/// wrapper), the client only (it does better than its declared model), or neither (the traffic
/// is too much for this strategy on this server).
pub(crate) fn answers(judge: &Judge<'_>, tested: &TestedClient) -> Vec<String> {
    let runs = &judge.report.runs;
    let Some(client) = runs.iter().find(|run| run.strategy == tested.run) else {
        return Vec::new();
    };
    let client = judge.judge(client);
    let mut lines = vec![client_line(judge, &client, tested)];
    for model in runs
        .iter()
        .filter(|run| run.server == client.run.server && tested.models.contains(&run.strategy))
    {
        lines.push(model_line(&client, &judge.judge(model)));
    }
    lines
}

fn client_line(judge: &Judge<'_>, client: &Judged<'_>, tested: &TestedClient) -> String {
    let who = if tested.command.is_empty() {
        "Your client".to_owned()
    } else {
        format!("Your client (`{}`)", tested.command)
    };
    if client.survives() {
        format!(
            "Survives: yes. {who} {} on {} {}.",
            judge.criterion(),
            client.run.server,
            numbers(client),
        )
    } else {
        format!(
            "Survives: no. {who} misses on {}: {} {}.",
            client.run.server,
            client.shortfalls.join("; "),
            numbers(client),
        )
    }
}

fn model_line(client: &Judged<'_>, model: &Judged<'_>) -> String {
    let verdict = match (client.survives(), model.survives()) {
        (true, true) => "it survives too".to_owned(),
        (false, true) => "it survives, so the declared strategy copes with this traffic and the client falls short of it (look for retries it does not declare, such as an outer wrapper, or a different version)".to_owned(),
        (true, false) => format!(
            "it does not ({}), so the client does better than its declared strategy's model",
            model.shortfalls.join("; ")
        ),
        (false, false) => format!(
            "it does not either ({}): this traffic is too much for the strategy on this server; compare tiers or send less",
            model.shortfalls.join("; ")
        ),
    };
    format!(
        "Beside it, {} {}: {verdict}.",
        model.run.strategy,
        numbers(model),
    )
}

/// The ranking's numbers, then the early retries a client-testing gate reads first.
fn numbers(judged: &Judged<'_>) -> String {
    let early = judged.run.analysis.early_retries;
    format!(
        "({}, {early} early retr{})",
        judged.figures(),
        if early == 1 { "y" } else { "ies" }
    )
}

/// Column titles of [`seen_rows`].
pub(crate) const SEEN_HEADERS: [&str; 11] = [
    "key",
    "requests",
    "logical",
    "retries",
    "early",
    "clustered",
    "storm share",
    "gave up",
    "retried no-retry",
    "tokens charged",
    "tokens wasted",
];

/// What the server saw of a tested client, a row per entry of `seen` (the total first), for
/// the Markdown and HTML reports; `None` when the report holds none.
pub(crate) fn seen_rows(tested: &TestedClient) -> Option<Vec<Vec<String>>> {
    if tested.seen.is_empty() {
        return None;
    }
    let row = |saw: &ServerSaw| {
        vec![
            saw.key.clone(),
            saw.requests.to_string(),
            saw.logical_requests.to_string(),
            saw.retries.to_string(),
            saw.early_retries.to_string(),
            saw.clustered_retries.to_string(),
            saw.storm_share
                .map_or_else(|| "-".to_owned(), crate::units::percent),
            saw.gave_up.to_string(),
            saw.retried_no_retry.to_string(),
            saw.tokens_charged.to_string(),
            saw.tokens_wasted.to_string(),
        ]
    };
    Some(tested.seen.iter().map(row).collect())
}
