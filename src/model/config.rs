//! Configuration of the glassbox Transformer encoder and its named presets.

use burn::config::Config;

/// Non-linearity between the two feed-forward linears; its lower-case name (`relu`, `gelu`,
/// `sigmoid`) is what the training form and URLs use.
#[derive(
    Config, Debug, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
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
    Config, Debug, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
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
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Positional {
    /// No positional signal: the seed chapter's demo model has none.
    None,
    /// A learned embedding per position, added to the token embedding.
    Learned,
    /// Fixed sine/cosine table of "Attention is all you need", added to the token embedding.
    Sinusoidal,
}

/// What turns the last layer's output into vocabulary logits.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
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

/// Shape and behaviour of a [`Transformer`](super::Transformer).
#[derive(Config, Debug, PartialEq)]
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
    #[config(default = 512)]
    pub max_seq_len: usize,
    /// Feed-forward non-linearity.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// LayerNorm placement.
    #[config(default = "NormPosition::Post")]
    pub norm_position: NormPosition,
    /// Positional encoding.
    #[config(default = "Positional::None")]
    pub positional: Positional,
    /// Whether each query may only attend to itself and earlier keys.
    #[config(default = false)]
    pub causal: bool,
    /// Dropout in training; the traced forward runs without it so the weights shown are exact.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// LayerNorm epsilon; 1e-5 matches PyTorch.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Whether each sub-layer's output is added to its input (the residual connection).
    /// Without it, gradients reach the lower layers only through every layer above.
    #[config(default = true)]
    pub residual: bool,
    /// Rows of the token-type (segment) embedding; 0 for none. BERT has 2: sentence A and B.
    #[config(default = 0)]
    pub token_types: usize,
    /// Whether a LayerNorm follows the sum of the embeddings (BERT).
    #[config(default = false)]
    pub embedding_norm: bool,
    /// Whether a LayerNorm follows the last layer (pre-LN stacks such as GPT-2's `ln_f`).
    #[config(default = false)]
    pub final_norm: bool,
    /// How logits are made.
    #[config(default = "Head::Linear")]
    pub head: Head,
    /// First position id (RoBERTa counts positions from `padding_idx + 1`); the learned
    /// position table has `position_offset + max_seq_len` rows.
    #[config(default = 0)]
    pub position_offset: usize,
}

impl TransformerConfig {
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
