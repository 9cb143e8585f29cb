//! Fuzz-style tests of the scenario parser on the stable toolchain: seeded, structure-aware
//! mutations of a valid scenario, a fixed number of cases, and a committed corpus of inputs that
//! once broke something. Whatever the input, the parser answers with a scenario or an error that
//! names the file, and never panics.

use proptest::prelude::*;
use scenario::parse_scenario;

const BASE: &str = r#"name = "fuzz"
duration = "10m"
drain = "2m"
seed = 7

[server]
model = "gpt-4o-mini"
tier = "tier-1"
compare_rejections = ["free", "count-per-minute"]
limits = { quantum_ms = 1000 }

[server.latency]
ttft = "200ms"
reject = "0s"

[[server.timeline]]
at = "4m"
until = "6m"
fault = { kind = "overloaded" }

[[clients]]
name = "app"
instances = 3
arrival = { kind = "spike", base_rpm = 20, peak_rpm = 200, start = "2m", length = "1m" }
prompt_tokens = { kind = "lognormal", median = 250, sigma = 0.5, max = 3000 }
completion_tokens = { kind = "uniform", min = 20, max = 150 }
max_tokens = 150
deadline = "2m"

[[clients]]
name = "batch"
closed_loop = { concurrency = 2, think_time = "1s", requests_per_worker = 5 }
prompt_tokens = { kind = "fixed", value = 100 }
completion_tokens = { kind = "fixed", value = 10 }

[[strategies]]
label = "sdk"
kind = "openai-python@2.52"

[[strategies]]
kind = "honour-retry-after"
jitter = 0.5
inner = { kind = "full-jitter", base = "1s", cap = "60s", max-attempts = 8 }

[expect]
min_success_rate = 0.9
max_p99_latency = "30s"
"#;

/// Inputs that once made the parser or validation misbehave, replayed on every run.
const CORPUS: &[&str] = &[
    "",
    "\u{feff}",
    "name = \"x\"\nduration = \"1d\"\n",
    "name = \"x\"\nduration = \"99999999999999999999h\"\n",
    "name = \"x\"\nduration = \"-1s\"\n",
    "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\nlimits = { rpm = 0 }\n",
    "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\nlimits = { rpm = 18446744073709551615 }\n",
    "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\nlimits = { quantum_ms = 0 }\n",
    "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\ninstances = 4294967295\narrival = { kind = \"constant\", rpm = 1e308 }\nprompt_tokens = { kind = \"fixed\", value = 1 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n",
    "name = \"x\"\nduration = \"1m\"\n[server]\nmodel = \"gpt-4o\"\ntier = \"tier-1\"\n[[clients]]\nname = \"a\"\narrival = { kind = \"gamma\", rpm = 1, burstiness = 0 }\nprompt_tokens = { kind = \"normal\", mean = 1e308, std_dev = 1e308 }\ncompletion_tokens = { kind = \"fixed\", value = 1 }\n",
    "[[strategies]]\nkind = \"stacked\"\nouter = { kind = \"stacked\", outer = { kind = \"stacked\" } }\n",
];

#[track_caller]
fn parses_or_explains(text: &str) {
    match parse_scenario(text, "fuzz.toml", &mut |path| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no file {} in the fuzz test", path.display()),
        ))
    }) {
        Ok(scenario) => {
            assert!(!scenario.strategies.is_empty());
            assert!(!scenario.server.variants.is_empty());
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with("fuzz.toml"),
                "an error names the file: {message}"
            );
        }
    }
}

#[test]
fn the_corpus_parses_or_is_explained() {
    parses_or_explains(BASE);
    for text in CORPUS {
        parses_or_explains(text);
    }
}

/// One edit of the base text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Deletes a line.
    DropLine(usize),
    /// Duplicates a line.
    RepeatLine(usize),
    /// Replaces the value after the `=` of a line.
    ReplaceValue(usize, &'static str),
    /// Overwrites one byte (kept as text: invalid UTF-8 is the CLI's to report).
    ChangeByte(usize, char),
    /// Cuts the text short.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = prop::sample::select(vec![
        "0",
        "-1",
        "1e308",
        "\"\"",
        "\"0s\"",
        "\"1ns\"",
        "\"100000d\"",
        "[]",
        "{}",
        "true",
        "18446744073709551615",
        "\"tier-9\"",
        "\"none\"",
        "nan",
        "inf",
    ]);
    prop_oneof![
        (0..80usize).prop_map(Mutation::DropLine),
        (0..80usize).prop_map(Mutation::RepeatLine),
        (0..80usize, values).prop_map(|(line, value)| Mutation::ReplaceValue(line, value)),
        (0..2_000usize, prop::char::range(' ', '~'))
            .prop_map(|(at, c)| Mutation::ChangeByte(at, c)),
        (0..2_000usize).prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for mutation in mutations {
        let count = lines.len().max(1);
        match mutation {
            Mutation::DropLine(line) if !lines.is_empty() => {
                lines.remove(line % count);
            }
            Mutation::RepeatLine(line) if !lines.is_empty() => {
                let copy = lines[line % count].clone();
                lines.insert(line % count, copy);
            }
            Mutation::ReplaceValue(line, value) if !lines.is_empty() => {
                let target = &mut lines[line % count];
                if let Some(at) = target.find('=') {
                    target.truncate(at + 1);
                    target.push(' ');
                    target.push_str(value);
                }
            }
            Mutation::ChangeByte(at, replacement) => {
                let mut joined: Vec<char> = lines.join("\n").chars().collect();
                if !joined.is_empty() {
                    let index = at % joined.len();
                    joined[index] = *replacement;
                }
                lines = joined
                    .into_iter()
                    .collect::<String>()
                    .lines()
                    .map(str::to_owned)
                    .collect();
            }
            Mutation::Truncate(at) => {
                let joined = lines.join("\n");
                let cut: String = joined.chars().take(*at).collect();
                lines = cut.lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mutated_scenarios_parse_or_are_explained(mutations in prop::collection::vec(mutation(), 1..6)) {
        parses_or_explains(&apply(BASE, &mutations));
    }
}
