//! `ModelError`: why a server config cannot be built into a model, or an admin change cannot
//! be applied, with the place in the config it concerns.

/// A server config (or an admin change) the model cannot enforce: `place` is the key's path in
/// the config (`tier`, `organizations[0].limits.gpt-4o`, `timeline[2].tier`), so the message
/// reads `place: what is wrong (what is allowed)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {kind}")]
pub struct ModelError {
    /// Where in the config.
    pub place: String,
    /// What is wrong.
    pub kind: ModelErrorKind,
}

/// What is wrong, by kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelErrorKind {
    /// An unknown tier, or a model the tier does not offer: the catalog's own error.
    #[error("{0}")]
    Catalog(#[from] quota::CatalogError),
    /// A model the catalog does not list.
    #[error(
        "unknown model \"{model}\" (expected one of: {}, or add it under [catalog.models])",
        known.join(", ")
    )]
    UnknownModel {
        /// The name given.
        model: String,
        /// Every name the catalog lists.
        known: Vec<String>,
    },
    /// A pool of the catalog (gpt-4.1's long-context one) named where a model is needed.
    #[error("\"{model}\" is a pool of the catalog, not a model a request can name")]
    PoolNotModel {
        /// The pool's name.
        model: String,
    },
    /// Figures or options that cannot be enforced (a zero limit, a quantum that does not fit).
    #[error("{0}")]
    Limits(#[from] quota::LimitConfigError),
    /// `limits` (or a timeline `limits` entry) with no `model` to apply them to.
    #[error("name the model they apply to with `model` (e.g. model = \"gpt-4o-mini\")")]
    LimitsNeedModel,
    /// A model with neither a tier's figures nor written limits.
    #[error("no limits apply to {model} without a tier")]
    NoLimits {
        /// The model.
        model: String,
    },
}

impl ModelError {
    pub(crate) fn at(place: impl Into<String>, kind: impl Into<ModelErrorKind>) -> ModelError {
        ModelError {
            place: place.into(),
            kind: kind.into(),
        }
    }
}
