//! The training form as the page holds it and as the address carries it (`task` and the
//! `train_*` keys): typed settings, read from and written to a query, and turned into the
//! trainer's [`TrainConfig`] when a run starts.

use strum::{EnumString, IntoStaticStr, VariantArray};

use crate::structure::{Activation, NormPosition, TransformerConfig};
use crate::train::{OptimizerChoice, Problem, ScheduleChoice, TaskKind, TrainConfig};

/// The model preset the form trains, or `custom` for its size fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum ModelPreset {
    /// [`TransformerConfig::tiny`]: 2 layers of width 64.
    Tiny,
    /// [`TransformerConfig::seed`]: the seed chapter's 4 layers of width 256.
    Seed,
    /// The form's own layers, width, heads, feed-forward width, norm, activation, causality
    /// and residual connections.
    Custom,
}

impl ModelPreset {
    /// The words the form's select shows for this preset.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tiny => "tiny (2 layers, d 64)",
            Self::Seed => "seed (4 layers, d 256)",
            Self::Custom => "custom…",
        }
    }
}

/// Every setting of a run, as the form holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    /// The toy task.
    pub task: TaskKind,
    /// Model preset, or custom for the size fields below.
    pub preset: ModelPreset,
    /// Custom size: encoder layers.
    pub layers: usize,
    /// Custom size: model width.
    pub d_model: usize,
    /// Custom size: attention heads.
    pub heads: usize,
    /// Custom size: feed-forward width.
    pub d_ff: usize,
    /// Custom: LayerNorm position.
    pub norm: NormPosition,
    /// Custom: the feed-forward non-linearity.
    pub activation: Activation,
    /// Custom: causal attention mask (the language task is always causal).
    pub causal: bool,
    /// The optimizer.
    pub optimizer: OptimizerChoice,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The schedule after warm-up.
    pub schedule: ScheduleChoice,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Global gradient-norm clip; 0 for none.
    pub clip: f64,
    /// Seed of the weights and the data.
    pub seed: u64,
    /// Planned steps.
    pub steps: usize,
    /// Held-out evaluation every this many steps.
    pub eval_every: usize,
    /// Probe attention snapshot every this many steps.
    pub probe_every: usize,
    /// Custom: residual connections.
    pub residual: bool,
    /// Problem preset.
    pub problem: Problem,
    /// Gradient and activation analysis every this many steps; 0 for never.
    pub analyse_every: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        let tiny = TransformerConfig::tiny();
        Self {
            task: TaskKind::Reverse,
            preset: ModelPreset::Tiny,
            layers: tiny.num_layers,
            d_model: tiny.d_model,
            heads: tiny.num_heads,
            d_ff: tiny.d_ff,
            norm: NormPosition::Post,
            activation: Activation::Relu,
            causal: false,
            optimizer: OptimizerChoice::Adamw,
            learning_rate: 1e-3,
            schedule: ScheduleChoice::Cosine,
            warmup: 50,
            batch_size: 64,
            clip: 1.0,
            seed: 0,
            steps: 600,
            eval_every: 50,
            probe_every: 25,
            residual: true,
            problem: Problem::Healthy,
            analyse_every: 1,
        }
    }
}

impl RunSettings {
    /// The architecture these settings train (before the task shapes it).
    pub fn model(&self) -> TransformerConfig {
        match self.preset {
            ModelPreset::Custom => TransformerConfig {
                num_layers: self.layers,
                d_model: self.d_model,
                num_heads: self.heads,
                d_ff: self.d_ff,
                norm_position: self.norm,
                activation: self.activation,
                causal: self.causal,
                residual: self.residual,
                ..TransformerConfig::tiny()
            },
            ModelPreset::Tiny => TransformerConfig::tiny(),
            ModelPreset::Seed => TransformerConfig::seed(),
        }
    }

    /// The training config these settings describe, or what is wrong with them.
    pub fn config(&self, frozen: Vec<String>) -> Result<TrainConfig, String> {
        let model = self.model();
        model.validate()?;
        if self.steps == 0 || self.batch_size == 0 || self.eval_every == 0 {
            return Err("steps, batch size and the evaluation interval must be at least 1".into());
        }
        check_limits(&model, self.batch_size, self.steps)?;
        Ok(TrainConfig {
            task: self.task,
            model,
            optimizer: self.optimizer.kind(),
            learning_rate: self.learning_rate,
            schedule: self.schedule.schedule(self.steps),
            warmup_steps: self.warmup,
            batch_size: self.batch_size,
            steps: self.steps,
            clip_norm: (self.clip > 0.0).then_some(self.clip),
            seed: self.seed,
            ff_bias_init: self.problem.ff_bias_init(),
            frozen,
        })
    }

    /// These settings with `problem`'s preset applied, the fields shown in the form set to it.
    pub fn with_problem(&self, problem: Problem) -> Self {
        let base = Self {
            problem,
            task: self.task,
            steps: self.steps,
            eval_every: self.eval_every,
            probe_every: self.probe_every,
            analyse_every: self.analyse_every.max(1),
            seed: self.seed,
            ..Self::default()
        };
        let Ok(config) = base.config(Vec::new()) else {
            return base;
        };
        let config = problem.apply(config);
        let model = &config.model;
        let tiny = TransformerConfig::tiny();
        let custom = model.num_layers != tiny.num_layers
            || model.norm_position != tiny.norm_position
            || model.activation != tiny.activation
            || model.residual != tiny.residual;
        Self {
            preset: if custom {
                ModelPreset::Custom
            } else {
                base.preset
            },
            layers: model.num_layers,
            norm: model.norm_position,
            activation: model.activation,
            residual: model.residual,
            optimizer: config.optimizer.choice(),
            learning_rate: config.learning_rate,
            schedule: config.schedule.choice(),
            warmup: config.warmup_steps,
            clip: config.clip_norm.unwrap_or(0.0),
            ..base
        }
    }
}

/// A value written as one of a fixed set of words, which strum derives for each enum.
pub(super) trait Word {
    /// The value's word.
    fn word(&self) -> &'static str;
    /// Sets the value from `text`; false (and nothing changed) when it is no word of the set.
    fn set_word(&mut self, text: &str) -> bool;
}

impl<T> Word for T
where
    T: Copy + std::str::FromStr + Into<&'static str>,
{
    fn word(&self) -> &'static str {
        (*self).into()
    }

    fn set_word(&mut self, text: &str) -> bool {
        match text.parse() {
            Ok(value) => {
                *self = value;
                true
            }
            Err(_) => false,
        }
    }
}

/// One setting, borrowed for reading or writing it as text.
pub(super) enum Field<'a> {
    /// One of a fixed set of words.
    Choice(&'a mut dyn Word),
    /// A whole number ≥ 0.
    Count(&'a mut usize),
    /// A seed.
    Seed(&'a mut u64),
    /// A finite number ≥ 0.
    Real(&'a mut f64),
    /// `1` or `0`.
    Flag(&'a mut bool),
}

impl Field<'_> {
    /// The value as the address writes it.
    pub(super) fn text(&self) -> String {
        match self {
            Self::Choice(value) => value.word().to_string(),
            Self::Count(value) => value.to_string(),
            Self::Seed(value) => value.to_string(),
            Self::Real(value) => value.to_string(),
            Self::Flag(value) => if **value { "1" } else { "0" }.to_string(),
        }
    }

    /// Sets the value from `text`; false (and nothing changed) when it does not parse.
    fn set(&mut self, text: &str) -> bool {
        match self {
            Self::Choice(value) => return value.set_word(text),
            Self::Count(value) => match text.parse() {
                Ok(parsed) => **value = parsed,
                Err(_) => return false,
            },
            Self::Seed(value) => match text.parse() {
                Ok(parsed) => **value = parsed,
                Err(_) => return false,
            },
            Self::Real(value) => match text.parse::<f64>() {
                Ok(parsed) if parsed.is_finite() && parsed >= 0.0 => **value = parsed,
                _ => return false,
            },
            Self::Flag(value) => match text {
                "1" | "true" => **value = true,
                "0" | "false" => **value = false,
                _ => return false,
            },
        }
        true
    }
}

/// Address keys of the settings, in the order [`RunSettings::to_pairs`] writes them.
pub const KEYS: [&str; 22] = [
    "task",
    "train_problem",
    "train_preset",
    "train_layers",
    "train_d_model",
    "train_heads",
    "train_d_ff",
    "train_norm",
    "train_activation",
    "train_causal",
    "train_residual",
    "train_optimizer",
    "train_lr",
    "train_schedule",
    "train_warmup",
    "train_batch",
    "train_clip",
    "train_seed",
    "train_steps",
    "train_eval_every",
    "train_probe_every",
    "train_analyse_every",
];

impl RunSettings {
    /// Every setting under its name in the address ([`KEYS`], in that order).
    pub(super) fn fields(&mut self) -> [(&'static str, Field<'_>); 22] {
        let [
            task,
            problem,
            preset,
            layers,
            d_model,
            heads,
            d_ff,
            norm,
            activation,
            causal,
            residual,
            optimizer,
            lr,
            schedule,
            warmup,
            batch,
            clip,
            seed,
            steps,
            eval_every,
            probe_every,
            analyse_every,
        ] = KEYS;
        [
            (task, Field::Choice(&mut self.task)),
            (problem, Field::Choice(&mut self.problem)),
            (preset, Field::Choice(&mut self.preset)),
            (layers, Field::Count(&mut self.layers)),
            (d_model, Field::Count(&mut self.d_model)),
            (heads, Field::Count(&mut self.heads)),
            (d_ff, Field::Count(&mut self.d_ff)),
            (norm, Field::Choice(&mut self.norm)),
            (activation, Field::Choice(&mut self.activation)),
            (causal, Field::Flag(&mut self.causal)),
            (residual, Field::Flag(&mut self.residual)),
            (optimizer, Field::Choice(&mut self.optimizer)),
            (lr, Field::Real(&mut self.learning_rate)),
            (schedule, Field::Choice(&mut self.schedule)),
            (warmup, Field::Count(&mut self.warmup)),
            (batch, Field::Count(&mut self.batch_size)),
            (clip, Field::Real(&mut self.clip)),
            (seed, Field::Seed(&mut self.seed)),
            (steps, Field::Count(&mut self.steps)),
            (eval_every, Field::Count(&mut self.eval_every)),
            (probe_every, Field::Count(&mut self.probe_every)),
            (analyse_every, Field::Count(&mut self.analyse_every)),
        ]
    }

    /// Each setting's address key with its value as text, in [`KEYS`] order.
    pub fn texts(&self) -> Vec<(&'static str, String)> {
        let mut this = self.clone();
        this.fields()
            .iter()
            .map(|(key, field)| (*key, field.text()))
            .collect()
    }

    /// Whether `key` is one of the address keys these settings use.
    pub fn is_key(key: &str) -> bool {
        KEYS.contains(&key)
    }

    /// The settings that differ from the defaults, as address pairs, in a fixed order.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.texts()
            .into_iter()
            .zip(Self::default().texts())
            .filter(|((_, text), (_, default))| text != default)
            .map(|((key, text), _)| (key.to_string(), text))
            .collect()
    }

    /// The default settings with `pairs` applied. Keys of other settings are passed over, and a
    /// value that does not parse leaves its default, so a damaged link still opens.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut settings = Self::default();
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        for (name, mut field) in settings.fields() {
            if let Some((_, value)) = pairs.iter().rev().find(|(key, _)| *key == name) {
                field.set(value.trim());
            }
        }
        settings
    }

    /// The settings a query string (with or without its `?`) carries.
    pub fn from_query(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// `query` with these settings in place of any it carried, the other keys kept in order.
    pub fn in_query(&self, query: &str) -> String {
        let mut state = crate::share::ViewState::from_query(query);
        state.other.retain(|(key, _)| !Self::is_key(key));
        state.other.extend(self.to_pairs());
        state.to_query()
    }
}

/// The largest model and run the page trains: past these a browser tab runs out of memory
/// (wasm32 has 4 GiB at most, SwiftShader 128 MiB per buffer) long before a step finishes.
pub const LIMITS: Limits = Limits {
    layers: 24,
    d_model: 1024,
    d_ff: 4096,
    heads: 32,
    batch_size: 1024,
    steps: 1_000_000,
};

/// Upper bounds of the training form's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Encoder layers.
    pub layers: usize,
    /// Model width.
    pub d_model: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Attention heads.
    pub heads: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Training steps.
    pub steps: usize,
}

/// Refuses, in words, a model or run past [`LIMITS`].
fn check_limits(model: &TransformerConfig, batch_size: usize, steps: usize) -> Result<(), String> {
    let checks = [
        ("layers", model.num_layers, LIMITS.layers),
        ("d_model", model.d_model, LIMITS.d_model),
        ("the feed-forward width", model.d_ff, LIMITS.d_ff),
        ("heads", model.num_heads, LIMITS.heads),
        ("the batch size", batch_size, LIMITS.batch_size),
        ("steps", steps, LIMITS.steps),
    ];
    match checks.iter().find(|(_, value, limit)| value > limit) {
        Some((name, value, limit)) => Err(format!(
            "{name} {value} is more than the page trains (at most {limit}): a browser tab would run out of memory"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_round_trip_through_address_pairs() {
        let settings = RunSettings {
            task: TaskKind::Sort,
            preset: ModelPreset::Custom,
            layers: 3,
            norm: NormPosition::Pre,
            activation: Activation::Gelu,
            causal: true,
            residual: false,
            optimizer: OptimizerChoice::Sgd,
            learning_rate: 0.0125,
            schedule: ScheduleChoice::Step,
            clip: 0.0,
            seed: 42,
            steps: 1234,
            problem: Problem::Exploding,
            analyse_every: 0,
            ..RunSettings::default()
        };
        let pairs = settings.to_pairs();
        assert_eq!(pairs[0], ("task".to_string(), "sort".to_string()));
        assert!(pairs.iter().all(|(key, _)| RunSettings::is_key(key)));
        // Only what differs from the defaults is written.
        assert_eq!(pairs.len(), 15, "{pairs:?}");
        let back = RunSettings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(back, settings);
        assert!(RunSettings::default().to_pairs().is_empty());
        assert!(!RunSettings::is_key("layer") && !RunSettings::is_key("text"));
        let query = settings.in_query("?backend=cpu&task=reverse&train_seed=9&tab=train&layer=1");
        assert!(query.starts_with("?backend=cpu&task=sort&"), "{query}");
        assert!(query.ends_with("&tab=train&layer=1"), "{query}");
        assert_eq!(RunSettings::from_query(&query), settings);
    }

    #[test]
    fn old_links_keep_their_words() {
        // The words links written before the typed form carry.
        let settings = RunSettings::from_query(
            "?task=language&train_problem=dying-relu&train_preset=custom&train_norm=none\
             &train_activation=sigmoid&train_optimizer=adam&train_schedule=constant&train_causal=1",
        );
        assert_eq!(settings.task, TaskKind::Language);
        assert_eq!(settings.problem, Problem::DyingRelu);
        assert_eq!(settings.preset, ModelPreset::Custom);
        assert_eq!(settings.norm, NormPosition::None);
        assert_eq!(settings.activation, Activation::Sigmoid);
        assert_eq!(settings.optimizer, OptimizerChoice::Adam);
        assert_eq!(settings.schedule, ScheduleChoice::Constant);
        assert!(settings.causal);
        let config = settings.config(Vec::new()).unwrap();
        assert!(config.model.causal, "train_causal=1 trains a causal model");
        assert_eq!(config.ff_bias_init, Some(-3.0));
        assert_eq!(
            RunSettings::from_query("?task=%20Sort%20").task,
            TaskKind::Sort
        );
    }

    #[test]
    fn damaged_values_keep_their_defaults() {
        let settings = RunSettings::from_pairs([
            ("task", "juggle"),
            ("train_lr", "-1"),
            ("train_clip", "NaN"),
            ("train_steps", "many"),
            ("train_causal", "maybe"),
            ("train_optimizer", "lbfgs"),
            ("train_seed", "7"),
            ("layer", "3"),
        ]);
        assert_eq!(
            settings,
            RunSettings {
                seed: 7,
                ..RunSettings::default()
            }
        );
    }

    #[test]
    fn the_exploding_preset_fills_the_form_with_its_settings() {
        let settings = RunSettings::default().with_problem(Problem::Exploding);
        assert_eq!(settings.optimizer, OptimizerChoice::Sgd);
        assert_eq!(settings.learning_rate, 10.0);
        assert_eq!(settings.schedule, ScheduleChoice::Constant);
        assert_eq!((settings.warmup, settings.clip), (0, 0.0));
        let vanishing = RunSettings::default().with_problem(Problem::Vanishing);
        assert_eq!(vanishing.preset, ModelPreset::Custom);
        assert_eq!(vanishing.layers, 6);
        assert_eq!(vanishing.activation, Activation::Sigmoid);
        assert!(!vanishing.residual);
    }

    #[test]
    fn a_bad_form_is_refused_in_words() {
        let settings = RunSettings {
            steps: 0,
            ..RunSettings::default()
        };
        assert!(
            settings
                .config(Vec::new())
                .unwrap_err()
                .contains("at least 1")
        );
        let settings = RunSettings {
            preset: ModelPreset::Custom,
            heads: 0,
            ..RunSettings::default()
        };
        assert!(settings.config(Vec::new()).is_err());
    }

    #[test]
    fn sizes_past_the_limits_are_refused_in_words() {
        let huge_batch = RunSettings {
            batch_size: 1_000_000_000,
            ..RunSettings::default()
        };
        let error = huge_batch.config(Vec::new()).unwrap_err();
        assert!(error.contains("batch size 1000000000"), "{error}");
        let wide = RunSettings {
            preset: ModelPreset::Custom,
            d_model: 1_000_000,
            heads: 4,
            ..RunSettings::default()
        };
        assert!(
            wide.config(Vec::new())
                .unwrap_err()
                .contains("d_model 1000000")
        );
        assert!(RunSettings::default().config(Vec::new()).is_ok());
    }
}
