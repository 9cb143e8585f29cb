//! The [`Registry`]: strategy names, their parameters with defaults and sources, and the
//! factories that turn a validated [`StrategySpec`] into a `Box<dyn Strategy>`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::spec::{ParamValue, SpecError, StrategySpec};
use crate::{BackoffStrategy, Capped, Strategy};
use quota::parse_duration;

/// The type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// A duration (`100ms`, `1.5s`, `2m`, `1d`: [`quota::parse_duration`]) or a number of
    /// seconds.
    Duration,
    /// A whole number, zero or more.
    Integer,
    /// A number.
    Float,
    /// `true` or `false`.
    Bool,
    /// A nested strategy spec.
    Strategy,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Duration => "duration",
            ParamKind::Integer => "integer",
            ParamKind::Float => "number",
            ParamKind::Bool => "bool",
            ParamKind::Strategy => "strategy",
        })
    }
}

/// One parameter of a strategy: its name, type, default (`None`: required or unset) and what
/// it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamInfo {
    /// Kebab-case name.
    pub name: String,
    /// Its type.
    pub kind: ParamKind,
    /// The default in spec syntax; `None` means the parameter is optional with no value, or
    /// required when `required` is set.
    pub default: Option<String>,
    /// Whether the spec must give it.
    pub required: bool,
    /// One line on what it does.
    pub doc: String,
}

impl ParamInfo {
    /// A parameter with a default.
    pub fn new(name: &str, kind: ParamKind, default: &str, doc: &str) -> ParamInfo {
        ParamInfo {
            name: name.to_owned(),
            kind,
            default: Some(default.to_owned()),
            required: false,
            doc: doc.to_owned(),
        }
    }

    /// An optional parameter without a default.
    pub fn optional(name: &str, kind: ParamKind, doc: &str) -> ParamInfo {
        ParamInfo {
            default: None,
            ..ParamInfo::new(name, kind, "", doc)
        }
    }

    /// A parameter the spec must give.
    pub fn required(name: &str, kind: ParamKind, doc: &str) -> ParamInfo {
        ParamInfo {
            required: true,
            ..ParamInfo::optional(name, kind, doc)
        }
    }
}

/// A registered strategy as `ratelab strategies` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrategyInfo {
    /// The registered name (`family@version` for release lines).
    pub name: String,
    /// One line on what it does.
    pub summary: String,
    /// Where its formula and defaults come from.
    pub source: String,
    /// Its own parameters; the registry adds the common caps (see [`Registry::CAP_PARAMS`]).
    pub params: Vec<ParamInfo>,
}

/// Builds a strategy from validated parameters; nested strategies are built through the
/// registry passed in.
pub type StrategyFactory =
    Box<dyn Fn(&Params<'_>, &Registry) -> Result<Box<dyn Strategy>, SpecError> + Send + Sync>;

/// How a registered strategy is built.
pub(crate) enum Factory {
    /// Any strategy, boxed: what [`Registry::register`] takes.
    Any(StrategyFactory),
    /// A [`BackoffStrategy`], kept concrete so that [`Capped`] holds it by value and an outcome
    /// costs one virtual call, not two (the built-in backoff kinds).
    Backoff(BackoffFactory),
}

/// Builds a [`BackoffStrategy`] from validated parameters.
pub(crate) type BackoffFactory =
    Box<dyn Fn(&Params<'_>) -> Result<BackoffStrategy, SpecError> + Send + Sync>;

impl From<StrategyFactory> for Factory {
    fn from(factory: StrategyFactory) -> Factory {
        Factory::Any(factory)
    }
}

struct Entry {
    info: StrategyInfo,
    factory: Factory,
}

/// Validated access to a spec's parameters, falling back to the declared defaults.
#[derive(Debug)]
pub struct Params<'a> {
    kind: &'a str,
    declared: &'a [ParamInfo],
    given: &'a BTreeMap<String, ParamValue>,
}

impl<'a> Params<'a> {
    fn value(&self, name: &str) -> Option<ParamValue> {
        if let Some(value) = self.given.get(name) {
            return Some(value.clone());
        }
        let declared = self.declared.iter().find(|param| param.name == name)?;
        let default = declared.default.as_deref()?;
        Some(match declared.kind {
            ParamKind::Strategy => match default.parse() {
                Ok(spec) => ParamValue::Strategy(spec),
                Err(_) => ParamValue::Text(default.to_owned()),
            },
            _ => default
                .parse::<i64>()
                .map(ParamValue::Integer)
                .or_else(|_| default.parse::<f64>().map(ParamValue::Float))
                .or_else(|_| default.parse::<bool>().map(ParamValue::Bool))
                .unwrap_or_else(|_| ParamValue::Text(default.to_owned())),
        })
    }

    fn bad(&self, name: &str, expected: &str, found: &ParamValue) -> SpecError {
        SpecError::BadParam {
            kind: self.kind.to_owned(),
            param: name.to_owned(),
            expected: expected.to_owned(),
            found: found.to_string(),
        }
    }

    fn missing(&self, name: &str, expected: &str) -> SpecError {
        SpecError::MissingParam {
            kind: self.kind.to_owned(),
            param: name.to_owned(),
            expected: expected.to_owned(),
        }
    }

    /// A duration parameter, if given or defaulted.
    pub fn optional_duration(&self, name: &str) -> Result<Option<Duration>, SpecError> {
        const EXPECTED: &str = "a duration such as 100ms, 1.5s or 2m";
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        match &value {
            ParamValue::Text(text) => parse_duration(text)
                .map(Some)
                .map_err(|error| self.bad(name, &format!("{EXPECTED} ({error})"), &value)),
            ParamValue::Integer(seconds) if *seconds >= 0 => {
                Ok(Some(Duration::from_secs(*seconds as u64)))
            }
            ParamValue::Float(seconds) if *seconds >= 0.0 && seconds.is_finite() => {
                Ok(Some(crate::seconds(*seconds)))
            }
            _ => Err(self.bad(name, EXPECTED, &value)),
        }
    }

    /// A duration parameter that must have a value.
    pub fn duration(&self, name: &str) -> Result<Duration, SpecError> {
        self.optional_duration(name)?
            .ok_or_else(|| self.missing(name, "a duration such as 100ms"))
    }

    /// A whole-number parameter, if given or defaulted.
    pub fn optional_integer(&self, name: &str) -> Result<Option<u64>, SpecError> {
        match self.value(name) {
            None => Ok(None),
            Some(ParamValue::Integer(value)) if value >= 0 => Ok(Some(value as u64)),
            Some(other) => Err(self.bad(name, "a whole number, zero or more", &other)),
        }
    }

    /// A whole-number parameter that must have a value.
    pub fn integer(&self, name: &str) -> Result<u64, SpecError> {
        self.optional_integer(name)?
            .ok_or_else(|| self.missing(name, "a whole number"))
    }

    /// A numeric parameter, if given or defaulted.
    pub fn optional_float(&self, name: &str) -> Result<Option<f64>, SpecError> {
        match self.value(name) {
            None => Ok(None),
            Some(ParamValue::Integer(value)) => Ok(Some(value as f64)),
            Some(ParamValue::Float(value)) if value.is_finite() => Ok(Some(value)),
            Some(other) => Err(self.bad(name, "a number", &other)),
        }
    }

    /// A numeric parameter that must have a value.
    pub fn float(&self, name: &str) -> Result<f64, SpecError> {
        self.optional_float(name)?
            .ok_or_else(|| self.missing(name, "a number"))
    }

    /// A boolean parameter (unset is `false`).
    pub fn bool(&self, name: &str) -> Result<bool, SpecError> {
        match self.value(name) {
            None => Ok(false),
            Some(ParamValue::Bool(value)) => Ok(value),
            Some(other) => Err(self.bad(name, "true or false", &other)),
        }
    }

    /// A nested strategy parameter, built through `registry`.
    pub fn strategy(
        &self,
        name: &str,
        registry: &Registry,
    ) -> Result<Box<dyn Strategy>, SpecError> {
        const EXPECTED: &str = "a nested strategy, e.g. inner = { kind = \"full-jitter\" } in \
                                TOML or inner=(full-jitter) on the command line";
        match self.value(name) {
            None => Err(self.missing(name, EXPECTED)),
            Some(ParamValue::Strategy(spec)) => registry.build(&spec),
            // A bare name is a strategy without parameters.
            Some(ParamValue::Text(kind)) => registry.build(&StrategySpec::named(&kind)),
            Some(other) => Err(self.bad(name, EXPECTED, &other)),
        }
    }

    fn check(&self, param: &ParamInfo, registry: &Registry) -> Result<(), SpecError> {
        if param.required && !self.given.contains_key(&param.name) {
            return Err(self.missing(&param.name, &format!("a {}", param.kind)));
        }
        let name = param.name.as_str();
        match param.kind {
            ParamKind::Duration => self.optional_duration(name).map(drop),
            ParamKind::Integer => self.optional_integer(name).map(drop),
            ParamKind::Float => self.optional_float(name).map(drop),
            ParamKind::Bool => self.bool(name).map(drop),
            ParamKind::Strategy if self.value(name).is_some() => {
                self.strategy(name, registry).map(drop)
            }
            ParamKind::Strategy => Ok(()),
        }
    }
}

/// Every strategy ratelab knows by name: the built-ins plus any a Rust user registers.
///
/// ```
/// use retry::{ParamInfo, ParamKind, Registry, StrategyInfo, BackoffStrategy, Backoff, Retryable};
///
/// let mut registry = Registry::with_builtins();
/// registry.register(
///     StrategyInfo {
///         name: "my-fixed".into(),
///         summary: "a team's house policy".into(),
///         source: "our runbook".into(),
///         params: vec![ParamInfo::new("delay", ParamKind::Duration, "250ms", "wait between attempts")],
///     },
///     Box::new(|params, _registry| {
///         let delay = params.duration("delay")?;
///         Ok(Box::new(BackoffStrategy::new(Backoff::Fixed { delay }, Retryable::Transient)))
///     }),
/// ).unwrap();
/// assert!(registry.build_str("my-fixed:delay=1s,max-attempts=3").is_ok());
///
/// let error = registry.build_str("my-fixed:dealy=1s").unwrap_err().to_string();
/// assert!(error.contains("unknown parameter \"dealy\""), "{error}");
/// assert!(error.contains("delay"), "{error}");
/// ```
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Registry {
    /// Caps every strategy accepts, applied by wrapping it in [`Capped`].
    pub const CAP_PARAMS: [&'static str; 3] = ["max-attempts", "deadline", "attempt-timeout"];

    /// A registry with nothing in it.
    pub fn empty() -> Registry {
        Registry {
            entries: BTreeMap::new(),
        }
    }

    /// A registry holding every built-in strategy.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::empty();
        for (info, factory) in crate::builtins::builtins() {
            registry
                .insert(info, factory)
                .expect("built-in strategy names are unique");
        }
        registry
    }

    /// Adds a strategy; its parameters gain the common caps unless it declares them itself
    /// (to give them a default).
    pub fn register(
        &mut self,
        info: StrategyInfo,
        factory: StrategyFactory,
    ) -> Result<(), SpecError> {
        self.insert(info, Factory::Any(factory))
    }

    fn insert(&mut self, mut info: StrategyInfo, factory: Factory) -> Result<(), SpecError> {
        if self.entries.contains_key(&info.name) {
            return Err(SpecError::Duplicate { kind: info.name });
        }
        let caps = [
            ParamInfo::optional(
                "max-attempts",
                ParamKind::Integer,
                "cap: attempts per logical request, the first included",
            ),
            ParamInfo::optional(
                "deadline",
                ParamKind::Duration,
                "cap: no attempt sent or scheduled later than this after the request began",
            ),
            ParamInfo::optional(
                "attempt-timeout",
                ParamKind::Duration,
                "cap: timeout of each attempt",
            ),
        ];
        for cap in caps {
            if !info.params.iter().any(|param| param.name == cap.name) {
                info.params.push(cap);
            }
        }
        self.entries
            .insert(info.name.clone(), Entry { info, factory });
        Ok(())
    }

    /// Every registered strategy, by name.
    pub fn infos(&self) -> impl Iterator<Item = &StrategyInfo> {
        self.entries.values().map(|entry| &entry.info)
    }

    /// The strategy `kind` names: an exact name, `family@version` resolved to the latest
    /// release line at or below that version (older versions get the earliest line), or a
    /// bare family meaning its latest line.
    pub fn resolve(&self, kind: &str) -> Result<&StrategyInfo, SpecError> {
        self.entry(kind).map(|entry| &entry.info)
    }

    fn entry(&self, kind: &str) -> Result<&Entry, SpecError> {
        if let Some(entry) = self.entries.get(kind) {
            return Ok(entry);
        }
        let (family, wanted) = match kind.split_once('@') {
            Some((family, version)) => (family, Some(version)),
            None => (kind, None),
        };
        let lines: Vec<&Entry> = self
            .entries
            .values()
            .filter(|entry| entry.info.name.split_once('@').map(|(name, _)| name) == Some(family))
            .collect();
        if lines.is_empty() {
            let known: Vec<&str> = self.entries.keys().map(String::as_str).collect();
            return Err(SpecError::UnknownKind {
                kind: kind.to_owned(),
                known: known.join(", "),
            });
        }
        let line_version = |entry: &Entry| {
            let version = entry.info.name.split_once('@').map(|(_, version)| version);
            version.and_then(version_key).unwrap_or_default()
        };
        let known = || {
            let names: Vec<&str> = lines.iter().map(|entry| entry.info.name.as_str()).collect();
            names.join(", ")
        };
        let Some(wanted) = wanted else {
            return Ok(lines
                .iter()
                .max_by_key(|entry| line_version(entry))
                .unwrap_or(&lines[0]));
        };
        let wanted = version_key(wanted).ok_or_else(|| SpecError::UnknownVersion {
            kind: kind.to_owned(),
            known: known(),
        })?;
        // The latest line at or below the version; older versions behave as the earliest line
        // (`openai-python@2.51` stands for "2.51 and earlier").
        let at_or_below = lines
            .iter()
            .filter(|entry| line_version(entry) <= wanted)
            .max_by_key(|entry| line_version(entry));
        let earliest = lines.iter().min_by_key(|entry| line_version(entry));
        Ok(at_or_below.or(earliest).unwrap_or(&lines[0]))
    }

    /// Validates `spec` and builds its strategy, wrapped in [`Capped`] when a cap is set.
    pub fn build(&self, spec: &StrategySpec) -> Result<Box<dyn Strategy>, SpecError> {
        let entry = self.entry(&spec.kind)?;
        let info = &entry.info;
        for name in spec.params.keys() {
            if !info.params.iter().any(|param| &param.name == name) {
                let allowed: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
                return Err(SpecError::UnknownParam {
                    kind: spec.kind.clone(),
                    param: name.clone(),
                    allowed: allowed.join(", "),
                });
            }
        }
        let params = Params {
            kind: &spec.kind,
            declared: &info.params,
            given: &spec.params,
        };
        for param in &info.params {
            params.check(param, self)?;
        }
        // The strategy is built before the caps are read, so its own errors come first.
        let strategy = match &entry.factory {
            Factory::Any(build) => {
                let strategy = build(&params, self)?;
                match Caps::read(&params)? {
                    Some(caps) => Box::new(caps.around(strategy)),
                    None => strategy,
                }
            }
            Factory::Backoff(build) => {
                let strategy = build(&params)?;
                match Caps::read(&params)? {
                    Some(caps) => Box::new(caps.around(strategy)) as Box<dyn Strategy>,
                    None => Box::new(strategy),
                }
            }
        };
        Ok(strategy)
    }

    /// Parses the command-line form and builds it.
    pub fn build_str(&self, text: &str) -> Result<Box<dyn Strategy>, SpecError> {
        self.build(&text.parse()?)
    }
}

/// The common caps a spec sets ([`Registry::CAP_PARAMS`]).
struct Caps {
    max_attempts: Option<u32>,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

impl Caps {
    /// The caps `params` sets; `None` when it sets none.
    fn read(params: &Params<'_>) -> Result<Option<Caps>, SpecError> {
        let max_attempts = params
            .optional_integer("max-attempts")?
            .map(|max| u32::try_from(max).unwrap_or(u32::MAX));
        let deadline = params.optional_duration("deadline")?;
        let attempt_timeout = params.optional_duration("attempt-timeout")?;
        if max_attempts.is_none() && deadline.is_none() && attempt_timeout.is_none() {
            return Ok(None);
        }
        Ok(Some(Caps {
            max_attempts,
            deadline,
            attempt_timeout,
        }))
    }

    fn around<S: Strategy>(self, strategy: S) -> Capped<S> {
        Capped::new(
            strategy,
            self.max_attempts,
            self.deadline,
            self.attempt_timeout,
        )
    }
}

/// Dotted version numbers compared numerically (`7.10` after `7.5`); `None` if not numeric.
fn version_key(version: &str) -> Option<Vec<u64>> {
    version.split('.').map(|part| part.parse().ok()).collect()
}
