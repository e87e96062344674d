//! Word-level tokenizer: text to token ids with the strings the page shows for them.

use std::collections::HashMap;

/// The bundled corpus the default vocabulary is counted from (public domain, see `assets/corpus/`).
pub const BUNDLED_CORPUS: &str = include_str!("../../assets/corpus/moby_dick_ch1-3.txt");

/// Id 0: padding.
pub const PAD: &str = "[PAD]";
/// Id 1: any word outside the vocabulary.
pub const UNK: &str = "[UNK]";

/// Splits text into lower-cased words, single digits and single punctuation marks.
///
/// A word is a run of alphanumeric characters (any script) other than ASCII digits. Every ASCII
/// digit is a token of its own, as in GPT-style number splitting, so "31415" is five tokens and
/// "abc12" is `abc`, `1`, `2`; ten digit tokens then cover every number. Every other non-space
/// character, emoji included, is a token of its own.
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            words.push(ch.to_string());
            continue;
        }
        if ch.is_alphanumeric() {
            current.extend(ch.to_lowercase());
            continue;
        }
        if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if !ch.is_whitespace() {
            words.push(ch.to_string());
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A fixed list of words; a word's id is its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    /// `[PAD]`, `[UNK]`, then the `size - 2` most frequent tokens of `corpus` (ties broken
    /// alphabetically, so the ids never depend on hash order).
    pub fn from_corpus(corpus: &str, size: usize) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for word in split_words(corpus) {
            *counts.entry(word).or_default() += 1;
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|(a_word, a_count), (b_word, b_count)| {
            b_count.cmp(a_count).then_with(|| a_word.cmp(b_word))
        });
        let words = [PAD.to_string(), UNK.to_string()]
            .into_iter()
            .chain(ranked.into_iter().map(|(word, _)| word))
            .take(size.max(2))
            .collect();
        Self::from_words(words)
    }

    /// A vocabulary from an explicit word list (index = id).
    pub fn from_words(words: Vec<String>) -> Self {
        let ids = words
            .iter()
            .enumerate()
            .map(|(id, word)| (word.clone(), id as u32))
            .collect();
        Self { words, ids }
    }

    /// The 1000-word vocabulary of the `seed` preset, counted from the bundled corpus.
    pub fn bundled() -> Self {
        Self::from_corpus(BUNDLED_CORPUS, 1000)
    }

    /// Every word, index = id.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when the vocabulary has no words at all.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    /// The word behind `id`.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// The id unknown words map to.
    pub fn unk_id(&self) -> u32 {
        self.id(UNK).unwrap_or(1)
    }
}

/// One token of the input: its id and what the page shows for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Token {
    /// Id fed to the model.
    pub id: u32,
    /// The word as written (lower-cased), or `[UNK]` when it is not in the vocabulary.
    pub display: String,
    /// The word as written, even when unknown.
    pub source: String,
    /// Whether the word is in the vocabulary.
    pub known: bool,
    /// Token type (segment): 0 for sentence A, 1 for sentence B.
    #[serde(default)]
    pub segment: u32,
    /// Whether the tokenizer added it (`[CLS]`, `[SEP]`) rather than the text.
    #[serde(default)]
    pub special: bool,
}

/// The result of tokenizing one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// The tokens kept, at most the tokenizer's maximum.
    pub tokens: Vec<Token>,
    /// How many tokens were cut off past the maximum length.
    pub dropped: usize,
}

impl Tokenized {
    /// Token ids, ready for the model.
    pub fn ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|token| token.id).collect()
    }

    /// Display strings, for chart labels.
    pub fn labels(&self) -> Vec<String> {
        self.tokens
            .iter()
            .map(|token| token.display.clone())
            .collect()
    }

    /// Token types (segments), one per token.
    pub fn segments(&self) -> Vec<u32> {
        self.tokens.iter().map(|token| token.segment).collect()
    }

    /// Number of tokens mapped to `[UNK]`.
    pub fn unknown_count(&self) -> usize {
        self.tokens.iter().filter(|token| !token.known).count()
    }
}

/// Word-level tokenizer over a [`Vocabulary`] with a maximum length.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTokenizer {
    /// The vocabulary ids come from.
    pub vocabulary: Vocabulary,
    /// Longest token sequence produced; the rest is counted in [`Tokenized::dropped`].
    pub max_len: usize,
}

impl WordTokenizer {
    /// A tokenizer over `vocabulary` keeping at most `max_len` tokens.
    pub fn new(vocabulary: Vocabulary, max_len: usize) -> Self {
        Self {
            vocabulary,
            max_len,
        }
    }

    /// Splits, maps to ids and cuts at the maximum length, counting what was cut.
    pub fn tokenize(&self, text: &str) -> Tokenized {
        let words = split_words(text);
        let dropped = words.len().saturating_sub(self.max_len);
        let tokens = words
            .into_iter()
            .take(self.max_len)
            .map(|word| match self.vocabulary.id(&word) {
                Some(id) => Token {
                    id,
                    display: word.clone(),
                    source: word,
                    known: true,
                    segment: 0,
                    special: false,
                },
                None => Token {
                    id: self.vocabulary.unk_id(),
                    display: UNK.to_string(),
                    source: word,
                    known: false,
                    segment: 0,
                    special: false,
                },
            })
            .collect();
        Tokenized { tokens, dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_punctuation_lower_cased() {
        assert_eq!(
            split_words("Call me Ishmael. Some years—ago!"),
            [
                "call", "me", "ishmael", ".", "some", "years", "—", "ago", "!"
            ]
        );
        assert_eq!(split_words("  \n\t "), Vec::<String>::new());
    }

    #[test]
    fn every_ascii_digit_is_a_token_of_its_own() {
        assert_eq!(split_words("31415"), ["3", "1", "4", "1", "5"]);
        assert_eq!(split_words("abc12"), ["abc", "1", "2"]);
        assert_eq!(split_words("12abc"), ["1", "2", "abc"]);
        assert_eq!(
            split_words("Room 101, 3.5 PM"),
            ["room", "1", "0", "1", ",", "3", ".", "5", "pm"]
        );
        assert_eq!(split_words("a1b"), ["a", "1", "b"]);
        assert_eq!(split_words("3 1 4"), ["3", "1", "4"]);
        // Digits of other scripts are not ASCII digits and stay inside their word.
        assert_eq!(split_words("x٣y"), ["x٣y"]);
    }

    #[test]
    fn emoji_and_non_ascii_are_tokens_and_unknown_words_show_as_unk() {
        let tokenizer = WordTokenizer::new(Vocabulary::bundled(), 16);
        let out = tokenizer.tokenize("the 🐋 whale Ünïcode 東京");
        let shown: Vec<&str> = out.tokens.iter().map(|t| t.display.as_str()).collect();
        assert_eq!(shown, ["the", UNK, "whale", UNK, UNK]);
        assert_eq!(out.tokens[1].source, "🐋");
        assert_eq!(out.tokens[3].source, "ünïcode");
        assert_eq!(out.unknown_count(), 3);
        assert!(out.tokens.iter().all(|t| t.known == (t.id != 1)));
    }

    #[test]
    fn long_text_keeps_the_first_max_tokens_and_counts_the_rest() {
        let tokenizer = WordTokenizer::new(Vocabulary::bundled(), 4);
        let out = tokenizer.tokenize("a b c d e f g");
        assert_eq!(out.tokens.len(), 4);
        assert_eq!(out.dropped, 3);
        assert_eq!(out.tokens[0].source, "a");
        assert_eq!(out.tokens[3].source, "d");
    }

    #[test]
    fn bundled_vocabulary_has_1000_distinct_words_most_frequent_first() {
        let vocabulary = Vocabulary::bundled();
        assert_eq!(vocabulary.len(), 1000);
        assert_eq!(vocabulary.word(0), Some(PAD));
        assert_eq!(vocabulary.word(1), Some(UNK));
        // In Melville's opening chapters the comma and "the" are the two commonest tokens.
        let mut top = [vocabulary.word(2), vocabulary.word(3)];
        top.sort();
        assert_eq!(top, [Some(","), Some("the")]);
        let distinct: std::collections::HashSet<_> =
            (0..1000).map(|id| vocabulary.word(id)).collect();
        assert_eq!(distinct.len(), 1000);
        // Words of the default sentence are known.
        for word in ["call", "me", "ishmael", "whale", "sea"] {
            assert!(vocabulary.id(word).is_some(), "{word} missing");
        }
    }

    #[test]
    fn vocabulary_from_corpus_breaks_ties_alphabetically() {
        let vocabulary = Vocabulary::from_corpus("b a c a b a", 4);
        assert_eq!(vocabulary.word(2), Some("a"));
        assert_eq!(vocabulary.word(3), Some("b"));
        assert_eq!(vocabulary.id("c"), None);
    }
}
