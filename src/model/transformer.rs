//! The glassbox Transformer encoder: a burn module whose forward pass can record what happens inside.

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::activation::{Activation as ActivationLayer, ActivationConfig};
use burn::nn::attention::{
    MhaInput, MultiHeadAttention, MultiHeadAttentionConfig, generate_autoregressive_mask,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PositionalEncoding, PositionalEncodingConfig,
};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::capture::Recorder;
use super::config::{Activation, Head, NormPosition, Positional, TransformerConfig};
use super::error::ModelError;
use super::layout::Layout;
use super::trace::{Role, Site};

/// Position-wise feed-forward block: `linear2(activation(linear1(x)))`.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `d_model → d_ff`.
    pub linear1: Linear,
    /// ReLU or GELU.
    pub activation: ActivationLayer,
    /// `d_ff → d_model`.
    pub linear2: Linear,
    /// Dropout on the hidden units (training only).
    pub dropout: Dropout,
}

impl FeedForward {
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`
    fn forward(
        &self,
        x: Tensor<3>,
        layer: usize,
        names: Names,
        recorder: &mut Recorder,
    ) -> Tensor<3> {
        let site = |role| Site::layer(role, layer);
        let hidden = self.linear1.forward(x); // [batch, seq, d_ff]
        names.record(recorder, site(Role::FeedForwardHidden), &hidden);
        let hidden = activate(&self.activation, hidden);
        names.record(recorder, site(Role::FeedForwardActivation), &hidden);
        let out = self.linear2.forward(self.dropout.forward(hidden)); // [batch, seq, d_model]
        names.record(recorder, site(Role::FeedForwardOutput), &out);
        out
    }
}

/// Applies `activation`; exact GELU is built from `erf`, so that autodiff differentiates the
/// exact function on every backend.
///
/// burn's own GELU backward is the tanh approximation's derivative on WebGPU (burn-backend's
/// default `gelu_backward`; only burn-flex overrides it with the exact one), which put the
/// WebGPU gradients of a GELU model up to 7e-4 (relative) off PyTorch's in the parity check.
fn activate(activation: &ActivationLayer, x: Tensor<3>) -> Tensor<3> {
    match activation {
        ActivationLayer::Gelu(gelu) if !gelu.approximate => {
            // x·Φ(x) = x · (1 + erf(x / √2)) / 2.
            let cdf = (x.clone() / std::f64::consts::SQRT_2).erf().add_scalar(1.0) * 0.5;
            x * cdf
        }
        other => other.forward(x),
    }
}

/// The labels of a model's captures: its layout's module paths.
#[derive(Debug, Clone, Copy)]
struct Names {
    layout: Layout,
    norm: NormPosition,
}

impl Names {
    fn record(self, recorder: &mut Recorder, site: Site, tensor: &Tensor<3>) {
        if recorder.is_enabled() {
            recorder.record(site, self.layout.module_path(site, self.norm), tensor);
        }
    }
}

/// One encoder layer: self-attention and feed-forward, each with a residual and a LayerNorm.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Multi-head self-attention; its output carries the attention weights we show.
    pub attn: MultiHeadAttention,
    /// LayerNorm around the attention sub-layer (none when the config has no LayerNorm).
    pub norm1: Option<LayerNorm>,
    /// Feed-forward sub-layer.
    pub ff: FeedForward,
    /// LayerNorm around the feed-forward sub-layer.
    pub norm2: Option<LayerNorm>,
    /// Dropout on each sub-layer's output before the residual sum (training only).
    pub dropout: Dropout,
    /// Post-LN, pre-LN or none.
    #[module(skip)]
    pub norm_position: NormPosition,
    /// Whether sub-layer outputs are added to their inputs.
    #[module(skip)]
    pub residual: bool,
}

impl EncoderLayer {
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`
    /// - `mask`: `[batch, seq, seq]`, true where a query may not see a key
    ///
    /// Each distinct tensor is recorded once, under its role: post-LN's second norm output is
    /// the layer's output, not a tensor of its own.
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<3, burn::tensor::Bool>>,
        layer: usize,
        names: Names,
        recorder: &mut Recorder,
    ) -> Tensor<3> {
        let site = |role| Site::layer(role, layer);
        let attend = |input: Tensor<3>, recorder: &mut Recorder| {
            let mut mha_input = MhaInput::self_attn(input);
            if let Some(mask) = mask.clone() {
                mha_input = mha_input.mask_attn(mask);
            }
            let output = self.attn.forward(mha_input);
            // The weights come straight from burn's attention: [batch, heads, seq, seq].
            recorder.record_attention(output.weights);
            names.record(recorder, site(Role::AttentionOutput), &output.context);
            self.dropout.forward(output.context)
        };
        // The residual sum, or the sub-layer alone when residual connections are off.
        let add = |input: Tensor<3>, output: Tensor<3>| {
            if self.residual {
                input + output
            } else {
                output
            }
        };
        let normalise = |norm: &Option<LayerNorm>, x: Tensor<3>| match norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        match self.norm_position {
            NormPosition::Post | NormPosition::None => {
                let attended = attend(x.clone(), recorder);
                let x = normalise(&self.norm1, add(x, attended));
                if self.norm1.is_some() {
                    names.record(recorder, site(Role::FeedForwardInput), &x);
                }
                let ff = self.ff.forward(x.clone(), layer, names, recorder);
                let out = normalise(&self.norm2, add(x, self.dropout.forward(ff)));
                // Without a norm or a residual the layer's output is the feed-forward output.
                if self.norm2.is_some() || self.residual {
                    names.record(recorder, site(Role::BlockOutput), &out);
                }
                out
            }
            NormPosition::Pre => {
                let normed = normalise(&self.norm1, x.clone());
                names.record(recorder, site(Role::AttentionInput), &normed);
                let x = add(x, attend(normed, recorder));
                let normed = normalise(&self.norm2, x.clone());
                names.record(recorder, site(Role::FeedForwardInput), &normed);
                let ff = self.ff.forward(normed, layer, names, recorder);
                let out = add(x, self.dropout.forward(ff));
                if self.residual {
                    names.record(recorder, site(Role::BlockOutput), &out);
                }
                out
            }
        }
    }
}

/// BERT's masked-LM transform: dense, activation, LayerNorm, before the tied decoder.
#[derive(Module, Debug)]
pub struct HeadTransform {
    /// `d_model → d_model`.
    pub dense: Linear,
    /// The model's activation.
    pub activation: ActivationLayer,
    /// LayerNorm over the transformed hidden state.
    pub norm: LayerNorm,
}

/// A Transformer with a vocabulary head, as configured by [`TransformerConfig`]: glassbox's
/// encoders, BERT and GPT-2 are this one architecture with different options.
#[derive(Module, Debug)]
pub struct Transformer {
    /// Token embedding, `[vocab_size, d_model]`.
    pub embedding: Embedding,
    /// Learned position embedding, when configured.
    pub position_embedding: Option<Embedding>,
    /// Token-type (segment) embedding, when configured (BERT).
    pub token_type_embedding: Option<Embedding>,
    /// Fixed sinusoidal positions, when configured.
    pub sinusoids: Option<PositionalEncoding>,
    /// LayerNorm over the embeddings' sum, when configured (BERT).
    pub embedding_norm: Option<LayerNorm>,
    /// The encoder stack.
    pub layers: Vec<EncoderLayer>,
    /// LayerNorm after the last layer, when configured (GPT-2's `ln_f`).
    pub final_norm: Option<LayerNorm>,
    /// Projection to vocabulary logits, for [`Head::Linear`].
    pub output: Option<Linear>,
    /// The masked-LM transform, for [`Head::MaskedLm`].
    pub head_transform: Option<HeadTransform>,
    /// The bias added to the tied decoder's logits, for [`Head::MaskedLm`].
    pub head_bias: Option<Param<Tensor<1>>>,
    /// How logits are made.
    #[module(skip)]
    pub head: Head,
    /// Whether attention is causal.
    #[module(skip)]
    pub causal: bool,
    /// Longest sequence accepted.
    #[module(skip)]
    pub max_seq_len: usize,
    /// First position id.
    #[module(skip)]
    pub position_offset: usize,
    /// Whose module paths label the captures.
    #[module(skip)]
    pub layout: Layout,
}

impl TransformerConfig {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Result<Transformer, ModelError> {
        self.validate().map_err(ModelError::Config)?;
        let activation = match self.activation {
            Activation::Relu => ActivationConfig::Relu,
            Activation::Gelu => ActivationConfig::Gelu,
            Activation::Sigmoid => ActivationConfig::Sigmoid,
            Activation::GeluNew => ActivationConfig::GeluApproximate,
        };
        let layer_norm = || {
            LayerNormConfig::new(self.d_model)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let norm = || (self.norm_position != NormPosition::None).then(layer_norm);
        let layers = (0..self.num_layers)
            .map(|_| EncoderLayer {
                attn: MultiHeadAttentionConfig::new(self.d_model, self.num_heads)
                    .with_dropout(0.0)
                    .init(device),
                norm1: norm(),
                ff: FeedForward {
                    linear1: LinearConfig::new(self.d_model, self.d_ff).init(device),
                    activation: activation.init(device),
                    linear2: LinearConfig::new(self.d_ff, self.d_model).init(device),
                    dropout: DropoutConfig::new(self.dropout).init(),
                },
                norm2: norm(),
                dropout: DropoutConfig::new(self.dropout).init(),
                norm_position: self.norm_position,
                residual: self.residual,
            })
            .collect();
        let positions = self.position_offset + self.max_seq_len;
        Ok(Transformer {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            position_embedding: (self.positional == Positional::Learned)
                .then(|| EmbeddingConfig::new(positions, self.d_model).init(device)),
            token_type_embedding: (self.token_types > 0)
                .then(|| EmbeddingConfig::new(self.token_types, self.d_model).init(device)),
            embedding_norm: self.embedding_norm.then(layer_norm),
            sinusoids: (self.positional == Positional::Sinusoidal).then(|| {
                PositionalEncodingConfig::new(self.d_model)
                    .with_max_sequence_size(self.max_seq_len)
                    .with_max_timescale(10_000.max(self.max_seq_len))
                    .init(device)
            }),
            layers,
            final_norm: self.final_norm.then(layer_norm),
            output: (self.head == Head::Linear)
                .then(|| LinearConfig::new(self.d_model, self.vocab_size).init(device)),
            head_transform: (self.head == Head::MaskedLm).then(|| HeadTransform {
                dense: LinearConfig::new(self.d_model, self.d_model).init(device),
                activation: activation.init(device),
                norm: layer_norm(),
            }),
            head_bias: (self.head == Head::MaskedLm)
                .then(|| Param::from_tensor(Tensor::zeros([self.vocab_size], device))),
            head: self.head,
            causal: self.causal,
            max_seq_len: self.max_seq_len,
            position_offset: self.position_offset,
            layout: Layout::Glassbox,
        })
    }

    /// Builds the model with weights drawn from `seed`, always on the CPU so that every
    /// backend shows the same seeded model, then moves it to `device`.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Result<Transformer, ModelError> {
        // The CPU device's generator is global: hold a lock from seeding to the last draw so
        // that a concurrent initialisation cannot take numbers out of this one's sequence.
        static SEEDED_INIT: Mutex<()> = Mutex::new(());
        let _guard = SEEDED_INIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cpu = Device::flex();
        cpu.seed(seed);
        let model = self.init(&cpu)?;
        // burn initialises parameters lazily, on first use: draw every one now, in module
        // order, while the seed and the lock hold; else the draws would happen later, on
        // whatever device and in whatever order the first forward pass touches them.
        struct Draw;
        impl ModuleVisitor for Draw {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let _ = param.val();
            }
        }
        model.visit(&mut Draw);
        Ok(model.to_device(device))
    }
}

impl Transformer {
    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }

    /// Turns token ids into a `[batch, seq]` tensor on `device`, checking every id and
    /// that all sequences have the same length.
    pub fn token_tensor(
        &self,
        batch: &[Vec<u32>],
        device: &Device,
    ) -> Result<Tensor<2, Int>, ModelError> {
        let seq_len = batch.first().map_or(0, Vec::len);
        if batch.is_empty() || seq_len == 0 {
            return Err(ModelError::EmptyInput);
        }
        if seq_len > self.max_seq_len {
            return Err(ModelError::TooLong {
                len: seq_len,
                max: self.max_seq_len,
            });
        }
        let vocab_size = self.embedding.weight.val().dims()[0];
        let mut ids = Vec::with_capacity(batch.len() * seq_len);
        for sequence in batch {
            if sequence.len() != seq_len {
                return Err(ModelError::RaggedBatch);
            }
            for &id in sequence {
                if id as usize >= vocab_size {
                    return Err(ModelError::UnknownId { id, vocab_size });
                }
                ids.push(id as i64);
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(ids, [batch.len(), seq_len]),
            device,
        ))
    }

    /// Turns token types (segment ids: 0 for sentence A, 1 for B) into a tensor like
    /// [`Self::token_tensor`]'s, checking each against the model's type table.
    pub fn type_tensor(
        &self,
        types: &[Vec<u32>],
        device: &Device,
    ) -> Result<Tensor<2, Int>, ModelError> {
        let rows = self
            .token_type_embedding
            .as_ref()
            .map_or(0, |table| table.weight.val().dims()[0]);
        let seq_len = types.first().map_or(0, Vec::len);
        let mut ids = Vec::with_capacity(types.len() * seq_len);
        for sequence in types {
            if sequence.len() != seq_len {
                return Err(ModelError::RaggedBatch);
            }
            for &id in sequence {
                if id as usize >= rows.max(1) {
                    return Err(ModelError::UnknownType { id, types: rows });
                }
                ids.push(i64::from(id));
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(ids, [types.len(), seq_len]),
            device,
        ))
    }

    /// The token types of `types` as a tensor for a model with a type table; `None` without
    /// types or without a table (the forward then takes every token as sentence A).
    pub fn types_for(
        &self,
        types: Option<&[Vec<u32>]>,
        device: &Device,
    ) -> Result<Option<Tensor<2, Int>>, ModelError> {
        match types {
            Some(types) if self.token_type_embedding.is_some() => {
                self.type_tensor(types, device).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Logits only, recording nothing (the training path).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` → `[batch, seq, vocab_size]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.run(tokens, None, &mut Recorder::disabled())
    }

    /// Like [`Self::forward`], with token types (sentence A/B) for a model that has them.
    pub fn forward_typed(
        &self,
        tokens: Tensor<2, Int>,
        types: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.run(tokens, types, &mut Recorder::disabled())
    }

    /// Logits and every intermediate the [`Recorder`] was asked to keep.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` → `[batch, seq, vocab_size]`
    pub fn forward_traced(&self, tokens: Tensor<2, Int>) -> (Tensor<3>, Recorder) {
        self.forward_traced_typed(tokens, None)
    }

    /// [`Self::forward_traced`] with token types. A model without a head returns its last
    /// hidden state in place of logits.
    pub fn forward_traced_typed(
        &self,
        tokens: Tensor<2, Int>,
        types: Option<Tensor<2, Int>>,
    ) -> (Tensor<3>, Recorder) {
        let mut recorder = Recorder::enabled();
        let logits = self.run(tokens, types, &mut recorder);
        (logits, recorder)
    }

    /// Whether the model makes vocabulary logits.
    pub fn has_head(&self) -> bool {
        self.head != Head::None
    }

    fn names(&self) -> Names {
        Names {
            layout: self.layout,
            // Every layer has the config's placement.
            norm: self
                .layers
                .first()
                .map_or(NormPosition::Post, |layer| layer.norm_position),
        }
    }

    fn run(
        &self,
        tokens: Tensor<2, Int>,
        types: Option<Tensor<2, Int>>,
        recorder: &mut Recorder,
    ) -> Tensor<3> {
        let [batch, seq_len] = tokens.dims();
        let device = tokens.device();
        let names = self.names();
        let mut x = self.embedding.forward(tokens); // [batch, seq, d_model]
        names.record(recorder, Site::global(Role::Embedding), &x);
        let mut positioned = false;
        if let Some(position_embedding) = &self.position_embedding {
            let start = self.position_offset as i64;
            let positions = Tensor::<1, Int>::arange(start..start + seq_len as i64, &device)
                .unsqueeze::<2>()
                .expand([batch, seq_len]); // [batch, seq]
            x = x + position_embedding.forward(positions);
            positioned = true;
        }
        if let Some(sinusoids) = &self.sinusoids {
            x = sinusoids.forward(x);
            positioned = true;
        }
        if let Some(table) = &self.token_type_embedding {
            // Without types every token is sentence A (type 0), as in HuggingFace.
            let types = types.unwrap_or_else(|| Tensor::<2, Int>::zeros([batch, seq_len], &device));
            x = x + table.forward(types);
            positioned = true;
        }
        if positioned {
            names.record(recorder, Site::global(Role::Positional), &x);
        }
        if let Some(norm) = &self.embedding_norm {
            x = norm.forward(x);
            names.record(recorder, Site::global(Role::EmbeddingNorm), &x);
        }
        let mask = self
            .causal
            .then(|| generate_autoregressive_mask(batch, seq_len, &device)); // [batch, seq, seq]
        for (index, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, mask.clone(), index, names, recorder);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(x);
            names.record(recorder, Site::global(Role::FinalNorm), &x);
        }
        let Some(logits) = self.logits(x) else {
            return Tensor::zeros([batch, seq_len, 0], &device);
        };
        names.record(recorder, Site::global(Role::Logits), &logits);
        logits
    }

    /// Vocabulary logits from the last hidden state, by the model's head; none without one.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, vocab_size]`
    fn logits(&self, x: Tensor<3>) -> Option<Tensor<3>> {
        let tied = |x: Tensor<3>| {
            let [batch, seq_len, d_model] = x.dims();
            let table = self.embedding.weight.val(); // [vocab, d_model]
            let vocab = table.dims()[0];
            x.reshape([batch * seq_len, d_model])
                .matmul(table.transpose())
                .reshape([batch, seq_len, vocab])
        };
        match self.head {
            Head::Linear => self.output.as_ref().map(|output| output.forward(x)),
            Head::TiedEmbedding => Some(tied(x)),
            Head::MaskedLm => {
                let transform = self.head_transform.as_ref()?;
                let hidden = activate(&transform.activation, transform.dense.forward(x));
                let logits = tied(transform.norm.forward(hidden));
                Some(match &self.head_bias {
                    Some(bias) => logits + bias.val().unsqueeze::<3>(),
                    None => logits,
                })
            }
            Head::None => None,
        }
    }
}
