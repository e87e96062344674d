//! Training setups that reproduce a classic failure, so that a learner sees each detector fire
//! and learns what the failure looks like; and the healthy setup they differ from.

use super::trainer::{OptimizerKind, Schedule, TrainConfig};
use crate::model::{Activation, NormPosition};

/// A named training setup: healthy, or broken in one well-known way. Its name (`healthy`,
/// `exploding`, `vanishing`, `dying-relu`) is what URLs, the page and the CLI use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[strum(serialize_all = "kebab-case")]
pub enum Problem {
    /// The defaults: AdamW, warm-up and cosine decay, clipping at 1.
    Healthy,
    /// SGD with momentum 0.9 at a learning rate of 10, no clipping, no warm-up: the updates
    /// overshoot, the weights grow, and the gradients grow with them until they overflow.
    Exploding,
    /// Six layers with no residual connections, no LayerNorm and sigmoid feed-forward units:
    /// each layer shrinks the gradient on its way down until the lower layers get almost none.
    Vanishing,
    /// Every feed-forward hidden bias starts at −3: the ReLU units' inputs sit far below zero,
    /// so nearly all output exactly zero and pass no gradient back, and they stay dead.
    DyingRelu,
}

impl Problem {
    /// Name used in the page, the CLI and URLs.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The preset called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// What goes wrong, in a sentence for the page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Healthy => {
                "AdamW with warm-up, cosine decay and clipping: no detector should fire."
            }
            Self::Exploding => {
                "SGD (momentum 0.9) at learning rate 10, no clipping, no warm-up: gradient norms pass 1e3 within a few steps, then overflow."
            }
            Self::Vanishing => {
                "6 layers, no residual connections, no LayerNorm, sigmoid units: the lower layers' gradients fall below 1e-6."
            }
            Self::DyingRelu => {
                "Feed-forward biases start at −3: nearly every ReLU output is exactly zero; the units pass no gradient back and stay dead."
            }
        }
    }

    /// `config` changed to reproduce this problem (healthy leaves it as it is).
    pub fn apply(self, config: TrainConfig) -> TrainConfig {
        match self {
            Self::Healthy => config,
            Self::Exploding => TrainConfig {
                optimizer: OptimizerKind::Sgd { momentum: 0.9 },
                learning_rate: 10.0,
                schedule: Schedule::Constant,
                warmup_steps: 0,
                clip_norm: None,
                ..config
            },
            Self::Vanishing => {
                let mut config = config;
                config.model.num_layers = 6;
                config.model.residual = false;
                config.model.norm_position = NormPosition::None;
                config.model.activation = Activation::Sigmoid;
                config
            }
            Self::DyingRelu => {
                let mut config = config;
                config.model.activation = Activation::Relu;
                config.ff_bias_init = self.ff_bias_init();
                config
            }
        }
    }

    /// The feed-forward bias every hidden unit starts at, when this problem sets one.
    pub fn ff_bias_init(self) -> Option<f64> {
        (self == Self::DyingRelu).then_some(-3.0)
    }
}
