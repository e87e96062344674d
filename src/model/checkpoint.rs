//! Checkpoints: glassbox models to and from safetensors, and PyTorch checkpoints of the same
//! architecture under PyTorch's own parameter names.
//!
//! A glassbox checkpoint stores every parameter under its burn module path
//! (`layers.0.attn.query.weight`, in burn's `[d_in, d_out]` layout) with the config, the
//! vocabulary and where the weights came from in the safetensors metadata. A PyTorch checkpoint
//! of the seed chapter's model (`transformer.layers.0.self_attn.in_proj_weight`, …) is mapped
//! onto those paths: packed q/k/v projections are split and `[out, in]` weights transposed.
//!
//! Parsing checks everything before a model is built, so a bad file never replaces the model
//! that is already loaded.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData, Transaction};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use thiserror::Error;

use super::config::{NormPosition, TransformerConfig};
use super::error::ModelError;
use super::paths::{ParameterVisitor, visit_parameters};
use super::tokenizer::Vocabulary;
use super::transformer::Transformer;

/// Largest checkpoint the page opens: 1 GiB, as for HuggingFace folders (`hf::MAX_MODEL_BYTES`).
pub const MAX_CHECKPOINT_BYTES: usize = 1024 * 1024 * 1024;

/// Metadata key of the config JSON.
pub const META_CONFIG: &str = "glassbox.config";
/// Metadata key of the vocabulary, a JSON array of words (index = id).
pub const META_VOCABULARY: &str = "glassbox.vocabulary";
/// Metadata key naming the format, always `glassbox`.
pub const META_FORMAT: &str = "format";

/// Everything that can be wrong with a checkpoint, each naming the tensor or byte offset at fault.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CheckpointError {
    /// The file is over [`MAX_CHECKPOINT_BYTES`].
    #[error("the file is {size_bytes} bytes, over the {max_bytes}-byte limit for a checkpoint")]
    TooLarge {
        /// Size of the file.
        size_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// Shorter than the 8-byte header length every safetensors file starts with.
    #[error(
        "the file is {size_bytes} bytes: too short for a safetensors file, which starts with an 8-byte header length"
    )]
    TooShort {
        /// Size of the file.
        size_bytes: usize,
    },
    /// The header length at offset 0 points past the end of the file.
    #[error(
        "the header length at byte 0 says {header_bytes} bytes of header follow, but the file has only {available} bytes after it"
    )]
    HeaderPastEnd {
        /// Declared header length.
        header_bytes: u64,
        /// Bytes after the length field.
        available: usize,
    },
    /// The header is not the JSON safetensors expects.
    #[error("the header (bytes 8 to {header_end}) is not a valid safetensors header: {reason}")]
    BadHeader {
        /// Offset of the header's end.
        header_end: usize,
        /// What the parser said.
        reason: String,
    },
    /// The data section ends before a tensor does.
    #[error(
        "the file is truncated: tensor `{tensor}` ends at byte {end} but the file has only {size_bytes} bytes"
    )]
    Truncated {
        /// The first tensor that does not fit.
        tensor: String,
        /// Where that tensor's data should end, counted from the start of the file.
        end: usize,
        /// Size of the file.
        size_bytes: usize,
    },
    /// Bytes after the last tensor, or gaps between tensors.
    #[error("the tensor data does not fill the file: {reason}")]
    BadLayout {
        /// What does not add up.
        reason: String,
    },
    /// A tensor's offsets are inconsistent with its shape and dtype.
    #[error("tensor `{tensor}` has data offsets that do not match its shape and dtype")]
    BadOffsets {
        /// The tensor at fault.
        tensor: String,
    },
    /// A tensor whose values are not floating point.
    #[error(
        "tensor `{tensor}` holds {dtype} values; a checkpoint's weights must be F32, F16, BF16 or F64"
    )]
    NotFloat {
        /// The tensor at fault.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The model needs a tensor the file lacks.
    #[error("tensor `{tensor}` (shape {shape:?}) is missing from the file")]
    Missing {
        /// Name the file should have used.
        tensor: String,
        /// Shape the model needs.
        shape: Vec<usize>,
    },
    /// The file has a tensor the model has no place for.
    #[error("tensor `{tensor}` is not a parameter of this model")]
    Unexpected {
        /// The extra tensor.
        tensor: String,
    },
    /// A tensor of the wrong shape.
    #[error("tensor `{tensor}` has shape {found:?} but the model needs {expected:?}")]
    Shape {
        /// The tensor at fault.
        tensor: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// No config in the metadata and none given beside the file.
    #[error(
        "the file carries no model config (metadata `glassbox.config`): open its config JSON together with it"
    )]
    NoConfig,
    /// The config does not parse or cannot build a model.
    #[error("the model config is not usable: {0}")]
    BadConfig(String),
    /// No vocabulary, and the bundled one does not fit.
    #[error(
        "the model has {vocab_size} token ids and no vocabulary was given: open its vocabulary file (vocab.json or vocab.txt) together with it"
    )]
    NoVocabulary {
        /// Ids the model knows.
        vocab_size: usize,
    },
    /// The vocabulary does not parse or does not fit the model.
    #[error("the vocabulary is not usable: {0}")]
    BadVocabulary(String),
    /// The tensor names follow no layout glassbox reads.
    #[error(
        "the tensor names ({examples}) are neither glassbox's own (`embedding.weight`, `layers.0.attn.query.weight`, …) nor those of the seed chapter's PyTorch `nn.TransformerEncoder` (`transformer.layers.0.self_attn.in_proj_weight`, …); other layouts, such as GPT-2's or BERT's, cannot be read yet"
    )]
    UnknownLayout {
        /// The file's first few tensor names.
        examples: String,
    },
    /// The model could not be built or read.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// How the tensors in a file are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// burn module paths, burn layouts: what glassbox writes.
    Glassbox,
    /// `nn.TransformerEncoder` state-dict names and layouts.
    PyTorch,
}

/// A parameter read from a file, already converted to `f32` and to glassbox's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterData {
    /// Shape in glassbox's layout.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A parsed, validated checkpoint: ready to become a model on any device.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The architecture.
    pub config: TransformerConfig,
    /// Words for the token ids.
    pub vocabulary: Vocabulary,
    /// How the file named its tensors.
    pub naming: Naming,
    /// Every metadata entry of the file (config and vocabulary included).
    pub metadata: BTreeMap<String, String>,
    /// Parameters by glassbox path.
    pub parameters: BTreeMap<String, ParameterData>,
}

/// Files given beside a checkpoint: a config JSON and a vocabulary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sidecars<'a> {
    /// The glassbox config as JSON.
    pub config_json: Option<&'a str>,
    /// A vocabulary: a JSON array of words, a JSON object word → id, or one word per line.
    pub vocabulary: Option<&'a str>,
}

impl Checkpoint {
    /// Parses and validates `bytes` as a checkpoint of a glassbox model.
    pub fn parse(bytes: &[u8], sidecars: Sidecars<'_>) -> Result<Self, CheckpointError> {
        let file = SafetensorsFile::parse(bytes)?;
        let config = match (file.metadata.get(META_CONFIG), sidecars.config_json) {
            // A config given beside the file wins: it is how a user corrects one.
            (_, Some(json)) => parse_config(json)?,
            (Some(json), None) => parse_config(json)?,
            (None, None) => return Err(CheckpointError::NoConfig),
        };
        let vocabulary = match (file.metadata.get(META_VOCABULARY), sidecars.vocabulary) {
            (_, Some(text)) => parse_vocabulary(text)?,
            (Some(json), None) => parse_vocabulary(json)?,
            (None, None) if config.vocab_size == Vocabulary::bundled().len() => {
                Vocabulary::bundled()
            }
            (None, None) => {
                return Err(CheckpointError::NoVocabulary {
                    vocab_size: config.vocab_size,
                });
            }
        };
        if vocabulary.len() != config.vocab_size {
            return Err(CheckpointError::BadVocabulary(format!(
                "it has {} words but the model has {} token ids",
                vocabulary.len(),
                config.vocab_size
            )));
        }

        let naming = file.naming()?;
        let layers = layers_in_file(file.tensors.keys(), naming);
        check_config_fits(&config, layers, file.tensors.len())?;
        let mut parameters = match naming {
            Naming::Glassbox => file.tensors,
            Naming::PyTorch => from_pytorch(file.tensors, &config)?,
        };
        let expected = parameter_shapes(&config)?;
        for (path, shape) in &expected {
            let Some(found) = parameters.get(path) else {
                return Err(CheckpointError::Missing {
                    tensor: external_name(path, naming),
                    shape: shape.clone(),
                });
            };
            if &found.shape != shape {
                return Err(CheckpointError::Shape {
                    tensor: external_name(path, naming),
                    expected: shape.clone(),
                    found: found.shape.clone(),
                });
            }
        }
        if let Some(extra) = parameters.keys().find(|path| !expected.contains_key(*path)) {
            return Err(CheckpointError::Unexpected {
                tensor: extra.clone(),
            });
        }
        parameters.retain(|path, _| expected.contains_key(path));
        Ok(Self {
            config,
            vocabulary,
            naming,
            metadata: file.metadata,
            parameters,
        })
    }

    /// Builds the model on `device` with this checkpoint's weights.
    pub fn to_model(&self, device: &Device) -> Result<Transformer, CheckpointError> {
        let model = self.config.init(&Device::flex())?;
        let mut loader = Loader {
            path: Vec::new(),
            parameters: &self.parameters,
            device: Device::flex(),
        };
        let model = model.map(&mut loader);
        Ok(model.to_device(device))
    }

    /// A metadata entry, if the file has it.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

/// Reads every parameter of `model` back to the host, by glassbox path.
///
/// Asynchronous because WebGPU cannot read synchronously; one transaction for all tensors.
pub async fn read_parameters(
    model: &Transformer,
) -> Result<BTreeMap<String, ParameterData>, CheckpointError> {
    let collector = FlatParameters::of(model);
    let mut transaction = Transaction::default();
    for tensor in collector.tensors {
        transaction = transaction.register(tensor);
    }
    let data = transaction
        .execute_async()
        .await
        .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?;
    let mut parameters = BTreeMap::new();
    for ((path, shape), data) in collector.paths.into_iter().zip(data) {
        let values = data
            .try_into_vec_as::<f32>()
            .map_err(|error| ModelError::ReadBack(format!("{path}: {error:?}")))?;
        parameters.insert(path, ParameterData { shape, values });
    }
    Ok(parameters)
}

/// Writes `model` as a glassbox safetensors checkpoint.
///
/// `metadata` adds entries (task, accuracy, …) beside the config and vocabulary.
pub async fn save_checkpoint(
    model: &Transformer,
    config: &TransformerConfig,
    vocabulary: &Vocabulary,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let parameters = read_parameters(model).await?;
    encode_checkpoint(&parameters, config, vocabulary, metadata)
}

/// Serialises parameters (by glassbox path) with their config and vocabulary.
pub fn encode_checkpoint(
    parameters: &BTreeMap<String, ParameterData>,
    config: &TransformerConfig,
    vocabulary: &Vocabulary,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let mut info: HashMap<String, String> = metadata.clone().into_iter().collect();
    info.insert(META_FORMAT.into(), "glassbox".into());
    info.insert(META_CONFIG.into(), config_json(config));
    let words = serde_json::to_string(vocabulary.words())
        .map_err(|error| CheckpointError::BadVocabulary(error.to_string()))?;
    info.insert(META_VOCABULARY.into(), words);
    let tensors = parameters
        .iter()
        .map(|(path, parameter)| (path.clone(), parameter.clone()))
        .collect();
    write_tensors(tensors, info)
}

/// The config as the compact JSON stored in checkpoints.
pub fn config_json(config: &TransformerConfig) -> String {
    // Plain serde data with finite numbers: the compact form keeps the metadata one line.
    serde_json::to_string(config).unwrap_or_default()
}

/// Parses a glassbox config JSON and checks that it can build a model.
///
/// Fields with a default (`max_seq_len`, `activation`, …) may be left out, as in a config written
/// by hand; the five sizes are required.
pub fn parse_config(json: &str) -> Result<TransformerConfig, CheckpointError> {
    let bad = |error: serde_json::Error| CheckpointError::BadConfig(error.to_string());
    let given: serde_json::Value = serde_json::from_str(json).map_err(bad)?;
    let serde_json::Value::Object(given) = given else {
        return Err(CheckpointError::BadConfig("it is not a JSON object".into()));
    };
    for required in ["vocab_size", "d_model", "num_heads", "d_ff", "num_layers"] {
        if !given.contains_key(required) {
            return Err(CheckpointError::BadConfig(format!(
                "missing field `{required}`"
            )));
        }
    }
    // Fields left out take their defaults (serde's `default` on each).
    let config: TransformerConfig =
        serde_json::from_value(serde_json::Value::Object(given)).map_err(bad)?;
    config.validate().map_err(CheckpointError::BadConfig)?;
    Ok(config)
}

/// Parses a vocabulary: a JSON array of words, a JSON object word → id (Hugging Face
/// `vocab.json`), or plain text with one word per line (`vocab.txt`).
pub fn parse_vocabulary(text: &str) -> Result<Vocabulary, CheckpointError> {
    let trimmed = text.trim_start();
    // BERT's vocab.txt opens with `[PAD]` on a line of its own: a bracketed word without
    // quotes starts a word list, not a JSON array.
    let first_line = trimmed.lines().next().unwrap_or_default().trim();
    let bracketed_word =
        first_line.len() > 2 && first_line.ends_with(']') && !first_line.contains('"');
    if trimmed.starts_with('[') && !bracketed_word {
        let words: Vec<String> = serde_json::from_str(text)
            .map_err(|error| CheckpointError::BadVocabulary(error.to_string()))?;
        return checked_vocabulary(words);
    }
    if trimmed.starts_with('{') {
        let ids: HashMap<String, usize> = serde_json::from_str(text)
            .map_err(|error| CheckpointError::BadVocabulary(error.to_string()))?;
        let mut words = vec![None; ids.len()];
        for (word, id) in ids {
            let Some(slot) = words.get_mut(id) else {
                return Err(CheckpointError::BadVocabulary(format!(
                    "`{word}` has id {id}, but ids must run from 0 without gaps"
                )));
            };
            *slot = Some(word);
        }
        let words = words
            .into_iter()
            .enumerate()
            .map(|(id, word)| {
                word.ok_or_else(|| CheckpointError::BadVocabulary(format!("no word has id {id}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return checked_vocabulary(words);
    }
    let words: Vec<String> = text.lines().map(str::to_string).collect();
    checked_vocabulary(words)
}

fn checked_vocabulary(words: Vec<String>) -> Result<Vocabulary, CheckpointError> {
    if words.is_empty() {
        return Err(CheckpointError::BadVocabulary("it has no words".into()));
    }
    let mut seen = HashMap::new();
    for (id, word) in words.iter().enumerate() {
        if let Some(first) = seen.insert(word.as_str(), id) {
            return Err(CheckpointError::BadVocabulary(format!(
                "`{word}` appears twice, as id {first} and id {id}"
            )));
        }
    }
    Ok(Vocabulary::from_words(words))
}

/// The parameter paths and shapes a config implies, taken from the model it builds.
pub fn parameter_shapes(
    config: &TransformerConfig,
) -> Result<BTreeMap<String, Vec<usize>>, CheckpointError> {
    let model = config.init(&Device::flex())?;
    let mut shapes = ShapeCollector::default();
    visit_parameters(&model, &mut shapes);
    Ok(shapes.shapes)
}

/// The encoder layers a file's tensors belong to: how many distinct layer indices its names
/// carry (`layers.{i}.` in glassbox's layout, `transformer.layers.{i}.` in PyTorch's). Counting
/// layers, not tensors, holds for every layout (pre/post-LN, with or without norms, biases or
/// learned positions), and a tensor missing from a layer is still reported by name.
fn layers_in_file<'a>(names: impl Iterator<Item = &'a String>, naming: Naming) -> usize {
    let prefix = match naming {
        Naming::Glassbox => "layers.",
        Naming::PyTorch => "transformer.layers.",
    };
    let indices: std::collections::BTreeSet<usize> = names
        .filter_map(|name| name.strip_prefix(prefix)?.split_once('.')?.0.parse().ok())
        .collect();
    indices.len()
}

/// Refuses a config far larger than the file before a model is built from it: building one
/// allocates every layer and the sinusoid table (`max_seq_len × d_model` values) up front.
fn check_config_fits(
    config: &TransformerConfig,
    layers: usize,
    tensors: usize,
) -> Result<(), CheckpointError> {
    if config.num_layers > layers {
        return Err(CheckpointError::BadConfig(format!(
            "it has {} layers, but the file's {tensors} tensors hold {layers}",
            config.num_layers
        )));
    }
    let table_bytes = config
        .max_seq_len
        .checked_mul(config.d_model)
        .and_then(|values| values.checked_mul(4));
    if config.positional == super::config::Positional::Sinusoidal
        && table_bytes.is_none_or(|bytes| bytes > MAX_CHECKPOINT_BYTES)
    {
        return Err(CheckpointError::BadConfig(format!(
            "a sinusoidal position table of {} positions × {} values is over the {MAX_CHECKPOINT_BYTES}-byte limit",
            config.max_seq_len, config.d_model
        )));
    }
    Ok(())
}

/// Reads any safetensors file as `f32` tensors by name, with its metadata, checked as a
/// checkpoint is (framing, offsets, dtypes, the size limit).
pub(crate) fn read_tensors(bytes: &[u8]) -> Result<SafetensorsFile, CheckpointError> {
    SafetensorsFile::parse(bytes)
}

/// Writes `f32` tensors by name, with `metadata`, as a safetensors file.
pub(crate) fn write_tensors(
    tensors: Vec<(String, ParameterData)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let views = tensors.into_iter().map(|(name, tensor)| {
        let bytes: Vec<u8> = tensor
            .values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        (
            name,
            OwnedView {
                shape: tensor.shape,
                bytes,
            },
        )
    });
    safetensors::serialize(views, Some(metadata)).map_err(|error| CheckpointError::BadLayout {
        reason: error.to_string(),
    })
}

/// A safetensors file checked and converted to `f32`, names untouched.
pub(crate) struct SafetensorsFile {
    /// The header's `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// Every tensor by name.
    pub tensors: BTreeMap<String, ParameterData>,
}

impl SafetensorsFile {
    fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        check_framing(bytes)?;
        let file = SafeTensors::deserialize(bytes).map_err(|error| explain(error, bytes))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|error| explain(error, bytes))?;
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in file.iter() {
            let values = to_f32(name, view.dtype(), view.data())?;
            tensors.insert(
                name.to_string(),
                ParameterData {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        Ok(Self { metadata, tensors })
    }

    /// The layout the names follow, told by names only that layout has: the seed chapter's
    /// `nn.TransformerEncoder` packs q, k and v into `self_attn.in_proj_weight`; glassbox's
    /// own files start at `embedding.weight` and `layers.`. Anything else (GPT-2's files start
    /// with `transformer.` too) is refused by name.
    fn naming(&self) -> Result<Naming, CheckpointError> {
        let names = || self.tensors.keys();
        if names().any(|name| name.ends_with(".self_attn.in_proj_weight")) {
            return Ok(Naming::PyTorch);
        }
        let glassbox = names()
            .any(|name| name == "embedding.weight" || name.starts_with("layers."))
            && !names().any(|name| name.starts_with("transformer."));
        if glassbox {
            return Ok(Naming::Glassbox);
        }
        let mut examples: Vec<String> = names().take(3).map(|name| format!("`{name}`")).collect();
        if self.tensors.len() > 3 {
            examples.push("…".into());
        }
        Err(CheckpointError::UnknownLayout {
            examples: if examples.is_empty() {
                "none at all".into()
            } else {
                examples.join(", ")
            },
        })
    }
}

/// Checks the header length and the declared data extent against the file's size, so that a
/// truncated file is reported with the tensor and byte offset at fault.
fn check_framing(bytes: &[u8]) -> Result<(), CheckpointError> {
    if bytes.len() > MAX_CHECKPOINT_BYTES {
        return Err(CheckpointError::TooLarge {
            size_bytes: bytes.len(),
            max_bytes: MAX_CHECKPOINT_BYTES,
        });
    }
    let Some(length_field) = bytes.first_chunk::<8>() else {
        return Err(CheckpointError::TooShort {
            size_bytes: bytes.len(),
        });
    };
    let header_bytes = u64::from_le_bytes(*length_field);
    let available = bytes.len() - 8;
    if header_bytes > available as u64 {
        return Err(CheckpointError::HeaderPastEnd {
            header_bytes,
            available,
        });
    }
    let header_end = 8 + header_bytes as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_end]).map_err(|error| {
            CheckpointError::BadHeader {
                header_end,
                reason: error.to_string(),
            }
        })?;
    // The tensor whose data reaches furthest decides whether the file is complete.
    let furthest = header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(name, info)| {
            let end = info.get("data_offsets")?.get(1)?.as_u64()?;
            Some((name, end))
        })
        .max_by_key(|(_, end)| *end);
    if let Some((name, end)) = furthest {
        // Saturating: the offsets are the file's word, and may be anything up to u64::MAX.
        let end = (header_end as u64).saturating_add(end);
        if end > bytes.len() as u64 {
            return Err(CheckpointError::Truncated {
                tensor: name.clone(),
                end: usize::try_from(end).unwrap_or(usize::MAX),
                size_bytes: bytes.len(),
            });
        }
    }
    Ok(())
}

/// Turns the safetensors crate's error into one that says where the file is wrong.
fn explain(error: SafeTensorError, bytes: &[u8]) -> CheckpointError {
    let header_end = bytes
        .first_chunk::<8>()
        .map_or(0, |field| 8 + u64::from_le_bytes(*field) as usize);
    match error {
        SafeTensorError::InvalidOffset(tensor) => CheckpointError::BadOffsets { tensor },
        SafeTensorError::MetadataIncompleteBuffer => CheckpointError::BadLayout {
            reason: format!(
                "the file is {} bytes but its tensors end elsewhere; the last tensor must end at the end of the file",
                bytes.len()
            ),
        },
        SafeTensorError::TensorInvalidInfo | SafeTensorError::ValidationOverflow => {
            match tensor_of_wrong_size(bytes, header_end) {
                Some(tensor) => CheckpointError::BadOffsets { tensor },
                None => CheckpointError::BadHeader {
                    header_end,
                    reason: "a tensor's shape and dtype do not match its data offsets".into(),
                },
            }
        }
        other => CheckpointError::BadHeader {
            header_end,
            reason: other.to_string(),
        },
    }
}

/// The first tensor whose data offsets span other than the bytes its shape and dtype need:
/// safetensors only says that there is one.
fn tensor_of_wrong_size(bytes: &[u8], header_end: usize) -> Option<String> {
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..header_end)?).ok()?;
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .find_map(|(name, info)| {
            let dtype: Dtype = serde_json::from_value(info.get("dtype")?.clone()).ok()?;
            let shape: Vec<usize> = serde_json::from_value(info.get("shape")?.clone()).ok()?;
            let [start, end]: [usize; 2] =
                serde_json::from_value(info.get("data_offsets")?.clone()).ok()?;
            let bits = shape
                .iter()
                .try_fold(dtype.bitsize(), |bits, &size| bits.checked_mul(size));
            (bits.map(|bits| bits / 8) != end.checked_sub(start)).then_some(name)
        })
}

/// The safetensors dtype a header names (`F32`, `BF16`, …), for the floating-point ones.
pub(crate) fn dtype_named(name: &str) -> Option<Dtype> {
    Some(match name {
        "F32" => Dtype::F32,
        "F16" => Dtype::F16,
        "BF16" => Dtype::BF16,
        "F64" => Dtype::F64,
        _ => return None,
    })
}

pub(crate) fn to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, CheckpointError> {
    let values = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        other => {
            return Err(CheckpointError::NotFloat {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Ok(values)
}

/// PyTorch's name for a glassbox path (for messages about PyTorch files).
fn external_name(path: &str, naming: Naming) -> String {
    match naming {
        Naming::Glassbox => path.to_string(),
        Naming::PyTorch => pytorch_name(path),
    }
}

/// The `nn.TransformerEncoder` state-dict name a glassbox parameter comes from.
pub fn pytorch_name(path: &str) -> String {
    let Some(rest) = path.strip_prefix("layers.") else {
        return path.to_string();
    };
    let (index, leaf) = rest.split_once('.').unwrap_or((rest, ""));
    let mapped = match leaf {
        "attn.query.weight" | "attn.key.weight" | "attn.value.weight" => {
            "self_attn.in_proj_weight".to_string()
        }
        "attn.query.bias" | "attn.key.bias" | "attn.value.bias" => "self_attn.in_proj_bias".into(),
        "attn.output.weight" => "self_attn.out_proj.weight".into(),
        "attn.output.bias" => "self_attn.out_proj.bias".into(),
        "norm1.gamma" => "norm1.weight".into(),
        "norm1.beta" => "norm1.bias".into(),
        "norm2.gamma" => "norm2.weight".into(),
        "norm2.beta" => "norm2.bias".into(),
        other => other.strip_prefix("ff.").unwrap_or(other).to_string(),
    };
    format!("transformer.layers.{index}.{mapped}")
}

/// Maps PyTorch state-dict tensors onto glassbox paths and layouts.
fn from_pytorch(
    mut tensors: BTreeMap<String, ParameterData>,
    config: &TransformerConfig,
) -> Result<BTreeMap<String, ParameterData>, CheckpointError> {
    let d_model = config.d_model;
    let mut out = BTreeMap::new();
    let mut take = |name: &str, shape: &[usize]| -> Result<ParameterData, CheckpointError> {
        let Some(tensor) = tensors.remove(name) else {
            return Err(CheckpointError::Missing {
                tensor: name.to_string(),
                shape: shape.to_vec(),
            });
        };
        if tensor.shape != shape {
            return Err(CheckpointError::Shape {
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: tensor.shape,
            });
        }
        Ok(tensor)
    };
    let vocab = config.vocab_size;
    out.insert(
        "embedding.weight".into(),
        take("embedding.weight", &[vocab, d_model])?,
    );
    if config.positional == super::config::Positional::Learned {
        out.insert(
            "position_embedding.weight".into(),
            take("position_embedding.weight", &[config.max_seq_len, d_model])?,
        );
    }
    for layer in 0..config.num_layers {
        let torch = format!("transformer.layers.{layer}");
        let ours = format!("layers.{layer}");
        let in_proj = take(
            &format!("{torch}.self_attn.in_proj_weight"),
            &[3 * d_model, d_model],
        )?;
        let in_bias = take(&format!("{torch}.self_attn.in_proj_bias"), &[3 * d_model])?;
        for (part, name) in ["query", "key", "value"].into_iter().enumerate() {
            let rows = &in_proj.values[part * d_model * d_model..(part + 1) * d_model * d_model];
            out.insert(
                format!("{ours}.attn.{name}.weight"),
                transpose(rows, d_model, d_model),
            );
            out.insert(
                format!("{ours}.attn.{name}.bias"),
                ParameterData {
                    shape: vec![d_model],
                    values: in_bias.values[part * d_model..(part + 1) * d_model].to_vec(),
                },
            );
        }
        let linears = [
            ("self_attn.out_proj", "attn.output", d_model, d_model),
            ("linear1", "ff.linear1", d_model, config.d_ff),
            ("linear2", "ff.linear2", config.d_ff, d_model),
        ];
        for (torch_name, our_name, d_in, d_out) in linears {
            let weight = take(&format!("{torch}.{torch_name}.weight"), &[d_out, d_in])?;
            out.insert(
                format!("{ours}.{our_name}.weight"),
                transpose(&weight.values, d_out, d_in),
            );
            out.insert(
                format!("{ours}.{our_name}.bias"),
                take(&format!("{torch}.{torch_name}.bias"), &[d_out])?,
            );
        }
        let norms: &[&str] = if config.norm_position == NormPosition::None {
            &[]
        } else {
            &["norm1", "norm2"]
        };
        for norm in norms {
            out.insert(
                format!("{ours}.{norm}.gamma"),
                take(&format!("{torch}.{norm}.weight"), &[d_model])?,
            );
            out.insert(
                format!("{ours}.{norm}.beta"),
                take(&format!("{torch}.{norm}.bias"), &[d_model])?,
            );
        }
    }
    let weight = take("output.weight", &[vocab, d_model])?;
    out.insert(
        "output.weight".into(),
        transpose(&weight.values, vocab, d_model),
    );
    out.insert("output.bias".into(), take("output.bias", &[vocab])?);
    if let Some(extra) = tensors.keys().next() {
        return Err(CheckpointError::Unexpected {
            tensor: extra.clone(),
        });
    }
    Ok(out)
}

/// Transposes a row-major `[rows, cols]` matrix into `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> ParameterData {
    let mut out = vec![0.0; rows * cols];
    for (row, chunk) in values.chunks_exact(cols).enumerate() {
        for (col, value) in chunk.iter().enumerate() {
            out[col * rows + row] = *value;
        }
    }
    ParameterData {
        shape: vec![cols, rows],
        values: out,
    }
}

/// A safetensors view over owned little-endian `f32` bytes.
struct OwnedView {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for OwnedView {
    fn dtype(&self) -> Dtype {
        Dtype::F32
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

#[derive(Default)]
struct ShapeCollector {
    shapes: BTreeMap<String, Vec<usize>>,
}

impl ParameterVisitor for ShapeCollector {
    fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>) {
        self.shapes
            .insert(path, param.lazy_shape().dims::<D>().to_vec());
    }
}

/// Every parameter of a model flattened, with its path and shape.
#[derive(Default)]
pub struct FlatParameters {
    /// Path and shape of each parameter, in module order.
    pub paths: Vec<(String, Vec<usize>)>,
    /// The values, flattened so one transaction can hold tensors of every rank.
    pub tensors: Vec<Tensor<1>>,
}

impl FlatParameters {
    /// Collects the parameters of `model` (still on its device).
    pub fn of(model: &Transformer) -> Self {
        let mut collected = Self::default();
        visit_parameters(model, &mut collected);
        collected
    }
}

impl ParameterVisitor for FlatParameters {
    fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        self.paths.push((path, tensor.dims().to_vec()));
        self.tensors.push(tensor.flatten::<1>(0, D - 1));
    }
}

/// Replaces every parameter's value with the checkpoint's, keeping its id and training state.
struct Loader<'a> {
    path: Vec<String>,
    parameters: &'a BTreeMap<String, ParameterData>,
    device: Device,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // `Checkpoint::parse` checked every path and shape against this very config.
        let Some(data) = self.parameters.get(&self.path.join(".")) else {
            return param;
        };
        let values = TensorData::new(data.values.clone(), data.shape.clone());
        let device = self.device.clone();
        param.map(|_| Tensor::from_data(values, &device))
    }
}
