//! HuggingFace model folders: `config.json`, `model.safetensors` (or its shards and their
//! index) and the tokenizer's files, opened as a glassbox [`Transformer`].
//!
//! BERT (`bert`: BERT, MiniLM) and GPT-2 (`gpt2`: GPT-2, DistilGPT-2) are the one architecture
//! with different options (embedding LayerNorm and token types, post- or pre-LN, final norm,
//! tied head, GELU variant). Their names are mapped onto glassbox's module paths by
//! [`source_of`], which also says how each tensor's layout changes: BERT's `nn.Linear` weights
//! are `[out, in]` and are transposed; GPT-2's `Conv1D` weights are already `[in, out]`, and its
//! `c_attn` packs q|k|v along the output axis.
//!
//! Loading reads the safetensors headers first and checks every name, shape and dtype against
//! the config before any weight is read; then it reads one tensor at a time (a
//! [`ByteSource`] is a `File` in the page, read by `Blob.slice`) and puts it on the device, so
//! the peak is the model plus its largest tensor.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use thiserror::Error;

use super::checkpoint::{dtype_named, parameter_shapes, to_f32};
use super::config::{Activation, Head, NormPosition, Positional, TransformerConfig};
use super::error::ModelError;
use super::hf_tokenizer::{HfTokenizer, TokenizerError, TokenizerFiles};
use super::transformer::Transformer;
use crate::structure::layout::Layout;
pub use crate::structure::layout::{SourceOf, Transform, source_of};

/// Largest model folder opened: GPT-2 small is 548 MB, BERT-base 440 MB. In wasm32's 4 GiB
/// an f32 model of this size, its gradients and Adam's two moments just fit; an f16 file
/// doubles in memory, as every weight is widened to f32.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Largest safetensors header read (GPT-2's is 15 KB).
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// The `model_type`s glassbox opens.
pub const SUPPORTED: &[&str] = &["bert", "gpt2", "roberta"];

/// A file's bytes, read by range: a `File` in the page, bytes in memory natively.
pub trait ByteSource {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Bytes `start..end`.
    fn read(&self, start: u64, end: u64) -> impl Future<Output = Result<Vec<u8>, String>>;
}

impl ByteSource for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
        range
            .and_then(|(start, end)| self.get(start..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("bytes {start}..{end} are past the end"))
    }
}

/// Everything that can be wrong with a model folder, naming the file, tensor or field.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HfError {
    /// No `config.json` among the files.
    #[error(
        "no config.json among the files: open the model's folder, or pick its config.json together with its weights"
    )]
    NoConfig,
    /// Two `config.json` files.
    #[error("two config.json files ({first} and {second}): open one model at a time")]
    TwoConfigs {
        /// One.
        first: String,
        /// The other.
        second: String,
    },
    /// A `model_type` glassbox does not open.
    #[error("config.json says model_type `{model_type}`; glassbox opens {}", SUPPORTED.join(", "))]
    Unsupported {
        /// What the file says.
        model_type: String,
    },
    /// A field of config.json is missing or unusable.
    #[error("config.json: `{field}` {reason}")]
    BadConfig {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No weights among the files.
    #[error("{}", if *pytorch_bin {
        "the folder has only pytorch_model.bin: glassbox reads safetensors. Convert it in Python with `model.save_pretrained(folder, safe_serialization=True)`"
    } else {
        "no weights among the files: open model.safetensors (or model.safetensors.index.json with its shards) together with config.json"
    })]
    NoWeights {
        /// Whether a `pytorch_model.bin` was there.
        pytorch_bin: bool,
    },
    /// The weights are over [`MAX_MODEL_BYTES`].
    #[error("{file} makes the weights {size} bytes, over the {MAX_MODEL_BYTES}-byte limit")]
    TooLarge {
        /// The file that went over.
        file: String,
        /// The weights' size with it.
        size: u64,
    },
    /// A file could not be read.
    #[error("{file} could not be read: {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A damaged or truncated safetensors file, or a bad shard index.
    #[error("{file} is not a usable safetensors file: {reason}")]
    Damaged {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is not in the files.
    #[error("tensor `{tensor}` (shape {shape:?}) is missing from the weights")]
    Missing {
        /// Its name in the checkpoint's layout.
        tensor: String,
        /// The shape the config implies.
        shape: Vec<usize>,
    },
    /// A tensor the model has no place for.
    #[error("tensor `{tensor}` in {file} is not a parameter of a {family} model")]
    Unexpected {
        /// The tensor.
        tensor: String,
        /// Its file.
        file: String,
        /// The family.
        family: String,
    },
    /// A tensor of the wrong shape.
    #[error("tensor `{tensor}` has shape {found:?}, but config.json implies {expected:?}")]
    Shape {
        /// The tensor.
        tensor: String,
        /// What the config implies.
        expected: Vec<usize>,
        /// What the file has.
        found: Vec<usize>,
    },
    /// A weight that is not floating point.
    #[error("tensor `{tensor}` holds {dtype} values; weights must be F32, F16, BF16 or F64")]
    NotFloat {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The tokenizer's files.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The tokenizer makes ids the embedding does not have.
    #[error("the tokenizer has ids up to {}, but the embedding has {embedding} rows (config.json vocab_size)", tokenizer - 1)]
    VocabularyTooLarge {
        /// The tokenizer's id bound.
        tokenizer: usize,
        /// Rows of the embedding.
        embedding: usize,
    },
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The families of [`SUPPORTED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `bert`.
    Bert,
    /// `roberta`: BERT with positions counted from `pad_token_id + 1`.
    Roberta,
    /// `gpt2`.
    Gpt2,
}

/// What config.json says, mapped onto glassbox's options.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    /// The family.
    pub family: Family,
    /// The architecture.
    pub config: TransformerConfig,
    /// Whose names the tensors go by.
    pub layout: Layout,
    /// `_name_or_path` or `architectures[0]`, when the file has one.
    pub name: Option<String>,
}

fn field<'a>(config: &'a Value, name: &str) -> Result<&'a Value, HfError> {
    config.get(name).ok_or_else(|| HfError::BadConfig {
        field: name.into(),
        reason: "is missing".into(),
    })
}

fn size(config: &Value, name: &str) -> Result<usize, HfError> {
    let value = field(config, name)?;
    match value.as_u64() {
        Some(number) if number > 0 && number <= 1 << 24 => Ok(number as usize),
        _ => Err(HfError::BadConfig {
            field: name.into(),
            reason: format!("is {value}, not a whole number from 1 to 16,777,216"),
        }),
    }
}

fn optional_size(config: &Value, name: &str, default: usize) -> Result<usize, HfError> {
    match config.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(_) => size(config, name),
    }
}

fn epsilon(config: &Value, name: &str, default: f64) -> Result<f64, HfError> {
    match config.get(name) {
        None => Ok(default),
        Some(value) => value
            .as_f64()
            .filter(|eps| *eps > 0.0 && *eps < 1.0)
            .ok_or_else(|| HfError::BadConfig {
                field: name.into(),
                reason: format!("is {value}, not a small positive number"),
            }),
    }
}

fn activation(config: &Value, name: &str, default: &str) -> Result<Activation, HfError> {
    let given = config.get(name).and_then(Value::as_str).unwrap_or(default);
    match given {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluNew),
        "relu" => Ok(Activation::Relu),
        "sigmoid" => Ok(Activation::Sigmoid),
        other => Err(HfError::BadConfig {
            field: name.into(),
            reason: format!("is `{other}`; glassbox has gelu, gelu_new, relu and sigmoid"),
        }),
    }
}

fn refuse(field: &str, reason: &str) -> HfError {
    HfError::BadConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads config.json for a checkpoint whose tensors have `names`.
pub fn parse_config(json: &str, names: &BTreeSet<String>) -> Result<HfConfig, HfError> {
    let config: Value = serde_json::from_str(json).map_err(|error| HfError::BadConfig {
        field: "(the file)".into(),
        reason: format!("is not valid JSON: {error}"),
    })?;
    if !config.is_object() {
        return Err(refuse("(the file)", "is not a JSON object"));
    }
    let model_type = match config.get("model_type") {
        Some(Value::String(model_type)) => model_type.clone(),
        Some(other) => other.to_string(),
        None => return Err(refuse("model_type", "is missing: it names the family")),
    };
    let name = config
        .get("_name_or_path")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .or_else(|| config.get("architectures")?.get(0)?.as_str())
        .map(str::to_string);
    let (family, config, layout) = match model_type.as_str() {
        "bert" => {
            let prefixed = names.iter().any(|name| name.starts_with("bert."));
            (
                Family::Bert,
                bert_config(&config, names)?,
                Layout::Bert { prefixed },
            )
        }
        "roberta" => {
            let prefixed = names.iter().any(|name| name.starts_with("roberta."));
            (
                Family::Roberta,
                roberta_config(&config, names)?,
                Layout::Roberta { prefixed },
            )
        }
        "gpt2" => {
            let prefixed = names.iter().any(|name| name.starts_with("transformer."));
            (
                Family::Gpt2,
                gpt2_config(&config)?,
                Layout::Gpt2 { prefixed },
            )
        }
        _ => return Err(HfError::Unsupported { model_type }),
    };
    config.validate().map_err(|reason| HfError::BadConfig {
        field: "num_attention_heads".into(),
        reason,
    })?;
    Ok(HfConfig {
        family,
        config,
        layout,
        name,
    })
}

/// RoBERTa: BERT's blocks, one token type, positions from `pad_token_id + 1` (so
/// `max_position_embeddings - pad_token_id - 1` usable ones) and its head as `lm_head`.
fn roberta_config(config: &Value, names: &BTreeSet<String>) -> Result<TransformerConfig, HfError> {
    // RobertaLMHead applies exact GELU whatever `hidden_act` says; glassbox's head uses the
    // model's activation, so only configs where the two agree are read.
    if let Some(act) = config.get("hidden_act").and_then(Value::as_str)
        && act != "gelu"
    {
        return Err(refuse(
            "hidden_act",
            "is not `gelu`: RoBERTa's head always uses exact GELU, and glassbox reads RoBERTa with gelu layers only",
        ));
    }
    let pad = match config.get("pad_token_id") {
        None | Some(Value::Null) => 1,
        Some(value) => value
            .as_u64()
            .filter(|pad| *pad < 1 << 24)
            .ok_or_else(|| refuse("pad_token_id", "is not a token id"))?
            as usize,
    };
    let offset = pad + 1;
    let positions = size(config, "max_position_embeddings")?;
    let Some(usable) = positions.checked_sub(offset).filter(|usable| *usable > 0) else {
        return Err(refuse(
            "max_position_embeddings",
            "leaves no position after RoBERTa's offset of pad_token_id + 1",
        ));
    };
    refuse_untied(config)?;
    let has_mlm = names.iter().any(|name| name.starts_with("lm_head."));
    let base = bert_like(config, has_mlm, 1, 1e-5)?;
    Ok(base.with_max_seq_len(usable).with_position_offset(offset))
}

fn bert_config(config: &Value, names: &BTreeSet<String>) -> Result<TransformerConfig, HfError> {
    refuse_untied(config)?;
    let has_mlm = names
        .iter()
        .any(|name| name.starts_with("cls.predictions."));
    bert_like(config, has_mlm, 2, 1e-12)
}

/// glassbox reads masked-LM decoders tied to the word embeddings (what `save_pretrained` omits).
fn refuse_untied(config: &Value) -> Result<(), HfError> {
    if config.get("tie_word_embeddings").and_then(Value::as_bool) == Some(false) {
        return Err(refuse(
            "tie_word_embeddings",
            "is false: glassbox reads masked-LM heads tied to the word embeddings",
        ));
    }
    Ok(())
}

fn bert_like(
    config: &Value,
    has_mlm: bool,
    default_types: usize,
    default_eps: f64,
) -> Result<TransformerConfig, HfError> {
    if config.get("is_decoder").and_then(Value::as_bool) == Some(true) {
        return Err(refuse(
            "is_decoder",
            "is true: glassbox opens BERT encoders",
        ));
    }
    if let Some(kind) = config
        .get("position_embedding_type")
        .and_then(Value::as_str)
        && kind != "absolute"
    {
        return Err(refuse(
            "position_embedding_type",
            "is not `absolute`: glassbox has learned absolute positions only",
        ));
    }
    let heads = size(config, "num_attention_heads")?;
    let width = size(config, "hidden_size")?;
    check_heads(width, heads, "hidden_size", "num_attention_heads")?;
    Ok(TransformerConfig::new(
        size(config, "vocab_size")?,
        width,
        heads,
        size(config, "intermediate_size")?,
        size(config, "num_hidden_layers")?,
    )
    .with_max_seq_len(size(config, "max_position_embeddings")?)
    .with_activation(activation(config, "hidden_act", "gelu")?)
    .with_norm_position(NormPosition::Post)
    .with_positional(Positional::Learned)
    .with_layer_norm_eps(epsilon(config, "layer_norm_eps", default_eps)?)
    .with_token_types(optional_size(config, "type_vocab_size", default_types)?)
    .with_embedding_norm(true)
    .with_head(if has_mlm { Head::MaskedLm } else { Head::None }))
}

fn gpt2_config(config: &Value) -> Result<TransformerConfig, HfError> {
    if config.get("tie_word_embeddings").and_then(Value::as_bool) == Some(false) {
        return Err(refuse(
            "tie_word_embeddings",
            "is false: glassbox reads GPT-2 heads tied to the token embedding",
        ));
    }
    for flag in ["scale_attn_by_inverse_layer_idx", "add_cross_attention"] {
        if config.get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(refuse(flag, "is true, which glassbox does not model"));
        }
    }
    if config.get("scale_attn_weights").and_then(Value::as_bool) == Some(false) {
        return Err(refuse(
            "scale_attn_weights",
            "is false, which glassbox does not model",
        ));
    }
    let width = size(config, "n_embd")?;
    let heads = size(config, "n_head")?;
    check_heads(width, heads, "n_embd", "n_head")?;
    Ok(TransformerConfig::new(
        size(config, "vocab_size")?,
        width,
        heads,
        optional_size(config, "n_inner", 4 * width)?,
        size(config, "n_layer")?,
    )
    .with_max_seq_len(size(config, "n_positions")?)
    .with_activation(activation(config, "activation_function", "gelu_new")?)
    .with_norm_position(NormPosition::Pre)
    .with_positional(Positional::Learned)
    .with_causal(true)
    .with_layer_norm_eps(epsilon(config, "layer_norm_epsilon", 1e-5)?)
    .with_final_norm(true)
    .with_head(Head::TiedEmbedding))
}

fn check_heads(
    width: usize,
    heads: usize,
    width_name: &str,
    heads_name: &str,
) -> Result<(), HfError> {
    if width.is_multiple_of(heads) {
        Ok(())
    } else {
        Err(HfError::BadConfig {
            field: heads_name.into(),
            reason: format!("is {heads}, which does not divide {width_name} {width}"),
        })
    }
}

/// How many distinct layers the tensor names hold (`…encoder.layer.{i}.…`, `…h.{i}.…`).
fn layers_in<'a>(names: impl Iterator<Item = &'a String>) -> usize {
    let indices: BTreeSet<usize> = names
        .filter_map(|name| {
            let rest = name
                .split_once("encoder.layer.")
                .map(|(_, rest)| rest)
                .or_else(|| name.strip_prefix("h."))
                .or_else(|| name.split_once(".h.").map(|(_, rest)| rest))?;
            rest.split_once('.')?.0.parse().ok()
        })
        .collect();
    indices.len()
}

/// Tensors a checkpoint may hold that are not parameters, or that are tied to one: skipped,
/// and listed as unused when they are more than a buffer.
fn ignorable(family: Family, name: &str) -> Option<&'static str> {
    let leaf = name
        .strip_prefix("bert.")
        .or_else(|| name.strip_prefix("roberta."))
        .or_else(|| name.strip_prefix("transformer."))
        .unwrap_or(name);
    match family {
        Family::Roberta if leaf == "embeddings.position_ids" => Some("buffer"),
        Family::Roberta if leaf.starts_with("pooler.") => Some("pooler (not used by the views)"),
        Family::Roberta if leaf == "lm_head.decoder.weight" || leaf == "lm_head.decoder.bias" => {
            Some("tied")
        }
        Family::Bert if leaf == "embeddings.position_ids" => Some("buffer"),
        Family::Bert if leaf.starts_with("pooler.") => Some("pooler (not used by the views)"),
        Family::Bert if leaf.starts_with("cls.seq_relationship.") => {
            Some("next-sentence head (not used)")
        }
        Family::Bert
            if leaf == "cls.predictions.decoder.weight"
                || leaf == "cls.predictions.decoder.bias" =>
        {
            Some("tied")
        }
        Family::Gpt2 if leaf.ends_with(".attn.bias") || leaf.ends_with(".attn.masked_bias") => {
            Some("buffer")
        }
        Family::Gpt2 if leaf == "lm_head.weight" => Some("tied"),
        _ => None,
    }
}

/// One tensor's place in a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// Which weight file.
    pub file: usize,
    /// `F32`, `F16`, …
    pub dtype: String,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// First byte, counted from the file's start.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// Reads a safetensors file's header through `source` and checks each tensor's extent.
pub async fn read_header<S: ByteSource>(
    file_name: &str,
    file: usize,
    source: &S,
) -> Result<BTreeMap<String, TensorEntry>, HfError> {
    let damaged = |reason: String| HfError::Damaged {
        file: file_name.into(),
        reason,
    };
    let read_error = |reason: String| HfError::Read {
        file: file_name.into(),
        reason,
    };
    let size = source.size();
    if size < 8 {
        return Err(damaged(format!(
            "it is {size} bytes, shorter than the 8-byte header length"
        )));
    }
    let length = source.read(0, 8).await.map_err(read_error)?;
    let header_len = u64::from_le_bytes(
        length
            .try_into()
            .map_err(|_| damaged("short read".into()))?,
    );
    if header_len > MAX_HEADER_BYTES || 8 + header_len > size {
        return Err(damaged(format!(
            "its header length says {header_len} bytes, but the file has {} after it",
            size - 8
        )));
    }
    let header = source.read(8, 8 + header_len).await.map_err(read_error)?;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|error| damaged(format!("its header is not valid JSON: {error}")))?;
    let data_start = 8 + header_len;
    let mut entries = BTreeMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad_entry = |what: &str| damaged(format!("tensor `{name}` has {what}"));
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_entry("no dtype"))?
            .to_string();
        let width = dtype_bytes(&dtype).ok_or_else(|| bad_entry("an unknown dtype"))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|shape| serde_json::from_value(shape.clone()).ok())
            .ok_or_else(|| bad_entry("no shape"))?;
        let [start, end]: [u64; 2] = info
            .get("data_offsets")
            .and_then(|offsets| serde_json::from_value(offsets.clone()).ok())
            .ok_or_else(|| bad_entry("no data offsets"))?;
        let bytes = shape
            .iter()
            .try_fold(width, |bytes, &dim| bytes.checked_mul(dim as u64));
        if bytes.is_none() || bytes != end.checked_sub(start) {
            return Err(bad_entry(
                "data offsets that do not match its shape and dtype",
            ));
        }
        let (Some(start), Some(end)) = (data_start.checked_add(start), data_start.checked_add(end))
        else {
            return Err(bad_entry("data offsets past any file"));
        };
        if end > size {
            return Err(damaged(format!(
                "it is truncated: tensor `{name}` ends at byte {end}, but the file has {size} bytes"
            )));
        }
        entries.insert(
            name,
            TensorEntry {
                file,
                dtype,
                shape,
                start,
                end,
            },
        );
    }
    Ok(entries)
}

/// One step of loading: a checkpoint tensor and the glassbox parameters made from it.
#[derive(Debug, Clone)]
struct Step {
    source: String,
    entry: TensorEntry,
    targets: Vec<(String, Transform, Vec<usize>)>,
}

/// A checked plan: every parameter's source found, every shape right, nothing unexplained.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The model's options.
    pub config: HfConfig,
    steps: Vec<Step>,
    /// Tensors in the files the model does not use, with why.
    pub unused: Vec<(String, &'static str)>,
    /// Distinct dtypes of the weights used, as stored.
    pub dtypes: BTreeSet<String>,
}

fn stored_shape(target: &[usize], transform: Transform) -> Vec<usize> {
    match (transform, target) {
        (Transform::Transpose, [rows, cols]) => vec![*cols, *rows],
        (Transform::Split { parts, .. }, [rows, cols]) => vec![*rows, cols * parts],
        (Transform::Split { parts, .. }, [len]) => vec![len * parts],
        _ => target.to_vec(),
    }
}

impl LoadPlan {
    /// Matches `config` against the tensors of the weight files (`files` names them).
    pub fn new(
        config: HfConfig,
        tensors: &BTreeMap<String, TensorEntry>,
        files: &[String],
    ) -> Result<Self, HfError> {
        let family_name = config.layout.family();
        let mut steps: BTreeMap<String, Step> = BTreeMap::new();
        // Building the model allocates every layer: a config that claims more layers than the
        // weights hold is refused before (a huge count would exhaust the tab's memory).
        let held = layers_in(tensors.keys());
        if config.config.num_layers > held {
            return Err(HfError::BadConfig {
                field: "num_hidden_layers".into(),
                reason: format!(
                    "is {}, but the weights hold {held} layers",
                    config.config.num_layers
                ),
            });
        }
        let shapes = parameter_shapes(&config.config).map_err(|error| HfError::BadConfig {
            field: "(the architecture)".into(),
            reason: error.to_string(),
        })?;
        for (path, shape) in shapes {
            let Some(source) = source_of(config.layout, &path) else {
                return Err(HfError::BadConfig {
                    field: "(the architecture)".into(),
                    reason: format!("has a parameter `{path}` the {family_name} layout lacks"),
                });
            };
            let Some((name, entry)) = source
                .names
                .iter()
                .find_map(|name| Some((name, tensors.get(name)?)))
            else {
                return Err(HfError::Missing {
                    tensor: source.names[0].clone(),
                    shape: stored_shape(&shape, source.transform),
                });
            };
            let expected = stored_shape(&shape, source.transform);
            if entry.shape != expected {
                return Err(HfError::Shape {
                    tensor: name.clone(),
                    expected,
                    found: entry.shape.clone(),
                });
            }
            if !matches!(entry.dtype.as_str(), "F32" | "F16" | "BF16" | "F64") {
                return Err(HfError::NotFloat {
                    tensor: name.clone(),
                    dtype: entry.dtype.clone(),
                });
            }
            steps
                .entry(name.clone())
                .or_insert_with(|| Step {
                    source: name.clone(),
                    entry: entry.clone(),
                    targets: Vec::new(),
                })
                .targets
                .push((path, source.transform, shape));
        }
        let mut unused = Vec::new();
        for (name, entry) in tensors {
            if steps.contains_key(name) {
                continue;
            }
            match ignorable(config.family, name) {
                Some(why) => unused.push((name.clone(), why)),
                None => {
                    return Err(HfError::Unexpected {
                        tensor: name.clone(),
                        file: files.get(entry.file).cloned().unwrap_or_default(),
                        family: family_name.into(),
                    });
                }
            }
        }
        let dtypes = steps
            .values()
            .map(|step| step.entry.dtype.clone())
            .collect();
        // Read each file front to back.
        let mut steps: Vec<Step> = steps.into_values().collect();
        steps.sort_by_key(|step| (step.entry.file, step.entry.start));
        Ok(Self {
            config,
            steps,
            unused,
            dtypes,
        })
    }

    /// The largest tensor the model holds on its device, with its name, in f32 bytes: the
    /// largest weight, or the logits of an input as long as the model's positions.
    pub fn largest_tensor(&self) -> (String, u64) {
        let config = &self.config.config;
        let weights = self.steps.iter().flat_map(|step| {
            step.targets.iter().map(|(_, _, shape)| {
                let values: usize = shape.iter().product();
                (step.source.clone(), 4 * values as u64)
            })
        });
        let logits = config.has_head().then(|| {
            let values = config.max_seq_len as u64 * config.vocab_size as u64;
            (
                format!("the logits of {} tokens", config.max_seq_len),
                4 * values,
            )
        });
        weights
            .chain(logits)
            .max_by_key(|(_, bytes)| *bytes)
            .unwrap_or_default()
    }

    /// Bytes of weights the plan reads.
    pub fn bytes(&self) -> u64 {
        self.steps
            .iter()
            .map(|step| step.entry.end - step.entry.start)
            .sum()
    }

    /// Reads every tensor through `files` (the weight files, in the plan's order), one at a
    /// time, and builds the model on `device`. `progress` hears the bytes read so far.
    pub async fn load<S: ByteSource>(
        &self,
        files: &[(String, S)],
        device: &Device,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Transformer, HfError> {
        let total = self.bytes();
        let mut done = 0;
        let mut loaded: BTreeMap<String, Tensor<1>> = BTreeMap::new();
        for step in &self.steps {
            let (file_name, source) = &files[step.entry.file];
            let bytes = source
                .read(step.entry.start, step.entry.end)
                .await
                .map_err(|reason| HfError::Read {
                    file: file_name.clone(),
                    reason,
                })?;
            if bytes.len() as u64 != step.entry.end - step.entry.start {
                return Err(HfError::Read {
                    file: file_name.clone(),
                    reason: format!(
                        "tensor `{}` gave {} bytes instead of {}",
                        step.source,
                        bytes.len(),
                        step.entry.end - step.entry.start
                    ),
                });
            }
            let dtype = dtype_named(&step.entry.dtype);
            let values = dtype
                .ok_or(())
                .and_then(|dtype| to_f32(&step.source, dtype, &bytes).map_err(|_| ()))
                .map_err(|()| HfError::NotFloat {
                    tensor: step.source.clone(),
                    dtype: step.entry.dtype.clone(),
                })?;
            drop(bytes);
            let mut values = Some(values);
            for (path, transform, shape) in &step.targets {
                // A tensor used as stored moves to the device without a second host copy.
                let values = match (transform, step.targets.len(), values.take()) {
                    (Transform::Copy, 1, Some(values)) => values,
                    (_, _, Some(kept)) => {
                        let out = transformed(&kept, &step.entry.shape, *transform);
                        values = Some(kept);
                        out
                    }
                    (_, _, None) => Vec::new(),
                };
                let count = values.len();
                loaded.insert(
                    path.clone(),
                    Tensor::from_data(TensorData::new(values, [count]), device),
                );
                debug_assert_eq!(count, shape.iter().product::<usize>());
            }
            done += step.entry.end - step.entry.start;
            progress(done, total);
            // Let the page draw the progress between tensors.
            yield_now().await;
        }
        let model = self.config.config.init(&Device::flex())?;
        let mut model = model.map(&mut Placer {
            path: Vec::new(),
            loaded: &mut loaded,
        });
        model.layout = self.config.layout;
        Ok(model.to_device(device))
    }
}

/// Gives an executor the chance to run something else (the page to paint).
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|context| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            context.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

fn transformed(values: &[f32], stored: &[usize], transform: Transform) -> Vec<f32> {
    match (transform, stored) {
        (Transform::Copy, _) => values.to_vec(),
        (Transform::Transpose, [rows, cols]) => {
            let mut out = vec![0.0; values.len()];
            for (row, chunk) in values.chunks_exact(*cols).enumerate() {
                for (col, value) in chunk.iter().enumerate() {
                    out[col * rows + row] = *value;
                }
            }
            out
        }
        (Transform::Split { part, parts }, [_, cols]) => {
            let width = cols / parts;
            values
                .chunks_exact(*cols)
                .flat_map(|row| &row[part * width..(part + 1) * width])
                .copied()
                .collect()
        }
        (Transform::Split { part, parts }, [len]) => {
            let width = len / parts;
            values[part * width..(part + 1) * width].to_vec()
        }
        _ => values.to_vec(),
    }
}

/// Replaces each (still uninitialised) parameter by the tensor loaded for its path, so that no
/// random weights are ever drawn for it.
struct Placer<'a> {
    path: Vec<String>,
    loaded: &'a mut BTreeMap<String, Tensor<1>>,
}

impl ModuleMapper for Placer<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(tensor) = self.loaded.remove(&self.path.join(".")) else {
            return param;
        };
        let shape: [usize; D] = param.lazy_shape().dims::<D>();
        Param::from_tensor(tensor.reshape(shape))
    }
}

/// A model folder's files sorted by role; names are paths, and their last part decides.
pub struct Folder<S> {
    /// `config.json`'s text.
    pub config: String,
    /// The weight files (one, or the shards in the index's order).
    pub weights: Vec<(String, S)>,
    /// The tokenizer files' texts, by base name.
    pub texts: BTreeMap<String, String>,
}

/// The last part of a path.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Text files of a model folder the loader reads.
pub const TEXT_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "model.safetensors.index.json",
];

/// Whether `names` look like a HuggingFace model folder (a `config.json` among them).
pub fn is_model_folder<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|name| base_name(name) == "config.json")
}

/// Sorts files into a [`Folder`]; `read_text` reads a small text file whole.
pub async fn sort_folder<S: ByteSource>(files: Vec<(String, S)>) -> Result<Folder<S>, HfError> {
    // The model's config is the shallowest one: a sentence-transformers folder keeps its
    // pooling module's own config.json in `1_Pooling/`, which is not the model's.
    let depth = |name: &str| name.matches(['/', '\\']).count();
    let is_config = |name: &str| base_name(name) == "config.json";
    let top = files
        .iter()
        .filter(|(name, _)| is_config(name))
        .map(|(name, _)| depth(name))
        .min()
        .unwrap_or(0);
    let configs: Vec<&String> = files
        .iter()
        .map(|(name, _)| name)
        .filter(|name| is_config(name) && depth(name) == top)
        .collect();
    match configs[..] {
        [] => return Err(HfError::NoConfig),
        [_] => {}
        [first, second, ..] => {
            return Err(HfError::TwoConfigs {
                first: first.clone(),
                second: second.clone(),
            });
        }
    }
    let mut texts = BTreeMap::new();
    let mut safetensors = Vec::new();
    let mut pytorch_bin = false;
    for (name, source) in files {
        let base = base_name(&name).to_string();
        if TEXT_FILES.contains(&base.as_str()) && depth(&name) > top {
            // A sub-module's file (`1_Pooling/config.json`): not the model's.
            continue;
        }
        if TEXT_FILES.contains(&base.as_str()) {
            if source.size() > super::hf_tokenizer::MAX_TOKENIZER_BYTES as u64 {
                return Err(HfError::Read {
                    file: name,
                    reason: "it is too large for a text file of a model folder".into(),
                });
            }
            let bytes = source
                .read(0, source.size())
                .await
                .map_err(|reason| HfError::Read {
                    file: name.clone(),
                    reason,
                })?;
            let text = String::from_utf8(bytes).map_err(|_| HfError::Read {
                file: name.clone(),
                reason: "it is not UTF-8 text".into(),
            })?;
            texts.insert(base, text);
        } else if base.ends_with(".safetensors") {
            safetensors.push((name, source));
        } else if base == "pytorch_model.bin" || base.starts_with("pytorch_model-") {
            pytorch_bin = true;
        }
    }
    let config = texts.remove("config.json").unwrap_or_default();
    let (candidates, first_candidate) = (
        safetensors.len(),
        safetensors.first().map(|(name, _)| name.clone()),
    );
    let weights = match texts.remove("model.safetensors.index.json") {
        Some(index) => order_shards(&index, safetensors)?,
        None => {
            let single = safetensors
                .iter()
                .position(|(name, _)| base_name(name) == "model.safetensors")
                .or((safetensors.len() == 1).then_some(0));
            match single {
                Some(index) => vec![safetensors.swap_remove(index)],
                None => Vec::new(),
            }
        }
    };
    if let (true, Some(file)) = (weights.is_empty(), first_candidate) {
        return Err(HfError::Damaged {
            file,
            reason: format!(
                "it is one of {candidates} .safetensors files, none called model.safetensors and no model.safetensors.index.json (with a weight_map naming them) to say which hold the weights"
            ),
        });
    }
    if weights.is_empty() {
        return Err(HfError::NoWeights { pytorch_bin });
    }
    let mut total = 0;
    for (name, source) in &weights {
        total += source.size();
        if total > MAX_MODEL_BYTES {
            return Err(HfError::TooLarge {
                file: name.clone(),
                size: total,
            });
        }
    }
    Ok(Folder {
        config,
        weights,
        texts,
    })
}

/// The shards an index names, in its order, each present once.
fn order_shards<S>(index: &str, mut files: Vec<(String, S)>) -> Result<Vec<(String, S)>, HfError> {
    let damaged = |reason: String| HfError::Damaged {
        file: "model.safetensors.index.json".into(),
        reason,
    };
    let index: Value =
        serde_json::from_str(index).map_err(|error| damaged(format!("not valid JSON: {error}")))?;
    let map = index
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| damaged("it has no `weight_map`".into()))?;
    let shards: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
    let mut ordered = Vec::new();
    for shard in shards {
        let Some(position) = files.iter().position(|(name, _)| base_name(name) == shard) else {
            return Err(damaged(format!(
                "it names the shard {shard}, which is not among the files"
            )));
        };
        ordered.push(files.swap_remove(position));
    }
    Ok(ordered)
}

/// A model folder, opened: the model on its device, its tokenizer, and what the page says
/// about it.
pub struct OpenedModel {
    /// The model.
    pub model: Transformer,
    /// Its tokenizer.
    pub tokenizer: HfTokenizer,
    /// The plan it was loaded by (config, unused tensors, dtypes).
    pub plan: LoadPlan,
    /// The weight files' names.
    pub files: Vec<String>,
}

impl OpenedModel {
    /// The status line: family, name, layers, heads, width, parameters and the stored dtype.
    pub fn describe(&self) -> String {
        let config = &self.plan.config.config;
        let name = self
            .plan
            .config
            .name
            .as_deref()
            .map(|name| format!(" {name}"))
            .unwrap_or_default();
        format!(
            "{}{name}: {} layers × {} heads, width {}, {} parameters, stored as {}",
            self.plan.config.layout.family(),
            config.num_layers,
            config.num_heads,
            config.d_model,
            crate::format::group_thousands(self.model.parameter_count()),
            self.plan
                .dtypes
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("+"),
        )
    }
}

/// Checks a sorted folder completely (config, every tensor's header, the tokenizer) before
/// reading a single weight; nothing is built from a folder that fails.
pub async fn plan_folder<S: ByteSource>(
    folder: &Folder<S>,
) -> Result<(LoadPlan, HfTokenizer), HfError> {
    let mut tensors = BTreeMap::new();
    let names: Vec<String> = folder
        .weights
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    for (file, (name, source)) in folder.weights.iter().enumerate() {
        for (tensor, entry) in read_header(name, file, source).await? {
            if let Some(first) = tensors.insert(tensor.clone(), entry) {
                return Err(HfError::Damaged {
                    file: name.clone(),
                    reason: format!(
                        "tensor `{tensor}` is also in {}",
                        names.get(first.file).cloned().unwrap_or_default()
                    ),
                });
            }
        }
    }
    let keys: BTreeSet<String> = tensors.keys().cloned().collect();
    let config = parse_config(&folder.config, &keys)?;
    let text = |name: &str| folder.texts.get(name).map(String::as_str);
    let family = match config.family {
        Family::Bert => "BERT",
        Family::Roberta => "RoBERTa",
        Family::Gpt2 => "GPT-2",
    };
    let tokenizer = HfTokenizer::from_files(
        TokenizerFiles {
            tokenizer_json: text("tokenizer.json"),
            tokenizer_config: text("tokenizer_config.json"),
            vocab_txt: text("vocab.txt"),
            vocab_json: text("vocab.json"),
            merges_txt: text("merges.txt"),
        },
        family,
        config.config.max_seq_len,
    )?;
    if tokenizer.id_bound() > config.config.vocab_size {
        return Err(HfError::VocabularyTooLarge {
            tokenizer: tokenizer.id_bound(),
            embedding: config.config.vocab_size,
        });
    }
    let plan = LoadPlan::new(config, &tensors, &names)?;
    Ok((plan, tokenizer))
}

/// Opens a model folder's files onto `device`.
pub async fn open_folder<S: ByteSource>(
    files: Vec<(String, S)>,
    device: &Device,
    progress: impl FnMut(u64, u64),
) -> Result<OpenedModel, HfError> {
    open_folder_within(files, device, None, progress)
        .await
        .map(|(opened, _)| opened)
}

/// [`open_folder`] onto a device whose tensors may occupy at most `max_tensor_bytes`; a model
/// with a larger tensor opens on the CPU instead, and the second value says why.
pub async fn open_folder_within<S: ByteSource>(
    files: Vec<(String, S)>,
    device: &Device,
    max_tensor_bytes: Option<u64>,
    progress: impl FnMut(u64, u64),
) -> Result<(OpenedModel, Option<String>), HfError> {
    let folder = sort_folder(files).await?;
    let (plan, tokenizer) = plan_folder(&folder).await?;
    let (largest, bytes) = plan.largest_tensor();
    let fallback = max_tensor_bytes.filter(|limit| bytes > *limit).map(|limit| {
        format!(
            "it runs on the CPU: {largest} ({bytes} bytes) is over this WebGPU device's {limit}-byte limit for one buffer"
        )
    });
    let cpu = Device::flex();
    let device = if fallback.is_some() { &cpu } else { device };
    let model = plan.load(&folder.weights, device, progress).await?;
    let files = folder
        .weights
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let opened = OpenedModel {
        model,
        tokenizer,
        plan,
        files,
    };
    Ok((opened, fallback))
}
