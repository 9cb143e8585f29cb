//! [`StrategySpec`]: a strategy named and parameterized, as a TOML/JSON table in a scenario file
//! or as a compact string on the command line, plus the errors of both forms.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A strategy by name with its parameters, before the [`crate::Registry`] validates it.
///
/// In a scenario file it is a table whose `kind` names the strategy; every other key is a
/// parameter, and nested strategies are nested tables:
///
/// ```
/// let spec: retry::StrategySpec = toml::from_str(r#"
///     kind = "honour-retry-after"
///     cap = "60s"
///     inner = { kind = "decorrelated-jitter", base = "100ms", cap = "20s" }
/// "#).unwrap();
/// assert_eq!(spec.to_string(), "honour-retry-after:cap=60s,inner=(decorrelated-jitter:base=100ms,cap=20s)");
/// ```
///
/// On the command line the same spec is `name[:key=value,...]`, with a nested strategy in
/// parentheses; a version picks a release line (`openai-python@2.52`, and `openai-python@2.60`
/// resolves to the latest line at or below 2.60):
///
/// ```
/// let spec: retry::StrategySpec = "stacked:outer=(tenacity@9:max-attempts=6),inner=(openai-python@2.52)"
///     .parse().unwrap();
/// assert_eq!(spec.kind, "stacked");
/// assert_eq!(spec.params.len(), 2);
/// ```
///
/// Unknown keys are not rejected by serde here (the key set depends on the kind, and Rust users
/// can register kinds): the registry rejects them, listing the parameters the kind accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySpec {
    /// The strategy's registered name, optionally with `@version`.
    pub kind: String,
    /// Parameters by name (kebab-case).
    #[serde(flatten)]
    pub params: BTreeMap<String, ParamValue>,
}

/// One parameter value as written; the registry checks it against the parameter's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text: a duration (`100ms`, [`quota::parse_duration`]) or a name.
    Text(String),
    /// A nested strategy.
    Strategy(StrategySpec),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(value) => write!(f, "{value}"),
            ParamValue::Integer(value) => write!(f, "{value}"),
            ParamValue::Float(value) => write!(f, "{value}"),
            ParamValue::Text(value) => f.write_str(value),
            ParamValue::Strategy(spec) => write!(f, "({spec})"),
        }
    }
}

/// The built-in strategies that pace sends on the client (`pacing.rs`): they delay a request
/// before it is sent instead of only reacting to 429s.
pub const PACING_STRATEGIES: [&str; 3] = ["header-pacing", "token-bucket", "aws-adaptive"];

impl StrategySpec {
    /// Whether the strategy, or one it wraps, paces sends on the client
    /// ([`PACING_STRATEGIES`]); otherwise it only retries.
    ///
    /// ```
    /// let paced: retry::StrategySpec = "header-pacing:inner=(openai-python@2.52)".parse().unwrap();
    /// let retries: retry::StrategySpec = "honour-retry-after:inner=(full-jitter)".parse().unwrap();
    /// assert!(paced.paces_sends());
    /// assert!(!retries.paces_sends());
    /// ```
    pub fn paces_sends(&self) -> bool {
        let kind = self.kind.split('@').next().unwrap_or(&self.kind);
        PACING_STRATEGIES.contains(&kind)
            || self.params.values().any(|value| match value {
                ParamValue::Strategy(inner) => inner.paces_sends(),
                _ => false,
            })
    }

    /// A spec with no parameters.
    pub fn named(kind: &str) -> StrategySpec {
        StrategySpec {
            kind: kind.to_owned(),
            params: BTreeMap::new(),
        }
    }

    /// Adds a parameter.
    pub fn with(mut self, name: &str, value: ParamValue) -> StrategySpec {
        self.params.insert(name.to_owned(), value);
        self
    }
}

/// The compact command-line form: `kind[:key=value,...]`.
impl fmt::Display for StrategySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        for (index, (name, value)) in self.params.iter().enumerate() {
            let separator = if index == 0 { ':' } else { ',' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

impl FromStr for StrategySpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<StrategySpec, SpecError> {
        let mut parser = CliParser { text, offset: 0 };
        let spec = parser.spec()?;
        if parser.offset < text.len() {
            return Err(parser.error("unexpected text after the strategy (a `)` too many?)"));
        }
        Ok(spec)
    }
}

struct CliParser<'a> {
    text: &'a str,
    offset: usize,
}

impl CliParser<'_> {
    fn error(&self, message: &str) -> SpecError {
        SpecError::Syntax {
            text: self.text.to_owned(),
            offset: self.offset,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.offset).copied()
    }

    fn word(&mut self, stop: &[u8]) -> &str {
        let start = self.offset;
        while self.peek().is_some_and(|byte| !stop.contains(&byte)) {
            self.offset += 1;
        }
        self.text[start..self.offset].trim()
    }

    fn spec(&mut self) -> Result<StrategySpec, SpecError> {
        let kind = self.word(b":,)(").to_owned();
        if kind.is_empty() {
            return Err(self.error("expected a strategy name (see `ratelab strategies`)"));
        }
        let mut spec = StrategySpec::named(&kind);
        if self.peek() != Some(b':') {
            return Ok(spec);
        }
        loop {
            self.offset += 1; // the ':' or ','
            let name = self.word(b"=,)(").to_owned();
            if name.is_empty() || self.peek() != Some(b'=') {
                return Err(self.error("expected `name=value` (e.g. base=100ms)"));
            }
            self.offset += 1;
            let value = if self.peek() == Some(b'(') {
                self.offset += 1;
                let nested = self.spec()?;
                if self.peek() != Some(b')') {
                    return Err(self.error("expected `)` closing the nested strategy"));
                }
                self.offset += 1;
                ParamValue::Strategy(nested)
            } else {
                typed_value(self.word(b",)("))
            };
            if spec.params.insert(name.clone(), value).is_some() {
                return Err(self.error(&format!("parameter `{name}` given twice")));
            }
            if self.peek() != Some(b',') {
                return Ok(spec);
            }
        }
    }
}

fn typed_value(text: &str) -> ParamValue {
    if let Ok(value) = text.parse::<bool>() {
        ParamValue::Bool(value)
    } else if let Ok(value) = text.parse::<i64>() {
        ParamValue::Integer(value)
    } else if let Ok(value) = text.parse::<f64>() {
        ParamValue::Float(value)
    } else {
        ParamValue::Text(text.to_owned())
    }
}

/// Why a strategy spec was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The command-line form does not parse.
    #[error("strategy {text:?} at byte {offset}: {message}")]
    Syntax {
        text: String,
        offset: usize,
        message: String,
    },
    /// No strategy is registered under this name.
    #[error("unknown strategy {kind:?} (expected one of: {known})")]
    UnknownKind { kind: String, known: String },
    /// The version is not a dotted number.
    #[error("strategy {kind:?}: the version must be dotted numbers such as 2.52 (known: {known})")]
    UnknownVersion { kind: String, known: String },
    /// The parameter does not exist for this strategy.
    #[error("strategy {kind:?}: unknown parameter {param:?} (allowed: {allowed})")]
    UnknownParam {
        kind: String,
        param: String,
        allowed: String,
    },
    /// A required parameter is missing.
    #[error("strategy {kind:?}: missing parameter {param:?} ({expected})")]
    MissingParam {
        kind: String,
        param: String,
        expected: String,
    },
    /// The value does not fit the parameter.
    #[error("strategy {kind:?}: parameter {param:?} = {found}: expected {expected}")]
    BadParam {
        kind: String,
        param: String,
        expected: String,
        found: String,
    },
    /// A strategy with this name is already registered.
    #[error("strategy {kind:?} is already registered (pick another name)")]
    Duplicate { kind: String },
}
