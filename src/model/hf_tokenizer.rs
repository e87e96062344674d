//! HuggingFace tokenizers (`tokenizer.json`, or `vocab.txt`, or `vocab.json` + `merges.txt`)
//! through the `tokenizers` crate, with the page's legible token display.
//!
//! The release build aborts on a panic, so everything that reaches `tokenizers` is checked
//! first: files are parsed as JSON and bounded in size here, and the crate is only asked to
//! build from a JSON document and to encode text (both fuzzed in `tests/hf.rs`).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use thiserror::Error;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::tokenizer::{Token, Tokenized};

/// Largest tokenizer file read: GPT-2's tokenizer.json is 1.4 MB, multilingual ones ~17 MB.
pub const MAX_TOKENIZER_BYTES: usize = 64 * 1024 * 1024;

/// Marks a word's leading space in a byte-level token (`Ġ` in the file).
pub const SPACE_MARK: char = '␣';

/// What can be wrong with a tokenizer's files, naming the file.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenizerError {
    /// A file is not what it should be.
    #[error("`{file}` is not a usable tokenizer file: {reason}")]
    BadFile {
        /// The file at fault.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No tokenizer file among those given.
    #[error(
        "no tokenizer among the files: open `tokenizer.json`, or `vocab.txt` (BERT), or `vocab.json` with `merges.txt` (GPT-2) together with the model"
    )]
    Missing,
}

/// The tokenizer files of a model folder, as text.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerFiles<'a> {
    /// `tokenizer.json`.
    pub tokenizer_json: Option<&'a str>,
    /// `tokenizer_config.json`: lower-casing and special tokens.
    pub tokenizer_config: Option<&'a str>,
    /// `vocab.txt` (WordPiece).
    pub vocab_txt: Option<&'a str>,
    /// `vocab.json` (byte-level BPE).
    pub vocab_json: Option<&'a str>,
    /// `merges.txt` (byte-level BPE).
    pub merges_txt: Option<&'a str>,
}

/// How the tokenizer splits words, which decides how its tokens are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// WordPiece: continuations start with `##` (BERT).
    WordPiece,
    /// Byte-level BPE: tokens are bytes spelled as characters, `Ġ` for a space (GPT-2).
    ByteLevelBpe,
    /// Anything else `tokenizers` reads.
    Other,
}

/// A HuggingFace tokenizer with padding and truncation switched off, cutting at the model's
/// positions itself so that it can say how much it cut.
#[derive(Clone)]
pub struct HfTokenizer {
    inner: Tokenizer,
    /// How tokens are shown.
    pub kind: TokenizerKind,
    /// Longest sequence kept, special tokens included.
    pub max_len: usize,
    /// What was assumed because the files did not say, in words for the page.
    pub assumptions: Vec<String>,
    unk_id: Option<u32>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("kind", &self.kind)
            .field("max_len", &self.max_len)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl PartialEq for HfTokenizer {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.max_len == other.max_len
            && self.inner.get_vocab(true) == other.inner.get_vocab(true)
    }
}

fn bad(file: &str, reason: impl ToString) -> TokenizerError {
    TokenizerError::BadFile {
        file: file.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_json(file: &str, text: &str) -> Result<Value, TokenizerError> {
    if text.len() > MAX_TOKENIZER_BYTES {
        return Err(bad(
            file,
            format!(
                "it is {} bytes, over the {MAX_TOKENIZER_BYTES}-byte limit",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text).map_err(|error| bad(file, error))
}

impl HfTokenizer {
    /// Builds the tokenizer from a model folder's files for a model of `max_len` positions.
    /// `family` (`bert`, `gpt2`) decides the pipeline when only vocabulary files are given.
    pub fn from_files(
        files: TokenizerFiles<'_>,
        family: &str,
        max_len: usize,
    ) -> Result<Self, TokenizerError> {
        let config = match files.tokenizer_config {
            Some(text) => Some(parse_json("tokenizer_config.json", text)?),
            None => None,
        };
        let mut assumptions = Vec::new();
        let (file, document) = if let Some(text) = files.tokenizer_json {
            ("tokenizer.json", parse_json("tokenizer.json", text)?)
        } else if let Some(vocab) = files.vocab_txt {
            let lower = lower_case(config.as_ref(), &mut assumptions);
            (
                "vocab.txt",
                wordpiece_document(vocab, lower, config.as_ref())?,
            )
        } else if let (Some(vocab), Some(merges)) = (files.vocab_json, files.merges_txt) {
            (
                "vocab.json",
                byte_level_document(
                    parse_json("vocab.json", vocab)?,
                    merges,
                    family == "RoBERTa",
                )?,
            )
        } else if files.vocab_json.is_some() {
            return Err(bad("vocab.json", "it needs `merges.txt` beside it"));
        } else {
            return Err(TokenizerError::Missing);
        };
        if files.tokenizer_config.is_none() {
            assumptions.push(format!(
                "no tokenizer_config.json: special tokens as {family}'s defaults"
            ));
        }
        Self::from_document(file, document, max_len, assumptions)
    }

    fn from_document(
        file: &str,
        mut document: Value,
        max_len: usize,
        assumptions: Vec<String>,
    ) -> Result<Self, TokenizerError> {
        let Value::Object(fields) = &mut document else {
            return Err(bad(file, "it is not a JSON object"));
        };
        // A file's padding and truncation (MiniLM's pads every input to 128) are not ours.
        fields.insert("padding".into(), Value::Null);
        fields.insert("truncation".into(), Value::Null);
        let model = fields
            .get("model")
            .ok_or_else(|| bad(file, "it has no `model`"))?;
        let kind = match model.get("type").and_then(Value::as_str) {
            Some("WordPiece") => TokenizerKind::WordPiece,
            Some("BPE") if mentions_byte_level(fields) => TokenizerKind::ByteLevelBpe,
            Some("BPE" | "WordLevel" | "Unigram") => TokenizerKind::Other,
            Some(other) => return Err(bad(file, format!("unknown model type `{other}`"))),
            None => return Err(bad(file, "its `model` has no `type`")),
        };
        let unk_token = model
            .get("unk_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        let bytes = serde_json::to_vec(&document).map_err(|error| bad(file, error))?;
        let inner = Tokenizer::from_bytes(bytes).map_err(|error| bad(file, error))?;
        let unk_id = unk_token.and_then(|token| inner.token_to_id(&token));
        Ok(Self {
            inner,
            kind,
            max_len,
            assumptions,
            unk_id,
        })
    }

    /// Ids the tokenizer can produce (its vocabulary and added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The largest id the tokenizer can produce, plus one: what the embedding must cover.
    pub fn id_bound(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |id| *id as usize + 1)
    }

    /// The mask token (`[MASK]` for BERT, `<mask>` for RoBERTa) and its id, if there is one.
    pub fn mask(&self) -> Option<(&'static str, u32)> {
        ["[MASK]", "<mask>"]
            .into_iter()
            .find_map(|token| Some((token, self.inner.token_to_id(token)?)))
    }

    /// The id of `token`, if the tokenizer has it (`[MASK]`, `<|endoftext|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token `id` as the page shows it ([`Self::display`]), or `#id` for an id it lacks.
    pub fn token_text(&self, id: u32) -> String {
        self.inner
            .id_to_token(id)
            .map_or_else(|| format!("#{id}"), |token| self.display(&token))
    }

    /// Tokenizes `text` (and `pair`, sentence B, with token type 1), adding the special tokens
    /// the post-processor adds, and keeps at most [`Self::max_len`] tokens.
    pub fn tokenize(&self, text: &str, pair: Option<&str>) -> Tokenized {
        let full = self.encode(text, pair, None);
        let total = full.as_ref().map_or(0, tokenizers::Encoding::len);
        let (encoding, dropped) = if total > self.max_len {
            (
                self.encode(text, pair, Some(self.max_len)),
                total - self.max_len,
            )
        } else {
            (full, 0)
        };
        let Some(encoding) = encoding else {
            return Tokenized {
                tokens: Vec::new(),
                dropped,
            };
        };
        // Offsets count from the start of their own sentence, which the sequence id names
        // (RoBERTa gives sentence B token type 0 too).
        let sequences = encoding.get_sequence_ids();
        let tokens = encoding
            .get_ids()
            .iter()
            .zip(encoding.get_tokens())
            .zip(encoding.get_offsets())
            .zip(encoding.get_type_ids())
            .zip(encoding.get_special_tokens_mask())
            .zip(sequences)
            .map(
                |(((((&id, token), &(start, end)), &segment), &special), sequence)| {
                    let source_text = if sequence == Some(1) {
                        pair.unwrap_or(text)
                    } else {
                        text
                    };
                    let source = if special == 1 {
                        token.clone()
                    } else {
                        char_slice(source_text, start, end)
                    };
                    Token {
                        id,
                        display: self.display(token),
                        source,
                        known: Some(id) != self.unk_id,
                        segment,
                        special: special == 1,
                    }
                },
            )
            .collect();
        Tokenized { tokens, dropped }
    }

    fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        cut: Option<usize>,
    ) -> Option<tokenizers::Encoding> {
        let mut tokenizer = self.inner.clone();
        if let Some(max_length) = cut {
            let params = TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            };
            // Fails only when the special tokens alone do not fit: keep nothing then.
            tokenizer.with_truncation(Some(params)).ok()?;
        }
        let result = match pair {
            Some(pair) => tokenizer.encode_char_offsets((text, pair), true),
            None => tokenizer.encode_char_offsets(text, true),
        };
        result.ok()
    }

    /// A token as the page shows it: WordPiece as written (`##ing` marks a continuation);
    /// byte-level BPE decoded to its text with [`SPACE_MARK`] for a leading space, or its hex
    /// bytes when they are not UTF-8 on their own.
    pub fn display(&self, token: &str) -> String {
        // An added token that strips the space before it (RoBERTa's `<mask>`) comes back with
        // that space: it is shown as the token it is.
        let token = match self.inner.token_to_id(token) {
            None if self.inner.token_to_id(token.trim()).is_some() => token.trim(),
            _ => token,
        };
        if self.kind != TokenizerKind::ByteLevelBpe || self.inner.token_to_id(token).is_none() {
            return token.to_string();
        }
        let Some(bytes) = token.chars().map(byte_of).collect::<Option<Vec<u8>>>() else {
            return token.to_string();
        };
        match String::from_utf8(bytes) {
            Ok(text) => text
                .replace(' ', &SPACE_MARK.to_string())
                .replace('\n', "\\n")
                .replace('\t', "\\t"),
            Err(error) => error
                .into_bytes()
                .iter()
                .map(|byte| format!("<{byte:02X}>"))
                .collect(),
        }
    }
}

/// Characters `start..end` of `text`.
fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

fn mentions_byte_level(fields: &serde_json::Map<String, Value>) -> bool {
    ["pre_tokenizer", "decoder"].iter().any(|key| {
        fields
            .get(*key)
            .is_some_and(|value| value.to_string().contains("\"ByteLevel\""))
    })
}

fn lower_case(config: Option<&Value>, assumptions: &mut Vec<String>) -> bool {
    match config
        .and_then(|config| config.get("do_lower_case"))
        .and_then(Value::as_bool)
    {
        Some(lower) => lower,
        None => {
            assumptions.push("lower-casing assumed (uncased BERT)".into());
            true
        }
    }
}

/// The special token `name` (`cls_token`, …) of a tokenizer_config.json, or `default`.
fn special(config: Option<&Value>, name: &str, default: &str) -> String {
    let value = config.and_then(|config| config.get(name));
    value
        .and_then(|value| value.as_str().or_else(|| value.get("content")?.as_str()))
        .unwrap_or(default)
        .to_string()
}

fn added_tokens(specials: &[(String, u32)]) -> Value {
    Value::Array(
        specials
            .iter()
            .map(|(content, id)| {
                json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect(),
    )
}

/// BERT's pipeline over a `vocab.txt` (one token per line, id = line number), as
/// `BertTokenizerFast` builds it.
fn wordpiece_document(
    vocab: &str,
    lowercase: bool,
    config: Option<&Value>,
) -> Result<Value, TokenizerError> {
    if vocab.len() > MAX_TOKENIZER_BYTES {
        return Err(bad("vocab.txt", "it is over the size limit"));
    }
    let mut ids = serde_json::Map::new();
    for (id, token) in vocab.lines().enumerate() {
        if ids.insert(token.to_string(), json!(id)).is_some() {
            return Err(bad("vocab.txt", format!("`{token}` appears twice")));
        }
    }
    let names = [
        ("unk_token", "[UNK]"),
        ("sep_token", "[SEP]"),
        ("pad_token", "[PAD]"),
        ("cls_token", "[CLS]"),
        ("mask_token", "[MASK]"),
    ];
    let mut specials = Vec::new();
    for (name, default) in names {
        let token = special(config, name, default);
        let Some(id) = ids.get(&token).and_then(Value::as_u64) else {
            return Err(bad("vocab.txt", format!("it has no `{token}` ({name})")));
        };
        specials.push((token, id as u32));
    }
    let id_of = |index: usize| json!([specials[index].0, specials[index].1]);
    Ok(json!({
        "version": "1.0",
        "added_tokens": added_tokens(&specials),
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
                       "handle_chinese_chars": true, "strip_accents": null, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": id_of(1), "cls": id_of(3)},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": specials[0].0,
                  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                  "vocab": Value::Object(ids)}
    }))
}

/// GPT-2's pipeline over `vocab.json` and `merges.txt`, reading merges in the old (`a b`
/// per line, after a `#version` line) form; RoBERTa's (`roberta`) adds `<s> … </s>` around
/// the text, as `RobertaTokenizer` does.
fn byte_level_document(vocab: Value, merges: &str, roberta: bool) -> Result<Value, TokenizerError> {
    let Value::Object(vocab) = vocab else {
        return Err(bad("vocab.json", "it is not a JSON object of token → id"));
    };
    if vocab
        .values()
        .any(|id| id.as_u64().is_none_or(|id| id > u64::from(u32::MAX)))
    {
        return Err(bad("vocab.json", "an id is not a whole number"));
    }
    let mut pairs = Vec::new();
    for (line_number, line) in merges.lines().enumerate() {
        if line.starts_with("#version") || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        let [left, right] = parts[..] else {
            return Err(bad(
                "merges.txt",
                format!(
                    "line {} is not two tokens separated by one space",
                    line_number + 1
                ),
            ));
        };
        for part in [left, right] {
            if !vocab.contains_key(part) {
                return Err(bad(
                    "merges.txt",
                    format!(
                        "line {} merges `{part}`, which vocab.json lacks",
                        line_number + 1
                    ),
                ));
            }
        }
        pairs.push(json!([left, right]));
    }
    const ROBERTA_SPECIALS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
    let specials: Vec<(String, u32)> = vocab
        .iter()
        .filter(|(token, _)| {
            (token.starts_with("<|") && token.ends_with("|>"))
                || (roberta && ROBERTA_SPECIALS.contains(&token.as_str()))
        })
        .filter_map(|(token, id)| Some((token.clone(), id.as_u64()? as u32)))
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    let id_of = |token: &str| specials.iter().find(|(t, _)| t == token).map(|(_, id)| *id);
    let post_processor = if roberta {
        let (Some(cls), Some(sep)) = (id_of("<s>"), id_of("</s>")) else {
            return Err(bad(
                "vocab.json",
                "a RoBERTa vocabulary needs `<s>` and `</s>`",
            ));
        };
        json!({"type": "RobertaProcessing", "sep": ["</s>", sep], "cls": ["<s>", cls],
               "trim_offsets": true, "add_prefix_space": false})
    } else {
        byte_level.clone()
    };
    let mut added = added_tokens(&specials);
    // RoBERTa's `<mask>` takes the space before it, as `RobertaTokenizer` declares it.
    if let Value::Array(tokens) = &mut added {
        for token in tokens
            .iter_mut()
            .filter(|token| token["content"] == "<mask>")
        {
            token["lstrip"] = json!(true);
        }
    }
    Ok(json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": post_processor,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": Value::Object(vocab), "merges": pairs}
    }))
}

/// The byte a byte-level BPE character stands for (GPT-2's `bytes_to_unicode`, inverted):
/// printable Latin-1 characters stand for themselves, the other bytes for 256 upwards.
fn byte_of(ch: char) -> Option<u8> {
    static TABLE: std::sync::OnceLock<BTreeMap<char, u8>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let printable = |byte: u32| {
            (u32::from(b'!')..=u32::from(b'~')).contains(&byte)
                || (0xA1..=0xAC).contains(&byte)
                || (0xAE..=0xFF).contains(&byte)
        };
        let mut next = 256;
        (0u32..256)
            .map(|byte| {
                let ch = if printable(byte) {
                    byte
                } else {
                    next += 1;
                    next - 1
                };
                (char::from_u32(ch).unwrap_or('\u{FFFD}'), byte as u8)
            })
            .collect()
    });
    table.get(&ch).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_characters_map_back_to_their_bytes() {
        assert_eq!(byte_of('Ġ'), Some(b' '));
        assert_eq!(byte_of('Ċ'), Some(b'\n'));
        assert_eq!(byte_of('a'), Some(b'a'));
        assert_eq!(byte_of('é'), Some(0xE9));
        assert_eq!(byte_of('中'), None);
    }

    #[test]
    fn old_merges_that_name_unknown_tokens_are_refused_by_line() {
        let vocab = json!({"a": 0, "b": 1, "ab": 2});
        let error = byte_level_document(vocab, "#version: 0.2\na b\na c\n", false).unwrap_err();
        assert!(error.to_string().contains("line 3 merges `c`"), "{error}");
    }
}
