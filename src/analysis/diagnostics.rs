//! Model diagnostics computed from shapes alone: FLOPs of one forward pass, how attention's cost
//! grows against the linear layers' with sequence length, the memory of a training step
//! (parameters, gradients and optimizer state of the trainable ones, and the activations kept
//! for the backward pass), and statistics of the parameters themselves.
//!
//! # FLOP convention
//!
//! A multiply-add counts 2 FLOPs, as `torch.utils.flop_counter` counts them, so the matrix
//! products ([`OpClass::is_matmul`]) add up to exactly what PyTorch's counter reports for the same
//! model (checked against the parity fixtures). Everything else is counted with the per-element
//! costs below, which torch's counter does not count at all:
//!
//! | class | cost |
//! |---|---|
//! | [`OpClass::Linear`] | `2 · tokens · in · out` per linear (tokens = batch · seq) |
//! | [`OpClass::QueryKey`] | `2 · batch · heads · seq · seq · d_head` |
//! | [`OpClass::AttentionValue`] | `2 · batch · heads · seq · seq · d_head` |
//! | [`OpClass::Softmax`] | [`SOFTMAX_FLOPS`] = 5 per score: scale by 1/√d_head, subtract the row maximum, exp, row sum, divide |
//! | [`OpClass::LayerNorm`] | [`LAYER_NORM_FLOPS`] = 8 per element: mean, centre, square, variance, ε and √ (one per element), divide, ×γ, +β |
//! | [`OpClass::Activation`] | ReLU [`RELU_FLOPS`] = 1, GELU [`GELU_FLOPS`] = 8 (x·½·(1 + erf(x/√2)), erf as 4), sigmoid [`SIGMOID_FLOPS`] = 4 (negate, exp, +1, reciprocal) per hidden unit |
//! | [`OpClass::Embedding`] | 0 for the table lookup; 1 per element (`d_model` per token) to add learned or sinusoidal positions |
//! | [`OpClass::Add`] | 1 per output element of each linear's bias, and 1 per element of each residual sum (two per layer when residual connections are on) |
//!
//! Causal models count the full `seq²` score matrix, like torch: burn computes every score and
//! masks afterwards. The mask itself (a select) and dropout (off in the traced forward) are not
//! counted.

use std::collections::BTreeMap;

use super::Summary;
use super::activations::{HISTOGRAM_BINS, Histogram};
use crate::structure::{Activation, Head, NormPosition, Positional, Trace, TransformerConfig};

/// The FLOP convention in one sentence, for the page to show beside the numbers.
pub const FLOP_CONVENTION: &str = "a multiply-add counts 2 FLOPs, as torch.utils.flop_counter; \
bias additions, softmax, LayerNorm, activations and embedding lookups are counted with the \
per-element costs below, which torch's counter does not count";

/// FLOPs per attention score for the softmax: scale, subtract the maximum, exp, sum, divide.
pub const SOFTMAX_FLOPS: u64 = 5;
/// FLOPs per element of a LayerNorm.
pub const LAYER_NORM_FLOPS: u64 = 8;
/// FLOPs per hidden unit of a ReLU.
pub const RELU_FLOPS: u64 = 1;
/// FLOPs per hidden unit of an exact (erf) GELU.
pub const GELU_FLOPS: u64 = 8;
/// FLOPs per hidden unit of a sigmoid.
pub const SIGMOID_FLOPS: u64 = 4;
/// FLOPs per element to add a bias, a residual or a position.
pub const ADD_FLOPS: u64 = 1;

/// Bytes of one `f32`, the element type of every captured tensor.
const F32_BYTES: u64 = 4;

/// Weights with a magnitude below this count as zero in [`TensorStats::sparsity`].
pub const SPARSITY_THRESHOLD: f32 = 1e-6;

/// What kind of work a FLOP count is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumIter, strum::IntoStaticStr,
)]
pub enum OpClass {
    /// The matrix products of every linear layer (query, key, value, output, feed-forward and
    /// the vocabulary head), without their bias.
    #[strum(serialize = "linear (matmul)")]
    Linear,
    /// Scores `Q·Kᵀ`.
    #[strum(serialize = "QKᵀ")]
    QueryKey,
    /// Attention weights times values, `softmax(·)·V`.
    #[strum(serialize = "attention · V")]
    AttentionValue,
    /// The softmax over the scores, scaling by 1/√d_head included.
    #[strum(serialize = "softmax")]
    Softmax,
    /// LayerNorm.
    #[strum(serialize = "LayerNorm")]
    LayerNorm,
    /// The feed-forward non-linearity.
    #[strum(serialize = "activation")]
    Activation,
    /// Token embedding lookup and the addition of positions.
    #[strum(serialize = "embedding + positions")]
    Embedding,
    /// Bias additions of every linear and the residual sums.
    #[strum(serialize = "bias & residual adds")]
    Add,
}

impl OpClass {
    /// Every class, in display order.
    pub fn all() -> impl Iterator<Item = OpClass> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    /// A short name for tables and legends.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether this is a matrix product, the part `torch.utils.flop_counter` counts.
    pub fn is_matmul(self) -> bool {
        matches!(
            self,
            OpClass::Linear | OpClass::QueryKey | OpClass::AttentionValue
        )
    }
}

/// FLOPs of one forward pass, by class, per encoder layer and outside the layers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlopCount {
    /// Per encoder layer, in order.
    pub layers: Vec<BTreeMap<OpClass, u64>>,
    /// Outside the layers: embedding, positions and the output head.
    pub outside: BTreeMap<OpClass, u64>,
}

impl FlopCount {
    /// Totals per class over the whole forward pass.
    pub fn by_class(&self) -> BTreeMap<OpClass, u64> {
        let mut totals = BTreeMap::new();
        for part in self.layers.iter().chain(std::iter::once(&self.outside)) {
            for (&class, &flops) in part {
                *totals.entry(class).or_insert(0) += flops;
            }
        }
        totals
    }

    /// The total of one class over the whole forward pass.
    pub fn class_total(&self, class: OpClass) -> u64 {
        self.by_class().get(&class).copied().unwrap_or(0)
    }

    /// All FLOPs of layer `index` (0 when there is no such layer).
    pub fn per_layer_total(&self, index: usize) -> u64 {
        self.layers
            .get(index)
            .map_or(0, |layer| layer.values().sum())
    }

    /// The matrix-product FLOPs of layer `index`: what torch counts for that layer.
    pub fn per_layer_matmul(&self, index: usize) -> u64 {
        self.layers.get(index).map_or(0, |layer| {
            layer
                .iter()
                .filter(|(class, _)| class.is_matmul())
                .map(|(_, flops)| flops)
                .sum()
        })
    }

    /// All FLOPs of the forward pass.
    pub fn total(&self) -> u64 {
        self.by_class().values().sum()
    }

    /// The matrix-product FLOPs of the forward pass: equal to `torch.utils.flop_counter`'s total.
    pub fn matmul_total(&self) -> u64 {
        self.by_class()
            .iter()
            .filter(|(class, _)| class.is_matmul())
            .map(|(_, flops)| flops)
            .sum()
    }
}

/// FLOPs per hidden unit of `activation`.
pub fn activation_flops(activation: Activation) -> u64 {
    match activation {
        Activation::Relu => RELU_FLOPS,
        Activation::Gelu | Activation::GeluNew => GELU_FLOPS,
        Activation::Sigmoid => SIGMOID_FLOPS,
    }
}

/// Sizes of a config as `u64`, for counting without overflow.
struct Sizes {
    d: u64,
    heads: u64,
    d_head: u64,
    d_ff: u64,
    vocab: u64,
}

impl Sizes {
    fn of(config: &TransformerConfig) -> Self {
        let heads = config.num_heads as u64;
        let d = config.d_model as u64;
        Self {
            d,
            heads,
            d_head: d.checked_div(heads).unwrap_or(0),
            d_ff: config.d_ff as u64,
            vocab: config.vocab_size as u64,
        }
    }
}

/// Adds `flops` to `class` in `map`.
fn add(map: &mut BTreeMap<OpClass, u64>, class: OpClass, flops: u64) {
    *map.entry(class).or_insert(0) += flops;
}

/// FLOPs of one forward pass of `config` on `batch` sequences of `seq` tokens, under the
/// convention of this module (see [`FLOP_CONVENTION`]).
pub fn forward_flops(config: &TransformerConfig, batch: usize, seq: usize) -> FlopCount {
    let Sizes {
        d,
        heads,
        d_head,
        d_ff,
        vocab,
    } = Sizes::of(config);
    let (batch, seq) = (batch as u64, seq as u64);
    let tokens = batch * seq;
    let scores = batch * heads * seq * seq;

    let mut layer = BTreeMap::new();
    // Query, key, value and output projections, then the two feed-forward linears.
    add(
        &mut layer,
        OpClass::Linear,
        4 * 2 * tokens * d * d + 2 * (2 * tokens * d * d_ff),
    );
    add(&mut layer, OpClass::QueryKey, 2 * scores * d_head);
    add(&mut layer, OpClass::AttentionValue, 2 * scores * d_head);
    add(&mut layer, OpClass::Softmax, SOFTMAX_FLOPS * scores);
    let norms = if config.norm_position == NormPosition::None {
        0
    } else {
        2
    };
    add(
        &mut layer,
        OpClass::LayerNorm,
        norms * LAYER_NORM_FLOPS * tokens * d,
    );
    add(
        &mut layer,
        OpClass::Activation,
        activation_flops(config.activation) * tokens * d_ff,
    );
    let biases = tokens * (4 * d + d_ff + d);
    let residuals = if config.residual { 2 * tokens * d } else { 0 };
    add(&mut layer, OpClass::Add, ADD_FLOPS * (biases + residuals));

    let mut outside = BTreeMap::new();
    let positions = if config.positional == Positional::None {
        0
    } else {
        ADD_FLOPS * tokens * d
    };
    let token_types = if config.token_types > 0 {
        ADD_FLOPS * tokens * d
    } else {
        0
    };
    add(&mut outside, OpClass::Embedding, positions + token_types);
    let outer_norms = u64::from(config.embedding_norm) + u64::from(config.final_norm);
    add(
        &mut outside,
        OpClass::LayerNorm,
        outer_norms * LAYER_NORM_FLOPS * tokens * d,
    );
    match config.head {
        Head::Linear | Head::TiedEmbedding => {
            add(&mut outside, OpClass::Linear, 2 * tokens * d * vocab);
        }
        Head::MaskedLm => {
            // The transform (dense, activation, LayerNorm), then the tied decoder.
            add(
                &mut outside,
                OpClass::Linear,
                2 * tokens * d * d + 2 * tokens * d * vocab,
            );
            add(&mut outside, OpClass::Add, ADD_FLOPS * tokens * d);
            add(
                &mut outside,
                OpClass::Activation,
                activation_flops(config.activation) * tokens * d,
            );
            add(
                &mut outside,
                OpClass::LayerNorm,
                LAYER_NORM_FLOPS * tokens * d,
            );
        }
        Head::None => {}
    }
    if matches!(config.head, Head::Linear | Head::MaskedLm) {
        add(&mut outside, OpClass::Add, ADD_FLOPS * tokens * vocab);
    }

    FlopCount {
        layers: vec![layer; config.num_layers],
        outside,
    }
}

/// The attention and linear-layer FLOPs of one forward pass at one sequence length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthFlops {
    /// Tokens per sequence.
    pub seq: usize,
    /// `Q·Kᵀ`, softmax and `·V` over all layers: grows with `seq²`.
    pub attention: u64,
    /// The matrix products of every linear layer, the vocabulary head included (biases not):
    /// grows with `seq`.
    pub linear: u64,
}

/// Attention and linear FLOPs of `count`.
fn split(count: &FlopCount, seq: usize) -> LengthFlops {
    let classes = count.by_class();
    let of = |class| classes.get(&class).copied().unwrap_or(0);
    LengthFlops {
        seq,
        attention: of(OpClass::QueryKey) + of(OpClass::AttentionValue) + of(OpClass::Softmax),
        linear: of(OpClass::Linear),
    }
}

/// Attention against linear FLOPs for every sequence length `1..=max_seq`.
pub fn flops_over_lengths(
    config: &TransformerConfig,
    batch: usize,
    max_seq: usize,
) -> Vec<LengthFlops> {
    (1..=max_seq)
        .map(|seq| split(&forward_flops(config, batch, seq), seq))
        .collect()
}

/// The first sequence length at which attention (`QKᵀ`, softmax, `·V`) costs more FLOPs than
/// all linear layers together; it may lie beyond `max_seq_len`. `None` for an empty batch or a
/// model without layers, where attention never costs anything.
///
/// Per token, the linear layers cost a constant `L·(8·d² + 4·d·d_ff) + 2·d·vocab` and attention
/// `L·seq·(4·d_head·heads + 5·heads)`, so attention is larger exactly from
/// `seq = ⌊linear / (L·(4·d_head·heads + 5·heads))⌋ + 1` on, whatever the batch.
pub fn attention_overtakes(config: &TransformerConfig, batch: usize) -> Option<usize> {
    let Sizes {
        d,
        heads,
        d_head,
        d_ff,
        vocab,
    } = Sizes::of(config);
    let layers = config.num_layers as u64;
    let per_seq = layers * (4 * heads * d_head + SOFTMAX_FLOPS * heads);
    if batch == 0 || per_seq == 0 {
        return None;
    }
    let head = match config.head {
        Head::Linear | Head::TiedEmbedding => 2 * d * vocab,
        Head::MaskedLm => 2 * d * d + 2 * d * vocab,
        Head::None => 0,
    };
    let linear_per_token = layers * (8 * d * d + 4 * d * d_ff) + head;
    usize::try_from(linear_per_token / per_seq + 1).ok()
}

/// Optimizers by the state they keep per parameter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumIter, strum::IntoStaticStr,
)]
pub enum OptimizerState {
    /// Plain SGD: no state.
    #[strum(serialize = "SGD")]
    Sgd,
    /// SGD with momentum: one velocity per parameter.
    #[strum(serialize = "SGD + momentum")]
    SgdMomentum,
    /// Adam: first and second moments.
    #[strum(serialize = "Adam")]
    Adam,
    /// AdamW: first and second moments (the decay needs no state).
    #[strum(serialize = "AdamW")]
    AdamW,
}

impl OptimizerState {
    /// Every optimizer, in display order.
    pub fn all() -> impl Iterator<Item = OptimizerState> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    /// Values kept per parameter.
    pub fn slots(self) -> u64 {
        match self {
            OptimizerState::Sgd => 0,
            OptimizerState::SgdMomentum => 1,
            OptimizerState::Adam | OptimizerState::AdamW => 2,
        }
    }

    /// A name for tables.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where the tensors a training step keeps for its backward pass come from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumIter, strum::IntoStaticStr,
)]
pub enum SavedPart {
    /// Per layer: the attention input, copies of Q, K and V laid out per head, the softmax
    /// output `[batch, heads, seq, seq]` and the context before the output projection.
    #[strum(serialize = "attention (inputs, Q K V, softmax weights, context)")]
    Attention,
    /// Per LayerNorm: its input and each token's mean and 1/σ.
    #[strum(serialize = "LayerNorm (input, mean, 1/σ)")]
    LayerNorm,
    /// Per layer: the feed-forward input, the non-linearity's saved input or output and the
    /// second linear's input.
    #[strum(serialize = "feed-forward (inputs, activation)")]
    FeedForward,
    /// The dropout masks (one `f32` per element, as PyTorch's and burn's CPU dropout keep them),
    /// only when the config's dropout is above 0.
    #[strum(serialize = "dropout masks")]
    Dropout,
    /// The vocabulary head's input and the log-softmax of the loss, `[batch, seq, vocab]`.
    #[strum(serialize = "output head and loss (log-softmax)")]
    Head,
    /// The causal mask, `[batch, seq, seq]` booleans of one byte, shared by every layer.
    #[strum(serialize = "causal mask (1 byte per entry)")]
    CausalMask,
}

impl SavedPart {
    /// Every part, in display order.
    pub fn all() -> impl Iterator<Item = SavedPart> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    /// A name for tables.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The activations one training step keeps for its backward pass, by part, in bytes.
///
/// Computed from shapes by the rule each op's gradient needs (PyTorch autograd's rules, which
/// `tests/diagnostics.rs` checks against what `torch.autograd.graph.saved_tensors_hooks`
/// sees for the same forward, `tests/fixtures/autograd_saved.json`): a linear keeps its input,
/// a matrix product both operands, softmax and ReLU or sigmoid their output, GELU its input,
/// LayerNorm its input, mean and 1/σ, dropout its mask, the loss its log-softmax, and a masked
/// fill its mask. A tensor kept by two ops counts once. Parameters (counted as parameters) and
/// the token ids are left out. Every tensor is trainable here; freezing a module only lowers it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SavedForBackward {
    /// Sequences in the step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Bytes per part, every part present (zero where the config has none).
    pub parts: Vec<(SavedPart, u64)>,
}

impl SavedForBackward {
    /// The bytes of `part`.
    pub fn part(&self, part: SavedPart) -> u64 {
        self.parts
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(0, |(_, bytes)| *bytes)
    }

    /// All bytes kept.
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|(_, bytes)| bytes).sum()
    }

    /// The bytes of floating-point tensors: everything but the causal mask.
    pub fn float_bytes(&self) -> u64 {
        self.total() - self.part(SavedPart::CausalMask)
    }
}

/// What a training step of `config` on `batch` sequences of `seq` tokens keeps for its backward
/// pass; see [`SavedForBackward`] for the rules.
pub fn saved_for_backward(
    config: &TransformerConfig,
    batch: usize,
    seq: usize,
) -> SavedForBackward {
    let Sizes {
        d,
        heads,
        d_ff,
        vocab,
        ..
    } = Sizes::of(config);
    let layers = config.num_layers as u64;
    let (b, s) = (batch as u64, seq as u64);
    let tokens = b * s;
    let dropout = config.dropout > 0.0;
    // The input (once, however many of Q, K and V read it), Q and K laid out per head for QKᵀ,
    // V for ·V, the context for the output projection: five d-wide tensors, and the weights.
    let attention = 5 * tokens * d + b * heads * s * s;
    let norms = if config.norm_position == NormPosition::None {
        0
    } else {
        2 * (tokens * d + 2 * tokens)
    };
    // linear1's input, then the non-linearity: ReLU and sigmoid keep their output, which is
    // linear2's input too; GELU keeps its input, and linear2 its output. With dropout, linear2
    // keeps the dropped output instead.
    let hidden = match (config.activation, dropout) {
        (Activation::Relu | Activation::Sigmoid, false) => tokens * d_ff,
        (Activation::Gelu | Activation::GeluNew, false) | (_, true) => 2 * tokens * d_ff,
    };
    let feed_forward = tokens * d + hidden;
    // Masks on the attention output, the hidden units and the feed-forward output.
    let masks = if dropout {
        2 * tokens * d + tokens * d_ff
    } else {
        0
    };
    // The head's input and the loss's log-softmax; BERT's masked-LM transform adds its dense
    // input, the activation's input, and its LayerNorm's input and statistics. Outer
    // LayerNorms (BERT's over the embeddings, GPT-2's final one) keep input and statistics.
    let outer_norms = u64::from(config.embedding_norm) + u64::from(config.final_norm);
    let head = match config.head {
        Head::Linear | Head::TiedEmbedding => tokens * d + tokens * vocab,
        Head::MaskedLm => 4 * tokens * d + 2 * tokens + tokens * vocab,
        Head::None => 0,
    };
    let causal_mask = if config.causal { b * s * s } else { 0 };
    SavedForBackward {
        batch,
        seq,
        parts: vec![
            (SavedPart::Attention, layers * attention * F32_BYTES),
            (
                SavedPart::LayerNorm,
                (layers * norms + outer_norms * (tokens * d + 2 * tokens)) * F32_BYTES,
            ),
            (SavedPart::FeedForward, layers * feed_forward * F32_BYTES),
            (SavedPart::Dropout, layers * masks * F32_BYTES),
            (SavedPart::Head, head * F32_BYTES),
            (SavedPart::CausalMask, causal_mask),
        ],
    }
}

/// [`SavedForBackward::total`] for every batch size (rows) and sequence length (columns).
pub fn project_saved_bytes(
    config: &TransformerConfig,
    batches: &[usize],
    seqs: &[usize],
) -> Vec<Vec<u64>> {
    batches
        .iter()
        .map(|&batch| {
            seqs.iter()
                .map(|&seq| saved_for_backward(config, batch, seq).total())
                .collect()
        })
        .collect()
}

/// The memory of one training step in bytes: every parameter, and for the trainable ones a
/// gradient and the optimizer's state (frozen tensors have neither), plus what the step keeps
/// for its backward pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingMemory {
    /// Every parameter, frozen or not.
    pub parameters: u64,
    /// One gradient per trainable parameter.
    pub gradients: u64,
    /// Optimizer state of the trainable parameters, for each optimizer.
    pub optimizer: Vec<(OptimizerState, u64)>,
    /// The activations kept for the backward pass.
    pub saved: SavedForBackward,
}

impl TrainingMemory {
    /// The memory of `total` parameters of which `trainable` train, as `f32`, with `saved`.
    pub fn new(total: usize, trainable: usize, saved: SavedForBackward) -> Self {
        let trainable_bytes = parameter_bytes(trainable.min(total), F32_BYTES as usize);
        Self {
            parameters: parameter_bytes(total, F32_BYTES as usize),
            gradients: trainable_bytes,
            optimizer: OptimizerState::all()
                .map(|state| (state, state.slots() * trainable_bytes))
                .collect(),
            saved,
        }
    }

    /// Optimizer state of `state`, in bytes.
    pub fn optimizer_bytes(&self, state: OptimizerState) -> u64 {
        self.optimizer
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, bytes)| *bytes)
    }

    /// Parameters, gradients, the state of `state` and the saved activations together.
    pub fn total(&self, state: OptimizerState) -> u64 {
        self.parameters + self.gradients + self.optimizer_bytes(state) + self.saved.total()
    }
}

/// Bytes of `count` values of `bytes_per_element` bytes.
pub fn parameter_bytes(count: usize, bytes_per_element: usize) -> u64 {
    count as u64 * bytes_per_element as u64
}

/// Parameters of `config`, counted from its shapes: embeddings, per layer four `d×d` attention
/// projections, two LayerNorms (γ and β) unless there are none, two feed-forward linears, and
/// the embedding LayerNorm and final norm where configured, and the head (none of its own when
/// tied to the embedding); every linear has a bias.
pub fn parameter_count(config: &TransformerConfig) -> u64 {
    let Sizes { d, d_ff, vocab, .. } = Sizes::of(config);
    let norms = if config.norm_position == NormPosition::None {
        0
    } else {
        2 * 2 * d
    };
    let layer = 4 * (d * d + d) + norms + (d * d_ff + d_ff) + (d_ff * d + d);
    let positions = if config.positional == Positional::Learned {
        (config.position_offset + config.max_seq_len) as u64 * d
    } else {
        0
    };
    let embeddings = vocab * d + positions + config.token_types as u64 * d;
    let outer_norms = (u64::from(config.embedding_norm) + u64::from(config.final_norm)) * 2 * d;
    let head = match config.head {
        Head::Linear => d * vocab + vocab,
        // Tied to the token embedding: no weights of its own.
        Head::TiedEmbedding | Head::None => 0,
        Head::MaskedLm => (d * d + d) + 2 * d + vocab,
    };
    embeddings + outer_norms + config.num_layers as u64 * layer + head
}

/// Bytes of the values `trace` holds: every module output and every attention map, as `f32`:
/// what the explorer reads back from the device for one input.
pub fn measured_trace_bytes(trace: &Trace) -> u64 {
    let modules: usize = trace.modules.iter().map(|c| c.values.len()).sum();
    let attention: usize = trace.attention.iter().map(|a| a.values.len()).sum();
    (modules + attention) as u64 * F32_BYTES
}

/// `value` with an SI prefix and three significant digits: `950`, `1.37 G`, `12.5 k`.
pub fn format_si(value: f64) -> String {
    const PREFIXES: [(f64, &str); 5] =
        [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let magnitude = value.abs();
    for (scale, prefix) in PREFIXES {
        if magnitude >= scale {
            return format!("{} {prefix}", three_digits(value / scale));
        }
    }
    three_digits(value)
}

/// `bytes` in binary units: `512 B`, `1.5 KiB`, `13.3 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for candidate in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = candidate;
    }
    format!("{} {unit}", three_digits(value))
}

/// `value` with three significant digits, trailing zeros dropped.
fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Statistics of one parameter tensor (or of all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorStats {
    /// Parameter path, e.g. `layers.0.attn.query.weight`.
    pub path: String,
    /// Shape in glassbox's layout.
    pub shape: Vec<usize>,
    /// Number of values.
    pub count: usize,
    /// Mean, spread, range and norm (all zero when there are no values).
    pub summary: Summary,
    /// Share of values with `|w| <` [`SPARSITY_THRESHOLD`].
    pub sparsity: f64,
    /// Histogram of the values in [`HISTOGRAM_BINS`] bins.
    pub histogram: Histogram,
}

/// The summary of no values: everything zero.
fn empty_summary() -> Summary {
    Summary {
        count: 0,
        mean: 0.0,
        std: 0.0,
        min: 0.0,
        max: 0.0,
        norm: 0.0,
    }
}

/// Share of `near_zero` in `count`, 0 for no values.
fn share(near_zero: usize, count: usize) -> f64 {
    if count == 0 {
        0.0
    } else {
        near_zero as f64 / count as f64
    }
}

/// Statistics of the parameter at `path`.
pub fn tensor_stats(path: &str, shape: &[usize], values: &[f32]) -> TensorStats {
    let near_zero = values
        .iter()
        .filter(|v| v.abs() < SPARSITY_THRESHOLD)
        .count();
    TensorStats {
        path: path.to_string(),
        shape: shape.to_vec(),
        count: values.len(),
        summary: Summary::of(values).unwrap_or_else(empty_summary),
        sparsity: share(near_zero, values.len()),
        histogram: Histogram::of(values, HISTOGRAM_BINS),
    }
}

/// Path of [`overall_stats`].
pub const OVERALL_PATH: &str = "all parameters";

/// Statistics of every value of every tensor together, without copying them into one buffer:
/// the same numbers as [`tensor_stats`] of the concatenation, under the path
/// [`OVERALL_PATH`] and the shape `[count]`.
pub fn overall_stats(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> TensorStats {
    let all = || {
        tensors
            .iter()
            .flat_map(|(_, _, values)| values.iter().copied())
    };
    let count: usize = tensors.iter().map(|(_, _, values)| values.len()).sum();
    let summary = if count == 0 {
        empty_summary()
    } else {
        // The two passes of `Summary::of`, in the same order, so the numbers are identical.
        let (mut sum, mut squares) = (0.0, 0.0);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in all() {
            let value = f64::from(value);
            sum += value;
            squares += value * value;
            min = min.min(value);
            max = max.max(value);
        }
        let mean = sum / count as f64;
        let deviations: f64 = all().map(|v| (f64::from(v) - mean).powi(2)).sum();
        Summary {
            count,
            mean,
            std: if count > 1 {
                (deviations / (count - 1) as f64).sqrt()
            } else {
                0.0
            },
            min,
            max,
            norm: squares.sqrt(),
        }
    };
    let near_zero = all().filter(|v| v.abs() < SPARSITY_THRESHOLD).count();
    TensorStats {
        path: OVERALL_PATH.to_string(),
        shape: vec![count],
        count,
        summary,
        sparsity: share(near_zero, count),
        histogram: streamed_histogram(all, HISTOGRAM_BINS),
    }
}

/// Statistics of every parameter tensor and of all of them together.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterStatistics {
    /// All values of all tensors ([`overall_stats`]).
    pub overall: TensorStats,
    /// One entry per tensor, in the order given.
    pub tensors: Vec<TensorStats>,
}

impl ParameterStatistics {
    /// The statistics of `tensors`, each a path, a shape and its values.
    pub fn of(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Self {
        Self {
            overall: overall_stats(tensors),
            tensors: tensors
                .iter()
                .map(|(path, shape, values)| tensor_stats(path, shape, values))
                .collect(),
        }
    }
}

/// [`Histogram::of`] over the values `all` yields, without collecting them.
fn streamed_histogram<I: Iterator<Item = f32>>(all: impl Fn() -> I, bins: usize) -> Histogram {
    let bins = bins.max(1);
    let finite = || all().filter(|value| value.is_finite());
    let (mut min, mut max) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(f64::from(v)), hi.max(f64::from(v)))
    });
    if min > max {
        return Histogram::of(&[], bins);
    }
    if max - min < 1e-12 {
        min -= 0.5;
        max += 0.5;
    }
    let mut counts = vec![0u32; bins];
    let width = (max - min) / bins as f64;
    for value in finite() {
        let bin = (((f64::from(value) - min) / width) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    Histogram { min, max, counts }
}

/// One row of the parameter table.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafRow {
    /// Parameter path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Number of values.
    pub count: usize,
    /// Share of all parameters, 0..=1.
    pub share: f64,
}

/// One row per parameter, in the order given, with its share of the total.
pub fn leaf_table(params: &[(String, Vec<usize>)]) -> Vec<LeafRow> {
    let counts: Vec<usize> = params
        .iter()
        .map(|(_, shape)| shape.iter().product())
        .collect();
    let total: usize = counts.iter().sum();
    params
        .iter()
        .zip(counts)
        .map(|((path, shape), count)| LeafRow {
            path: path.clone(),
            shape: shape.clone(),
            count,
            share: share(count, total),
        })
        .collect()
}

/// The column the parameter table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Alphabetically by path.
    #[default]
    Path,
    /// By number of values; ties by path.
    Count,
}

/// Sorts `rows` by `key`, largest or last first when `descending`.
pub fn sort_rows(rows: &mut [LeafRow], key: SortKey, descending: bool) {
    rows.sort_by(|a, b| {
        let order = match key {
            SortKey::Path => a.path.cmp(&b.path),
            SortKey::Count => a.count.cmp(&b.count),
        };
        let order = if descending { order.reverse() } else { order };
        // Equal counts read top to bottom in path order, whichever way the counts run.
        order.then_with(|| a.path.cmp(&b.path))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::{AttentionCapture, Capture};

    /// vocab 10, d 4, 2 heads, d_ff 8, 1 layer: small enough to count by hand.
    fn small() -> TransformerConfig {
        TransformerConfig::new(10, 4, 2, 8, 1)
    }

    #[test]
    fn small_model_flops_by_hand() {
        // batch 1, seq 3: tokens 3, scores 1·2·3·3 = 18, d_head 2.
        let count = forward_flops(&small(), 1, 3);
        let layer = &count.layers[0];
        // 4 projections 2·3·4·4 = 96 each, linear1 and linear2 2·3·4·8 = 192 each.
        assert_eq!(layer[&OpClass::Linear], 4 * 96 + 2 * 192);
        assert_eq!(layer[&OpClass::QueryKey], 2 * 18 * 2);
        assert_eq!(layer[&OpClass::AttentionValue], 72);
        assert_eq!(layer[&OpClass::Softmax], 5 * 18);
        // Two post-LN norms over 3·4 elements at 8 each.
        assert_eq!(layer[&OpClass::LayerNorm], 2 * 8 * 12);
        // ReLU over 3·8 hidden units.
        assert_eq!(layer[&OpClass::Activation], 24);
        // Biases 3·(4·4 + 8 + 4) = 84, residuals 2·12 = 24.
        assert_eq!(layer[&OpClass::Add], 84 + 24);
        // Head 2·3·4·10 = 240, its bias 30, no positions.
        assert_eq!(count.outside[&OpClass::Linear], 240);
        assert_eq!(count.outside[&OpClass::Add], 30);
        assert_eq!(count.outside[&OpClass::Embedding], 0);
        assert_eq!(count.matmul_total(), 768 + 72 + 72 + 240);
        assert_eq!(
            count.total(),
            count.matmul_total() + 90 + 192 + 24 + 108 + 30
        );
        assert_eq!(count.per_layer_total(0), 768 + 144 + 90 + 192 + 24 + 108);
        assert_eq!(count.per_layer_matmul(0), 768 + 144);
        assert_eq!(count.per_layer_total(1), 0);
        let classes = count.by_class();
        assert_eq!(classes.values().sum::<u64>(), count.total());
        assert_eq!(count.class_total(OpClass::Linear), 768 + 240);
    }

    #[test]
    fn options_change_only_their_terms() {
        let base = forward_flops(&small(), 2, 5);
        let gelu = forward_flops(&small().with_activation(Activation::Gelu), 2, 5);
        assert_eq!(gelu.class_total(OpClass::Activation), 8 * 10 * 8);
        let sigmoid = forward_flops(&small().with_activation(Activation::Sigmoid), 2, 5);
        assert_eq!(sigmoid.class_total(OpClass::Activation), 4 * 10 * 8);
        let bare = small()
            .with_norm_position(NormPosition::None)
            .with_residual(false);
        let bare = forward_flops(&bare, 2, 5);
        assert_eq!(bare.class_total(OpClass::LayerNorm), 0);
        assert_eq!(
            base.class_total(OpClass::Add) - bare.class_total(OpClass::Add),
            2 * 10 * 4
        );
        let learned = forward_flops(&small().with_positional(Positional::Learned), 2, 5);
        let sinusoidal = forward_flops(&small().with_positional(Positional::Sinusoidal), 2, 5);
        assert_eq!(learned.class_total(OpClass::Embedding), 10 * 4);
        assert_eq!(sinusoidal.class_total(OpClass::Embedding), 10 * 4);
        // Causal attention counts the full matrix.
        assert_eq!(forward_flops(&small().with_causal(true), 2, 5), base);
        // Matrix products never depend on the options.
        for other in [&gelu, &bare, &learned] {
            assert_eq!(other.matmul_total(), base.matmul_total());
        }
    }

    #[test]
    fn op_classes_name_and_split() {
        let matmuls: Vec<OpClass> = OpClass::all().filter(|c| c.is_matmul()).collect();
        assert_eq!(
            matmuls,
            [OpClass::Linear, OpClass::QueryKey, OpClass::AttentionValue]
        );
        let names: std::collections::BTreeSet<_> = OpClass::all().map(|c| c.name()).collect();
        assert_eq!(names.len(), OpClass::all().count());
        assert_eq!(OpClass::QueryKey.name(), "QKᵀ");
        assert_eq!(OptimizerState::SgdMomentum.name(), "SGD + momentum");
    }

    #[test]
    fn attention_overtakes_where_the_curves_cross() {
        // small(): linear per token 1·(8·16 + 4·4·8) + 2·4·10 = 336, attention per token and
        // length 1·(4·2·2 + 5·2) = 26; 336 / 26 = 12.9…, so 13.
        assert_eq!(attention_overtakes(&small(), 3), Some(13));
        let points = flops_over_lengths(&small(), 3, 20);
        assert_eq!(points.len(), 20);
        assert_eq!(points[0].seq, 1);
        let first = points.iter().find(|p| p.attention > p.linear).unwrap();
        assert_eq!(first.seq, 13);
        // At 13: attention 3·169·26 = 13182 against linear 3·13·336 = 13104.
        assert_eq!((first.attention, first.linear), (13_182, 13_104));
        // Seed: 4·(8·256² + 4·256·1024) + 2·256·1000 = 6,803,456 per token against
        // 4·(4·256 + 5·8) = 4256 per token and length: 1598.5…, beyond max_seq_len 512.
        let seed = TransformerConfig::seed();
        let at = attention_overtakes(&seed, 1).unwrap();
        assert_eq!(at, 1599);
        for seq in [at - 1, at] {
            let p = split(&forward_flops(&seed, 2, seq), seq);
            assert_eq!(p.attention > p.linear, seq == at, "{p:?}");
        }
        assert_eq!(attention_overtakes(&seed, 0), None);
    }

    #[test]
    fn training_memory_counts_state_only_for_trainable_tensors() {
        assert_eq!(parameter_bytes(1000, 4), 4000);
        let saved = saved_for_backward(&small(), 1, 3);
        let memory = TrainingMemory::new(1000, 600, saved.clone());
        assert_eq!(memory.parameters, 4000);
        // Frozen tensors get no gradient and no optimizer state.
        assert_eq!(memory.gradients, 2400);
        assert_eq!(
            memory.optimizer,
            vec![
                (OptimizerState::Sgd, 0),
                (OptimizerState::SgdMomentum, 2400),
                (OptimizerState::Adam, 4800),
                (OptimizerState::AdamW, 4800),
            ]
        );
        assert_eq!(
            memory.total(OptimizerState::Adam),
            4000 + 2400 + 4800 + saved.total()
        );
        let all_trainable = TrainingMemory::new(1000, 1000, saved.clone());
        assert_eq!(
            all_trainable.total(OptimizerState::AdamW),
            4000 + 4000 + 8000 + saved.total()
        );
        assert_eq!(TrainingMemory::new(10, 99, saved).gradients, 40);
        assert_eq!(parameter_count(&TransformerConfig::seed()), 3_672_040);
        assert_eq!(
            parameter_count(&TransformerConfig::tiny()),
            64_000 + 512 * 64 + 2 * 49_984 + 65_000
        );
    }

    #[test]
    fn saved_for_backward_by_hand() {
        // small(), batch 2, seq 3: tokens 6, d 4, heads 2, d_ff 8, vocab 10, post-LN ReLU.
        let saved = saved_for_backward(&small(), 2, 3);
        // Attention: five 6×4 tensors and 2·2·3·3 weights.
        assert_eq!(saved.part(SavedPart::Attention), (5 * 24 + 36) * 4);
        // Two norms: input 24, mean 6, 1/σ 6.
        assert_eq!(saved.part(SavedPart::LayerNorm), 2 * (24 + 12) * 4);
        // linear1's input 24 and the ReLU output 48, shared with linear2.
        assert_eq!(saved.part(SavedPart::FeedForward), (24 + 48) * 4);
        assert_eq!(saved.part(SavedPart::Dropout), 0);
        // The head's input 24 and the log-softmax 60.
        assert_eq!(saved.part(SavedPart::Head), (24 + 60) * 4);
        assert_eq!(saved.part(SavedPart::CausalMask), 0);
        assert_eq!(saved.total(), saved.float_bytes());
        assert_eq!((saved.batch, saved.seq), (2, 3));

        // GELU keeps its input and linear2 its output: one more d_ff-wide tensor.
        let gelu = saved_for_backward(&small().with_activation(Activation::Gelu), 2, 3);
        assert_eq!(gelu.part(SavedPart::FeedForward), (24 + 96) * 4);
        // Dropout adds three masks and linear2 keeps the dropped hidden units.
        let dropped = saved_for_backward(&small().with_dropout(0.1), 2, 3);
        assert_eq!(dropped.part(SavedPart::Dropout), (2 * 24 + 48) * 4);
        assert_eq!(dropped.part(SavedPart::FeedForward), (24 + 96) * 4);
        // A causal mask of one byte per entry, shared by every layer.
        let causal = saved_for_backward(
            &TransformerConfig::new(10, 4, 2, 8, 3).with_causal(true),
            2,
            3,
        );
        assert_eq!(causal.part(SavedPart::CausalMask), 18);
        assert_eq!(causal.float_bytes(), causal.total() - 18);
        let bare = saved_for_backward(&small().with_norm_position(NormPosition::None), 2, 3);
        assert_eq!(bare.part(SavedPart::LayerNorm), 0);
        // Every part is listed once, in display order.
        assert_eq!(
            saved.parts.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            SavedPart::all().collect::<Vec<_>>()
        );
        assert_eq!(
            project_saved_bytes(&small(), &[1, 2], &[3]),
            vec![
                vec![saved_for_backward(&small(), 1, 3).total()],
                vec![saved.total()]
            ]
        );
    }

    #[test]
    fn measured_bytes_count_modules_and_attention() {
        let trace = Trace {
            attention: vec![AttentionCapture {
                layer: 0,
                batch: 1,
                heads: 2,
                queries: 3,
                keys: 3,
                values: vec![0.0; 18],
            }],
            modules: vec![Capture {
                role: crate::structure::Role::Embedding,
                layer: None,
                path: "embedding".into(),
                shape: vec![1, 3, 4],
                values: vec![0.0; 12],
            }],
        };
        assert_eq!(measured_trace_bytes(&trace), 30 * 4);
    }

    #[test]
    fn tensor_stats_by_hand() {
        let stats = tensor_stats("w", &[2, 2], &[0.0, 1e-7, -2.0, 2.0]);
        assert_eq!(stats.count, 4);
        assert_eq!(stats.shape, [2, 2]);
        assert_eq!(stats.sparsity, 0.5);
        assert_eq!(stats.summary.max, 2.0);
        assert_eq!(stats.histogram.counts.len(), HISTOGRAM_BINS);
        assert_eq!(stats.histogram.total(), 4);
        let empty = tensor_stats("e", &[0], &[]);
        assert_eq!(
            (empty.count, empty.sparsity, empty.summary.norm),
            (0, 0.0, 0.0)
        );
    }

    #[test]
    fn overall_stats_equal_the_concatenation() {
        let tensors = vec![
            ("a".to_string(), vec![3], vec![1.0, -0.5, 0.0]),
            ("b".to_string(), vec![2, 2], vec![4.0, 1e-9, f32::NAN, 2.5]),
        ];
        let all: Vec<f32> = tensors.iter().flat_map(|t| t.2.clone()).collect();
        let overall = overall_stats(&tensors);
        let reference = tensor_stats(OVERALL_PATH, &[7], &all);
        assert_eq!(overall.histogram, reference.histogram);
        assert_eq!(overall.sparsity, 2.0 / 7.0);
        assert_eq!(overall.count, 7);
        assert_eq!(overall.shape, [7]);
        let finite = [
            ("c".to_string(), vec![2], vec![1.0, 2.0]),
            ("d".to_string(), vec![2], vec![3.0, 4.0]),
        ];
        let overall = overall_stats(&finite);
        assert_eq!(overall.summary, Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap());
        assert_eq!(overall_stats(&[]).count, 0);
    }

    #[test]
    fn leaf_table_shares_and_sorting() {
        let params = vec![
            ("b.weight".to_string(), vec![2, 3]),
            ("a.bias".to_string(), vec![2]),
            ("c.weight".to_string(), vec![2, 1]),
        ];
        let mut rows = leaf_table(&params);
        assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [6, 2, 2]);
        assert_eq!(rows[0].share, 0.6);
        assert!((rows.iter().map(|r| r.share).sum::<f64>() - 1.0).abs() < 1e-12);
        sort_rows(&mut rows, SortKey::Count, true);
        let paths = |rows: &[LeafRow]| rows.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
        // Equal counts stay in path order whichever way the counts run.
        assert_eq!(paths(&rows), ["b.weight", "a.bias", "c.weight"]);
        sort_rows(&mut rows, SortKey::Count, false);
        assert_eq!(paths(&rows), ["a.bias", "c.weight", "b.weight"]);
        sort_rows(&mut rows, SortKey::Path, false);
        assert_eq!(paths(&rows), ["a.bias", "b.weight", "c.weight"]);
        assert!(leaf_table(&[]).is_empty());
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_si(950.0), "950");
        assert_eq!(format_si(136_888_320.0), "137 M");
        assert_eq!(format_si(7_938_048.0), "7.94 M");
        assert_eq!(format_si(12_500.0), "12.5 k");
        assert_eq!(format_si(2e9), "2 G");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(14_688_160), "14 MiB");
    }
}

/// What one timed benchmark run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
pub enum BenchPass {
    /// A forward pass and the loss.
    #[strum(serialize = "forward")]
    Forward,
    /// A forward and a backward pass, without an update.
    #[strum(serialize = "forward + backward")]
    ForwardBackward,
}

impl BenchPass {
    /// Every pass, in the order the benchmark runs them.
    pub fn all() -> impl Iterator<Item = BenchPass> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    /// The name the benchmark table shows.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Median and 95th percentile of timed runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Timed runs.
    pub runs: usize,
    /// Median run time in milliseconds.
    pub median_ms: f64,
    /// 95th percentile (nearest rank) in milliseconds.
    pub p95_ms: f64,
}

impl Timing {
    /// Summarises run times in milliseconds; `None` without any finite one.
    pub fn of(samples_ms: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples_ms
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median_ms = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        // Nearest rank: the smallest value with at least 95 % of the runs at or below it.
        let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
        Some(Self {
            runs: n,
            median_ms,
            p95_ms: sorted[rank - 1],
        })
    }

    /// Sequences per second at the median, for runs of `batch` sequences.
    pub fn samples_per_s(&self, batch: usize) -> f64 {
        if self.median_ms > 0.0 {
            batch as f64 * 1000.0 / self.median_ms
        } else {
            f64::INFINITY
        }
    }
}

#[cfg(test)]
mod timing_tests {
    use super::Timing;

    #[test]
    fn median_and_p95_by_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let timing = Timing::of(&samples).unwrap();
        assert_eq!(
            (timing.runs, timing.median_ms, timing.p95_ms),
            (100, 50.5, 95.0)
        );
        assert_eq!(Timing::of(&[3.0, 1.0, 2.0]).unwrap().median_ms, 2.0);
        assert_eq!(Timing::of(&[4.0]).unwrap().p95_ms, 4.0);
        assert!(Timing::of(&[f64::NAN]).is_none());
        assert_eq!(Timing::of(&[10.0, 10.0]).unwrap().samples_per_s(2), 200.0);
    }
}
