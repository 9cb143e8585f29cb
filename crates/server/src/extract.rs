//! `JsonBody`: reads a request body within the size limit and parses it (long bodies off the
//! async workers), turning every failure into the OpenAI-shaped 400 or 413 that names the
//! offending field.

use axum::body::{Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body of type `T`, or the `ApiError` explaining why not.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Bodies up to this size are parsed on the async worker that read them; longer ones (a
/// megabyte prompt takes milliseconds to parse) on the blocking pool, so they do not hold up
/// other requests.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned + Send + 'static> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config().max_body_bytes;
        let too_large = || ApiError::PayloadTooLarge { limit_bytes: limit };
        // A declared length over the limit is refused before reading a byte.
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let read_error = |error: axum::BoxError| {
            if error.is::<LengthLimitError>() {
                too_large()
            } else {
                ApiError::UnparsableJson
            }
        };
        let mut body = Limited::new(request.into_body(), limit);
        let read = async {
            // A small body arrives whole in its first frame; only a longer one is collected,
            // which costs a buffer list.
            let first = match body.frame().await {
                None => Bytes::new(),
                Some(frame) => frame.map_err(read_error)?.into_data().unwrap_or_default(),
            };
            if body.is_end_stream() {
                return Ok(first);
            }
            let rest = body.collect().await.map_err(read_error)?.to_bytes();
            let mut whole = Vec::with_capacity(first.len() + rest.len());
            whole.extend_from_slice(&first);
            whole.extend_from_slice(&rest);
            Ok(Bytes::from(whole))
        };
        // A client trickling its body would otherwise hold its connection and this task for as
        // long as it likes. Real time, whatever the server clock: this is the network's pace.
        let timeout = state.config().connections.body_read_timeout;
        let bytes = tokio::time::timeout(timeout.0, read)
            .await
            .map_err(|_| ApiError::BodyReadTimeout { timeout })??;
        if bytes.len() <= PARSE_INLINE_BYTES {
            return parse_json(&bytes).map(JsonBody);
        }
        tokio::task::spawn_blocking(move || parse_json(&bytes))
            .await
            .map_err(|error| {
                tracing::error!(%error, "parsing a request body failed");
                ApiError::ServerError
            })?
            .map(JsonBody)
    }
}

/// Parses `bytes` as `T`, naming the field that is missing or malformed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs on every field; it is only needed to explain a failure, so a
    // valid body takes the plain parse. The plain parse also rejects trailing bytes, which the
    // tracked one below accepts, so anything it refuses still gets the tracked parse's verdict.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut deserializer) {
        // A body the tracked parse accepts but the plain one refused has something after its
        // value (`{...} garbage`): not JSON, as OpenAI answers too. The check keeps that true
        // should the two parses ever disagree otherwise.
        Ok(value) => {
            return match deserializer.end() {
                Ok(()) => Ok(value),
                Err(_) => Err(ApiError::UnparsableJson),
            };
        }
        Err(error) => error,
    };
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return Err(ApiError::UnparsableJson);
    }
    let full = inner.to_string();
    // serde_json appends the position; the field path says more to an API user.
    let detail = full
        .rfind(" at line ")
        .map_or(full.as_str(), |cut| &full[..cut]);
    if let Some(field) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let param = if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        return Err(ApiError::MissingParameter { param });
    }
    Err(ApiError::InvalidParameter {
        message: format!("Invalid value for '{path}': {detail}."),
        param: path,
        code: "invalid_type",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::chat::ChatCompletionRequest;
    use axum::http::StatusCode;

    #[track_caller]
    fn check(body: &str, expected_param: Option<&str>, expected_message: &str) {
        let error = parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap_err();
        let object = error.error_object();
        assert_eq!(object.param.as_deref(), expected_param, "{object:?}");
        assert!(object.message.contains(expected_message), "{object:?}");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn message_content_is_a_string_or_a_list_of_parts() {
        let body = r#"{"model": "gpt-4o", "messages": [
            {"role": "user", "content": "plain"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null}
        ]}"#;
        let request = parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap();
        let texts: Vec<Option<String>> = request
            .messages
            .iter()
            .map(|message| message.content.as_ref().map(|content| content.text()))
            .collect();
        assert_eq!(
            texts,
            [Some("plain".to_owned()), Some("ab".to_owned()), None]
        );
    }

    #[test]
    fn bytes_after_the_body_make_it_unparsable() {
        let valid = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
        assert!(parse_json::<ChatCompletionRequest>(valid.as_bytes()).is_ok());
        // Trailing whitespace is still just JSON.
        assert!(parse_json::<ChatCompletionRequest>(format!("{valid} \n\t").as_bytes()).is_ok());
        for trailer in [" garbage", "x", "{}", " {\"model\": 1}", " 1", "\u{0}", "]"] {
            check(
                &format!("{valid}{trailer}"),
                None,
                "could not parse the JSON body",
            );
        }
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        check("{", None, "could not parse the JSON body");
        check("", None, "could not parse the JSON body");
        check(
            r#"{"messages": []}"#,
            Some("model"),
            "Missing required parameter: 'model'",
        );
        check(
            r#"{"model": "gpt-4o", "messages": [{"content": "hi"}]}"#,
            Some("messages[0].role"),
            "Missing required parameter: 'messages[0].role'",
        );
        check(
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}"#,
            Some("messages[0].content"),
            "invalid type: integer `5`, expected a string or an array of content parts",
        );
        check(
            r#"{"model": "gpt-4o", "messages": [], "max_tokens": "ten"}"#,
            Some("max_tokens"),
            "Invalid value for 'max_tokens': invalid type: string \"ten\", expected u32",
        );
    }
}
