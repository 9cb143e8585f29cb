//! The error envelope every non-2xx response carries: `{"error": {message, type, param, code}}`.
//!
//! The shape is `quota`'s, which also builds the 429 bodies, so every error the server sends
//! goes through one type. `code` is a string or null, never an integer: an integer breaks the
//! Rust client.

pub use quota::{ErrorBody as ErrorEnvelope, ErrorDetail as ErrorObject};
