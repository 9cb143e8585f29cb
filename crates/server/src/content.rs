//! Synthetic, deterministic content: reply text whose length follows a configured distribution
//! and `max_tokens`, and unit-length embedding vectors.
//!
//! Every draw comes from a ChaCha RNG seeded by the server seed mixed with a fingerprint of the
//! request's content, so the same request gets the same reply whatever the arrival order.

use model::LengthDistribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// A generated reply: its text, and where each of its pieces (one token each, one per stream
/// event) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticReply {
    text: String,
    /// Byte offset in `text` where each piece ends: two allocations per reply, not one per
    /// token, since most replies are sent whole.
    piece_ends: Vec<usize>,
    pub finish_reason: FinishReason,
}

impl SyntheticReply {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    /// The pieces a stream sends, in order; together they are [`SyntheticReply::text`].
    pub fn pieces(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.piece_ends.len()).map(|index| {
            let start = index
                .checked_sub(1)
                .map_or(0, |before| self.piece_ends[before]);
            &self.text[start..self.piece_ends[index]]
        })
    }

    /// The reply's tokens in every OpenAI encoding: each piece is exactly one token (a test
    /// checks every piece against tiktoken), so counting pieces spares a tokenizer pass.
    pub fn token_count(&self) -> u64 {
        self.piece_ends.len() as u64
    }
}

/// Common English words that are one token each (with their leading space) in OpenAI's
/// tokenizers, so a reply of N pieces is N tokens.
const WORDS: &[&str] = &[
    "the", "model", "request", "limit", "token", "time", "data", "system", "rate", "answer",
    "result", "value", "number", "point", "part", "way", "work", "test", "case", "line", "world",
    "day", "state", "group", "place", "question", "level", "order", "power", "change", "water",
    "light", "sound", "story", "table", "field", "river", "market", "city", "house", "road",
    "school", "music", "color", "heart", "mind", "game", "plan", "team", "book", "page", "word",
    "name", "and", "of", "to", "in", "is", "for", "with", "that", "on", "as", "at",
];

/// How many words make a sentence before a full stop.
const SENTENCE_WORDS: std::ops::RangeInclusive<usize> = 6..=14;

/// Generates a reply of the drawn length, cut at `max_tokens` when that is smaller.
pub fn reply(
    seed: u64,
    fingerprint: u64,
    choice_index: u32,
    distribution: &LengthDistribution,
    max_tokens: Option<u32>,
) -> SyntheticReply {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(seed, fingerprint), u64::from(choice_index)));
    let wanted = distribution.sample(&mut rng);
    let (length, finish_reason) = match max_tokens {
        Some(cap) if cap < wanted => (cap, FinishReason::Length),
        _ => (wanted, FinishReason::Stop),
    };
    let length = length as usize;
    // Reserve for the usual piece, not the longest, but never more than a huge `max_tokens`
    // could make a request ask for up front.
    let mut text = String::with_capacity(length.min(1 << 16) * 6);
    let mut piece_ends: Vec<usize> = Vec::with_capacity(length.min(1 << 16));
    let mut last_was_stop = false;
    let mut words_left_in_sentence = 0;
    while piece_ends.len() < length {
        let tokens_left = length - piece_ends.len();
        let ends_sentence = !piece_ends.is_empty()
            && !last_was_stop
            && (words_left_in_sentence == 0 || tokens_left == 1);
        if ends_sentence {
            text.push('.');
            last_was_stop = true;
            words_left_in_sentence = rng.random_range(SENTENCE_WORDS);
        } else {
            if words_left_in_sentence == 0 {
                words_left_in_sentence = rng.random_range(SENTENCE_WORDS);
            }
            let word = WORDS[rng.random_range(0..WORDS.len())];
            let starts_sentence = piece_ends.is_empty() || last_was_stop;
            if !piece_ends.is_empty() {
                text.push(' ');
            }
            if starts_sentence {
                push_capitalized(&mut text, word);
            } else {
                text.push_str(word);
            }
            last_was_stop = false;
            words_left_in_sentence -= 1;
        }
        piece_ends.push(text.len());
    }
    SyntheticReply {
        text,
        piece_ends,
        finish_reason,
    }
}

/// Appends `word` with its first letter in upper case.
fn push_capitalized(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.push(first.to_ascii_uppercase());
        out.push_str(chars.as_str());
    }
}

/// A deterministic unit vector for `text`.
pub fn embedding(seed: u64, model: &str, text: &str, dimensions: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, fingerprint([model, text])));
    let raw: Vec<f32> = (0..dimensions)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

/// FNV-1a over the parts, with a separator so `["ab", "c"]` and `["a", "bc"]` differ.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    parts.into_iter().fold(OFFSET, |hash, part| {
        part.bytes()
            .chain(std::iter::once(0xff))
            .fold(hash, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(PRIME)
            })
    })
}

/// SplitMix64's finalizer: combines two values into a well-spread seed.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_add(a << 6);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_repeats_for_the_same_seed_and_request() {
        let distribution = LengthDistribution::default();
        let first = reply(7, fingerprint(["hi"]), 0, &distribution, None);
        assert_eq!(first, reply(7, fingerprint(["hi"]), 0, &distribution, None));
        assert_ne!(first, reply(8, fingerprint(["hi"]), 0, &distribution, None));
        assert_ne!(first, reply(7, fingerprint(["hi"]), 1, &distribution, None));
    }

    #[test]
    fn max_tokens_caps_the_reply_and_says_length() {
        let distribution = LengthDistribution::Fixed { tokens: 40 };
        let capped = reply(1, 2, 0, &distribution, Some(5));
        assert_eq!(capped.pieces().len(), 5);
        assert_eq!(capped.finish_reason, FinishReason::Length);
        let whole = reply(1, 2, 0, &distribution, Some(40));
        assert_eq!(whole.pieces().len(), 40);
        assert_eq!(whole.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn every_piece_is_one_token_in_every_encoding() {
        let pieces = WORDS.iter().flat_map(|word| {
            let mut capital = String::new();
            push_capitalized(&mut capital, word);
            [format!(" {word}"), format!(" {capital}"), capital]
        });
        for piece in pieces.chain([".".to_owned()]) {
            for model in ["gpt-4o", "gpt-4", "gpt-3.5-turbo", "text-embedding-3-small"] {
                assert_eq!(
                    crate::tokenizer::count_text_tokens(model, &piece),
                    1,
                    "{piece:?} in {model}"
                );
            }
        }
        let generated = reply(3, 4, 0, &LengthDistribution::Fixed { tokens: 200 }, None);
        let text = generated.text();
        assert_eq!(
            crate::tokenizer::count_text_tokens("gpt-4o", text),
            generated.token_count()
        );
        assert_eq!(
            crate::tokenizer::count_text_tokens("gpt-4", text),
            generated.token_count()
        );
    }

    #[test]
    fn embeddings_are_unit_length_and_deterministic() {
        let vector = embedding(3, "text-embedding-3-small", "hello", 256);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert_eq!(vector, embedding(3, "text-embedding-3-small", "hello", 256));
        assert_ne!(vector, embedding(3, "text-embedding-3-small", "hullo", 256));
    }

    #[test]
    fn every_distribution_draws_at_least_one_token() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for distribution in [
            LengthDistribution::Normal {
                mean: 1.0,
                std_dev: 50.0,
            },
            LengthDistribution::LogNormal {
                mean: 30.0,
                std_dev: 20.0,
            },
            LengthDistribution::Uniform { min: 1, max: 3 },
        ] {
            for _ in 0..200 {
                assert!(distribution.sample(&mut rng) >= 1);
            }
        }
    }
}
