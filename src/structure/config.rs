//! The configuration of a glassbox Transformer and its named presets: plain data (serde), so
//! that analysis and the page read a model's structure without burn.

use serde::{Deserialize, Serialize};

/// Non-linearity between the two feed-forward linears; its lower-case name (`relu`, `gelu`,
/// `sigmoid`) is what the training form and URLs use.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "lowercase")]
pub enum Activation {
    /// `max(0, x)`, PyTorch's `nn.TransformerEncoderLayer` default.
    Relu,
    /// Exact (erf) GELU, as in BERT and GPT-2.
    Gelu,
    /// The logistic sigmoid: saturates on both sides, so deep stacks of it starve the
    /// gradient (the vanishing-gradient problem preset).
    Sigmoid,
    /// GELU's tanh approximation, `gelu_new` in GPT-2's config (`gelunew` in URLs).
    GeluNew,
}

/// Where each LayerNorm sits relative to its residual connection; its lower-case name (`post`,
/// `pre`, `none`) is what the training form and URLs use.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "lowercase")]
pub enum NormPosition {
    /// `norm(x + sublayer(x))`: the original Transformer and PyTorch's default.
    Post,
    /// `x + sublayer(norm(x))`: GPT-2 style, trains more stably in deep stacks.
    Pre,
    /// No LayerNorm at all: nothing rescales the signal between layers.
    None,
}

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Positional {
    /// No positional signal: the seed chapter's demo model has none.
    None,
    /// A learned embedding per position, added to the token embedding.
    Learned,
    /// Fixed sine/cosine table of "Attention is all you need", added to the token embedding.
    Sinusoidal,
}

/// What turns the last layer's output into vocabulary logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// A linear layer of its own with a bias, `[d_model, vocab_size]`: glassbox's models.
    Linear,
    /// The token embedding, transposed, without a bias: GPT-2's `lm_head`.
    TiedEmbedding,
    /// BERT's masked-LM head: a dense layer, the activation and a LayerNorm, then the token
    /// embedding, transposed, plus a bias of its own (`cls.predictions`).
    MaskedLm,
    /// No head: the model ends at its last layer (a sentence encoder such as MiniLM).
    None,
}

/// Shape and behaviour of a Transformer (`model::Transformer` builds one from it). Fields
/// with a default may be left out of its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Number of token ids the embedding and the output head know.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads per layer; must divide `d_model`.
    pub num_heads: usize,
    /// Hidden width of each feed-forward block.
    pub d_ff: usize,
    /// Number of encoder layers.
    pub num_layers: usize,
    /// Longest sequence the positional encoding covers, and the tokenizer's cut-off.
    #[serde(default = "default_max_seq_len")]
    pub max_seq_len: usize,
    /// Feed-forward non-linearity.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// LayerNorm placement.
    #[serde(default = "default_norm_position")]
    pub norm_position: NormPosition,
    /// Positional encoding.
    #[serde(default = "default_positional")]
    pub positional: Positional,
    /// Whether each query may only attend to itself and earlier keys.
    #[serde(default = "default_false")]
    pub causal: bool,
    /// Dropout in training; the traced forward runs without it so the weights shown are exact.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// LayerNorm epsilon; 1e-5 matches PyTorch.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Whether each sub-layer's output is added to its input (the residual connection).
    /// Without it, gradients reach the lower layers only through every layer above.
    #[serde(default = "default_true")]
    pub residual: bool,
    /// Rows of the token-type (segment) embedding; 0 for none. BERT has 2: sentence A and B.
    #[serde(default = "default_zero")]
    pub token_types: usize,
    /// Whether a LayerNorm follows the sum of the embeddings (BERT).
    #[serde(default = "default_false")]
    pub embedding_norm: bool,
    /// Whether a LayerNorm follows the last layer (pre-LN stacks such as GPT-2's `ln_f`).
    #[serde(default = "default_false")]
    pub final_norm: bool,
    /// How logits are made.
    #[serde(default = "default_head")]
    pub head: Head,
    /// First position id (RoBERTa counts positions from `padding_idx + 1`); the learned
    /// position table has `position_offset + max_seq_len` rows.
    #[serde(default = "default_zero")]
    pub position_offset: usize,
}

fn default_max_seq_len() -> usize {
    512
}
fn default_activation() -> Activation {
    Activation::Relu
}
fn default_norm_position() -> NormPosition {
    NormPosition::Post
}
fn default_positional() -> Positional {
    Positional::None
}
fn default_false() -> bool {
    false
}
fn default_true() -> bool {
    true
}
fn default_dropout() -> f64 {
    0.0
}
fn default_layer_norm_eps() -> f64 {
    1e-5
}
fn default_zero() -> usize {
    0
}
fn default_head() -> Head {
    Head::Linear
}

/// `with_field(value)` builders for the fields that have a default.
macro_rules! builders {
    ($($field:ident: $type:ty => $with:ident),* $(,)?) => {
        impl TransformerConfig {
            $(
                #[doc = concat!("This config with `", stringify!($field), "` set.")]
                #[must_use]
                pub fn $with(mut self, $field: $type) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

builders! {
    max_seq_len: usize => with_max_seq_len,
    activation: Activation => with_activation,
    norm_position: NormPosition => with_norm_position,
    positional: Positional => with_positional,
    causal: bool => with_causal,
    dropout: f64 => with_dropout,
    layer_norm_eps: f64 => with_layer_norm_eps,
    residual: bool => with_residual,
    token_types: usize => with_token_types,
    embedding_norm: bool => with_embedding_norm,
    final_norm: bool => with_final_norm,
    head: Head => with_head,
    position_offset: usize => with_position_offset,
}

impl TransformerConfig {
    /// A config of these sizes with every other field at its default: post-LN ReLU encoder,
    /// no positions, not causal, no dropout, residuals on, a linear head of its own.
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        num_heads: usize,
        d_ff: usize,
        num_layers: usize,
    ) -> Self {
        Self {
            vocab_size,
            d_model,
            num_heads,
            d_ff,
            num_layers,
            max_seq_len: default_max_seq_len(),
            activation: default_activation(),
            norm_position: default_norm_position(),
            positional: default_positional(),
            causal: false,
            dropout: default_dropout(),
            layer_norm_eps: default_layer_norm_eps(),
            residual: true,
            token_types: 0,
            embedding_norm: false,
            final_norm: false,
            head: default_head(),
            position_offset: 0,
        }
    }

    /// The seed chapter's demo model: `nn.Embedding(1000, 256)`, four
    /// `nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024)` (ReLU,
    /// post-LN, no positional encoding) and `nn.Linear(256, 1000)`: 3,672,040 parameters.
    pub fn seed() -> Self {
        Self::new(1000, 256, 8, 1024, 4)
    }

    /// A small model for fast tests and quick experiments; learned positions so that
    /// order-dependent toy tasks are learnable.
    pub fn tiny() -> Self {
        Self::new(1000, 64, 4, 256, 2).with_positional(Positional::Learned)
    }

    /// The preset called `name` (`seed` or `tiny`), if there is one.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "seed" => Some(Self::seed()),
            "tiny" => Some(Self::tiny()),
            _ => None,
        }
    }

    /// Whether the model makes vocabulary logits (a sentence encoder does not).
    pub fn has_head(&self) -> bool {
        self.head != Head::None
    }

    /// Width of one attention head.
    pub fn d_head(&self) -> usize {
        self.d_model / self.num_heads
    }

    /// Checks the invariants `init` relies on, in words a user can act on.
    pub fn validate(&self) -> Result<(), String> {
        if self.vocab_size == 0 || self.d_model == 0 || self.num_heads == 0 || self.num_layers == 0
        {
            return Err("vocabulary, width, heads and layers must all be at least 1".into());
        }
        if self.max_seq_len == 0 {
            return Err("the longest sequence (max_seq_len) must be at least 1".into());
        }
        if self.position_offset > 0
            && self.position_offset.saturating_add(self.max_seq_len) > 1 << 24
        {
            return Err(format!(
                "position_offset {} + max_seq_len {} is over 16,777,216 positions",
                self.position_offset, self.max_seq_len
            ));
        }
        if !self.d_model.is_multiple_of(self.num_heads) {
            return Err(format!(
                "d_model {} is not divisible by {} heads",
                self.d_model, self.num_heads
            ));
        }
        if self.positional == Positional::Sinusoidal && !self.d_model.is_multiple_of(2) {
            return Err(format!(
                "sinusoidal positions need an even d_model, got {}",
                self.d_model
            ));
        }
        Ok(())
    }
}
