//! The model the page runs, on the device the browser offers, and one run of it on some text.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;

use crate::model::Tokenized;
use crate::model::checkpoint::{MAX_CHECKPOINT_BYTES, save_checkpoint};
use crate::model::hf::{self, open_folder_within};
use crate::model::{
    BackendChoice, BackendInfo, Checkpoint, Head, ModelError, Naming, Sidecars, TextTokenizer,
    Transformer, TransformerConfig, Vocabulary, WordTokenizer, cpu_instead_of, init_browser_device,
    run_on_device,
};
use crate::page::predictions::prediction_positions;
use crate::page::slices::{RunTrace, SliceKey, TraceSlices};
use crate::structure::slices::{TRACE_BUDGET_BYTES, tokens_within, trace_bytes};
use crate::train::{Batch, MASK_EVERY, Task, TaskKind, masked_lm_batch, next_token_batch};
use crate::worker::protocol::ExplorerWeights;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::web;
use super::web::files::PickedFile;
use crate::format::group_thousands;

/// Seed of the untrained `seed` preset's weights, named on the page.
pub const WEIGHT_SEED: u64 = 42;

/// A model that ships with the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippedModel {
    /// Id in the picker and in `?model=`.
    pub id: &'static str,
    /// Label in the picker.
    pub label: &'static str,
    /// Relative URL of its checkpoint; `None` for the seeded-random preset.
    pub url: Option<&'static str>,
}

/// The models in the picker; the first is the one the page opens on.
pub const SHIPPED_MODELS: [ShippedModel; 4] = [
    ShippedModel {
        id: "reverse",
        label: "Reverse digits (trained)",
        url: Some("models/reverse.safetensors"),
    },
    ShippedModel {
        id: "sort",
        label: "Sort digits (trained)",
        url: Some("models/sort.safetensors"),
    },
    ShippedModel {
        id: "language",
        label: "Next word, Moby-Dick (trained)",
        url: Some("models/language.safetensors"),
    },
    ShippedModel {
        id: "seed",
        label: "seed preset (random weights)",
        url: None,
    },
];

/// The shipped model called `id`.
pub fn shipped(id: &str) -> Option<ShippedModel> {
    SHIPPED_MODELS.into_iter().find(|model| model.id == id)
}

/// A model ready to run, with what the page says about it.
#[derive(Clone)]
pub struct LoadedModel {
    /// Picker id, or `file` for a model the user opened.
    pub id: String,
    /// The model's shape.
    pub config: TransformerConfig,
    /// The model itself, on the session's device.
    pub model: Transformer,
    /// Text to ids.
    pub tokenizer: TextTokenizer,
    /// Where the weights come from, in words.
    pub provenance: String,
    /// A good first input for this model, when it has one.
    pub probe_text: Option<String>,
    /// Metadata to keep when the model is saved again.
    pub metadata: BTreeMap<String, String>,
    /// Suggested file name when saving.
    pub file_name: String,
    /// The same weights for the model worker, which runs the explorer's texts; `None` for a
    /// model that runs on this thread (a HuggingFace folder, read a tensor at a time).
    pub worker_weights: Option<Arc<ExplorerWeights>>,
}

/// A text tokenized for a run: its tokens and the positions the predictions panel lists.
pub struct Prepared {
    /// The tokens that go in.
    pub tokens: Tokenized,
    /// The positions the predictions panel lists.
    pub positions: Vec<usize>,
}

pub use crate::page::explorer::RunResult;

/// Picks the device for `choice`: by default WebGPU on a real adapter, else the CPU.
pub async fn start_backend(choice: BackendChoice) -> BackendInfo {
    let adapter = web::webgpu_adapter().await;
    let mut backend = init_browser_device(cpu_instead_of(choice, adapter.as_ref())).await;
    // The browser names its adapter better than wgpu does ("google swiftshader").
    if backend.webgpu
        && let Some(adapter) = adapter
    {
        backend.label = format!("WebGPU ({})", adapter.description);
    }
    backend
}

impl LoadedModel {
    /// The batch "analyse one batch" runs on: 16 sequences of the model's task when it was trained
    /// on one, else the explorer's text with each word's successor as its target.
    pub fn analysis_batch(&self, text: &str, text_b: &str) -> Result<(Batch, String), String> {
        if let TextTokenizer::Hf(tokenizer) = &self.tokenizer {
            return hf_analysis_batch(&self.config, tokenizer, text, text_b);
        }
        if let Some(kind) = self
            .metadata
            .get("glassbox.task")
            .and_then(|name| TaskKind::from_name(name))
        {
            let task = Task::new(kind);
            if task.vocabulary().len() == self.config.vocab_size {
                let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(0), 16);
                return Ok((batch, format!("one batch of 16 {} sequences", kind.name())));
            }
        }
        let ids = self.tokenizer.tokenize(text).ids();
        if ids.len() < 2 {
            return Err("Type at least two words in the explorer: each word's successor is the target of the analysed batch.".into());
        }
        let count = ids.len();
        Ok((
            Batch::new(vec![ids[..count - 1].to_vec()], vec![ids[1..].to_vec()]),
            format!(
                "the explorer's text ({} tokens, each predicting the next)",
                count - 1
            ),
        ))
    }

    /// The `seed` preset with seeded random weights.
    pub fn seed_preset(backend: &BackendInfo) -> Result<Self, String> {
        let config = TransformerConfig::seed();
        let model = config
            .init_seeded(WEIGHT_SEED, &backend.device)
            .map_err(|error| error.to_string())?;
        let provenance = format!(
            "Model: the seed chapter's demo Transformer ({} layers, {} heads, d_model {}, {} parameters). \
             Its weights are random (seed {WEIGHT_SEED}) and untrained: the attention shows what an \
             untrained network does with your text, not learned language.",
            config.num_layers,
            config.num_heads,
            config.d_model,
            group_thousands(model.parameter_count()),
        );
        Ok(Self {
            id: "seed".into(),
            tokenizer: TextTokenizer::Word(WordTokenizer::new(
                Vocabulary::bundled(),
                config.max_seq_len,
            )),
            config: config.clone(),
            model,
            provenance,
            probe_text: Some("Call me Ishmael. I would sail about.".into()),
            metadata: BTreeMap::from([(
                "glassbox.source".into(),
                format!("seed preset, seed {WEIGHT_SEED}"),
            )]),
            file_name: "seed-random.safetensors".into(),
            worker_weights: Some(Arc::new(ExplorerWeights::Seeded {
                config,
                seed: WEIGHT_SEED,
            })),
        })
    }

    /// A model of the shape `config_json` describes (a glassbox `TransformerConfig`, every
    /// optional field defaulted) with seeded random weights and the bundled word vocabulary:
    /// `?config=…`, to look at what an untrained network of any shape does, up to 12 layers
    /// of 1,024 tokens.
    pub fn random_shape(config_json: &str, backend: &BackendInfo) -> Result<Self, String> {
        let config: TransformerConfig = serde_json::from_str(config_json)
            .map_err(|error| format!("the config in the address is not a model shape: {error}"))?;
        let vocabulary = Vocabulary::bundled();
        if config.vocab_size != vocabulary.len() {
            return Err(format!(
                "the config's vocab_size is {}, but a random model reads the bundled vocabulary of {} words",
                config.vocab_size,
                vocabulary.len()
            ));
        }
        config.validate()?;
        let model = config
            .init_seeded(WEIGHT_SEED, &backend.device)
            .map_err(|error| error.to_string())?;
        let provenance = format!(
            "Model: the shape from the address ({} layers, {} heads, d_model {}, up to {} tokens, {} parameters) with random weights (seed {WEIGHT_SEED}), untrained.",
            config.num_layers,
            config.num_heads,
            config.d_model,
            config.max_seq_len,
            group_thousands(model.parameter_count()),
        );
        Ok(Self {
            id: "seed".into(),
            tokenizer: TextTokenizer::Word(WordTokenizer::new(vocabulary, config.max_seq_len)),
            config: config.clone(),
            model,
            provenance,
            probe_text: None,
            metadata: BTreeMap::from([(
                "glassbox.source".into(),
                format!("random weights of a shape from the address, seed {WEIGHT_SEED}"),
            )]),
            file_name: "random-shape.safetensors".into(),
            worker_weights: Some(Arc::new(ExplorerWeights::Seeded {
                config,
                seed: WEIGHT_SEED,
            })),
        })
    }

    /// A shipped model: fetched from the page's own folder, or the seeded preset.
    pub async fn shipped(model: ShippedModel, backend: &BackendInfo) -> Result<Self, String> {
        let Some(url) = model.url else {
            return Self::seed_preset(backend);
        };
        let bytes = web::files::fetch_bytes(url).await?;
        let checkpoint = Checkpoint::parse(&bytes, Sidecars::default())
            .map_err(|error| format!("{url}: {error}"))?;
        let loaded = Self::from_checkpoint(
            model.id,
            &format!("{}.safetensors", model.id),
            &checkpoint,
            backend,
        )?;
        Ok(loaded.with_worker_weights(bytes, None, None))
    }

    /// Reads the files the user picked or dropped: one `.safetensors`, and optionally a config
    /// JSON and a vocabulary (`vocab.json`, `vocab.txt`) beside it.
    pub async fn open_files(
        files: &[PickedFile],
        backend: &BackendInfo,
        progress: impl FnMut(f64),
    ) -> Result<Self, String> {
        if is_hf_folder(files).await {
            return Self::open_folder(files, backend, progress).await;
        }
        let mut weights = None;
        let mut config_json = None;
        let mut vocabulary = None;
        for file in files {
            let name = file.name.to_lowercase();
            if name.ends_with(".safetensors") {
                if weights.is_some() {
                    return Err("open one .safetensors file at a time".into());
                }
                weights = Some(file);
            } else if name.contains("vocab") || name.ends_with(".txt") {
                vocabulary = Some(read_text(file).await?);
            } else if name.ends_with(".json") {
                config_json = Some(read_text(file).await?);
            } else {
                return Err(format!(
                    "{}: not a checkpoint (.safetensors), config (.json) or vocabulary (vocab.json, .txt)",
                    file.name
                ));
            }
        }
        let Some(weights) = weights else {
            return Err("no .safetensors file among the files opened".into());
        };
        // Checked before reading, so a huge file is refused without loading it.
        if weights.size_bytes > MAX_CHECKPOINT_BYTES as f64 {
            return Err(format!(
                "{}: the file is {} bytes, over the {}-byte limit for a checkpoint",
                weights.name, weights.size_bytes, MAX_CHECKPOINT_BYTES
            ));
        }
        let bytes = weights.read().await?;
        let checkpoint = Checkpoint::parse(
            &bytes,
            Sidecars {
                config_json: config_json.as_deref(),
                vocabulary: vocabulary.as_deref(),
            },
        )
        .map_err(|error| format!("{}: {error}", weights.name))?;
        let loaded = Self::from_checkpoint("file", &weights.name, &checkpoint, backend)?;
        Ok(loaded.with_worker_weights(bytes, config_json, vocabulary))
    }

    /// The model, with the checkpoint it came from for the model worker.
    pub fn with_worker_weights(
        self,
        bytes: Vec<u8>,
        config_json: Option<String>,
        vocabulary: Option<String>,
    ) -> Self {
        Self {
            worker_weights: Some(Arc::new(ExplorerWeights::Checkpoint {
                bytes,
                config_json,
                vocabulary,
            })),
            ..self
        }
    }

    fn from_checkpoint(
        id: &str,
        file_name: &str,
        checkpoint: &Checkpoint,
        backend: &BackendInfo,
    ) -> Result<Self, String> {
        let model = checkpoint
            .to_model(&backend.device)
            .map_err(|error| format!("{file_name}: {error}"))?;
        let config = checkpoint.config.clone();
        let task = checkpoint
            .meta("glassbox.task")
            .and_then(TaskKind::from_name);
        let shape = format!(
            "{} layers, {} heads, d_model {}, {} parameters{}",
            config.num_layers,
            config.num_heads,
            config.d_model,
            group_thousands(model.parameter_count()),
            if config.causal { ", causal" } else { "" }
        );
        let provenance = match (task, checkpoint.meta("glassbox.heldout_accuracy")) {
            (Some(task), Some(accuracy)) => format!(
                "Model: trained by glassbox-train on the {} task ({}) for {} steps: {} of held-out tokens right. {shape}.",
                task.name(),
                task.describe(),
                checkpoint.meta("glassbox.steps").unwrap_or("?"),
                percent(accuracy),
            ),
            _ => {
                let origin = match checkpoint.naming {
                    Naming::PyTorch => "a PyTorch checkpoint mapped onto glassbox",
                    Naming::Glassbox => "a glassbox checkpoint",
                };
                format!("Model: {file_name}, {origin}. {shape}.")
            }
        };
        let probe_text = task.map(|task| crate::train::Task::new(task).probe_text().to_string());
        Ok(Self {
            id: id.into(),
            tokenizer: TextTokenizer::Word(WordTokenizer::new(
                checkpoint.vocabulary.clone(),
                config.max_seq_len,
            )),
            config,
            model,
            provenance,
            probe_text,
            metadata: checkpoint.metadata.clone(),
            file_name: file_name.into(),
            worker_weights: None,
        })
    }

    /// The model as a glassbox checkpoint, with its metadata.
    pub async fn save(&self) -> Result<Vec<u8>, String> {
        let mut metadata = self.metadata.clone();
        // Rewritten from the model itself by the encoder.
        for key in ["format", "glassbox.config", "glassbox.vocabulary"] {
            metadata.remove(key);
        }
        let vocabulary = self.tokenizer.vocabulary().ok_or(
            "a HuggingFace model is kept in its own folder's files; glassbox does not rewrite it",
        )?;
        save_checkpoint(&self.model, &self.config, vocabulary, &metadata)
            .await
            .map_err(|error| error.to_string())
    }

    /// Tokenizes `text` for a run, refusing a run whose trace would not fit the device's
    /// budget; `Ok(None)` when there are no tokens.
    pub fn prepare(
        &self,
        text: &str,
        text_b: Option<&str>,
    ) -> Result<Option<Prepared>, ModelError> {
        // Sentence B only for a model that reads pairs (the box keeps its text for the next).
        let text_b = text_b.filter(|_| self.config.token_types > 0);
        let tokens = self.tokenizer.tokenize_pair(text, text_b);
        if tokens.tokens.is_empty() {
            return Ok(None);
        }
        // One trace lives on the device per model: past the budget the run is refused in
        // words before anything is allocated.
        let bytes = trace_bytes(&self.config, tokens.tokens.len());
        if bytes > TRACE_BUDGET_BYTES {
            return Err(ModelError::TraceTooLarge {
                tokens: tokens.tokens.len(),
                bytes,
                budget: TRACE_BUDGET_BYTES,
                fits: tokens_within(&self.config, TRACE_BUDGET_BYTES),
            });
        }
        let positions = self.prediction_positions(&tokens);
        Ok(Some(Prepared { tokens, positions }))
    }

    /// Tokenizes `text` and runs the model on it on this thread; `Ok(None)` when there are no
    /// tokens.
    pub async fn run(
        &self,
        text: &str,
        text_b: Option<&str>,
        backend: &BackendInfo,
    ) -> Result<Option<RunResult>, ModelError> {
        let Some(Prepared { tokens, positions }) = self.prepare(text, text_b)? else {
            return Ok(None);
        };
        let started_ms = web::now_ms();
        let types = [tokens.segments()];
        // A model too large for the WebGPU device's buffers was opened on the CPU: it runs
        // where its weights are.
        let device = self
            .model
            .devices()
            .into_iter()
            .next()
            .unwrap_or_else(|| backend.device.clone());
        let trace = run_on_device(&self.model, &[tokens.ids()], Some(&types), &device).await?;
        let result = RunResult {
            tokens,
            trace: TraceSlices::new(RunTrace::Device(trace), positions),
            forward_ms: 0.0,
        };
        // The heads' entropies are small and every run needs them (the opening choice, the
        // model view): reading them waits for the forward pass to finish on any device.
        result
            .trace
            .load(&[SliceKey::Summaries])
            .await
            .map_err(ModelError::ReadBack)?;
        Ok(Some(RunResult {
            forward_ms: web::now_ms() - started_ms,
            ..result
        }))
    }

    /// The positions the predictions panel lists for `tokens`: none for a model without a
    /// HuggingFace tokenizer (its panel is not shown).
    fn prediction_positions(&self, tokens: &Tokenized) -> Vec<usize> {
        let Some(tokenizer) = self.tokenizer.hf() else {
            return Vec::new();
        };
        let mask = tokenizer.mask().map(|(_, id)| id);
        prediction_positions(self.config.head, &tokens.tokens, mask)
            .map(|(positions, _)| positions)
            .unwrap_or_default()
    }
}

impl LoadedModel {
    /// Opens a HuggingFace model folder: config, weights (read a tensor at a time, straight to
    /// the device) and tokenizer; `progress` hears the fraction of the weights read.
    async fn open_folder(
        files: &[PickedFile],
        backend: &BackendInfo,
        mut progress: impl FnMut(f64),
    ) -> Result<Self, String> {
        let named = files
            .iter()
            .map(|file| (file.path.clone(), file.clone()))
            .collect();
        let (opened, fallback) = open_folder_within(
            named,
            &backend.device,
            backend.max_tensor_bytes,
            |done, total| progress(done as f64 / total.max(1) as f64),
        )
        .await
        .map_err(|error| error.to_string())?;
        let folder = files
            .iter()
            .find_map(|file| {
                file.path
                    .split_once('/')
                    .map(|(folder, _)| folder.to_string())
            })
            .unwrap_or_else(|| "model".into());
        let mut provenance = format!("Model: {}.", opened.describe());
        if let Some(fallback) = fallback {
            provenance.push_str(&format!(" On this device {fallback}."));
        }
        let unused: Vec<&str> = opened
            .plan
            .unused
            .iter()
            .filter(|(_, why)| *why != "buffer" && *why != "tied")
            .map(|(name, _)| name.as_str())
            .collect();
        if !unused.is_empty() {
            provenance.push_str(&format!(" Not used: {}.", unused.join(", ")));
        }
        provenance.push_str(&match opened.plan.config.config.head {
            Head::MaskedLm => format!(
                " Put {} in the text to see its top-5 predictions.",
                opened.tokenizer.mask().map_or("[MASK]", |(token, _)| token)
            ),
            Head::TiedEmbedding => " The top-5 next tokens are shown at each position.".into(),
            Head::None => {
                " It has no language-model head: no predictions, and no loss to differentiate."
                    .into()
            }
            Head::Linear => String::new(),
        });
        for assumption in &opened.tokenizer.assumptions {
            provenance.push_str(&format!(" Tokenizer: {assumption}."));
        }
        Ok(Self {
            id: "file".into(),
            config: opened.plan.config.config.clone(),
            model: opened.model,
            tokenizer: TextTokenizer::Hf(Box::new(opened.tokenizer)),
            provenance,
            probe_text: None,
            metadata: BTreeMap::new(),
            file_name: folder,
            worker_weights: None,
        })
    }
}

/// Whether `files` are a HuggingFace model's: a `config.json` that names a `model_type`. A
/// glassbox or PyTorch checkpoint's config sidecar may be called `config.json` too, and has none.
async fn is_hf_folder(files: &[PickedFile]) -> bool {
    if !hf::is_model_folder(files.iter().map(|file| file.path.as_str())) {
        return false;
    }
    let Some(config) = files
        .iter()
        .filter(|file| hf::base_name(&file.path) == "config.json")
        .min_by_key(|file| file.path.matches('/').count())
    else {
        return false;
    };
    if config.size_bytes > 16.0 * 1024.0 * 1024.0 {
        return true;
    }
    let Ok(text) = read_text(config).await else {
        return true;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|value| value.get("model_type").is_some())
        .unwrap_or(true)
}

/// "Analyse one batch" for a HuggingFace model: the masked-LM loss at every
/// [`MASK_EVERY`]-th token of the text (BERT), or the next-token loss (GPT-2).
fn hf_analysis_batch(
    config: &TransformerConfig,
    tokenizer: &crate::model::hf_tokenizer::HfTokenizer,
    text: &str,
    text_b: &str,
) -> Result<(Batch, String), String> {
    let pair = Some(text_b).filter(|b| !b.trim().is_empty() && config.token_types > 0);
    let tokens = tokenizer.tokenize(text, pair);
    match config.head {
        Head::MaskedLm => {
            let (_, mask) = tokenizer.mask().ok_or("the tokenizer has no mask token")?;
            let (batch, masked) = masked_lm_batch(&tokens, mask).ok_or_else(|| {
                format!("Type at least {MASK_EVERY} words: every {MASK_EVERY}th token is masked and predicted in the analysed batch.")
            })?;
            Ok((
                batch,
                format!(
                    "the explorer's text ({} tokens) with {} of them masked (every {MASK_EVERY}th), the masked-LM loss",
                    tokens.tokens.len(),
                    masked.len()
                ),
            ))
        }
        // No head, no loss: the batch's activations only (`analyse_activations`).
        Head::None => {
            let ids = tokens.ids();
            if ids.is_empty() {
                return Err("Type some text in the explorer: its activations are analysed.".into());
            }
            let batch = Batch {
                inputs: vec![ids.clone()],
                targets: vec![ids],
                types: Some(vec![tokens.segments()]),
                counted: None,
            };
            Ok((
                batch,
                format!(
                    "the explorer's text ({} tokens); this model has no language-model head (a sentence encoder such as MiniLM), so there is no loss and no gradient, only activations",
                    tokens.tokens.len()
                ),
            ))
        }
        _ => {
            let batch = next_token_batch(&tokens)
                .ok_or("Type at least two tokens: each token's successor is its target.")?;
            Ok((
                batch,
                format!(
                    "the explorer's text ({} tokens, each predicting the next)",
                    tokens.tokens.len() - 1
                ),
            ))
        }
    }
}

async fn read_text(file: &PickedFile) -> Result<String, String> {
    let bytes = file.read().await?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", file.name))
}

/// `"0.9950"` → `"99.5%"`.
fn percent(fraction: &str) -> String {
    fraction.parse::<f64>().map_or_else(
        |_| fraction.to_string(),
        |value| format!("{:.1}%", 100.0 * value),
    )
}
