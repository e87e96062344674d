//! The model the page runs, on the device the browser offers, and one run of it on some text.

use crate::model::{
    BackendInfo, ModelError, Tokenized, Trace, Transformer, TransformerConfig, Vocabulary,
    WordTokenizer, init_browser_device, run_traced,
};

use super::web;

/// Seed of the untrained `seed` preset's weights, named on the page.
pub const WEIGHT_SEED: u64 = 42;

/// A loaded model on its device.
#[derive(Clone)]
pub struct Session {
    /// The device and its description.
    pub backend: BackendInfo,
    /// The model's shape.
    pub config: TransformerConfig,
    /// The model itself.
    pub model: Transformer,
    /// Text to ids.
    pub tokenizer: WordTokenizer,
    /// What the page says about where the weights come from.
    pub provenance: String,
}

/// Everything one run produced, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The tokens that went in (and how many were cut).
    pub tokens: Tokenized,
    /// What the model captured.
    pub trace: Trace,
    /// Forward pass plus read-back, in milliseconds.
    pub forward_ms: f64,
}

impl Session {
    /// Picks the device (WebGPU, else CPU) and builds the `seed` preset with seeded weights.
    pub async fn start(force_cpu: bool) -> Result<Self, ModelError> {
        let mut backend = init_browser_device(force_cpu).await;
        // The browser names its adapter better than wgpu does ("google swiftshader").
        if backend.webgpu
            && let Some(adapter) = web::webgpu_adapter_description().await
        {
            backend.label = format!("WebGPU ({adapter})");
        }
        let config = TransformerConfig::seed();
        let model = config.init_seeded(WEIGHT_SEED, &backend.device)?;
        let tokenizer = WordTokenizer::new(Vocabulary::bundled(), config.max_seq_len);
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
            backend,
            config,
            model,
            tokenizer,
            provenance,
        })
    }

    /// Tokenizes `text` and runs the model on it; `Ok(None)` when there are no tokens.
    pub async fn run(&self, text: &str) -> Result<Option<RunResult>, ModelError> {
        let tokens = self.tokenizer.tokenize(text);
        if tokens.tokens.is_empty() {
            return Ok(None);
        }
        let started_ms = web::now_ms();
        let trace = run_traced(&self.model, &[tokens.ids()], &self.backend.device).await?;
        let forward_ms = web::now_ms() - started_ms;
        Ok(Some(RunResult {
            tokens,
            trace,
            forward_ms,
        }))
    }
}

/// `3672040` → `3,672,040`.
pub fn group_thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
