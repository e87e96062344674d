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
//! A partial trace (`glassbox-trace --layers 0,3 --modules block_output,logits --no-attention
//! --f16`) holds some layers, some roles or no attention maps, and may have had its values
//! rounded through `f16` (stored as `F16` in the safetensors form, half the bytes). Its
//! [`Partial`] says what was left out (`partial` in the JSON, the `partial` metadata entry in
//! safetensors; files without it are whole traces, so older files read as before), each kept
//! attention map keeps its real `layer` (look one up with [`Trace::attention_of`]) and
//! [`TraceFile::missing_words`] says in a sentence what is missing.
//!
//! Reading checks everything the views rely on (shapes against value counts, one attention map
//! per layer over the tokens, or per listed layer in a partial trace, weights between 0 and 1),
//! so a damaged file is refused with the place at fault and never reaches a chart.

use serde::{Deserialize, Serialize};

use super::checkpoint::read_tensors;
use super::tokenizer::{Token, Tokenized};
use super::trace::{AttentionCapture, Capture, Role, Trace};

/// The `format` value of a trace file.
pub const TRACE_FORMAT: &str = "glassbox.trace";

/// The version this build writes and the newest it reads.
pub const TRACE_VERSION: u32 = 2;

/// The first version, which named captures by module path alone; still read.
pub const TRACE_VERSION_1: u32 = 1;

/// Trace files over this size are refused before they are read: 1,280 MiB, what the binary
/// form of the largest 12-layer, 12-head model here (GPT-2 small) needs at 1,024 tokens.
///
/// Attention: 12 layers × 12 heads × 1,024² weights × 4 bytes = 603,979,776 bytes (576 MiB).
/// Module outputs per token, in floats: each of the 12 pre-LN layers captures five of width 768
/// (attention input and output, feed-forward input and output, layer output) and two of width
/// 3,072 (feed-forward hidden and activation), 9,984; outside the layers the embedding,
/// positions and final norm (3 × 768) and the logits (50,257), 52,561; in all 12 × 9,984 +
/// 52,561 = 172,369 floats × 4 bytes × 1,024 tokens = 706,035,712 bytes (673 MiB). Together
/// 1,310,015,488 bytes (1,249 MiB); the rest of the limit is the header (tokens and labels).
/// BERT-base (30,522 logits, six captures per layer) needs less at the same length.
pub const MAX_TRACE_BYTES: usize = 1280 * 1024 * 1024;

/// Tokens in a trace, at most: far beyond any model here, and it bounds the attention size.
pub const MAX_TRACE_TOKENS: usize = 8192;

/// Attention weights may stray this far outside `[0, 1]` (round-off in a softmax).
const WEIGHT_SLACK: f32 = 1e-4;

/// What a partial trace left out of the run it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The model's layer count (the trace may hold fewer), for "layers 0 and 3 of 12".
    pub num_layers: usize,
    /// The layers kept, ascending: their attention maps and module outputs. `None`: every
    /// layer. Captures outside the layers (embeddings, logits) are kept either way.
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    /// The roles of the module outputs kept. `None`: every role.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// Whether the attention maps (of the kept layers) are there.
    #[serde(default = "kept")]
    pub attention: bool,
    /// Whether every value was rounded through `f16`.
    #[serde(default)]
    pub f16: bool,
}

/// Attention is kept unless a partial trace says otherwise.
fn kept() -> bool {
    true
}

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
    /// Attention weights per layer (per kept layer, ascending, in a partial trace).
    pub attention: Vec<AttentionCapture>,
    /// Every sub-module's output.
    #[serde(default)]
    pub modules: Vec<Capture>,
    /// What was left out, for a partial trace; `None` for a whole one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
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
    #[error("partial trace: {0}")]
    Partial(String),
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
            partial: None,
        }
    }

    /// The model's layer count: the partial trace's record of it, else one per attention map.
    pub fn num_layers(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(self.attention.len(), |partial| partial.num_layers)
    }

    /// Keeps only `layers` (their attention and module outputs; captures outside the layers
    /// stay), only module outputs of `roles`, and the attention maps only if `attention`,
    /// recording what was left out. `None` keeps every layer or role. Works on a whole trace.
    pub fn keep_only(
        &mut self,
        layers: Option<&[usize]>,
        roles: Option<&[Role]>,
        attention: bool,
    ) -> Result<(), TraceFileError> {
        if self.partial.is_some() {
            return Err(TraceFileError::Partial(
                "this trace is partial already: cut it from a whole one".into(),
            ));
        }
        let num_layers = self.attention.len();
        let layers = layers
            .map(|layers| {
                let mut layers = layers.to_vec();
                layers.sort_unstable();
                layers.dedup();
                if let Some(&far) = layers.iter().find(|&&layer| layer >= num_layers) {
                    return Err(TraceFileError::Partial(format!(
                        "there is no layer {far}: the model has {num_layers} (0 to {})",
                        num_layers.saturating_sub(1)
                    )));
                }
                Ok(layers)
            })
            .transpose()?
            // All of them is no choice at all.
            .filter(|layers| layers.len() < num_layers);
        let roles = roles.map(|roles| {
            let mut roles = roles.to_vec();
            roles.sort_unstable();
            roles.dedup();
            roles
        });
        let layer_kept = |layer: usize| layers.as_ref().is_none_or(|kept| kept.contains(&layer));
        self.attention
            .retain(|map| attention && layer_kept(map.layer));
        self.modules.retain(|capture| {
            roles
                .as_ref()
                .is_none_or(|kept| kept.contains(&capture.role))
                && capture.layer.is_none_or(layer_kept)
        });
        if layers.is_some() || roles.is_some() || !attention {
            self.partial = Some(Partial {
                num_layers,
                layers,
                roles,
                attention,
                f16: false,
            });
        }
        Ok(())
    }

    /// Rounds every value through `f16` (the nearest; beyond its range, its largest finite
    /// value, so that nothing turns infinite) and records it: the safetensors form then stores
    /// `F16`, half the bytes, and reads back exactly these values.
    pub fn round_to_f16(&mut self) {
        let round = |values: &mut Vec<f32>| {
            for value in values.iter_mut() {
                let half = half::f16::from_f32(*value);
                *value = if half.is_infinite() && value.is_finite() {
                    half::f16::MAX.to_f32().copysign(*value)
                } else {
                    half.to_f32()
                };
            }
        };
        for map in &mut self.attention {
            round(&mut map.values);
        }
        for capture in &mut self.modules {
            round(&mut capture.values);
        }
        let num_layers = self.num_layers();
        self.partial
            .get_or_insert(Partial {
                num_layers,
                layers: None,
                roles: None,
                attention: true,
                f16: false,
            })
            .f16 = true;
    }

    /// What a partial trace leaves out, in one sentence for the page, e.g. "Partial trace:
    /// attention of layers 0, 3 and 11 of 12; module outputs: layer output, logits only;
    /// values rounded to f16."; `None` for a whole trace.
    pub fn missing_words(&self) -> Option<String> {
        let partial = self.partial.as_ref()?;
        let of_layers = partial.layers.as_ref().map(|layers| {
            let numbers: Vec<String> = layers.iter().map(usize::to_string).collect();
            format!(
                "{} {} of {}",
                if layers.len() == 1 { "layer" } else { "layers" },
                and_list(&numbers),
                partial.num_layers
            )
        });
        let roles = partial.roles.as_ref().map(|roles| {
            let words: Vec<&str> = roles.iter().map(|role| role.words()).collect();
            format!("{} only", words.join(", "))
        });
        let mut parts = Vec::new();
        match (&of_layers, partial.attention) {
            (Some(layers), true) if roles.is_none() => {
                parts.push(format!("attention and module outputs of {layers}"));
            }
            (Some(layers), true) => parts.push(format!("attention of {layers}")),
            (Some(layers), false) if roles.is_none() => {
                parts.push("no attention".into());
                parts.push(format!("module outputs of {layers} only"));
            }
            (_, false) => parts.push("no attention".into()),
            (None, true) => {}
        }
        match (roles, &of_layers, partial.attention) {
            (Some(_), _, _) if partial.roles.as_ref().is_some_and(Vec::is_empty) => {
                parts.push("no module outputs".into());
            }
            (Some(roles), Some(layers), false) => {
                parts.push(format!("module outputs of {layers}: {roles}"));
            }
            (Some(roles), _, _) => parts.push(format!("module outputs: {roles}")),
            (None, _, _) => {}
        }
        let rounded = "values rounded to f16";
        Some(match (parts.is_empty(), partial.f16) {
            (true, true) => "Values rounded to f16 (about three significant digits).".into(),
            (true, false) => return None,
            (false, true) => format!("Partial trace: {}; {rounded}.", parts.join("; ")),
            (false, false) => format!("Partial trace: {}.", parts.join("; ")),
        })
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
        let mut metadata: std::collections::HashMap<String, String> = [
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
        if let Some(partial) = &self.partial {
            metadata.insert("partial".into(), json(serde_json::to_string(partial))?);
        }
        // Values rounded through f16 are stored as F16: exactly the same values, half the bytes.
        let f16 = self.partial.as_ref().is_some_and(|partial| partial.f16);
        let view = |shape: Vec<usize>, values: &[f32]| TraceTensor::new(shape, values, f16);
        let attention = self.attention.iter().map(|attention| {
            (
                format!("attention.{}", attention.layer),
                view(
                    vec![
                        attention.batch,
                        attention.heads,
                        attention.queries,
                        attention.keys,
                    ],
                    &attention.values,
                ),
            )
        });
        let modules = self.modules.iter().map(|capture| {
            (
                format!("module.{}", capture.path),
                view(capture.shape.clone(), &capture.values),
            )
        });
        let tensors: Vec<(String, TraceTensor)> = attention.chain(modules).collect();
        safetensors::serialize(tensors, Some(metadata))
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
        let partial: Option<Partial> = metadata
            .get("partial")
            .map(|partial| serde_json::from_str(partial))
            .transpose()
            .map_err(|error| TraceFileError::Structure(format!("partial: {error}")))?;
        // A whole trace holds layers 0, 1, … in order; a partial one the layers it kept, which
        // `check` holds against its list.
        let layers: Vec<usize> = if partial.is_some() {
            let mut layers: Vec<usize> = tensors
                .keys()
                .filter_map(|name| name.strip_prefix("attention.")?.parse().ok())
                .collect();
            layers.sort_unstable();
            layers
        } else {
            (0..)
                .take_while(|layer| tensors.contains_key(&format!("attention.{layer}")))
                .collect()
        };
        let mut attention = Vec::with_capacity(layers.len());
        for layer in layers {
            let Some(tensor) = tensors.remove(&format!("attention.{layer}")) else {
                continue;
            };
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
            partial,
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
        self.check_layers()?;
        for attention in &self.attention {
            let fail = |problem: String| TraceFileError::Attention {
                layer: attention.layer,
                problem,
            };
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

    /// Checks which layers' attention the trace holds: every layer in order for a whole trace;
    /// for a partial one, what its record lists (and the record itself).
    fn check_layers(&self) -> Result<(), TraceFileError> {
        let Some(partial) = &self.partial else {
            if self.attention.is_empty() {
                return Err(TraceFileError::Tokens("no attention layers".into()));
            }
            for (index, attention) in self.attention.iter().enumerate() {
                if attention.layer != index {
                    return Err(TraceFileError::Attention {
                        layer: index,
                        problem: format!(
                            "it says it is layer {}, but it is number {index} in order",
                            attention.layer
                        ),
                    });
                }
            }
            return Ok(());
        };
        let fail = |problem: String| Err(TraceFileError::Partial(problem));
        let num_layers = partial.num_layers;
        if num_layers == 0 {
            return fail("it says the model has no layers".into());
        }
        if let Some(layers) = &partial.layers {
            if layers.is_empty() {
                return fail("it lists no layers".into());
            }
            if !layers.windows(2).all(|pair| pair[0] < pair[1]) {
                return fail(format!(
                    "its layers {layers:?} are not in ascending order, each once"
                ));
            }
            if let Some(far) = layers.iter().find(|&&layer| layer >= num_layers) {
                return fail(format!(
                    "it lists layer {far}, but the model has {num_layers} layers"
                ));
            }
        }
        let held = self.attention.iter().map(|attention| attention.layer);
        let (fits, listed) = match (partial.attention, &partial.layers) {
            (false, _) => (self.attention.is_empty(), "no attention".to_string()),
            (true, Some(layers)) => (
                held.eq(layers.iter().copied()),
                format!("the attention of layers {layers:?}"),
            ),
            (true, None) => (
                held.eq(0..num_layers),
                format!("the attention of all {num_layers} layers"),
            ),
        };
        if !fits {
            let held: Vec<usize> = self.attention.iter().map(|a| a.layer).collect();
            return fail(format!(
                "it says it holds {listed}, but the file has the attention of layers {held:?}"
            ));
        }
        Ok(())
    }

    /// Checks each captured tensor: a layer where its role needs one (one the trace holds),
    /// each site once, values for its shape, and in a partial trace a role it kept.
    fn check_modules(&self) -> Result<(), TraceFileError> {
        let num_layers = self.num_layers();
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
                (true, Some(layer)) if layer >= num_layers => {
                    return Err(fail(format!(
                        "it says layer {layer}, but the trace has {num_layers} layers"
                    )));
                }
                _ => {}
            }
            if let Some(partial) = &self.partial {
                if let (Some(layers), Some(layer)) = (&partial.layers, capture.layer)
                    && !layers.contains(&layer)
                {
                    return Err(fail(format!(
                        "it says layer {layer}, but the partial trace holds layers {layers:?} only"
                    )));
                }
                if let Some(roles) = &partial.roles
                    && !roles.contains(&capture.role)
                {
                    return Err(fail(format!(
                        "its role {} is not among the roles the partial trace kept",
                        capture.role
                    )));
                }
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

/// One tensor of a binary trace, as little-endian `F32` or `F16` bytes.
struct TraceTensor {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TraceTensor {
    /// `values` in `shape`, as `F16` when `f16` (the values were rounded to it already).
    fn new(shape: Vec<usize>, values: &[f32], f16: bool) -> Self {
        let (dtype, bytes) = if f16 {
            let bytes = values
                .iter()
                .flat_map(|&value| half::f16::from_f32(value).to_le_bytes())
                .collect();
            (safetensors::Dtype::F16, bytes)
        } else {
            let bytes = values
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect();
            (safetensors::Dtype::F32, bytes)
        };
        Self {
            dtype,
            shape,
            bytes,
        }
    }
}

impl safetensors::View for TraceTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// "0", "0 and 3", "0, 3 and 11".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
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
    use crate::model::checkpoint::{ParameterData, write_tensors};

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

    /// A whole trace of `num_layers` layers over `count` tokens: embedding, each layer's
    /// attention output and output, logits.
    fn layered(num_layers: usize, count: usize) -> TraceFile {
        let tokens = Tokenized {
            tokens: (0..count)
                .map(|i| token(&format!("t{i}"), i as u32))
                .collect(),
            dropped: 0,
        };
        let heads = 2;
        let attention = (0..num_layers)
            .map(|layer| AttentionCapture {
                layer,
                batch: 1,
                heads,
                queries: count,
                keys: count,
                values: (0..heads * count * count)
                    .map(|i| ((i * 7 + layer) % 11) as f32 / 10.0)
                    .collect(),
            })
            .collect();
        let capture = |role, layer: Option<usize>, path: String| Capture {
            role,
            layer,
            path,
            shape: vec![1, count, 3],
            values: (0..count * 3).map(|i| i as f32 / 3.0 - 1.0).collect(),
        };
        let mut modules = vec![capture(Role::Embedding, None, "embedding".into())];
        for layer in 0..num_layers {
            modules.push(capture(
                Role::AttentionOutput,
                Some(layer),
                format!("layers.{layer}.attn"),
            ));
            modules.push(capture(
                Role::BlockOutput,
                Some(layer),
                format!("layers.{layer}"),
            ));
        }
        modules.push(capture(Role::Logits, None, "output".into()));
        TraceFile::new(
            "reverse",
            "a model",
            "t",
            &tokens,
            &Trace { attention, modules },
        )
    }

    fn read_both(file: &TraceFile) -> [TraceFile; 2] {
        [
            TraceFile::parse(file.to_json().as_bytes()).unwrap(),
            TraceFile::parse(&file.to_safetensors().unwrap()).unwrap(),
        ]
    }

    #[test]
    fn a_partial_trace_keeps_what_was_asked_and_round_trips() {
        let mut file = layered(4, 3);
        file.keep_only(
            Some(&[3, 0, 3]),
            Some(&[Role::Logits, Role::BlockOutput]),
            true,
        )
        .unwrap();
        let layers: Vec<usize> = file.attention.iter().map(|a| a.layer).collect();
        assert_eq!(layers, [0, 3]);
        let kept: Vec<&str> = file.modules.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(kept, ["layers.0", "layers.3", "output"]);
        assert_eq!(
            file.partial,
            Some(Partial {
                num_layers: 4,
                layers: Some(vec![0, 3]),
                roles: Some(vec![Role::BlockOutput, Role::Logits]),
                attention: true,
                f16: false,
            })
        );
        assert_eq!(file.num_layers(), 4);
        for back in read_both(&file) {
            assert_eq!(back, file);
            let (_, trace) = back.into_parts();
            assert_eq!(trace.attention_of(3).map(|a| a.layer), Some(3));
            assert!(trace.attention_of(1).is_none());
        }

        // Without attention, and only some layers' module outputs (the global ones stay).
        let mut file = layered(4, 3);
        file.keep_only(Some(&[2]), None, false).unwrap();
        assert!(file.attention.is_empty());
        let kept: Vec<&str> = file.modules.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(kept, ["embedding", "layers.2.attn", "layers.2", "output"]);
        for back in read_both(&file) {
            assert_eq!(back, file);
        }

        // Every layer and nothing else is no cut: the trace stays whole.
        let mut file = layered(2, 3);
        file.keep_only(Some(&[1, 0]), None, true).unwrap();
        assert_eq!(file, layered(2, 3));
        assert!(!file.to_json().contains("partial"));

        let mut file = layered(2, 3);
        let error = file.keep_only(Some(&[2]), None, true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "partial trace: there is no layer 2: the model has 2 (0 to 1)"
        );
    }

    /// The bytes of a safetensors file's tensors, without its header.
    fn data_bytes(bytes: &[u8]) -> usize {
        let header = u64::from_le_bytes(*bytes.first_chunk::<8>().unwrap()) as usize;
        bytes.len() - 8 - header
    }

    #[test]
    fn values_rounded_to_f16_take_half_the_bytes_and_read_back_exactly() {
        let whole = layered(3, 16);
        let mut file = whole.clone();
        file.keep_only(None, Some(&[]), true).unwrap();
        let f32_bytes = file.to_safetensors().unwrap();
        file.round_to_f16();
        let f16_bytes = file.to_safetensors().unwrap();
        // Attention alone: 3 layers × 2 heads × 16 × 16 weights.
        assert_eq!(data_bytes(&f32_bytes), 3 * 2 * 16 * 16 * 4);
        assert_eq!(data_bytes(&f16_bytes), 3 * 2 * 16 * 16 * 2);
        assert!(file.partial.as_ref().unwrap().f16);
        for back in read_both(&file) {
            assert_eq!(back, file);
        }
        for (rounded, exact) in file.attention.iter().zip(&whole.attention) {
            for (a, b) in rounded.values.iter().zip(&exact.values) {
                assert!((a - b).abs() <= 1e-3 * b.abs().max(1e-3), "{a} {b}");
            }
        }
        // A whole trace rounded through f16 is whole otherwise; nothing overflows to infinity.
        let mut big = layered(1, 2);
        big.modules[0].values[0] = 1e6;
        big.modules[0].values[1] = -1e6;
        big.round_to_f16();
        assert_eq!(big.modules[0].values[..2], [65504.0, -65504.0]);
        assert_eq!(read_both(&big)[0], big);
        assert_eq!(
            big.missing_words().unwrap(),
            "Values rounded to f16 (about three significant digits)."
        );
    }

    #[test]
    fn missing_words_say_what_a_partial_trace_left_out() {
        let words = |layers: Option<&[usize]>, roles: Option<&[Role]>, attention, f16| {
            let mut file = layered(12, 2);
            file.keep_only(layers, roles, attention).unwrap();
            if f16 {
                file.round_to_f16();
            }
            file.missing_words()
        };
        assert_eq!(words(None, None, true, false), None);
        assert_eq!(
            words(
                Some(&[0, 3, 11]),
                Some(&[Role::BlockOutput, Role::Logits]),
                true,
                true
            )
            .unwrap(),
            "Partial trace: attention of layers 0, 3 and 11 of 12; module outputs: layer output, logits only; values rounded to f16."
        );
        assert_eq!(
            words(Some(&[5]), None, true, false).unwrap(),
            "Partial trace: attention and module outputs of layer 5 of 12."
        );
        assert_eq!(
            words(Some(&[0, 1]), None, false, false).unwrap(),
            "Partial trace: no attention; module outputs of layers 0 and 1 of 12 only."
        );
        assert_eq!(
            words(Some(&[0, 1]), Some(&[Role::Logits]), false, false).unwrap(),
            "Partial trace: no attention; module outputs of layers 0 and 1 of 12: logits only."
        );
        assert_eq!(
            words(None, Some(&[]), true, false).unwrap(),
            "Partial trace: no module outputs."
        );
    }

    #[test]
    fn a_partial_trace_that_claims_what_it_does_not_hold_is_refused() {
        let mut good = layered(4, 2);
        good.keep_only(Some(&[0, 3]), None, true).unwrap();
        let mut lost_layer = good.clone();
        lost_layer.attention.pop();
        let mut far_module = good.clone();
        far_module.modules[1].layer = Some(2);
        far_module.modules[1].path = "layers.2.attn".into();
        let mut beyond = good.clone();
        beyond.partial.as_mut().unwrap().layers = Some(vec![0, 3, 4]);
        let mut odd_role = good.clone();
        odd_role.partial.as_mut().unwrap().roles = Some(vec![Role::BlockOutput]);
        let mut unsorted = good.clone();
        unsorted.partial.as_mut().unwrap().layers = Some(vec![3, 0]);
        let mut no_attention = good.clone();
        no_attention.partial.as_mut().unwrap().attention = false;
        for (file, expected) in [
            (
                lost_layer,
                "partial trace: it says it holds the attention of layers [0, 3], but the file has the attention of layers [0]",
            ),
            (
                far_module,
                "module output \"layers.2.attn\": it says layer 2, but the partial trace holds layers [0, 3] only",
            ),
            (beyond, "it lists layer 4, but the model has 4 layers"),
            (
                odd_role,
                "its role embedding is not among the roles the partial trace kept",
            ),
            (unsorted, "its layers [3, 0] are not in ascending order"),
            (
                no_attention,
                "it says it holds no attention, but the file has",
            ),
        ] {
            let json = TraceFile::parse(file.to_json().as_bytes()).unwrap_err();
            assert!(json.to_string().contains(expected), "{json}");
            let binary = TraceFile::parse(&file.to_safetensors().unwrap()).unwrap_err();
            assert!(binary.to_string().contains(expected), "{binary}");
        }
        // A whole trace's layers must still run 0, 1, … without a gap.
        let mut gap = layered(3, 2);
        gap.attention.remove(1);
        gap.modules.retain(|m| m.layer != Some(2));
        let error = TraceFile::parse(gap.to_json().as_bytes()).unwrap_err();
        assert!(error.to_string().contains("says it is layer 2"), "{error}");
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
