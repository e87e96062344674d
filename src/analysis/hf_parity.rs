//! glassbox against HuggingFace `transformers` for the model folders of
//! `tests/fixtures/hf/` (made by `scripts/hf_fixtures.py`): attention, hidden states, logits,
//! token ids, and the loss and gradients of "analyse one batch". The native tests and the
//! page's `?parity=` check run these same comparisons.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::gradients::ParameterGradient;
use super::parity::{
    ATTENTION_TOLERANCE, Difference, ExpectedGradient, ExpectedTensor, OUTPUT_TOLERANCE,
    ParityError, Reference, check_shape,
};
use super::stats::Summary;
use crate::structure::layout::source_of;
use crate::structure::{Layout, Role, Site, Trace};

/// One text of the tokenizer table and HuggingFace's ids for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TableRow {
    /// The text.
    pub text: String,
    /// `tokenizer(text)["input_ids"]`, special tokens included.
    pub ids: Vec<u32>,
}

/// The reference batch of "analyse one batch".
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HfAnalysis {
    /// Input ids (masked for a masked-LM).
    pub input_ids: Vec<u32>,
    /// Token types, for BERT.
    #[serde(default)]
    pub token_type_ids: Option<Vec<u32>>,
    /// Labels for a masked-LM (-100 where not counted); absent for next-token.
    #[serde(default)]
    pub labels: Option<Vec<i64>>,
    /// Masked positions.
    #[serde(default)]
    pub masked_positions: Option<Vec<usize>>,
    /// HuggingFace's loss.
    pub loss: f64,
    /// Gradient statistics by HuggingFace parameter name.
    pub gradients: BTreeMap<String, ExpectedGradient>,
}

/// What `<name>.expected.json` holds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HfExpected {
    /// `bert` or `gpt2`.
    pub model_type: String,
    /// Sentence A.
    pub text: String,
    /// Sentence B.
    #[serde(default)]
    pub text_b: Option<String>,
    /// Token ids of the text.
    pub ids: Vec<u32>,
    /// Token types of the text, for BERT.
    #[serde(default)]
    pub token_type_ids: Option<Vec<u32>>,
    /// HuggingFace's `num_parameters()`.
    pub num_parameters: u64,
    /// `torch.utils.flop_counter.FlopCounterMode`'s total for the forward of the text.
    #[serde(default)]
    pub flops: Option<u64>,
    /// Whether HuggingFace's last hidden state is after the final LayerNorm (GPT-2's is).
    pub hidden_last_after_final_norm: bool,
    /// Top-5 token ids by position (every position for GPT-2, the masks for BERT).
    pub top5: BTreeMap<String, Vec<u32>>,
    /// Texts and their ids.
    pub tokenizer_table: Vec<TableRow>,
    /// The reference batch, for a model with a head.
    #[serde(default)]
    pub analysis: Option<HfAnalysis>,
}

/// A HuggingFace fixture: its tensors and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct HfReference {
    /// Expected tensors (`attention.{l}`, `hidden.{l}`, `logits`, `input_ids`, …).
    pub tensors: BTreeMap<String, ExpectedTensor>,
    /// Everything else.
    pub expected: HfExpected,
}

impl HfReference {
    /// Reads `<name>.expected.safetensors` and `<name>.expected.json`.
    pub fn parse(tensors: &[u8], json: &str) -> Result<Self, ParityError> {
        // The tensor reader of the glassbox fixtures; its loss and gradients are not used.
        let empty = r#"{"loss": 0, "gradients": {}}"#;
        let tensors = Reference::parse(tensors, empty)?.tensors;
        let expected =
            serde_json::from_str(json).map_err(|error| ParityError::Fixture(error.to_string()))?;
        Ok(Self { tensors, expected })
    }

    fn tensor(&self, name: &str) -> Result<&ExpectedTensor, ParityError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ParityError::Missing(name.to_string()))
    }
}

/// The forward pass against HuggingFace's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HfForwardParity {
    /// Every layer's attention.
    pub attention: Difference,
    /// Every hidden state (`output_hidden_states`).
    pub hidden: Difference,
    /// The logits, where the model has a head.
    pub logits: Difference,
}

impl HfForwardParity {
    /// Whether everything is within tolerance.
    pub fn within_tolerance(&self) -> bool {
        self.attention.within_tolerance()
            && self.hidden.within_tolerance()
            && self.logits.within_tolerance()
    }
}

/// Compares a traced run (`trace`, its `logits`, empty without a head) with the reference.
///
/// Hidden state 0 is the embeddings' output (after BERT's embedding LayerNorm), state `l` the
/// output of layer `l - 1`, and GPT-2's last one is after `ln_f`, as HuggingFace returns them.
pub fn compare_hf_forward(
    reference: &HfReference,
    trace: &Trace,
    logits: &[f32],
) -> Result<HfForwardParity, ParityError> {
    let mut attention = Difference::new(ATTENTION_TOLERANCE);
    for capture in &trace.attention {
        let name = format!("attention.{}", capture.layer);
        let expected = reference.tensor(&name)?;
        let shape = vec![capture.batch, capture.heads, capture.queries, capture.keys];
        check_shape(&name, &expected.shape, &shape)?;
        attention.absolute(&name, &capture.values, &expected.values);
    }
    let layers = trace.attention.len();
    if reference
        .tensors
        .contains_key(&format!("attention.{layers}"))
        || layers == 0
    {
        return Err(ParityError::Coverage(format!(
            "glassbox captured attention in {layers} layers, fewer than the reference"
        )));
    }
    let mut hidden = Difference::new(OUTPUT_TOLERANCE);
    for index in 0..=layers {
        let site = if index == 0 {
            [Role::EmbeddingNorm, Role::Positional]
                .into_iter()
                .map(Site::global)
                .find(|site| trace.at(*site).is_some())
        } else if index == layers && reference.expected.hidden_last_after_final_norm {
            Some(Site::global(Role::FinalNorm))
        } else {
            Some(Site::layer(Role::BlockOutput, index - 1))
        };
        let name = format!("hidden.{index}");
        let capture = site
            .and_then(|site| trace.at(site))
            .ok_or_else(|| ParityError::Coverage(format!("glassbox captured no {name}")))?;
        let expected = reference.tensor(&name)?;
        check_shape(&name, &expected.shape, &capture.shape)?;
        hidden.absolute(&capture.path, &capture.values, &expected.values);
    }
    let mut logit_difference = Difference::new(OUTPUT_TOLERANCE);
    if let Some(expected) = reference.tensors.get("logits") {
        check_shape("logits", &[expected.values.len()], &[logits.len()])?;
        logit_difference.absolute("logits", logits, &expected.values);
    } else if !logits.is_empty() {
        return Err(ParityError::Coverage(
            "glassbox made logits the reference has not".into(),
        ));
    }
    Ok(HfForwardParity {
        attention,
        hidden,
        logits: logit_difference,
    })
}

/// Statistics of several tensors taken as one (GPT-2's q, k and v are one `c_attn`):
/// counts and sums add, the sample variance comes from the sum of squares (`norm²`).
pub fn combine(parts: &[Summary]) -> Option<Summary> {
    if let [one] = parts {
        return Some(*one);
    }
    let count: usize = parts.iter().map(|part| part.count).sum();
    if count == 0 {
        return None;
    }
    let sum: f64 = parts.iter().map(|part| part.mean * part.count as f64).sum();
    let squares: f64 = parts.iter().map(|part| part.norm * part.norm).sum();
    let mean = sum / count as f64;
    let variance = if count > 1 {
        ((squares - count as f64 * mean * mean) / (count as f64 - 1.0)).max(0.0)
    } else {
        0.0
    };
    Some(Summary {
        count,
        mean,
        std: variance.sqrt(),
        min: parts
            .iter()
            .map(|part| part.min)
            .fold(f64::INFINITY, f64::min),
        max: parts
            .iter()
            .map(|part| part.max)
            .fold(f64::NEG_INFINITY, f64::max),
        norm: squares.sqrt(),
    })
}

/// glassbox's per-parameter gradients renamed to the checkpoint's names (`layout`), the
/// parameters one checkpoint tensor was split into combined again, so that they compare with
/// HuggingFace's `named_parameters()` one to one.
pub fn gradients_by_checkpoint_name(
    gradients: &[ParameterGradient],
    layout: Layout,
    names: &BTreeMap<String, ExpectedGradient>,
) -> Vec<ParameterGradient> {
    let mut grouped: BTreeMap<String, Vec<&ParameterGradient>> = BTreeMap::new();
    for parameter in gradients {
        let name = source_of(layout, &parameter.path)
            .and_then(|source| {
                let first = source.names.first().cloned();
                source
                    .names
                    .into_iter()
                    .find(|name| names.contains_key(name))
                    .or(first)
            })
            .unwrap_or_else(|| parameter.path.clone());
        grouped.entry(name).or_default().push(parameter);
    }
    grouped
        .into_iter()
        .filter_map(|(name, parts)| {
            let summaries: Vec<Summary> = parts.iter().map(|part| part.gradient).collect();
            let weight_norm = parts
                .iter()
                .map(|part| part.weight_norm * part.weight_norm)
                .sum::<f64>()
                .sqrt();
            Some(ParameterGradient {
                path: name,
                shape: vec![summaries.iter().map(|summary| summary.count).sum()],
                gradient: combine(&summaries)?,
                weight_norm,
            })
        })
        .collect()
}

/// The reference batch as a glassbox [`Reference`] for `compare_gradients`.
pub fn gradient_reference(analysis: &HfAnalysis) -> Reference {
    Reference {
        tensors: BTreeMap::new(),
        loss: analysis.loss,
        gradients: analysis.gradients.clone(),
    }
}
