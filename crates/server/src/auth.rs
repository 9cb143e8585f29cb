//! API keys: which organization and project a bearer key acts for, and how keys are redacted.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::config::{DEFAULT_ORGANIZATION, DEFAULT_PROJECT, ServerConfig};
use crate::error::ApiError;
use crate::state::AppState;

/// Who a request acts for. The key itself is kept for fault scripts but never printed: its
/// `Debug` shows only the redacted form.
#[derive(Clone)]
pub struct Principal {
    pub organization: Arc<str>,
    pub project: Arc<str>,
    key: Arc<str>,
}

impl Principal {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn redacted_key(&self) -> String {
        redact(&self.key)
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

/// Keys mapped to their organization and project.
#[derive(Debug, Clone)]
pub struct Directory {
    keys: HashMap<String, (Arc<str>, Arc<str>)>,
    /// Set when the config declares no keys: every key lands here.
    open_to: Option<(Arc<str>, Arc<str>)>,
}

impl Directory {
    pub fn from_config(config: &ServerConfig) -> Directory {
        let mut keys = HashMap::new();
        for organization in &config.organizations {
            let organization_id: Arc<str> = organization.id.as_str().into();
            for project in &organization.projects {
                let project_id: Arc<str> = project.id.as_str().into();
                for key in &project.keys {
                    keys.insert(key.clone(), (organization_id.clone(), project_id.clone()));
                }
            }
        }
        let open_to = keys
            .is_empty()
            .then(|| (DEFAULT_ORGANIZATION.into(), DEFAULT_PROJECT.into()));
        Directory { keys, open_to }
    }

    /// Resolves the `Authorization` header's value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let key = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::MissingApiKey)?;
        let (organization, project) = match (self.keys.get(key), &self.open_to) {
            (Some(binding), _) => binding.clone(),
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(ApiError::InvalidApiKey {
                    redacted_key: redact(key),
                });
            }
        };
        Ok(Principal {
            organization,
            project,
            key: key.into(),
        })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        state.directory().authenticate(authorization)
    }
}

/// Shows a key's first three and last four characters, as OpenAI's 401 message does; short
/// keys are hidden entirely.
pub fn redact(key: &str) -> String {
    let characters: Vec<char> = key.chars().collect();
    if characters.len() < 12 {
        return "*".repeat(characters.len());
    }
    let head: String = characters[..3].iter().collect();
    let tail: String = characters[characters.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(characters.len() - 7))
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
            .authenticate(Some("Bearer sk-secret-value-9876"))
            .unwrap();
        let debug = format!("{principal:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("9876"), "{debug}");
    }
}
