//! The error envelope every non-2xx response carries: `{"error": {message, type, param, code}}`.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`, OpenAI's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorObject,
}

/// The inside of the envelope. `code` is a string or null, never an integer: an integer breaks
/// the Rust client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}
