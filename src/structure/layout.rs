//! Whose names a model's modules go by: glassbox's own module paths, or a HuggingFace
//! checkpoint's, so that each captured tensor is labelled with the path its user knows
//! (`encoder.layer.3.intermediate.dense`, `h.3.mlp.c_fc`), and which checkpoint tensor each
//! glassbox parameter comes from ([`source_of`]). Plain data, no burn.

use super::config::NormPosition;
use super::trace::{Role, Site};

/// The naming scheme of a model's modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// glassbox's burn module paths (`layers.2.ff.linear1`).
    #[default]
    Glassbox,
    /// HuggingFace BERT (`encoder.layer.2.intermediate.dense`), with or without the `bert.`
    /// prefix that `BertFor*` checkpoints carry.
    Bert {
        /// Whether names start with `bert.`.
        prefixed: bool,
    },
    /// HuggingFace RoBERTa: BERT's names under `roberta.`, its masked-LM head as `lm_head`.
    Roberta {
        /// Whether names start with `roberta.`.
        prefixed: bool,
    },
    /// HuggingFace GPT-2 (`h.2.mlp.c_fc`), with or without the `transformer.` prefix that
    /// `GPT2LMHeadModel` checkpoints carry.
    Gpt2 {
        /// Whether names start with `transformer.`.
        prefixed: bool,
    },
}

impl Layout {
    /// The module path that produces the tensor at `site`, in this layout's names, for a model
    /// whose LayerNorms sit at `norm`.
    pub fn module_path(self, site: Site, norm: NormPosition) -> String {
        match self {
            Self::Glassbox => glassbox_path(site, norm),
            Self::Bert { prefixed } => prefix(prefixed, "bert.", bert_path(site)),
            Self::Roberta { prefixed } => {
                let path = bert_path(site).replace("cls.predictions", "lm_head");
                prefix(prefixed, "roberta.", path)
            }
            Self::Gpt2 { prefixed } => prefix(prefixed, "transformer.", gpt2_path(site)),
        }
    }

    /// The family's name, for the page.
    pub fn family(self) -> &'static str {
        match self {
            Self::Glassbox => "glassbox",
            Self::Bert { .. } => "BERT",
            Self::Roberta { .. } => "RoBERTa",
            Self::Gpt2 { .. } => "GPT-2",
        }
    }
}

fn prefix(prefixed: bool, prefix: &str, path: String) -> String {
    // The heads sit beside the prefixed body (`cls.predictions`, `lm_head`).
    if prefixed && !path.starts_with("cls.") && !path.starts_with("lm_head") {
        format!("{prefix}{path}")
    } else {
        path
    }
}

fn glassbox_path(site: Site, norm: NormPosition) -> String {
    let Some(layer) = site.layer else {
        return match site.role {
            Role::Embedding => "embedding",
            Role::Positional => "positional",
            Role::EmbeddingNorm => "embedding_norm",
            Role::FinalNorm => "final_norm",
            _ => "output",
        }
        .to_string();
    };
    let part = match (site.role, norm) {
        (Role::AttentionInput, _) => ".norm1",
        (Role::AttentionOutput, _) => ".attn",
        (Role::FeedForwardInput, NormPosition::Pre) => ".norm2",
        (Role::FeedForwardInput, _) => ".norm1",
        (Role::FeedForwardHidden, _) => ".ff.linear1",
        (Role::FeedForwardActivation, _) => ".ff.activation",
        (Role::FeedForwardOutput, _) => ".ff.linear2",
        (Role::BlockOutput, NormPosition::Post) => ".norm2",
        _ => "",
    };
    format!("layers.{layer}{part}")
}

fn bert_path(site: Site) -> String {
    let Some(layer) = site.layer else {
        return match site.role {
            Role::Embedding => "embeddings.word_embeddings",
            Role::Positional => "embeddings.position_embeddings",
            Role::EmbeddingNorm => "embeddings",
            Role::FinalNorm => "final_norm",
            _ => "cls.predictions",
        }
        .to_string();
    };
    let part = match site.role {
        Role::AttentionOutput => ".attention.output.dense",
        Role::FeedForwardInput | Role::AttentionInput => ".attention.output",
        Role::FeedForwardHidden => ".intermediate.dense",
        Role::FeedForwardActivation => ".intermediate",
        Role::FeedForwardOutput => ".output.dense",
        _ => "",
    };
    format!("encoder.layer.{layer}{part}")
}

fn gpt2_path(site: Site) -> String {
    let Some(layer) = site.layer else {
        return match site.role {
            Role::Embedding => "wte",
            Role::Positional => "wpe",
            Role::EmbeddingNorm => "embeddings",
            Role::FinalNorm => "ln_f",
            _ => "lm_head",
        }
        .to_string();
    };
    let part = match site.role {
        Role::AttentionInput => ".ln_1",
        Role::AttentionOutput => ".attn",
        Role::FeedForwardInput => ".ln_2",
        Role::FeedForwardHidden => ".mlp.c_fc",
        Role::FeedForwardActivation => ".mlp.act",
        Role::FeedForwardOutput => ".mlp.c_proj",
        _ => "",
    };
    format!("h.{layer}{part}")
}

/// How a checkpoint tensor becomes a glassbox parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// As stored.
    Copy,
    /// `[out, in]` → `[in, out]` (`nn.Linear`).
    Transpose,
    /// Part `part` of `parts` equal slices along the last axis (GPT-2's packed `c_attn`).
    Split {
        /// Which slice.
        part: usize,
        /// How many.
        parts: usize,
    },
}

/// Where a glassbox parameter comes from: candidate names (the first one present is used,
/// e.g. `LayerNorm.weight` or the old `LayerNorm.gamma`) and the transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOf {
    /// Names in the checkpoint, in order of preference.
    pub names: Vec<String>,
    /// Layout change.
    pub transform: Transform,
}

/// The checkpoint tensor a glassbox parameter (`layers.2.attn.query.weight`) comes from, in
/// `layout`'s names; `None` for a glassbox layout or a path the family does not have.
pub fn source_of(layout: Layout, path: &str) -> Option<SourceOf> {
    match layout {
        Layout::Glassbox => None,
        Layout::Bert { prefixed } => {
            bert_source(path, if prefixed { "bert." } else { "" }, &BERT_HEAD)
        }
        Layout::Roberta { prefixed } => {
            bert_source(path, if prefixed { "roberta." } else { "" }, &ROBERTA_HEAD)
        }
        Layout::Gpt2 { prefixed } => gpt2_source(path, if prefixed { "transformer." } else { "" }),
    }
}

fn one(name: String, transform: Transform) -> Option<SourceOf> {
    Some(SourceOf {
        names: vec![name],
        transform,
    })
}

/// A LayerNorm's parameter under both of BERT's names.
fn norm(module: &str, leaf: &str) -> Option<SourceOf> {
    let (new, old) = match leaf {
        "gamma" => ("weight", "gamma"),
        "beta" => ("bias", "beta"),
        _ => return None,
    };
    Some(SourceOf {
        names: vec![format!("{module}.{new}"), format!("{module}.{old}")],
        transform: Transform::Copy,
    })
}

fn linear(module: &str, leaf: &str) -> Option<SourceOf> {
    match leaf {
        "weight" => one(format!("{module}.weight"), Transform::Transpose),
        "bias" => one(format!("{module}.bias"), Transform::Copy),
        _ => None,
    }
}

/// Where a BERT-like masked-LM head keeps its parts.
struct MaskedLmNames {
    bias: &'static str,
    dense: &'static str,
    norm: &'static str,
}

const BERT_HEAD: MaskedLmNames = MaskedLmNames {
    bias: "cls.predictions.bias",
    dense: "cls.predictions.transform.dense",
    norm: "cls.predictions.transform.LayerNorm",
};

const ROBERTA_HEAD: MaskedLmNames = MaskedLmNames {
    bias: "lm_head.bias",
    dense: "lm_head.dense",
    norm: "lm_head.layer_norm",
};

fn bert_source(path: &str, prefix: &str, head: &MaskedLmNames) -> Option<SourceOf> {
    let embeddings = format!("{prefix}embeddings");
    match path {
        "embedding.weight" => {
            return one(
                format!("{embeddings}.word_embeddings.weight"),
                Transform::Copy,
            );
        }
        "position_embedding.weight" => {
            return one(
                format!("{embeddings}.position_embeddings.weight"),
                Transform::Copy,
            );
        }
        "token_type_embedding.weight" => {
            return one(
                format!("{embeddings}.token_type_embeddings.weight"),
                Transform::Copy,
            );
        }
        "head_bias" => return one(head.bias.into(), Transform::Copy),
        _ => {}
    }
    let (module, leaf) = path.rsplit_once('.')?;
    if module == "embedding_norm" {
        return norm(&format!("{embeddings}.LayerNorm"), leaf);
    }
    if let Some(part) = module.strip_prefix("head_transform.") {
        return match part {
            "dense" => linear(head.dense, leaf),
            "norm" => norm(head.norm, leaf),
            _ => None,
        };
    }
    let (layer, part) = module.strip_prefix("layers.")?.split_once('.')?;
    let base = format!("{prefix}encoder.layer.{layer}");
    match part {
        "attn.query" | "attn.key" | "attn.value" => {
            let which = part.trim_start_matches("attn.");
            linear(&format!("{base}.attention.self.{which}"), leaf)
        }
        "attn.output" => linear(&format!("{base}.attention.output.dense"), leaf),
        "norm1" => norm(&format!("{base}.attention.output.LayerNorm"), leaf),
        "ff.linear1" => linear(&format!("{base}.intermediate.dense"), leaf),
        "ff.linear2" => linear(&format!("{base}.output.dense"), leaf),
        "norm2" => norm(&format!("{base}.output.LayerNorm"), leaf),
        _ => None,
    }
}

fn gpt2_source(path: &str, prefix: &str) -> Option<SourceOf> {
    match path {
        "embedding.weight" => return one(format!("{prefix}wte.weight"), Transform::Copy),
        "position_embedding.weight" => return one(format!("{prefix}wpe.weight"), Transform::Copy),
        _ => {}
    }
    let (module, leaf) = path.rsplit_once('.')?;
    let conv = |module: String, transform: Transform| match leaf {
        "weight" | "bias" => one(format!("{module}.{leaf}"), transform),
        _ => None,
    };
    let ln = |module: String| match leaf {
        "gamma" => one(format!("{module}.weight"), Transform::Copy),
        "beta" => one(format!("{module}.bias"), Transform::Copy),
        _ => None,
    };
    if module == "final_norm" {
        return ln(format!("{prefix}ln_f"));
    }
    let (layer, part) = module.strip_prefix("layers.")?.split_once('.')?;
    let base = format!("{prefix}h.{layer}");
    let split = |part| Transform::Split { part, parts: 3 };
    match part {
        "attn.query" => conv(format!("{base}.attn.c_attn"), split(0)),
        "attn.key" => conv(format!("{base}.attn.c_attn"), split(1)),
        "attn.value" => conv(format!("{base}.attn.c_attn"), split(2)),
        "attn.output" => conv(format!("{base}.attn.c_proj"), Transform::Copy),
        "norm1" => ln(format!("{base}.ln_1")),
        "norm2" => ln(format!("{base}.ln_2")),
        "ff.linear1" => conv(format!("{base}.mlp.c_fc"), Transform::Copy),
        "ff.linear2" => conv(format!("{base}.mlp.c_proj"), Transform::Copy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_checkpoints_own_module_paths() {
        let at = |role| Site::layer(role, 3);
        let bert = Layout::Bert { prefixed: true };
        assert_eq!(
            bert.module_path(at(Role::FeedForwardHidden), NormPosition::Post),
            "bert.encoder.layer.3.intermediate.dense"
        );
        assert_eq!(
            bert.module_path(Site::global(Role::Logits), NormPosition::Post),
            "cls.predictions"
        );
        let gpt2 = Layout::Gpt2 { prefixed: false };
        assert_eq!(
            gpt2.module_path(at(Role::FeedForwardHidden), NormPosition::Pre),
            "h.3.mlp.c_fc"
        );
        assert_eq!(
            Layout::Gpt2 { prefixed: true }
                .module_path(Site::global(Role::Logits), NormPosition::Pre),
            "lm_head"
        );
        assert_eq!(
            Layout::Glassbox.module_path(at(Role::BlockOutput), NormPosition::Post),
            "layers.3.norm2"
        );
        assert_eq!(
            Layout::Glassbox.module_path(at(Role::FeedForwardInput), NormPosition::Pre),
            "layers.3.norm2"
        );
    }
}
