//! The tokenizer a loaded model comes with: glassbox's word-level one, or a HuggingFace one.

use super::hf_tokenizer::HfTokenizer;
use super::tokenizer::{Tokenized, Vocabulary, WordTokenizer};

/// Text to tokens, whichever kind of tokenizer the model has.
#[derive(Debug, Clone, PartialEq)]
pub enum TextTokenizer {
    /// glassbox's word-level tokenizer over a word list.
    Word(WordTokenizer),
    /// A HuggingFace tokenizer (WordPiece, byte-level BPE, …).
    Hf(Box<HfTokenizer>),
}

impl TextTokenizer {
    /// Tokenizes `text`.
    pub fn tokenize(&self, text: &str) -> Tokenized {
        self.tokenize_pair(text, None)
    }

    /// Tokenizes `text` and, for a tokenizer that takes sentence pairs, sentence B.
    pub fn tokenize_pair(&self, text: &str, pair: Option<&str>) -> Tokenized {
        match self {
            Self::Word(tokenizer) => tokenizer.tokenize(text),
            Self::Hf(tokenizer) => tokenizer.tokenize(text, pair.filter(|b| !b.trim().is_empty())),
        }
    }

    /// Longest token sequence kept.
    pub fn max_len(&self) -> usize {
        match self {
            Self::Word(tokenizer) => tokenizer.max_len,
            Self::Hf(tokenizer) => tokenizer.max_len,
        }
    }

    /// The word list, for a word-level tokenizer.
    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        match self {
            Self::Word(tokenizer) => Some(&tokenizer.vocabulary),
            Self::Hf(_) => None,
        }
    }

    /// A token id as the page shows it.
    pub fn token_text(&self, id: u32) -> String {
        match self {
            Self::Word(tokenizer) => tokenizer
                .vocabulary
                .word(id)
                .map_or_else(|| format!("#{id}"), str::to_string),
            Self::Hf(tokenizer) => tokenizer.token_text(id),
        }
    }

    /// The HuggingFace tokenizer, if it is one.
    pub fn hf(&self) -> Option<&HfTokenizer> {
        match self {
            Self::Hf(tokenizer) => Some(tokenizer),
            Self::Word(_) => None,
        }
    }
}
