//! Whose names a model's modules go by: glassbox's own module paths, or a HuggingFace
//! checkpoint's, so that each captured tensor is labelled with the path its user knows
//! (`encoder.layer.3.intermediate.dense`, `h.3.mlp.c_fc`). Plain data, no burn.

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
            Self::Gpt2 { prefixed } => prefix(prefixed, "transformer.", gpt2_path(site)),
        }
    }

    /// The family's name, for the page.
    pub fn family(self) -> &'static str {
        match self {
            Self::Glassbox => "glassbox",
            Self::Bert { .. } => "BERT",
            Self::Gpt2 { .. } => "GPT-2",
        }
    }
}

fn prefix(prefixed: bool, prefix: &str, path: String) -> String {
    // The heads sit beside the prefixed body (`cls.predictions`, `lm_head`).
    if prefixed && !path.starts_with("cls.") && path != "lm_head" {
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
