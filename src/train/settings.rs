//! The settings of one training run as the page's form holds them, and as the address carries
//! them: plain words and numbers, turned into a [`TrainConfig`] when a run starts.

use crate::model::{Activation, NormPosition, TransformerConfig};

use super::{OptimizerKind, Problem, Schedule, TaskKind, TrainConfig};

/// Every setting of a run, as the form holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    /// Task: `reverse`, `sort` or `language`.
    pub task: String,
    /// Model preset (`tiny`, `seed`) or `custom` for the size fields below.
    pub preset: String,
    /// Custom size: encoder layers.
    pub layers: usize,
    /// Custom size: model width.
    pub d_model: usize,
    /// Custom size: attention heads.
    pub heads: usize,
    /// Custom size: feed-forward width.
    pub d_ff: usize,
    /// Custom: LayerNorm position, `pre`, `post` or `none`.
    pub norm: String,
    /// Custom: `relu`, `gelu` or `sigmoid`.
    pub activation: String,
    /// Custom: causal attention mask.
    pub causal: bool,
    /// `sgd` (momentum 0.9), `adam` or `adamw`.
    pub optimizer: String,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// `constant`, `step` (halved every quarter of the run) or `cosine`.
    pub schedule: String,
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
    /// Problem preset (`healthy`, `exploding`, `vanishing`, `dying-relu`).
    pub problem: String,
    /// Gradient and activation analysis every this many steps; 0 for never.
    pub analyse_every: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        let tiny = TransformerConfig::tiny();
        Self {
            task: "reverse".into(),
            preset: "tiny".into(),
            layers: tiny.num_layers,
            d_model: tiny.d_model,
            heads: tiny.num_heads,
            d_ff: tiny.d_ff,
            norm: "post".into(),
            activation: "relu".into(),
            causal: false,
            optimizer: "adamw".into(),
            learning_rate: 1e-3,
            schedule: "cosine".into(),
            warmup: 50,
            batch_size: 64,
            clip: 1.0,
            seed: 0,
            steps: 600,
            eval_every: 50,
            probe_every: 25,
            residual: true,
            problem: Problem::Healthy.name().into(),
            analyse_every: 1,
        }
    }
}

impl RunSettings {
    /// The training config these settings describe, or what is wrong with them.
    pub fn config(&self, frozen: Vec<String>) -> Result<TrainConfig, String> {
        let task = TaskKind::from_name(&self.task).ok_or("unknown task")?;
        let model = match self.preset.as_str() {
            "custom" => TransformerConfig {
                num_layers: self.layers,
                d_model: self.d_model,
                num_heads: self.heads,
                d_ff: self.d_ff,
                norm_position: match self.norm.as_str() {
                    "pre" => NormPosition::Pre,
                    "none" => NormPosition::None,
                    _ => NormPosition::Post,
                },
                activation: match self.activation.as_str() {
                    "gelu" => Activation::Gelu,
                    "sigmoid" => Activation::Sigmoid,
                    _ => Activation::Relu,
                },
                causal: self.causal,
                residual: self.residual,
                ..TransformerConfig::tiny()
            },
            name => TransformerConfig::preset(name).ok_or("unknown preset")?,
        };
        model.validate()?;
        if self.steps == 0 || self.batch_size == 0 || self.eval_every == 0 {
            return Err("steps, batch size and the evaluation interval must be at least 1".into());
        }
        let optimizer = match self.optimizer.as_str() {
            "sgd" => OptimizerKind::Sgd { momentum: 0.9 },
            "adam" => OptimizerKind::Adam,
            _ => OptimizerKind::AdamW { weight_decay: 0.01 },
        };
        let schedule = match self.schedule.as_str() {
            "constant" => Schedule::Constant,
            "step" => Schedule::StepDecay {
                every: (self.steps / 4).max(1),
                factor: 0.5,
            },
            _ => Schedule::Cosine,
        };
        Ok(TrainConfig {
            task,
            model,
            optimizer,
            learning_rate: self.learning_rate,
            schedule,
            warmup_steps: self.warmup,
            batch_size: self.batch_size,
            steps: self.steps,
            clip_norm: (self.clip > 0.0).then_some(self.clip),
            seed: self.seed,
            ff_bias_init: Problem::from_name(&self.problem).and_then(Problem::ff_bias_init),
            frozen,
        })
    }

    /// These settings with `problem`'s preset applied, the fields shown in the form set to it.
    pub fn with_problem(&self, problem: Problem) -> Self {
        let base = Self {
            problem: problem.name().into(),
            ..Self {
                task: self.task.clone(),
                steps: self.steps,
                eval_every: self.eval_every,
                probe_every: self.probe_every,
                analyse_every: self.analyse_every.max(1),
                seed: self.seed,
                ..Self::default()
            }
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
                "custom".into()
            } else {
                base.preset.clone()
            },
            layers: model.num_layers,
            norm: match model.norm_position {
                NormPosition::Pre => "pre",
                NormPosition::None => "none",
                NormPosition::Post => "post",
            }
            .into(),
            activation: match model.activation {
                Activation::Gelu => "gelu",
                Activation::Sigmoid => "sigmoid",
                Activation::Relu => "relu",
            }
            .into(),
            residual: model.residual,
            optimizer: config.optimizer.name().into(),
            learning_rate: config.learning_rate,
            schedule: match config.schedule {
                Schedule::Constant => "constant",
                Schedule::StepDecay { .. } => "step",
                Schedule::Cosine => "cosine",
            }
            .into(),
            warmup: config.warmup_steps,
            clip: config.clip_norm.unwrap_or(0.0),
            ..base
        }
    }
}

/// One setting, borrowed for reading or writing it as text.
enum Field<'a> {
    /// One of a fixed set of words.
    Choice(&'a mut String, fn(&str) -> bool),
    Count(&'a mut usize),
    Seed(&'a mut u64),
    /// A finite number ≥ 0.
    Real(&'a mut f64),
    Flag(&'a mut bool),
}

impl Field<'_> {
    fn text(&self) -> String {
        match self {
            Self::Choice(value, _) => (*value).clone(),
            Self::Count(value) => value.to_string(),
            Self::Seed(value) => value.to_string(),
            Self::Real(value) => value.to_string(),
            Self::Flag(value) => if **value { "1" } else { "0" }.to_string(),
        }
    }

    /// Sets the value from `text`; false (and nothing changed) when it does not parse.
    fn set(&mut self, text: &str) -> bool {
        match self {
            Self::Choice(value, allowed) if allowed(text) => **value = text.to_string(),
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
            Self::Choice(..) => return false,
        }
        true
    }
}

impl RunSettings {
    /// Every setting under its name in the address: `task`, and the rest as `train_*`.
    fn fields(&mut self) -> [(&'static str, Field<'_>); 22] {
        [
            (
                "task",
                Field::Choice(&mut self.task, |v| TaskKind::from_name(v).is_some()),
            ),
            (
                "train_problem",
                Field::Choice(&mut self.problem, |v| Problem::from_name(v).is_some()),
            ),
            (
                "train_preset",
                Field::Choice(&mut self.preset, |v| {
                    v == "custom" || TransformerConfig::preset(v).is_some()
                }),
            ),
            ("train_layers", Field::Count(&mut self.layers)),
            ("train_d_model", Field::Count(&mut self.d_model)),
            ("train_heads", Field::Count(&mut self.heads)),
            ("train_d_ff", Field::Count(&mut self.d_ff)),
            (
                "train_norm",
                Field::Choice(&mut self.norm, |v| matches!(v, "pre" | "post" | "none")),
            ),
            (
                "train_activation",
                Field::Choice(&mut self.activation, |v| {
                    matches!(v, "relu" | "gelu" | "sigmoid")
                }),
            ),
            ("train_causal", Field::Flag(&mut self.causal)),
            ("train_residual", Field::Flag(&mut self.residual)),
            (
                "train_optimizer",
                Field::Choice(&mut self.optimizer, |v| {
                    matches!(v, "sgd" | "adam" | "adamw")
                }),
            ),
            ("train_lr", Field::Real(&mut self.learning_rate)),
            (
                "train_schedule",
                Field::Choice(&mut self.schedule, |v| {
                    matches!(v, "constant" | "step" | "cosine")
                }),
            ),
            ("train_warmup", Field::Count(&mut self.warmup)),
            ("train_batch", Field::Count(&mut self.batch_size)),
            ("train_clip", Field::Real(&mut self.clip)),
            ("train_seed", Field::Seed(&mut self.seed)),
            ("train_steps", Field::Count(&mut self.steps)),
            ("train_eval_every", Field::Count(&mut self.eval_every)),
            ("train_probe_every", Field::Count(&mut self.probe_every)),
            ("train_analyse_every", Field::Count(&mut self.analyse_every)),
        ]
    }

    /// Whether `key` is one of the address keys these settings use.
    pub fn is_key(key: &str) -> bool {
        Self::default()
            .fields()
            .iter()
            .any(|(name, _)| *name == key)
    }

    /// The settings that differ from the defaults, as address pairs, in a fixed order.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut defaults = Self::default();
        let mut this = self.clone();
        this.fields()
            .iter()
            .zip(defaults.fields().iter())
            .filter(|((_, field), (_, default))| field.text() != default.text())
            .map(|((name, field), _)| (name.to_string(), field.text()))
            .collect()
    }

    /// The default settings with `pairs` applied. Keys of other settings are passed over, and a
    /// value that does not parse leaves its default, so a damaged link still opens.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut settings = Self::default();
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        for (name, mut field) in settings.fields() {
            if let Some((_, value)) = pairs.iter().rev().find(|(key, _)| *key == name) {
                field.set(value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_round_trip_through_address_pairs() {
        let settings = RunSettings {
            task: "sort".into(),
            preset: "custom".into(),
            layers: 3,
            norm: "pre".into(),
            activation: "gelu".into(),
            causal: true,
            residual: false,
            optimizer: "sgd".into(),
            learning_rate: 0.0125,
            schedule: "step".into(),
            clip: 0.0,
            seed: 42,
            steps: 1234,
            problem: "exploding".into(),
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
}
