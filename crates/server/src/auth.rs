//! API keys: which organization and project a bearer key acts for (the model's `Caller`), with
//! keys shown only redacted (`model::redact`, the one redaction of the workspace), and the
//! per-key metrics slot each declared key counts in.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hashbrown::HashMap;

use model::redact;
use model::{Caller, DEFAULT_ORGANIZATION, DEFAULT_PROJECT, ServerConfig};

use crate::error::ApiError;
use crate::grading::GradingNote;
use crate::metrics::KeySlot;
use crate::state::AppState;

/// Who a request acts for. The key itself is kept for fault scripts but never printed: its
/// `Debug` shows only the redacted form.
#[derive(Clone)]
pub struct Principal {
    pub organization: Arc<str>,
    pub project: Arc<str>,
    /// `openai-organization`'s value, made once per organization: cloning it shares the bytes.
    organization_header: Option<HeaderValue>,
    /// The `Authorization` value the key came from: holding it shares the request's bytes
    /// rather than copying the key.
    authorization: HeaderValue,
    key: Range<usize>,
    /// The key's per-key metrics: its own when the config declares it, else the pool's.
    key_slot: KeySlot,
    /// Where the pipeline notes a graded attempt's tokens; `None` when not graded.
    grading_note: Option<Arc<GradingNote>>,
}

impl Principal {
    pub fn key(&self) -> &str {
        // Authentication read the key out of this very value as text, so this cannot fail.
        self.authorization
            .to_str()
            .ok()
            .and_then(|text| text.get(self.key.clone()))
            .unwrap_or_default()
    }

    /// Who the request is, as the server model sees it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            organization: &self.organization,
            project: &self.project,
            key: self.key(),
        }
    }

    pub fn redacted_key(&self) -> String {
        redact(self.key())
    }

    /// Which per-key metrics the request counts in.
    pub fn key_slot(&self) -> KeySlot {
        self.key_slot
    }

    /// The note of a graded attempt, for the pipeline to record its tokens in.
    pub fn grading_note(&self) -> Option<&GradingNote> {
        self.grading_note.as_deref()
    }

    /// The value of the `openai-organization` header, unless the organization's id cannot be
    /// one.
    pub fn organization_header(&self) -> Option<&HeaderValue> {
        self.organization_header.as_ref()
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Principal")
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("key", &self.redacted_key())
            .finish()
    }
}

/// The organization and project a key acts for, and the key's metrics slot.
#[derive(Debug, Clone)]
struct Binding {
    organization: Arc<str>,
    project: Arc<str>,
    organization_header: Option<HeaderValue>,
    key_slot: KeySlot,
}

impl Binding {
    fn new(organization: Arc<str>, project: Arc<str>) -> Binding {
        let organization_header =
            HeaderValue::from_maybe_shared(Bytes::from(organization.to_string())).ok();
        Binding {
            organization,
            project,
            organization_header,
            key_slot: KeySlot::OTHER,
        }
    }
}

/// Keys mapped to their organization and project.
#[derive(Debug, Clone)]
pub struct Directory {
    keys: HashMap<String, Binding>,
    /// Set when the config declares no keys: every key lands here.
    open_to: Option<Binding>,
    /// The declared keys' distinct redacted forms, in the config's order: the per-key
    /// metrics' labels, indexed by the bindings' slots.
    key_labels: Vec<String>,
}

impl Directory {
    pub fn from_config(config: &ServerConfig) -> Directory {
        let mut keys = HashMap::new();
        let mut key_labels: Vec<String> = Vec::new();
        for organization in &config.organizations {
            let organization_id: Arc<str> = organization.id.as_str().into();
            for project in &organization.projects {
                let binding = Binding::new(organization_id.clone(), project.id.as_str().into());
                for key in &project.keys {
                    // Keys with the same redacted form share a label, as they share a name in
                    // grading: the label must not tell them apart any more than the logs do.
                    let label = redact(key);
                    let index = match key_labels.iter().position(|known| *known == label) {
                        Some(index) => index,
                        None => {
                            key_labels.push(label);
                            key_labels.len() - 1
                        }
                    };
                    let key_slot = KeySlot::declared(index);
                    keys.insert(
                        key.clone(),
                        Binding {
                            key_slot,
                            ..binding.clone()
                        },
                    );
                }
            }
        }
        let open_to = keys
            .is_empty()
            .then(|| Binding::new(DEFAULT_ORGANIZATION.into(), DEFAULT_PROJECT.into()));
        Directory {
            keys,
            open_to,
            key_labels,
        }
    }

    /// The per-key metrics' labels of the declared keys (redacted), in slot order.
    pub fn key_labels(&self) -> &[String] {
        &self.key_labels
    }

    /// Resolves an `Authorization` header's value (`Bearer <key>`).
    pub fn authenticate(&self, authorization: Option<&HeaderValue>) -> Result<Principal, ApiError> {
        const BEARER: &str = "Bearer ";
        let (authorization, text) = authorization
            .and_then(|value| Some((value, value.to_str().ok()?)))
            .ok_or(ApiError::MissingApiKey)?;
        let after_bearer = text.strip_prefix(BEARER).ok_or(ApiError::MissingApiKey)?;
        let from_key = after_bearer.trim_start();
        let key = from_key.trim_end();
        if key.is_empty() {
            return Err(ApiError::MissingApiKey);
        }
        let start = BEARER.len() + (after_bearer.len() - from_key.len());
        let binding = match (self.keys.get(key), &self.open_to) {
            (Some(binding), _) | (None, Some(binding)) => binding,
            (None, None) => {
                return Err(ApiError::InvalidApiKey {
                    redacted_key: redact(key),
                });
            }
        };
        Ok(Principal {
            organization: binding.organization.clone(),
            project: binding.project.clone(),
            organization_header: binding.organization_header.clone(),
            authorization: authorization.clone(),
            key: start..start + key.len(),
            key_slot: binding.key_slot,
            grading_note: None,
        })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state
            .directory()
            .authenticate(parts.headers.get(AUTHORIZATION))
        {
            Ok(mut principal) => {
                principal.grading_note = parts.extensions.get::<Arc<GradingNote>>().cloned();
                Ok(principal)
            }
            // A missing or unknown key is no declared key: it counts in the pool.
            Err(error) => {
                state
                    .metrics()
                    .record_key_request(KeySlot::OTHER, error.status().as_u16());
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_the_ends() {
        assert_eq!(redact("sk-proj-abcdefgh1234"), "sk-*************1234");
        assert_eq!(redact("short"), "*****");
    }

    #[test]
    fn debug_never_prints_the_key() {
        let directory = Directory::from_config(&ServerConfig::default());
        let principal = directory
            .authenticate(Some(&HeaderValue::from_static(
                "Bearer sk-secret-value-9876",
            )))
            .unwrap();
        let debug = format!("{principal:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("9876"), "{debug}");
    }
}
