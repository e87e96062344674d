//! Plain data captured by a traced forward pass: nothing here touches burn.

use super::config::NormPosition;

/// What a captured tensor is in the model's data flow, the same whatever the layout calls it:
/// analysis keys on this, never on a module's name.
///
/// A LayerNorm's output has the role of what reads it: in post-LN the first norm's output is
/// the [`Role::FeedForwardInput`] and the second's the [`Role::BlockOutput`]; in pre-LN the
/// first norm's output is the [`Role::AttentionInput`] and the second's the
/// [`Role::FeedForwardInput`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Token embeddings, `[batch, seq, d_model]`.
    Embedding,
    /// Token embeddings with the positions added (learned or sinusoidal), and the token
    /// types where the model has them.
    Positional,
    /// The embeddings' sum after the embedding LayerNorm (BERT): what the first layer reads.
    EmbeddingNorm,
    /// What a layer's attention reads when it is not the layer's input: the normalised input
    /// of a pre-LN block.
    AttentionInput,
    /// The attention's output (the context after the output projection), before the residual.
    AttentionOutput,
    /// What the feed-forward block reads: the normalised residual sum (post-LN's first norm,
    /// pre-LN's second).
    FeedForwardInput,
    /// The feed-forward block's first linear output, before the activation, `[batch, seq, d_ff]`.
    FeedForwardHidden,
    /// The hidden units after the activation: where dead units are counted.
    FeedForwardActivation,
    /// The feed-forward block's second linear output, before the residual sum.
    FeedForwardOutput,
    /// The layer's output, what the next layer reads (post-LN: its second norm's output).
    BlockOutput,
    /// The last layer's output after the final LayerNorm (GPT-2's `ln_f`).
    FinalNorm,
    /// The vocabulary logits, `[batch, seq, vocab_size]`.
    Logits,
}

impl Role {
    /// Whether a tensor of this role belongs to one encoder layer.
    pub fn in_layer(self) -> bool {
        !matches!(
            self,
            Self::Embedding
                | Self::Positional
                | Self::EmbeddingNorm
                | Self::FinalNorm
                | Self::Logits
        )
    }

    /// The role in a few plain words, for the page.
    pub fn words(self) -> &'static str {
        match self {
            Self::Embedding => "token embedding",
            Self::Positional => "embedding + positions",
            Self::EmbeddingNorm => "embeddings (normalised)",
            Self::FinalNorm => "final norm",
            Self::AttentionInput => "attention input (normalised)",
            Self::AttentionOutput => "attention output",
            Self::FeedForwardInput => "feed-forward input (normalised)",
            Self::FeedForwardHidden => "feed-forward pre-activation",
            Self::FeedForwardActivation => "feed-forward activation",
            Self::FeedForwardOutput => "feed-forward output",
            Self::BlockOutput => "layer output",
            Self::Logits => "logits",
        }
    }
}

/// Where a captured tensor sits in the model: its [`Role`] and, for a layer's tensors, the
/// layer (from 0).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Site {
    /// What the tensor is.
    pub role: Role,
    /// The encoder layer, for roles that are [`Role::in_layer`].
    pub layer: Option<usize>,
}

impl Site {
    /// A tensor outside the layers (embedding, positions, logits).
    pub fn global(role: Role) -> Self {
        Self { role, layer: None }
    }

    /// A tensor of encoder layer `layer`.
    pub fn layer(role: Role, layer: usize) -> Self {
        Self {
            role,
            layer: Some(layer),
        }
    }
}

/// One captured tensor: where it sits, its label, its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Capture {
    /// What the tensor is, whatever the layout names it.
    pub role: Role,
    /// The encoder layer it belongs to, for roles that are [`Role::in_layer`].
    #[serde(default)]
    pub layer: Option<usize>,
    /// Its label: the module path that produced it, e.g. `layers.2.ff.linear1`. A label names,
    /// it does not mean: a checkpoint's own module paths may take its place.
    pub path: String,
    /// Shape, outermost dimension first, e.g. `[batch, seq, d_model]`.
    pub shape: Vec<usize>,
    /// Values in row-major order; `values.len()` is the product of `shape`.
    pub values: Vec<f32>,
}

impl Capture {
    /// Number of scalar values the shape describes.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Where the tensor sits.
    pub fn site(&self) -> Site {
        Site {
            role: self.role,
            layer: self.layer,
        }
    }
}

/// Attention weights of one layer, `[batch, heads, queries, keys]`, as returned by the
/// layer's `MultiHeadAttention` (after softmax and masking, dropout off).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionCapture {
    /// Index of the encoder layer, counted from 0.
    pub layer: usize,
    /// Number of sequences in the batch.
    pub batch: usize,
    /// Number of attention heads.
    pub heads: usize,
    /// Number of query positions (rows).
    pub queries: usize,
    /// Number of key positions (columns).
    pub keys: usize,
    /// Values in `[batch, heads, queries, keys]` row-major order.
    pub values: Vec<f32>,
}

impl AttentionCapture {
    /// The `[queries, keys]` map of one head of one sequence, row-major (queries are rows).
    ///
    /// Returns `None` when `batch` or `head` is out of range.
    pub fn head_map(&self, batch: usize, head: usize) -> Option<&[f32]> {
        if batch >= self.batch || head >= self.heads {
            return None;
        }
        let size = self.queries * self.keys;
        let start = (batch * self.heads + head) * size;
        self.values.get(start..start + size)
    }
}

/// Everything one traced forward pass captured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// Attention weights per layer, in layer order.
    pub attention: Vec<AttentionCapture>,
    /// Every distinct tensor captured, once each, in execution order.
    pub modules: Vec<Capture>,
}

impl Trace {
    /// The capture labelled `path`, if there is one.
    pub fn module(&self, path: &str) -> Option<&Capture> {
        self.modules.iter().find(|capture| capture.path == path)
    }

    /// The capture at `site`, if it was captured.
    pub fn at(&self, site: Site) -> Option<&Capture> {
        self.modules.iter().find(|capture| capture.site() == site)
    }

    /// The attention maps of encoder layer `layer`, if they were captured. A partial trace
    /// (`glassbox-trace --layers`) holds some layers only, so `attention[i]` need not be
    /// layer `i`: look layers up here.
    pub fn attention_of(&self, layer: usize) -> Option<&AttentionCapture> {
        self.attention
            .iter()
            .find(|attention| attention.layer == layer)
    }
}

/// The names under which the PyTorch fixtures (`scripts/make_fixtures.py`, the seed chapter's
/// `nn.TransformerEncoder` module paths, prefixed `modules.`) hold the tensor at `site` of a
/// model whose LayerNorms sit at `norm`. Post-LN's layer output is both `layers.{i}.norm2` and
/// `layers.{i}` there (one tensor, two hooks), so a site can have two names; a site the
/// fixtures do not record has none.
pub fn fixture_names(site: Site, norm: NormPosition) -> Vec<String> {
    let Some(layer) = site.layer else {
        let name = match site.role {
            Role::Embedding => "modules.embedding",
            Role::Positional => "modules.positional",
            Role::Logits => "modules.output",
            _ => return Vec::new(),
        };
        return vec![name.to_string()];
    };
    let prefix = format!("modules.layers.{layer}");
    let parts: &[&str] = match (site.role, norm) {
        (Role::AttentionInput, NormPosition::Pre) => &[".norm1"],
        (Role::AttentionOutput, _) => &[".attn"],
        (Role::FeedForwardInput, NormPosition::Pre) => &[".norm2"],
        (Role::FeedForwardInput, NormPosition::Post) => &[".norm1"],
        (Role::FeedForwardHidden, _) => &[".ff.linear1"],
        (Role::FeedForwardActivation, _) => &[".ff.activation"],
        (Role::FeedForwardOutput, _) => &[".ff.linear2"],
        (Role::BlockOutput, NormPosition::Post) => &["", ".norm2"],
        (Role::BlockOutput, _) => &[""],
        _ => &[],
    };
    parts.iter().map(|part| format!("{prefix}{part}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_role_reads_back_from_its_name() {
        for role in Role::iter() {
            let name: &str = role.into();
            assert_eq!(name.parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), name);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        assert!(Role::BlockOutput.in_layer() && !Role::Logits.in_layer());
    }

    #[test]
    fn attention_is_looked_up_by_its_layer_not_its_place() {
        let map = |layer| AttentionCapture {
            layer,
            batch: 1,
            heads: 1,
            queries: 1,
            keys: 1,
            values: vec![1.0],
        };
        // A partial trace of layers 0 and 3.
        let trace = Trace {
            attention: vec![map(0), map(3)],
            modules: Vec::new(),
        };
        assert_eq!(trace.attention_of(3).map(|a| a.layer), Some(3));
        assert_eq!(trace.attention_of(0).map(|a| a.layer), Some(0));
        assert!(trace.attention_of(1).is_none());
    }

    #[test]
    fn fixture_names_follow_the_layout_not_the_label() {
        let names = |role, norm| fixture_names(Site::layer(role, 3), norm);
        assert_eq!(
            names(Role::FeedForwardInput, NormPosition::Post),
            ["modules.layers.3.norm1"]
        );
        assert_eq!(
            names(Role::FeedForwardInput, NormPosition::Pre),
            ["modules.layers.3.norm2"]
        );
        assert_eq!(
            names(Role::BlockOutput, NormPosition::Post),
            ["modules.layers.3", "modules.layers.3.norm2"]
        );
        assert_eq!(
            names(Role::BlockOutput, NormPosition::Pre),
            ["modules.layers.3"]
        );
        assert!(names(Role::AttentionInput, NormPosition::Post).is_empty());
        assert_eq!(
            fixture_names(Site::global(Role::Logits), NormPosition::Pre),
            ["modules.output"]
        );
    }
}
