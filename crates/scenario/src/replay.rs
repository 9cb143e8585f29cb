//! Recorded traces for replay: request times and token counts from JSONL or CSV.
//!
//! Both formats carry the same record: `at` (seconds since the trace start), and optionally
//! `prompt_tokens` and `completion_tokens`. JSONL has one object per line; CSV has a header row
//! naming the columns.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{ScenarioError, SourceText};

/// One recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedArrival {
    /// When it arrived, since the trace start.
    pub at: Duration,
    /// Its prompt tokens, when recorded.
    pub prompt_tokens: Option<u32>,
    /// Its completion tokens, when recorded.
    pub completion_tokens: Option<u32>,
}

/// A recorded trace, sorted by arrival time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordedTrace {
    /// The arrivals in time order.
    pub arrivals: Vec<RecordedArrival>,
}

/// The file formats a trace can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated with a header row.
    Csv,
}

impl TraceFormat {
    /// The format a path's extension names, if any.
    pub fn from_path(path: &str) -> Option<TraceFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(TraceFormat::Jsonl)
        } else if lower.ends_with(".csv") {
            Some(TraceFormat::Csv)
        } else {
            None
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceRecord {
    at: f64,
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

impl RecordedTrace {
    /// Parses a trace; `name` is used in error messages.
    ///
    /// ```
    /// use scenario::{RecordedTrace, TraceFormat};
    ///
    /// let jsonl = "{\"at\": 0.5, \"prompt_tokens\": 100}\n{\"at\": 0.25}\n";
    /// let trace = RecordedTrace::parse(jsonl, TraceFormat::Jsonl, "trace.jsonl").unwrap();
    /// assert_eq!(trace.arrivals.len(), 2);
    /// assert_eq!(trace.arrivals[0].at.as_millis(), 250);
    ///
    /// let csv = "at,prompt_tokens,completion_tokens\n0.0,10,20\n1.5,30,40\n";
    /// let trace = RecordedTrace::parse(csv, TraceFormat::Csv, "trace.csv").unwrap();
    /// assert_eq!(trace.arrivals[1].completion_tokens, Some(40));
    /// ```
    pub fn parse(text: &str, format: TraceFormat, name: &str) -> Result<Self, ScenarioError> {
        let source = SourceText { name, text };
        let mut arrivals = Vec::new();
        match format {
            TraceFormat::Jsonl => {
                let mut line_start = 0;
                for line in text.split_inclusive('\n') {
                    let trimmed = line.trim();
                    if !trimmed.is_empty() {
                        let record: TraceRecord = serde_json::from_str(trimmed).map_err(|error| {
                            let mut location = source.location(line_start);
                            location.column = error.column().max(1);
                            // serde_json appends its own "at line 1 column N", which counts
                            // within the record; the location above already says where.
                            let text = error.to_string();
                            let reason = text.split(" at line ").next().unwrap_or(&text);
                            ScenarioError::Invalid {
                                location,
                                message: format!(
                                    "bad trace record: {reason} (expected {{\"at\": seconds, \"prompt_tokens\": n, \"completion_tokens\": n}})"
                                ),
                            }
                        })?;
                        arrivals.push(check_record(record, &source, line_start)?);
                    }
                    line_start += line.len();
                }
            }
            TraceFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .trim(csv::Trim::All)
                    .from_reader(text.as_bytes());
                let bad_row = |offset: usize, error: &dyn std::fmt::Display| {
                    source.invalid(
                        offset..offset,
                        format!(
                            "bad trace row: {error} (expected a header `at,prompt_tokens,completion_tokens` and numbers)"
                        ),
                    )
                };
                let headers = reader
                    .headers()
                    .map_err(|error| bad_row(0, &error))?
                    .clone();
                for row in reader.records() {
                    let row = row.map_err(|error| {
                        let offset = error.position().map_or(0, |at| at.byte() as usize);
                        bad_row(offset, &error)
                    })?;
                    let offset = row.position().map_or(0, |at| at.byte() as usize);
                    let record: TraceRecord = row
                        .deserialize(Some(&headers))
                        .map_err(|error| bad_row(offset, &error))?;
                    arrivals.push(check_record(record, &source, offset)?);
                }
            }
        }
        if arrivals.is_empty() {
            return Err(source.invalid(0..0, "the trace has no records"));
        }
        // Traces are often concatenated from several sources; a stable sort keeps equal times in
        // file order so replays stay deterministic.
        arrivals.sort_by_key(|arrival| arrival.at);
        Ok(RecordedTrace { arrivals })
    }

    /// Whether every record carries both token counts.
    pub fn has_all_token_counts(&self) -> bool {
        self.arrivals
            .iter()
            .all(|arrival| arrival.prompt_tokens.is_some() && arrival.completion_tokens.is_some())
    }
}

fn check_record(
    record: TraceRecord,
    source: &SourceText<'_>,
    offset: usize,
) -> Result<RecordedArrival, ScenarioError> {
    if !(record.at.is_finite() && record.at >= 0.0) {
        return Err(source.invalid(
            offset..offset,
            format!(
                "trace time {} is not allowed (expected seconds since the trace start, 0 or more)",
                record.at
            ),
        ));
    }
    Ok(RecordedArrival {
        at: Duration::from_secs_f64(record.at),
        prompt_tokens: record.prompt_tokens,
        completion_tokens: record.completion_tokens,
    })
}
