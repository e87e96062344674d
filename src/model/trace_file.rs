//! A trace as a file: what one traced forward pass saw, in JSON, so that it can be viewed again
//! without the model (a shared result, or a trace captured elsewhere).
//!
//! ```json
//! { "format": "glassbox.trace", "version": 2, "model": "reverse", "about": "…",
//!   "text": "3 1 4 1", "tokens": [{ "id": 5, "display": "3", "source": "3", "known": true }, …],
//!   "attention": [{ "layer": 0, "batch": 1, "heads": 4, "queries": 4, "keys": 4,
//!                   "values": [ /* batch × heads × queries × keys */ ] }, …],
//!   "modules": [{ "role": "attention_output", "layer": 0, "path": "layers.0.attn",
//!                 "shape": [1, 4, 64], "values": [ … ] }, …] }
//! ```
//!
//! Version 2 gives every captured tensor its [`Role`] and layer, and holds each distinct tensor
//! once. Version 1 files (module paths only, post-LN's layer output twice) are still read: the
//! roles are worked out from the paths and their order (`version1_roles`), and the duplicate
//! is dropped.
//!
//! The same content also goes in a safetensors file (`to_safetensors`): each attention map and
//! module output a little-endian `f32` tensor (`attention.{layer}`, `module.{path}`), the rest
//! in its metadata (`format`, `version`, `model`, `about`, `text`, and `tokens` and `modules`, each
//! capture's role, layer and path in order, as JSON; version 1 listed the paths alone). It is about half the size of the JSON and reads faster, for
//! long sequences; [`TraceFile::parse`] reads either.
//!
//! Reading checks everything the views rely on (shapes against value counts, one attention map
//! per layer over the tokens, weights between 0 and 1), so a damaged file is refused with the
//! place at fault and never reaches a chart.

use serde::{Deserialize, Serialize};

use super::checkpoint::{ParameterData, read_tensors, write_tensors};
use super::tokenizer::{Token, Tokenized};
use super::trace::{AttentionCapture, Capture, Role, Trace};

/// The `format` value of a trace file.
pub const TRACE_FORMAT: &str = "glassbox.trace";

/// The version this build writes and the newest it reads.
pub const TRACE_VERSION: u32 = 2;

/// The first version, which named captures by module path alone; still read.
pub const TRACE_VERSION_1: u32 = 1;

/// Trace files over this size are refused before they are read.
pub const MAX_TRACE_BYTES: usize = 256 * 1024 * 1024;

/// Tokens in a trace, at most: far beyond any model here, and it bounds the attention size.
pub const MAX_TRACE_TOKENS: usize = 8192;

/// Attention weights may stray this far outside `[0, 1]` (round-off in a softmax).
const WEIGHT_SLACK: f32 = 1e-4;

/// What a trace file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceFile {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// [`TRACE_VERSION`] when written by this build.
    pub version: u32,
    /// The model's id or file name.
    pub model: String,
    /// The model in words (its provenance line).
    #[serde(default)]
    pub about: String,
    /// The text that went in.
    #[serde(default)]
    pub text: String,
    /// The tokens of sequence 0, one label per position.
    pub tokens: Vec<Token>,
    /// Attention weights per layer.
    pub attention: Vec<AttentionCapture>,
    /// Every sub-module's output.
    #[serde(default)]
    pub modules: Vec<Capture>,
}

/// Why a trace file could not be read; every message names the place at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraceFileError {
    #[error("the file is {0} bytes, over the {MAX_TRACE_BYTES}-byte limit for a trace")]
    TooLarge(usize),
    #[error("not a trace: the file is not valid JSON ({0})")]
    NotJson(String),
    #[error(
        "this is one exported view (format glassbox.attention-view), not a whole trace: use \"Trace (JSON)\" to export one that opens again"
    )]
    ViewExport,
    #[error(
        "the trace's contents do not fit the format ({0}); a NaN or infinity is written as null in JSON and cannot be read back"
    )]
    Structure(String),
    #[error("not a glassbox trace: its format is {0:?}, expected \"{TRACE_FORMAT}\"")]
    WrongFormat(String),
    #[error("the trace is version {0}, newer than this page reads ({TRACE_VERSION})")]
    NewerVersion(u32),
    #[error("the trace has {0}")]
    Tokens(String),
    #[error("attention of layer {layer}: {problem}")]
    Attention { layer: usize, problem: String },
    #[error("module output {path:?}: {problem}")]
    Module { path: String, problem: String },
    #[error("the trace's safetensors container: {0}")]
    Container(String),
}

impl TraceFile {
    /// The trace of one run, ready to write.
    pub fn new(model: &str, about: &str, text: &str, tokens: &Tokenized, trace: &Trace) -> Self {
        Self {
            format: TRACE_FORMAT.into(),
            version: TRACE_VERSION,
            model: model.into(),
            about: about.into(),
            text: text.into(),
            tokens: tokens.tokens.clone(),
            attention: trace.attention.clone(),
            modules: trace.modules.clone(),
        }
    }

    /// The file as JSON.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads and checks a trace file, JSON or safetensors.
    pub fn parse(bytes: &[u8]) -> Result<Self, TraceFileError> {
        if bytes.len() > MAX_TRACE_BYTES {
            return Err(TraceFileError::TooLarge(bytes.len()));
        }
        if Self::is_binary_trace(bytes) {
            return Self::from_safetensors(bytes);
        }
        // The format is looked at first, so that another JSON file gets the right message.
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|error| TraceFileError::NotJson(error.to_string()))?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(TRACE_FORMAT) => {}
            Some("glassbox.attention-view") => return Err(TraceFileError::ViewExport),
            Some(other) => return Err(TraceFileError::WrongFormat(other.into())),
            None => return Err(TraceFileError::WrongFormat("(none)".into())),
        }
        if let Some(version) = value.get("version").and_then(serde_json::Value::as_u64)
            && version > u64::from(TRACE_VERSION)
        {
            return Err(TraceFileError::NewerVersion(
                u32::try_from(version).unwrap_or(u32::MAX),
            ));
        }
        // Version 1 named captures by path alone: its modules are read apart and given roles.
        let mut value = value;
        let version_1 = value.get("version").and_then(serde_json::Value::as_u64)
            == Some(u64::from(TRACE_VERSION_1));
        let old_modules = value
            .get_mut("modules")
            .filter(|_| version_1)
            .map(|modules| std::mem::replace(modules, serde_json::Value::Array(Vec::new())));
        let mut file: Self = serde_json::from_value(value)
            .map_err(|error| TraceFileError::Structure(error.to_string()))?;
        if let Some(modules) = old_modules {
            let old: Vec<CaptureV1> = serde_json::from_value(modules)
                .map_err(|error| TraceFileError::Structure(error.to_string()))?;
            file.modules = version1_roles(old)?;
        }
        file.check()?;
        Ok(file)
    }

    /// Whether `bytes` are a safetensors file whose metadata says it is a trace (read from the
    /// header alone).
    pub fn is_binary_trace(bytes: &[u8]) -> bool {
        let Some(length) = bytes
            .first_chunk::<8>()
            .map(|field| u64::from_le_bytes(*field))
        else {
            return false;
        };
        let Some(header) = usize::try_from(length)
            .ok()
            .and_then(|length| bytes.get(8..length.checked_add(8)?))
        else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(header)
            .is_ok_and(|header| header["__metadata__"]["format"].as_str() == Some(TRACE_FORMAT))
    }

    /// The trace as a safetensors file.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, TraceFileError> {
        let json = |value: serde_json::Result<String>| {
            value.map_err(|error| TraceFileError::Container(error.to_string()))
        };
        let metadata = [
            ("format", TRACE_FORMAT.to_string()),
            ("version", TRACE_VERSION.to_string()),
            ("model", self.model.clone()),
            ("about", self.about.clone()),
            ("text", self.text.clone()),
            ("tokens", json(serde_json::to_string(&self.tokens))?),
            (
                "modules",
                json(serde_json::to_string(
                    &self
                        .modules
                        .iter()
                        .map(|m| Label {
                            role: m.role,
                            layer: m.layer,
                            path: m.path.clone(),
                        })
                        .collect::<Vec<_>>(),
                ))?,
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        let attention = self.attention.iter().map(|attention| {
            (
                format!("attention.{}", attention.layer),
                ParameterData {
                    shape: vec![
                        attention.batch,
                        attention.heads,
                        attention.queries,
                        attention.keys,
                    ],
                    values: attention.values.clone(),
                },
            )
        });
        let modules = self.modules.iter().map(|capture| {
            (
                format!("module.{}", capture.path),
                ParameterData {
                    shape: capture.shape.clone(),
                    values: capture.values.clone(),
                },
            )
        });
        write_tensors(attention.chain(modules).collect(), metadata)
            .map_err(|error| TraceFileError::Container(error.to_string()))
    }

    /// Reads a trace from a safetensors file and checks it.
    fn from_safetensors(bytes: &[u8]) -> Result<Self, TraceFileError> {
        let file =
            read_tensors(bytes).map_err(|error| TraceFileError::Container(error.to_string()))?;
        let (metadata, mut tensors) = (file.metadata, file.tensors);
        let meta = |key: &str| metadata.get(key).cloned().unwrap_or_default();
        let version: u32 = meta("version")
            .parse()
            .map_err(|_| TraceFileError::Structure(format!("version {:?}", meta("version"))))?;
        if version > TRACE_VERSION {
            return Err(TraceFileError::NewerVersion(version));
        }
        let tokens: Vec<Token> = serde_json::from_str(&meta("tokens"))
            .map_err(|error| TraceFileError::Structure(format!("tokens: {error}")))?;
        let labels: Vec<Label> = if version == TRACE_VERSION_1 {
            let paths: Vec<String> = serde_json::from_str(&meta("modules"))
                .map_err(|error| TraceFileError::Structure(format!("modules: {error}")))?;
            paths
                .into_iter()
                .map(|path| Label {
                    role: Role::Embedding,
                    layer: None,
                    path,
                })
                .collect()
        } else {
            serde_json::from_str(&meta("modules"))
                .map_err(|error| TraceFileError::Structure(format!("modules: {error}")))?
        };
        let mut attention = Vec::new();
        while let Some(tensor) = tensors.remove(&format!("attention.{}", attention.len())) {
            let layer = attention.len();
            let &[batch, heads, queries, keys] = tensor.shape.as_slice() else {
                return Err(TraceFileError::Attention {
                    layer,
                    problem: format!(
                        "shape {:?}, but attention is [batch, heads, queries, keys]",
                        tensor.shape
                    ),
                });
            };
            attention.push(AttentionCapture {
                layer,
                batch,
                heads,
                queries,
                keys,
                values: tensor.values,
            });
        }
        let mut modules = Vec::with_capacity(labels.len());
        for Label { role, layer, path } in labels {
            let tensor = tensors.remove(&format!("module.{path}")).ok_or_else(|| {
                TraceFileError::Module {
                    path: path.clone(),
                    problem: "listed in the metadata, but the file has no such tensor".into(),
                }
            })?;
            modules.push(Capture {
                role,
                layer,
                path,
                shape: tensor.shape,
                values: tensor.values,
            });
        }
        if version == TRACE_VERSION_1 {
            modules = version1_roles(
                modules
                    .into_iter()
                    .map(|capture| CaptureV1 {
                        path: capture.path,
                        shape: capture.shape,
                        values: capture.values,
                    })
                    .collect(),
            )?;
        }
        if let Some(name) = tensors.keys().next() {
            return Err(TraceFileError::Structure(format!(
                "tensor {name:?} is not part of a trace (or a layer before it is missing)"
            )));
        }
        let file = Self {
            format: TRACE_FORMAT.into(),
            version,
            model: meta("model"),
            about: meta("about"),
            text: meta("text"),
            tokens,
            attention,
            modules,
        };
        file.check()?;
        Ok(file)
    }

    /// Checks what the views rely on.
    fn check(&self) -> Result<(), TraceFileError> {
        let count = self.tokens.len();
        if count == 0 {
            return Err(TraceFileError::Tokens("no tokens".into()));
        }
        if count > MAX_TRACE_TOKENS {
            return Err(TraceFileError::Tokens(format!(
                "{count} tokens, over the limit of {MAX_TRACE_TOKENS}"
            )));
        }
        if self.attention.is_empty() {
            return Err(TraceFileError::Tokens("no attention layers".into()));
        }
        for (index, attention) in self.attention.iter().enumerate() {
            let fail = |problem: String| TraceFileError::Attention {
                layer: index,
                problem,
            };
            if attention.layer != index {
                return Err(fail(format!(
                    "it says it is layer {}, but it is number {index} in order",
                    attention.layer
                )));
            }
            if attention.batch == 0 || attention.heads == 0 {
                return Err(fail("it has no sequence or no head".into()));
            }
            if attention.queries != count || attention.keys != count {
                return Err(fail(format!(
                    "it is {} queries × {} keys, but the trace has {count} tokens",
                    attention.queries, attention.keys
                )));
            }
            let expected = [attention.batch, attention.heads, count, count]
                .iter()
                .try_fold(1usize, |acc, &n| acc.checked_mul(n));
            if expected != Some(attention.values.len()) {
                return Err(fail(format!(
                    "{} values for {} sequences × {} heads × {count} × {count}",
                    attention.values.len(),
                    attention.batch,
                    attention.heads
                )));
            }
            if let Some(at) = attention
                .values
                .iter()
                .position(|w| !(-WEIGHT_SLACK..=1.0 + WEIGHT_SLACK).contains(w))
            {
                return Err(fail(format!(
                    "value {at} is {}, but attention weights lie between 0 and 1",
                    attention.values[at]
                )));
            }
        }
        self.check_modules()
    }

    /// Checks each captured tensor: a layer where its role needs one, each site once, values
    /// for its shape.
    fn check_modules(&self) -> Result<(), TraceFileError> {
        let mut seen = std::collections::HashSet::new();
        for capture in &self.modules {
            let fail = |problem: String| TraceFileError::Module {
                path: capture.path.clone(),
                problem,
            };
            match (capture.role.in_layer(), capture.layer) {
                (true, None) => {
                    return Err(fail(format!("the role {} needs a layer", capture.role)));
                }
                (false, Some(_)) => {
                    return Err(fail(format!(
                        "the role {} belongs to no layer",
                        capture.role
                    )));
                }
                (true, Some(layer)) if layer >= self.attention.len() => {
                    return Err(fail(format!(
                        "it says layer {layer}, but the trace has {} layers",
                        self.attention.len()
                    )));
                }
                _ => {}
            }
            if !seen.insert(capture.site()) {
                return Err(fail(format!(
                    "the role {}{} a second time: each tensor is captured once",
                    capture.role,
                    capture
                        .layer
                        .map_or_else(String::new, |layer| format!(" of layer {layer}"))
                )));
            }
            let expected = capture
                .shape
                .iter()
                .try_fold(1usize, |acc, &n| acc.checked_mul(n));
            if expected != Some(capture.values.len()) {
                return Err(TraceFileError::Module {
                    path: capture.path.clone(),
                    problem: format!(
                        "shape {:?} needs {} values, the file has {}",
                        capture.shape,
                        expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                        capture.values.len()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The tokens and trace, as a run of the model would give them.
    pub fn into_parts(self) -> (Tokenized, Trace) {
        (
            Tokenized {
                tokens: self.tokens,
                dropped: 0,
            },
            Trace {
                attention: self.attention,
                modules: self.modules,
            },
        )
    }
}

/// A capture's role, layer and label, as a binary trace's metadata lists them.
#[derive(Debug, Serialize, Deserialize)]
struct Label {
    role: Role,
    #[serde(default)]
    layer: Option<usize>,
    path: String,
}

/// A capture as version 1 wrote it: a module path, no role.
#[derive(Debug, Deserialize)]
struct CaptureV1 {
    path: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Gives version 1's captures their roles. The paths were glassbox's module paths; `norm1` and
/// `norm2` meant different tensors in post-LN and pre-LN, told apart by their order: a pre-LN
/// `norm1` comes before its layer's attention and `norm2` before `ff.linear1`. Post-LN's `norm2`
/// was the layer's output, also written under `layers.{i}`: that copy is dropped.
fn version1_roles(old: Vec<CaptureV1>) -> Result<Vec<Capture>, TraceFileError> {
    let position = |path: &str| old.iter().position(|capture| capture.path == path);
    let mut roles = Vec::with_capacity(old.len());
    for (index, capture) in old.iter().enumerate() {
        let unknown = || TraceFileError::Module {
            path: capture.path.clone(),
            problem: "a version-1 trace names no such sub-module".into(),
        };
        let (role, layer) = match capture.path.as_str() {
            "embedding" => (Role::Embedding, None),
            "positional" => (Role::Positional, None),
            "output" => (Role::Logits, None),
            path => {
                let rest = path.strip_prefix("layers.").ok_or_else(unknown)?;
                let (number, part) = rest.split_once('.').unwrap_or((rest, ""));
                let layer: usize = number.parse().map_err(|_| unknown())?;
                let before = |other: &str| {
                    position(&format!("layers.{layer}.{other}")).is_some_and(|at| index < at)
                };
                let role = match part {
                    "" => Role::BlockOutput,
                    "attn" => Role::AttentionOutput,
                    "norm1" if before("attn") => Role::AttentionInput,
                    "norm1" => Role::FeedForwardInput,
                    "norm2" if before("ff.linear1") => Role::FeedForwardInput,
                    "norm2" => Role::BlockOutput,
                    "ff.linear1" => Role::FeedForwardHidden,
                    "ff.activation" => Role::FeedForwardActivation,
                    "ff.linear2" => Role::FeedForwardOutput,
                    _ => return Err(unknown()),
                };
                (role, Some(layer))
            }
        };
        roles.push((role, layer));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(old
        .into_iter()
        .zip(roles)
        // Post-LN's `norm2` comes first; the same tensor under `layers.{i}` is the copy.
        .filter(|(_, site)| seen.insert(*site))
        .map(|(capture, (role, layer))| Capture {
            role,
            layer,
            path: capture.path,
            shape: capture.shape,
            values: capture.values,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(word: &str, id: u32) -> Token {
        Token {
            id,
            display: word.into(),
            source: word.into(),
            known: true,
            segment: 0,
            special: false,
        }
    }

    fn sample() -> TraceFile {
        let tokens = Tokenized {
            tokens: vec![token("a", 1), token("b", 2)],
            dropped: 0,
        };
        let trace = Trace {
            attention: vec![AttentionCapture {
                layer: 0,
                batch: 1,
                heads: 2,
                queries: 2,
                keys: 2,
                values: vec![1.0, 0.0, 0.25, 0.75, 0.5, 0.5, 0.125, 0.875],
            }],
            modules: vec![Capture {
                role: Role::AttentionOutput,
                layer: Some(0),
                path: "layers.0.attn".into(),
                shape: vec![1, 2, 3],
                values: vec![0.5, -1.5, 2.0, 1e-9, -3.25, 7.0],
            }],
        };
        TraceFile::new("reverse", "a model", "a b", &tokens, &trace)
    }

    #[test]
    fn a_trace_survives_the_round_trip_exactly() {
        let file = sample();
        let json = file.to_json();
        let back = TraceFile::parse(json.as_bytes()).unwrap();
        assert_eq!(back, file);
        let (tokens, trace) = back.into_parts();
        assert_eq!(tokens.labels(), ["a", "b"]);
        assert_eq!(
            trace.attention[0].head_map(0, 1),
            Some(&[0.5, 0.5, 0.125, 0.875][..])
        );
    }

    #[test]
    fn damaged_traces_are_refused_with_the_place_at_fault() {
        type Damage = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Damage, &str)> = vec![
            (
                "wrong format",
                Box::new(|v| v["format"] = "glassbox.checkpoint".into()),
                "format is \"glassbox.checkpoint\"",
            ),
            (
                "view export",
                Box::new(|v| v["format"] = "glassbox.attention-view".into()),
                "one exported view",
            ),
            (
                "newer",
                Box::new(|v| v["version"] = 7.into()),
                "version 7, newer",
            ),
            (
                "no tokens",
                Box::new(|v| v["tokens"] = serde_json::json!([])),
                "no tokens",
            ),
            (
                "short values",
                Box::new(|v| {
                    v["attention"][0]["values"].as_array_mut().unwrap().pop();
                }),
                "attention of layer 0: 7 values",
            ),
            (
                "weight out of range",
                Box::new(|v| v["attention"][0]["values"][3] = 1.5.into()),
                "value 3 is 1.5",
            ),
            (
                "queries",
                Box::new(|v| v["attention"][0]["queries"] = 3.into()),
                "3 queries × 2 keys",
            ),
            (
                "layer order",
                Box::new(|v| v["attention"][0]["layer"] = 2.into()),
                "says it is layer 2",
            ),
            (
                "module shape",
                Box::new(|v| v["modules"][0]["shape"] = serde_json::json!([1, 2, 4])),
                "module output \"layers.0.attn\": shape [1, 2, 4] needs 8 values",
            ),
            (
                "huge shape",
                Box::new(|v| v["modules"][0]["shape"] = serde_json::json!([u64::MAX, u64::MAX, 2])),
                "needs too many values",
            ),
            (
                "NaN written as null",
                Box::new(|v| v["attention"][0]["values"][0] = serde_json::Value::Null),
                "do not fit the format (invalid type: null",
            ),
        ];
        let good: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        for (name, damage, expected) in cases {
            let mut value = good.clone();
            damage(&mut value);
            let error = TraceFile::parse(value.to_string().as_bytes())
                .expect_err(name)
                .to_string();
            assert!(error.contains(expected), "{name}: {error}");
        }
        let error = TraceFile::parse(b"\x89PNG garbage").unwrap_err();
        assert!(matches!(error, TraceFileError::NotJson(_)), "{error}");
    }

    #[test]
    fn a_binary_trace_survives_the_round_trip_exactly_and_is_smaller() {
        let file = sample();
        let bytes = file.to_safetensors().unwrap();
        assert!(TraceFile::is_binary_trace(&bytes));
        assert!(!TraceFile::is_binary_trace(file.to_json().as_bytes()));
        assert_eq!(TraceFile::parse(&bytes).unwrap(), file);
        // With many values, four bytes each beat their decimal text.
        let mut big = sample();
        big.modules[0].shape = vec![1, 2, 5000];
        big.modules[0].values = (0..10_000).map(|i| (i as f32).sin() * 1e-3).collect();
        let (json, binary) = (big.to_json().len(), big.to_safetensors().unwrap().len());
        assert!(binary * 2 < json, "{binary} bytes binary, {json} JSON");
        assert_eq!(
            TraceFile::parse(&big.to_safetensors().unwrap()).unwrap(),
            big
        );
    }

    #[test]
    fn damaged_binary_traces_are_refused_with_the_place_at_fault() {
        let rewrite = |change: &dyn Fn(&mut TraceFile)| {
            let mut file = sample();
            change(&mut file);
            file.to_safetensors().unwrap()
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "a module tensor missing",
                {
                    let mut file = sample();
                    file.modules[0].path = "layers.9.ff".into();
                    let mut bytes = file.to_safetensors().unwrap();
                    // The metadata names the old path again: its tensor is gone.
                    let at = bytes.windows(11).position(|w| w == b"layers.9.ff").unwrap();
                    bytes[at..at + 11].copy_from_slice(b"layers.0.at");
                    bytes
                },
                "module output \"layers.0.at",
            ),
            (
                "attention not 4-D",
                {
                    let bytes = sample().to_safetensors().unwrap();
                    let file = read_tensors(&bytes).unwrap();
                    let (metadata, mut tensors) = (file.metadata, file.tensors);
                    tensors.get_mut("attention.0").unwrap().shape = vec![2, 2, 2];
                    write_tensors(
                        tensors.into_iter().collect(),
                        metadata.into_iter().collect(),
                    )
                    .unwrap()
                },
                "attention of layer 0: shape [2, 2, 2]",
            ),
            (
                "a stray tensor",
                {
                    let bytes = sample().to_safetensors().unwrap();
                    let file = read_tensors(&bytes).unwrap();
                    let (metadata, mut tensors) = (file.metadata, file.tensors);
                    let layer = tensors.remove("attention.0").unwrap();
                    tensors.insert("attention.1".into(), layer);
                    write_tensors(
                        tensors.into_iter().collect(),
                        metadata.into_iter().collect(),
                    )
                    .unwrap()
                },
                "tensor \"attention.1\" is not part of a trace",
            ),
            (
                "a weight out of range",
                rewrite(&|file| file.attention[0].values[5] = 2.0),
                "value 5 is 2",
            ),
            (
                "cut short",
                {
                    let mut bytes = sample().to_safetensors().unwrap();
                    bytes.truncate(bytes.len() - 7);
                    bytes
                },
                "safetensors container",
            ),
        ];
        for (name, bytes, expected) in cases {
            let error = TraceFile::parse(&bytes).expect_err(name).to_string();
            assert!(error.contains(expected), "{name}: {error}");
        }
    }

    /// A version-1 file of one layer as this build's predecessor wrote it: `paths` in order,
    /// post-LN's layer output under `layers.0.norm2` and again under `layers.0`.
    fn version_1(paths: &[&str]) -> (serde_json::Value, Vec<u8>) {
        let mut value: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        value["version"] = 1.into();
        let modules: Vec<serde_json::Value> = paths
            .iter()
            .enumerate()
            .map(|(index, path)| {
                // The two names of post-LN's layer output hold the same values.
                let fill = if *path == "layers.0" { paths.len() - 2 } else { index };
                serde_json::json!({ "path": path, "shape": [1, 2, 1], "values": [fill as f32, 0.5] })
            })
            .collect();
        value["modules"] = modules.clone().into();
        let tensors = sample()
            .attention
            .iter()
            .map(|a| {
                (
                    "attention.0".to_string(),
                    ParameterData {
                        shape: vec![a.batch, a.heads, a.queries, a.keys],
                        values: a.values.clone(),
                    },
                )
            })
            .chain(modules.iter().map(|m| {
                (
                    format!("module.{}", m["path"].as_str().unwrap()),
                    ParameterData {
                        shape: vec![1, 2, 1],
                        values: serde_json::from_value(m["values"].clone()).unwrap(),
                    },
                )
            }))
            .collect();
        let metadata = [
            ("format", TRACE_FORMAT.to_string()),
            ("version", "1".to_string()),
            ("model", "reverse".to_string()),
            ("tokens", serde_json::to_string(&sample().tokens).unwrap()),
            ("modules", serde_json::to_string(paths).unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (value, write_tensors(tensors, metadata).unwrap())
    }

    fn sites(file: &TraceFile) -> Vec<(Role, Option<usize>, &str)> {
        file.modules
            .iter()
            .map(|m| (m.role, m.layer, m.path.as_str()))
            .collect()
    }

    #[test]
    fn version_1_traces_read_with_roles_and_without_the_post_ln_copy() {
        let post = [
            "embedding",
            "layers.0.attn",
            "layers.0.norm1",
            "layers.0.ff.linear1",
            "layers.0.ff.activation",
            "layers.0.ff.linear2",
            "layers.0.norm2",
            "layers.0",
            "output",
        ];
        let (json, binary) = version_1(&post);
        let from_json = TraceFile::parse(json.to_string().as_bytes()).unwrap();
        let from_binary = TraceFile::parse(&binary).unwrap();
        let expected = vec![
            (Role::Embedding, None, "embedding"),
            (Role::AttentionOutput, Some(0), "layers.0.attn"),
            (Role::FeedForwardInput, Some(0), "layers.0.norm1"),
            (Role::FeedForwardHidden, Some(0), "layers.0.ff.linear1"),
            (
                Role::FeedForwardActivation,
                Some(0),
                "layers.0.ff.activation",
            ),
            (Role::FeedForwardOutput, Some(0), "layers.0.ff.linear2"),
            (Role::BlockOutput, Some(0), "layers.0.norm2"),
            (Role::Logits, None, "output"),
        ];
        assert_eq!(sites(&from_json), expected);
        assert_eq!(sites(&from_binary), expected);
        assert_eq!(from_json.modules, from_binary.modules);

        let pre = [
            "embedding",
            "positional",
            "layers.0.norm1",
            "layers.0.attn",
            "layers.0.norm2",
            "layers.0.ff.linear1",
            "layers.0.ff.activation",
            "layers.0.ff.linear2",
            "layers.0",
            "output",
        ];
        for bytes in [
            version_1(&pre).0.to_string().into_bytes(),
            version_1(&pre).1,
        ] {
            let file = TraceFile::parse(&bytes).unwrap();
            let roles: Vec<Role> = file.modules.iter().map(|m| m.role).collect();
            assert_eq!(
                roles,
                [
                    Role::Embedding,
                    Role::Positional,
                    Role::AttentionInput,
                    Role::AttentionOutput,
                    Role::FeedForwardInput,
                    Role::FeedForwardHidden,
                    Role::FeedForwardActivation,
                    Role::FeedForwardOutput,
                    Role::BlockOutput,
                    Role::Logits
                ]
            );
            // Written again, it is a version-2 file that reads back the same.
            assert_eq!(file.version, TRACE_VERSION_1);
            let mut again = file.clone();
            again.version = TRACE_VERSION;
            assert_eq!(TraceFile::parse(again.to_json().as_bytes()).unwrap(), again);
            assert_eq!(
                TraceFile::parse(&again.to_safetensors().unwrap()).unwrap(),
                again
            );
        }
        let (mut odd, _) = version_1(&["embedding", "layers.0.mystery"]);
        odd["modules"][1]["path"] = "layers.0.mystery".into();
        let error = TraceFile::parse(odd.to_string().as_bytes()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"layers.0.mystery\": a version-1 trace names no such"),
            "{error}"
        );
    }

    #[test]
    fn a_version_2_trace_holds_each_site_once_in_a_layer_it_has() {
        let mut twice = sample();
        twice.modules.push(Capture {
            path: "layers.0.attn.copy".into(),
            ..twice.modules[0].clone()
        });
        let mut no_layer = sample();
        no_layer.modules[0].layer = None;
        let mut far = sample();
        far.modules[0].layer = Some(5);
        for (file, expected) in [
            (twice, "the role attention_output of layer 0 a second time"),
            (no_layer, "the role attention_output needs a layer"),
            (far, "it says layer 5, but the trace has 1 layers"),
        ] {
            let error = TraceFile::parse(file.to_json().as_bytes()).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_damage_to_a_binary_trace_makes_the_reader_panic(cut in 0usize..2000, flip in 0usize..2000, byte in proptest::num::u8::ANY) {
            let mut bytes = sample().to_safetensors().unwrap();
            let flip = flip % bytes.len();
            bytes[flip] = byte;
            bytes.truncate(cut.min(bytes.len()));
            let _ = TraceFile::parse(&bytes);
        }

        #[test]
        fn no_bytes_make_the_reader_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = TraceFile::parse(&bytes);
        }

        #[test]
        fn every_f32_comes_back_bit_for_bit(values in proptest::collection::vec(proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL | proptest::num::f32::ZERO, 6)) {
            let mut file = sample();
            file.modules[0].values = values.clone();
            let back = TraceFile::parse(file.to_json().as_bytes()).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&back.modules[0].values), bits(&values));
        }

        #[test]
        fn no_cut_of_a_good_file_makes_the_reader_panic(cut in 0usize..400, flip in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut json = sample().to_json().into_bytes();
            let flip = flip % json.len();
            json[flip] = byte;
            json.truncate(cut.min(json.len()));
            let _ = TraceFile::parse(&json);
        }
    }
}
