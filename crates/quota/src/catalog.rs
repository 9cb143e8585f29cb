//! The tier catalog: OpenAI's usage tiers and per-model limits, a dated, versioned TOML file
//! embedded in the binary, which a user file can override or extend field by field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::LimitSet;

/// The embedded catalog file.
pub const BUILTIN_CATALOG_TOML: &str = include_str!("../data/tiers.toml");

/// The tier catalog.
///
/// ```
/// use quota::Catalog;
///
/// let catalog = Catalog::builtin();
/// let limits = catalog.limits("tier-1", "gpt-4o").unwrap();
/// assert_eq!((limits.rpm, limits.tpm), (Some(500), Some(30_000)));
///
/// let error = catalog.limits("tier-9", "gpt-4o").unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "unknown tier \"tier-9\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5)"
/// );
///
/// // A user file overrides single fields and adds models.
/// let mut catalog = catalog;
/// catalog.apply_overrides_toml(r#"
///     [models.gpt-4o.tiers]
///     tier-1 = { tpm = 60000 }
///     [models.my-model]
///     pool = "gpt-4o"
///     [models.my-model.tiers]
///     tier-1 = { rpm = 10 }
/// "#).unwrap();
/// assert_eq!(catalog.limits("tier-1", "gpt-4o").unwrap().tpm, Some(60_000));
/// assert_eq!(catalog.limits("tier-1", "gpt-4o").unwrap().rpm, Some(500));
/// assert_eq!(catalog.pool("my-model").unwrap(), "gpt-4o");
///
/// // Each model's per-request limits, which OpenAI enforces with a 400.
/// let gpt_4o = catalog.model("gpt-4o").unwrap();
/// assert_eq!((gpt_4o.context_window, gpt_4o.max_output_tokens), (Some(128_000), Some(16_384)));
/// // gpt-4.1's long-context pool has limits but is no model a request may name.
/// assert!(!catalog.model("gpt-4.1-long-context").unwrap().is_model());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The catalog format and content version.
    pub version: u32,
    /// When the figures were read, `YYYY-MM-DD`.
    pub date: String,
    /// Where the figures come from.
    #[serde(default)]
    pub sources: String,
    /// Tier name (`free`, `tier-1` ... `tier-5`) to its description.
    pub tiers: BTreeMap<String, TierInfo>,
    /// Model (or pool) name to its per-request limits and its limits per tier.
    pub models: BTreeMap<String, ModelEntry>,
}

/// One usage tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierInfo {
    /// What qualifies an organization for the tier.
    pub qualification: String,
    /// The monthly spend cap in US dollars.
    pub monthly_spend_cap_usd: u64,
    /// The least paid to OpenAI to qualify, in US dollars; unset: none listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_usd: Option<u64>,
    /// The fewest days since the first successful payment to qualify; unset: none listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_since_first_payment: Option<u32>,
}

/// One model's limits: per request (context window, output cap) and per tier (rates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// What the entry is; unset means [`ModelKind::Chat`]. Read it through [`ModelEntry::kind`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ModelKind>,
    /// The shared pool this model draws from; models with the same pool share one bucket.
    /// Unset: the model has its own pool, named after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The most tokens one request may hold. For a chat model OpenAI refuses a prompt longer
    /// than this with a 400 `context_length_exceeded`; for an embedding model it is the most
    /// input tokens per input. Unset: not known, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// The most output tokens one request may ask for (`max_tokens` and its successors);
    /// OpenAI refuses a larger cap with a 400. Unset: not known, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Where `context_window` and `max_output_tokens` come from, with the date they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limits_source: Option<String>,
    /// `false` when `context_window` or `max_output_tokens` could not be confirmed in
    /// OpenAI's own text (a model page or an error message quoted in public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_limits_verified: Option<bool>,
    /// Tier name to limits; a tier missing here does not offer the model.
    #[serde(default)]
    pub tiers: BTreeMap<String, ModelLimits>,
}

/// What a catalog entry stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A text generation model: chat completions, legacy completions, the Responses API.
    #[default]
    Chat,
    /// An embedding model: `/v1/embeddings` only; OpenAI refuses it on chat completions.
    Embedding,
    /// A pool of limits that no request names: gpt-4.1's long-context pool, charged when a
    /// gpt-4.1 prompt is long. It is not a model, so model lists leave it out.
    Pool,
}

impl ModelEntry {
    /// What the entry stands for, [`ModelKind::Chat`] unless the catalog says otherwise.
    pub fn kind(&self) -> ModelKind {
        self.kind.unwrap_or_default()
    }

    /// Whether a request may name this entry as its model (every kind but a pool).
    pub fn is_model(&self) -> bool {
        self.kind() != ModelKind::Pool
    }

    /// Overlays every value `overrides` sets, tiers field by field.
    fn overlay(&mut self, overrides: ModelEntry) {
        if overrides.kind.is_some() {
            self.kind = overrides.kind;
        }
        if overrides.pool.is_some() {
            self.pool = overrides.pool;
        }
        let pairs = [
            (&mut self.context_window, overrides.context_window),
            (&mut self.max_output_tokens, overrides.max_output_tokens),
        ];
        for (slot, value) in pairs {
            if value.is_some() {
                *slot = value;
            }
        }
        if overrides.request_limits_source.is_some() {
            self.request_limits_source = overrides.request_limits_source;
        }
        if overrides.request_limits_verified.is_some() {
            self.request_limits_verified = overrides.request_limits_verified;
        }
        for (tier, limits) in overrides.tiers {
            self.tiers.entry(tier).or_default().overlay(&limits);
        }
    }
}

/// A model's limits in one tier. A missing value means no such limit is listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
    /// Images per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipm: Option<u64>,
    /// Batch API queue limit in enqueued input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_queue_tokens: Option<u64>,
    /// `false` when the figures could not be confirmed in OpenAI's published tables
    /// (docs/tiers.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

impl ModelLimits {
    /// The online limits as a [`LimitSet`] with default algorithm and options, ready to adjust
    /// and compile.
    pub fn limit_set(&self) -> LimitSet {
        LimitSet {
            rpm: self.rpm,
            rpd: self.rpd,
            tpm: self.tpm,
            tpd: self.tpd,
            ipm: self.ipm,
            ..LimitSet::default()
        }
    }

    /// Overlays every value `overrides` sets.
    fn overlay(&mut self, overrides: &ModelLimits) {
        let pairs = [
            (&mut self.rpm, overrides.rpm),
            (&mut self.rpd, overrides.rpd),
            (&mut self.tpm, overrides.tpm),
            (&mut self.tpd, overrides.tpd),
            (&mut self.ipm, overrides.ipm),
            (&mut self.batch_queue_tokens, overrides.batch_queue_tokens),
        ];
        for (slot, value) in pairs {
            if value.is_some() {
                *slot = value;
            }
        }
        if overrides.verified.is_some() {
            self.verified = overrides.verified;
        }
    }
}

/// A user override file: every part optional, merged field by field into a catalog. Public so
/// that a file embedding overrides (the serve config's `[catalog]`) can check them where the
/// user wrote them, with the file's own line and column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogOverrides {
    version: Option<u32>,
    date: Option<String>,
    sources: Option<String>,
    #[serde(default)]
    tiers: BTreeMap<String, TierInfo>,
    #[serde(default)]
    models: BTreeMap<String, ModelEntry>,
}

/// A catalog problem: bad file, unknown tier or model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The TOML does not parse or does not match the catalog format.
    #[error("tier catalog: {message}")]
    Parse {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The tier name is not in the catalog.
    #[error("unknown tier {tier:?} (expected one of: {})", valid.join(", "))]
    UnknownTier {
        /// The name asked for.
        tier: String,
        /// The tiers the catalog knows.
        valid: Vec<String>,
    },
    /// The model is not in the catalog, or not offered in the tier.
    #[error(
        "unknown model {model:?}{} (expected one of: {})",
        tier.as_ref().map(|tier| format!(" in tier {tier}")).unwrap_or_default(),
        valid.join(", ")
    )]
    UnknownModel {
        /// The name asked for.
        model: String,
        /// The tier it was looked up in, if any.
        tier: Option<String>,
        /// The models the tier offers.
        valid: Vec<String>,
    },
    /// An override or model entry names a tier the catalog does not define.
    #[error("model {model:?} lists limits for unknown tier {tier:?} (expected one of: {})", valid.join(", "))]
    UndefinedTier {
        /// The model entry.
        model: String,
        /// The undefined tier.
        tier: String,
        /// The tiers the catalog knows.
        valid: Vec<String>,
    },
}

/// The embedded catalog, parsed once per process.
fn builtin_catalog() -> &'static Catalog {
    static BUILTIN: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    BUILTIN.get_or_init(|| {
        Catalog::from_toml(BUILTIN_CATALOG_TOML)
            .expect("the embedded tier catalog parses: a test checks it")
    })
}

impl Catalog {
    /// The catalog embedded in ratelab. Parsed once per process and cloned: every simulated
    /// run builds a server model from it, and parsing the TOML cost more than many runs' setup.
    pub fn builtin() -> Catalog {
        builtin_catalog().clone()
    }

    /// Parses a complete catalog file.
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = toml::from_str(text).map_err(|error| CatalogError::Parse {
            message: error.to_string(),
        })?;
        catalog.check_tiers()?;
        Ok(catalog)
    }

    /// Merges a user file: top-level values, tiers, and a model's kind, pool and per-request
    /// limits replace; per-tier model limits overlay field by field; new tiers and models are
    /// added.
    pub fn apply_overrides_toml(&mut self, text: &str) -> Result<(), CatalogError> {
        let overrides: CatalogOverrides =
            toml::from_str(text).map_err(|error| CatalogError::Parse {
                message: error.to_string(),
            })?;
        // Merge into a copy so a refused file leaves the catalog unchanged.
        let mut merged = self.clone();
        if let Some(version) = overrides.version {
            merged.version = version;
        }
        if let Some(date) = overrides.date {
            merged.date = date;
        }
        if let Some(sources) = overrides.sources {
            merged.sources = sources;
        }
        merged.tiers.extend(overrides.tiers);
        for (name, entry) in overrides.models {
            merged.models.entry(name).or_default().overlay(entry);
        }
        merged.check_tiers()?;
        *self = merged;
        Ok(())
    }

    fn check_tiers(&self) -> Result<(), CatalogError> {
        for (model, entry) in &self.models {
            if let Some(tier) = entry
                .tiers
                .keys()
                .find(|tier| !self.tiers.contains_key(*tier))
            {
                return Err(CatalogError::UndefinedTier {
                    model: model.clone(),
                    tier: tier.clone(),
                    // Not `tier_names`, which reads the built-in catalog: this check runs while
                    // it is being parsed.
                    valid: self.tiers.keys().cloned().collect(),
                });
            }
        }
        Ok(())
    }

    /// The tier names in the catalog's order, cheapest first: the built-in tiers as OpenAI
    /// ranks them (`free`, `tier-1` ... `tier-5`), then the tiers a user file adds (custom
    /// enterprise limits, say), by monthly spend cap, then least paid to qualify, then name.
    /// A plan's "cheapest tier" and its `--tiers` ranges read this order.
    ///
    /// ```
    /// let mut catalog = quota::Catalog::builtin();
    /// catalog.apply_overrides_toml(r#"
    ///     [tiers.enterprise]
    ///     qualification = "a signed contract"
    ///     monthly_spend_cap_usd = 1000000
    ///     [tiers.dev-sandbox]
    ///     qualification = "an internal project"
    ///     monthly_spend_cap_usd = 50
    /// "#).unwrap();
    /// assert_eq!(
    ///     catalog.tier_names(),
    ///     ["free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5", "dev-sandbox", "enterprise"]
    /// );
    /// ```
    pub fn tier_names(&self) -> Vec<String> {
        let builtin = &builtin_catalog().tiers;
        let mut added: Vec<(&String, &TierInfo)> = self
            .tiers
            .iter()
            .filter(|(name, _)| !builtin.contains_key(*name))
            .collect();
        added.sort_by_key(|(name, info)| {
            (
                info.monthly_spend_cap_usd,
                info.paid_usd.unwrap_or(0),
                name.as_str(),
            )
        });
        builtin
            .keys()
            .filter(|name| self.tiers.contains_key(*name))
            .chain(added.into_iter().map(|(name, _)| name))
            .cloned()
            .collect()
    }

    /// The tier's description, or an error listing the valid tiers.
    pub fn tier(&self, tier: &str) -> Result<&TierInfo, CatalogError> {
        self.tiers
            .get(tier)
            .ok_or_else(|| CatalogError::UnknownTier {
                tier: tier.to_owned(),
                valid: self.tier_names(),
            })
    }

    /// The limits of `model` in `tier`, or an error listing the valid tiers or the models the
    /// tier offers.
    pub fn limits(&self, tier: &str, model: &str) -> Result<&ModelLimits, CatalogError> {
        self.tier(tier)?;
        self.models
            .get(model)
            .and_then(|entry| entry.tiers.get(tier))
            .ok_or_else(|| CatalogError::UnknownModel {
                model: model.to_owned(),
                tier: Some(tier.to_owned()),
                valid: self
                    .models
                    .iter()
                    .filter(|(_, entry)| entry.tiers.contains_key(tier))
                    .map(|(name, _)| name.clone())
                    .collect(),
            })
    }

    /// The entry of `model`, or an error listing every model.
    pub fn model(&self, model: &str) -> Result<&ModelEntry, CatalogError> {
        self.models
            .get(model)
            .ok_or_else(|| CatalogError::UnknownModel {
                model: model.to_owned(),
                tier: None,
                valid: self.models.keys().cloned().collect(),
            })
    }

    /// The pool `model` draws from: its `pool`, else its own name. Use it in limiter keys so
    /// models sharing a pool share a bucket.
    pub fn pool<'a>(&'a self, model: &'a str) -> Result<&'a str, CatalogError> {
        Ok(self.model(model)?.pool.as_deref().unwrap_or(model))
    }
}
