//! The one training loop glassbox has: the native CLI and the page both step a [`Trainer`].
//!
//! Every read from the device is asynchronous (WebGPU cannot read synchronously); natively the
//! futures complete at once and the CLI blocks on them.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData, Transaction};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::activations::{activation_statistics, reduce_activations};
use super::gradients::{gradient_statistics, reduce_gradients};
use super::tasks::{Batch, Task, TaskKind, token_accuracy};
use crate::analysis::{ActivationSummary, ParameterGradient};
use crate::model::checkpoint::{Checkpoint, FlatParameters, Sidecars};
use crate::model::paths::{ParameterVisitor, visit_parameters};
use crate::model::{ModelError, Positional, Recorder, Transformer, TransformerConfig, execute};

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// Stochastic gradient descent with (optionally zero) momentum.
    Sgd {
        /// Momentum coefficient; 0 is plain SGD.
        momentum: f64,
    },
    /// Adam with burn's defaults (β = 0.9, 0.999; ε = 1e-5).
    Adam,
    /// Adam with decoupled weight decay.
    AdamW {
        /// Decay coefficient.
        weight_decay: f64,
    },
}

impl OptimizerKind {
    /// Whether the optimizer keeps state between steps (moments, momentum), which a checkpoint
    /// of the weights does not hold.
    pub fn has_state(&self) -> bool {
        !matches!(self, Self::Sgd { momentum } if *momentum == 0.0)
    }
}

/// The optimizers by name, as the page's form, URLs (`train_optimizer`) and the CLI
/// (`--optimizer`) choose them; [`OptimizerChoice::kind`] gives each its settings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[strum(serialize_all = "lowercase")]
pub enum OptimizerChoice {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam with burn's defaults.
    Adam,
    /// AdamW with a weight decay of 0.01.
    Adamw,
}

impl OptimizerChoice {
    /// The optimizer this name stands for, with the settings the toy tasks train well with.
    pub fn kind(self) -> OptimizerKind {
        match self {
            Self::Sgd => OptimizerKind::Sgd { momentum: 0.9 },
            Self::Adam => OptimizerKind::Adam,
            Self::Adamw => OptimizerKind::AdamW { weight_decay: 0.01 },
        }
    }
}

impl OptimizerKind {
    /// The name this optimizer goes by.
    pub fn choice(self) -> OptimizerChoice {
        match self {
            Self::Sgd { .. } => OptimizerChoice::Sgd,
            Self::Adam => OptimizerChoice::Adam,
            Self::AdamW { .. } => OptimizerChoice::Adamw,
        }
    }

    /// Short name for logs and metadata.
    pub fn name(self) -> &'static str {
        self.choice().into()
    }

    fn init(self) -> ModuleOptimizer {
        match self {
            Self::Sgd { momentum } if momentum > 0.0 => SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(momentum)))
                .init(),
            Self::Sgd { .. } => SgdConfig::new().init(),
            Self::Adam => AdamConfig::new().init(),
            Self::AdamW { weight_decay } => AdamWConfig::new()
                .with_weight_decay(weight_decay as f32)
                .init(),
        }
    }
}

/// How the learning rate changes over the run (after the warm-up).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `factor` every `every` steps.
    StepDecay {
        /// Steps between decays.
        every: usize,
        /// Multiplier at each decay.
        factor: f64,
    },
    /// Half a cosine from the base rate down to zero at the last step.
    Cosine,
}

/// The schedules by name, as the form, URLs (`train_schedule`) and the CLI (`--schedule`)
/// choose them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[strum(serialize_all = "lowercase")]
pub enum ScheduleChoice {
    /// The base rate throughout.
    Constant,
    /// Halved every quarter of the run.
    Step,
    /// Half a cosine down to zero at the last step.
    Cosine,
}

impl ScheduleChoice {
    /// The schedule this name stands for in a run of `steps` steps.
    pub fn schedule(self, steps: usize) -> Schedule {
        match self {
            Self::Constant => Schedule::Constant,
            Self::Step => Schedule::StepDecay {
                every: (steps / 4).max(1),
                factor: 0.5,
            },
            Self::Cosine => Schedule::Cosine,
        }
    }
}

impl Schedule {
    /// The name this schedule goes by.
    pub fn choice(self) -> ScheduleChoice {
        match self {
            Self::Constant => ScheduleChoice::Constant,
            Self::StepDecay { .. } => ScheduleChoice::Step,
            Self::Cosine => ScheduleChoice::Cosine,
        }
    }
}

/// Everything that decides a training run; the same config and seed give the same run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// The toy task.
    pub task: TaskKind,
    /// The architecture (vocabulary size, causality and positions are set from the task).
    pub model: TransformerConfig,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub learning_rate: f64,
    /// Schedule after warm-up.
    pub schedule: Schedule,
    /// Steps of linear warm-up from zero to the base rate.
    pub warmup_steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Planned number of steps (the cosine schedule ends here).
    pub steps: usize,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f64>,
    /// Seeds the weights and the order of the training data.
    pub seed: u64,
    /// Every feed-forward hidden bias starts at this value instead of burn's default
    /// initialisation (a large negative value kills ReLU units: the dying-ReLU preset).
    pub ff_bias_init: Option<f64>,
    /// Module paths whose parameters stay fixed (`embedding`, `layers.0`, `layers.1.attn`, …):
    /// they get no gradient and the optimizer leaves them untouched.
    pub frozen: Vec<String>,
}

impl TrainConfig {
    /// A config that trains `preset` on `task` with settings that work for the toy tasks.
    pub fn new(task: TaskKind, preset: TransformerConfig) -> Self {
        Self {
            task,
            model: preset,
            optimizer: OptimizerKind::AdamW { weight_decay: 0.01 },
            learning_rate: 1e-3,
            schedule: Schedule::Cosine,
            warmup_steps: 100,
            batch_size: 64,
            steps: 2000,
            clip_norm: Some(1.0),
            seed: 0,
            ff_bias_init: None,
            frozen: Vec::new(),
        }
    }

    /// The model config this run actually builds: the preset shaped to the task.
    ///
    /// The toy tasks depend on order, so a preset without positions (the seed chapter's model)
    /// gets learned positions; the sequence limit is the task's longest input.
    pub fn model_config(&self, task: &Task) -> TransformerConfig {
        let positional = match self.model.positional {
            Positional::None => Positional::Learned,
            other => other,
        };
        TransformerConfig {
            vocab_size: task.vocabulary().len(),
            causal: task.causal() || self.model.causal,
            max_seq_len: task.max_len(),
            positional,
            ..self.model.clone()
        }
    }

    /// The learning rate at `step` (0-based).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let base = self.learning_rate;
        if step < self.warmup_steps {
            return base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let after = step - self.warmup_steps;
        match self.schedule {
            Schedule::Constant => base,
            Schedule::StepDecay { every, factor } => {
                base * factor.powi((after / every.max(1)) as i32)
            }
            Schedule::Cosine => {
                let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = (after as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// What can stop training.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TrainError {
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The config cannot train.
    #[error("invalid training setup: {0}")]
    Config(String),
    /// A NaN or an infinity appeared; the weights went back to the last finite ones.
    #[error(
        "training paused at step {step}: {what}. The weights are back to the last ones that gave finite numbers; lower the learning rate and resume"
    )]
    NonFinite {
        /// The step that failed.
        step: usize,
        /// The first quantity or tensor hit.
        what: String,
    },
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// Steps done so far, this one included.
    pub step: usize,
    /// Mean cross-entropy of the batch, before the update.
    pub loss: f64,
    /// Global L2 norm of all gradients, before clipping.
    pub grad_norm: f64,
    /// Learning rate used for the update.
    pub learning_rate: f64,
    /// `‖w_after − w_before‖ / ‖w_before‖` over all parameters together.
    pub update_ratio: f64,
    /// The same ratio for each parameter tensor, by module path.
    pub tensor_update_ratios: Vec<(String, f64)>,
    /// Gradient L2 norm of each parameter tensor before clipping, by module path.
    pub tensor_grad_norms: Vec<(String, f64)>,
    /// Full gradient and activation statistics, on the steps analysis was asked for.
    pub analysis: Option<Analysis>,
}

/// What one backward pass shows inside the model: the gradient of every parameter tensor
/// (before clipping) and the activations of every sub-module on the same batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    /// Mean cross-entropy of the batch.
    pub loss: f64,
    /// Per-tensor gradient statistics, in module order.
    pub gradients: Vec<ParameterGradient>,
    /// Per-module activation statistics and dead feed-forward units.
    pub activations: ActivationSummary,
}

/// Loss and token accuracy on the held-out set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy over held-out tokens.
    pub loss: f64,
    /// Correct held-out tokens.
    pub correct: usize,
    /// All held-out tokens.
    pub total: usize,
}

impl Evaluation {
    /// Share of held-out tokens predicted right.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Held-out batches used for evaluation.
pub const EVAL_BATCHES: usize = 8;

/// A model being trained on a task.
pub struct Trainer {
    config: TrainConfig,
    model_config: TransformerConfig,
    task: Task,
    model: Transformer,
    optimizer: ModuleOptimizer,
    rng: ChaCha8Rng,
    device: Device,
    step: usize,
    /// Training examples the steps so far have seen (the batch size may change mid-run).
    examples_seen: usize,
    /// Weights and optimizer state before the last update, and the examples seen before it,
    /// restored when numbers blow up.
    last_good: Option<(Transformer, ModuleOptimizer, usize)>,
    /// Analyse every this many steps (0: never).
    analyse_every: usize,
}

/// Where a run stands apart from its weights: enough, with a checkpoint of them, for
/// [`Trainer::resume`] to go on drawing the batches the run would have drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Steps done.
    pub steps_done: usize,
    /// Training examples seen.
    pub examples_seen: usize,
    /// How far the batch sampler's random stream has been read (ChaCha's word position).
    pub stream_position: u128,
}

impl Trainer {
    /// Seeds a fresh model for `config` on `device` (autodiff is switched on here).
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        Self::check(&config)?;
        let task = Task::new(config.task);
        let model_config = config.model_config(&task);
        let mut model = model_config.init_seeded(config.seed, device)?;
        if let Some(bias) = config.ff_bias_init {
            if !bias.is_finite() {
                return Err(TrainError::Config(format!(
                    "the feed-forward bias must be a number, got {bias}"
                )));
            }
            model = set_feed_forward_bias(model, bias);
        }
        Self::with_model(config, task, model_config, model, device)
    }

    /// Takes a run up again from `model` (a checkpoint of its weights, on `device`) and
    /// `progress`: the same steps, examples and batches follow. The optimizer's state is not in
    /// a checkpoint, so it starts again (SGD without momentum has none: it goes on exactly).
    pub fn resume(
        config: TrainConfig,
        checkpoint: &[u8],
        progress: Progress,
        device: &Device,
    ) -> Result<Self, TrainError> {
        Self::check(&config)?;
        let task = Task::new(config.task);
        let model_config = config.model_config(&task);
        let checkpoint = Checkpoint::parse(checkpoint, Sidecars::default())
            .map_err(|error| TrainError::Config(format!("the snapshot is unreadable: {error}")))?;
        // Dropout is a training setting: the run's, not the file's.
        let saved = TransformerConfig {
            dropout: model_config.dropout,
            ..checkpoint.config.clone()
        };
        if saved != model_config {
            return Err(TrainError::Config(
                "the snapshot's architecture is not the run's".into(),
            ));
        }
        let model = checkpoint
            .to_model(device)
            .map_err(|error| TrainError::Config(format!("the snapshot is unreadable: {error}")))?;
        let mut trainer = Self::with_model(config, task, model_config, model, device)?;
        trainer.step = progress.steps_done;
        trainer.examples_seen = progress.examples_seen;
        trainer.rng.set_word_pos(progress.stream_position);
        Ok(trainer)
    }

    /// Where the run stands (see [`Progress`]).
    pub fn progress(&self) -> Progress {
        Progress {
            steps_done: self.step,
            examples_seen: self.examples_seen,
            stream_position: self.rng.get_word_pos(),
        }
    }

    /// Refuses a config no run can start with.
    fn check(config: &TrainConfig) -> Result<(), TrainError> {
        if config.batch_size == 0 {
            return Err(TrainError::Config(
                "the batch size must be at least 1".into(),
            ));
        }
        if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
            return Err(TrainError::Config(format!(
                "the learning rate must be a positive number, got {}",
                config.learning_rate
            )));
        }
        Ok(())
    }

    /// A run of `config` at step 0 training `model` (on `device`; autodiff is switched on
    /// here), with `config.frozen` frozen.
    fn with_model(
        config: TrainConfig,
        task: Task,
        model_config: TransformerConfig,
        model: Transformer,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let device = device.clone().autodiff();
        let mut model = model.fork(&device).train();
        if !config.frozen.is_empty() {
            let mut ids = Vec::new();
            let mut matched = vec![false; config.frozen.len()];
            struct Collect<'a> {
                frozen: &'a [String],
                matched: &'a mut [bool],
                ids: &'a mut Vec<ParamId>,
            }
            impl ParameterVisitor for Collect<'_> {
                fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>) {
                    for (index, prefix) in self.frozen.iter().enumerate() {
                        if is_under(&path, prefix) {
                            self.matched[index] = true;
                            self.ids.push(param.id);
                        }
                    }
                }
            }
            visit_parameters(
                &model,
                &mut Collect {
                    frozen: &config.frozen,
                    matched: &mut matched,
                    ids: &mut ids,
                },
            );
            if let Some(index) = matched.iter().position(|found| !found) {
                return Err(TrainError::Config(format!(
                    "there is no module `{}` to freeze",
                    config.frozen[index]
                )));
            }
            model = model.freeze_group(ParamGroup::from_ids(ids));
        }
        Ok(Self {
            optimizer: config.optimizer.init(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            model_config,
            task,
            model,
            device,
            step: 0,
            examples_seen: 0,
            last_good: None,
            analyse_every: 0,
        })
    }

    /// Analyses gradients and activations every `every` steps (0 switches analysis off).
    pub fn set_analysis(&mut self, every: usize) {
        self.analyse_every = every;
    }

    /// The run's config.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The architecture being trained.
    pub fn model_config(&self) -> &TransformerConfig {
        &self.model_config
    }

    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Training examples seen so far: the sum of every step's batch size.
    pub fn examples_seen(&self) -> usize {
        self.examples_seen
    }

    /// Passes over the task's training set so far ([`Task::epoch_size`] examples each).
    pub fn epochs(&self) -> f64 {
        self.examples_seen as f64 / self.task.epoch_size().max(1) as f64
    }

    /// The current weights as an inference model (no autodiff graph).
    pub fn model(&self) -> Transformer {
        self.model.valid()
    }

    /// One optimisation step on a fresh training batch.
    ///
    /// When the loss or a gradient is NaN or infinite, nothing is updated: the weights and the
    /// optimizer state go back to those before the previous update (the last that gave finite
    /// numbers), and the error names the first tensor hit. Lower the learning rate with
    /// [`Trainer::set_learning_rate`] and step again.
    pub async fn step(&mut self) -> Result<StepReport, TrainError> {
        let batch = self.task.train_batch(&mut self.rng, self.config.batch_size);
        let learning_rate = self.config.learning_rate_at(self.step);
        let analyse = self.analyse_every > 0 && self.step.is_multiple_of(self.analyse_every);
        let (loss, _, recorder) = traced_batch_loss(&self.model, &batch, &self.device, analyse)?;
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let (paths, squares) = gradient_squares(&self.model, &grads);
        // Everything the step reports is reduced on the device and read back in one
        // transaction, after the update: the update is made before its inputs are known to
        // be finite, and is dropped when they are not.
        let mut transaction = Transaction::default().register(loss.inner());
        if let Some(squares) = &squares {
            transaction = transaction.register(squares.clone());
        }
        let (transaction, gradients) = if analyse {
            let (transaction, reader) = reduce_gradients(&self.model, &grads).register(transaction);
            (transaction, Some(reader))
        } else {
            (transaction, None)
        };
        let (mut transaction, activations) = match recorder {
            Some(recorder) => {
                let (transaction, reader) = reduce_activations(recorder).register(transaction);
                (transaction, Some(reader))
            }
            None => (transaction, None),
        };
        if let (Some(max_norm), Some(squares)) = (self.config.clip_norm, &squares) {
            // The global norm's clip factor, min(1, max / norm), stays on the device.
            let scale = (squares.clone().sum().sqrt().recip() * max_norm).clamp_max(1.0);
            scale_gradients(&self.model, &mut grads, &scale);
        }
        let before = self.model.clone();
        let optimizer_before = self.optimizer.clone();
        let updated = self
            .optimizer
            .step(learning_rate, self.model.clone(), grads);
        let (updates, changes) = reduce_updates(&before, &updated);
        if let Some(changes) = changes {
            transaction = transaction.register(changes);
        }
        let mut values = read(transaction).await?.into_iter();
        let loss = first_value(values.next())?;
        let squares = match squares {
            Some(_) => floats(values.next().ok_or_else(|| missing("gradient norms"))?)?,
            None => Vec::new(),
        };
        let problem = if !loss.is_finite() {
            Some(format!("the loss is {loss}"))
        } else {
            paths
                .iter()
                .zip(&squares)
                .find(|(_, sum)| !sum.is_finite())
                .map(|(path, _)| format!("the gradient of `{path}` is not finite"))
        };
        if let Some(problem) = problem {
            // The update made from them goes: back to the state before this step, then
            // (non_finite) to the last one that gave finite numbers.
            self.model = before;
            self.optimizer = optimizer_before;
            return Err(self.non_finite(problem));
        }
        // Each reader takes its results in the order they were registered.
        let gradients = gradients
            .map(|reader| reader.read(&mut values))
            .transpose()?;
        let activations = activations
            .map(|reader| reader.read(&mut values))
            .transpose()?;
        let updates = updates.read(&mut values)?;
        let analysis = gradients.map(|gradients| Analysis {
            loss,
            gradients,
            activations: activations.unwrap_or_default(),
        });
        let tensor_grad_norms = paths
            .into_iter()
            .zip(&squares)
            .map(|(path, &sum)| (path, f64::from(sum).sqrt()))
            .collect();
        let grad_norm = squares
            .iter()
            .map(|&sum| f64::from(sum))
            .sum::<f64>()
            .sqrt();
        self.last_good = Some((before, optimizer_before, self.examples_seen));
        self.model = updated;
        self.step += 1;
        self.examples_seen += batch.len();
        Ok(StepReport {
            step: self.step,
            loss,
            grad_norm,
            learning_rate,
            update_ratio: updates.total,
            tensor_update_ratios: updates.tensors,
            tensor_grad_norms,
            analysis,
        })
    }

    /// Changes the base learning rate (e.g. after a NaN pause); the schedule scales the new rate.
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<(), TrainError> {
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(TrainError::Config(format!(
                "the learning rate must be a positive number, got {learning_rate}"
            )));
        }
        self.config.learning_rate = learning_rate;
        Ok(())
    }

    /// Takes `config` for the rest of the run: its learning rate, schedule, warm-up, batch size,
    /// clip norm and step count apply from the next step on.
    ///
    /// The task, model, optimizer, seed, feed-forward bias and frozen modules made the weights,
    /// the data stream and the optimizer state this run has; a config that differs in any of them
    /// is refused, as is a step count not above the steps already done.
    pub fn reconfigure(&mut self, config: TrainConfig) -> Result<(), TrainError> {
        let fixed = |c: &TrainConfig| {
            (
                c.task,
                c.model.clone(),
                c.optimizer,
                c.seed,
                c.ff_bias_init,
                c.frozen.clone(),
            )
        };
        if fixed(&config) != fixed(&self.config) {
            return Err(TrainError::Config(
                "a started run keeps its task, model, optimizer, seed, initial bias and frozen \
                 modules; start a new run to change them"
                    .into(),
            ));
        }
        if config.steps <= self.step {
            return Err(TrainError::Config(format!(
                "the run has already done {} steps; plan more than that",
                self.step
            )));
        }
        if config.batch_size == 0 {
            return Err(TrainError::Config(
                "the batch size must be at least 1".into(),
            ));
        }
        self.set_learning_rate(config.learning_rate)?;
        self.config = config;
        Ok(())
    }

    /// Restores the last weights that gave finite numbers and describes what went wrong.
    fn non_finite(&mut self, what: String) -> TrainError {
        if let Some((model, optimizer, examples_seen)) = self.last_good.take() {
            self.model = model;
            self.optimizer = optimizer;
            self.examples_seen = examples_seen;
            self.step = self.step.saturating_sub(1);
        }
        TrainError::NonFinite {
            step: self.step + 1,
            what,
        }
    }

    /// Loss and token accuracy of the current weights on the task's held-out set.
    pub async fn evaluate(&self) -> Result<Evaluation, TrainError> {
        evaluate(&self.model.valid(), &self.task, EVAL_BATCHES).await
    }
}

/// Mean cross-entropy of `model` on `batch` over every position, and the logits.
pub fn batch_loss(
    model: &Transformer,
    batch: &Batch,
    device: &Device,
) -> Result<(Tensor<1>, Tensor<3>), TrainError> {
    let (loss, logits, _) = traced_batch_loss(model, batch, device, false)?;
    Ok((loss, logits))
}

/// [`batch_loss`], also recording every sub-module's output when `trace` is set.
fn traced_batch_loss(
    model: &Transformer,
    batch: &Batch,
    device: &Device,
    trace: bool,
) -> Result<(Tensor<1>, Tensor<3>, Option<Recorder>), TrainError> {
    let inputs = model.token_tensor(&batch.inputs, device)?;
    let targets = model.token_tensor(&batch.targets, device)?;
    let types = model.types_for(batch.types.as_deref(), device)?;
    let (logits, recorder) = if trace {
        let (logits, recorder) = model.forward_traced_typed(inputs, types);
        (logits, Some(recorder))
    } else {
        (model.forward_typed(inputs, types), None)
    }; // logits: [batch, seq, vocab]
    let [batch_size, seq_len, vocab_size] = logits.dims();
    if vocab_size == 0 {
        return Err(TrainError::Config(
            "the model has no head, so it has no loss to differentiate".into(),
        ));
    }
    let flat_logits = logits.clone().reshape([batch_size * seq_len, vocab_size]);
    let flat_targets = targets.reshape([batch_size * seq_len]);
    let loss = match &batch.counted {
        None => CrossEntropyLossConfig::new()
            .init(device)
            .forward(flat_logits, flat_targets),
        Some(counted) => counted_cross_entropy(flat_logits, flat_targets, counted, device)?,
    };
    Ok((loss, logits, recorder))
}

/// The mean cross-entropy over the positions `counted` marks (flattened `[batch × seq]`).
fn counted_cross_entropy(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    counted: &[Vec<bool>],
    device: &Device,
) -> Result<Tensor<1>, TrainError> {
    let weights: Vec<f32> = counted
        .iter()
        .flatten()
        .map(|&counted| if counted { 1.0 } else { 0.0 })
        .collect();
    let count = weights.iter().filter(|weight| **weight > 0.0).count();
    let rows = logits.dims()[0];
    if weights.len() != rows || count == 0 {
        return Err(TrainError::Config(format!(
            "the batch counts {count} of {} positions for its loss; it needs at least one of {rows}",
            weights.len()
        )));
    }
    let weights = Tensor::<1>::from_data(TensorData::new(weights, [rows]), device);
    let log_probabilities = burn::tensor::activation::log_softmax(logits, 1);
    let picked = log_probabilities
        .gather(1, targets.reshape([rows, 1]))
        .reshape([rows]); // [rows]
    Ok((picked * weights).sum().neg() / count as f64)
}

/// One forward and backward pass of `model` on `batch` without updating anything: the
/// gradient of every parameter and the activation of every sub-module ("analyse one batch").
pub async fn analyse_batch(model: &Transformer, batch: &Batch) -> Result<Analysis, TrainError> {
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Config("the model has no device".into()))?
        .autodiff();
    let model = model.clone().fork(&device).train();
    let (loss, _, recorder) = traced_batch_loss(&model, batch, &device, true)?;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let loss = first_value(
        read(Transaction::default().register(loss.inner()))
            .await?
            .into_iter()
            .next(),
    )?;
    let gradients = gradient_statistics(&model, &grads).await?;
    let activations = match recorder {
        Some(recorder) => activation_statistics(recorder).await?,
        None => ActivationSummary::default(),
    };
    Ok(Analysis {
        loss,
        gradients,
        activations,
    })
}

/// "Analyse one batch" of any model: [`analyse_batch`] for a model with a head, else (a sentence
/// encoder, which has no loss to differentiate) [`analyse_activations`].
pub async fn analyse(model: &Transformer, batch: &Batch) -> Result<Analysis, TrainError> {
    if model.has_head() {
        analyse_batch(model, batch).await
    } else {
        analyse_activations(model, batch).await
    }
}

/// The activations of one forward pass of `model` on `batch`, for a model without a head (a
/// sentence encoder such as MiniLM): there is no loss, so the loss is NaN and there are no
/// gradients.
pub async fn analyse_activations(
    model: &Transformer,
    batch: &Batch,
) -> Result<Analysis, TrainError> {
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Config("the model has no device".into()))?;
    let inputs = model.token_tensor(&batch.inputs, &device)?;
    let types = model.types_for(batch.types.as_deref(), &device)?;
    let (_, recorder) = model.forward_traced_typed(inputs, types);
    Ok(Analysis {
        loss: f64::NAN,
        gradients: Vec::new(),
        activations: activation_statistics(recorder).await?,
    })
}

/// Whether the parameter at `path` lies under the module path `prefix` (or is it).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Sets every feed-forward hidden bias (`layers.*.ff.linear1.bias`) of `model` to `value`.
fn set_feed_forward_bias(mut model: Transformer, value: f64) -> Transformer {
    for layer in &mut model.layers {
        if let Some(bias) = layer.ff.linear1.bias.take() {
            let filled = bias.val().ones_like() * value;
            layer.ff.linear1.bias = Some(Param::initialized(bias.id, filled));
        }
    }
    model
}

/// Held-out loss and token accuracy of `model` on the first `batches` held-out batches of `task`.
pub async fn evaluate(
    model: &Transformer,
    task: &Task,
    batches: usize,
) -> Result<Evaluation, TrainError> {
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Config("the model has no device".into()))?;
    let mut loss_sum = 0.0;
    let mut tokens = 0;
    let mut correct = 0;
    for batch in task.held_out(batches) {
        let (loss, logits) = batch_loss(model, &batch, &device)?;
        let predictions = logits.argmax(2).squeeze_dim::<2>(2); // [batch, seq]
        let values = read(Transaction::default().register(loss).register(predictions)).await?;
        let mut values = values.into_iter();
        let loss = first_value(values.next())?;
        let predicted = values
            .next()
            .ok_or_else(|| ModelError::ReadBack("predictions missing".into()))?
            .try_into_vec_as::<i64>()
            .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?;
        let seq_len = batch.seq_len();
        let predictions: Vec<Vec<u32>> = predicted
            .chunks(seq_len.max(1))
            .map(|row| row.iter().map(|&id| id as u32).collect())
            .collect();
        let (batch_correct, batch_total) = token_accuracy(&predictions, &batch.targets);
        loss_sum += loss * batch_total as f64;
        tokens += batch_total;
        correct += batch_correct;
    }
    Ok(Evaluation {
        loss: if tokens == 0 {
            0.0
        } else {
            loss_sum / tokens as f64
        },
        correct,
        total: tokens,
    })
}

/// `Σ g²` of every gradient of `model`, one value per tensor (`[tensors]`), with the paths.
fn gradient_squares(
    model: &Transformer,
    grads: &GradientsParams,
) -> (Vec<String>, Option<Tensor<1>>) {
    struct Squares<'a> {
        grads: &'a GradientsParams,
        paths: Vec<String>,
        sums: Vec<Tensor<1>>,
    }
    impl ParameterVisitor for Squares<'_> {
        fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                self.paths.push(path);
                self.sums.push(grad.square().sum()); // [1]
            }
        }
    }
    let mut visitor = Squares {
        grads,
        paths: Vec::new(),
        sums: Vec::new(),
    };
    visit_parameters(model, &mut visitor);
    let sums = (!visitor.sums.is_empty()).then(|| Tensor::cat(visitor.sums, 0));
    (visitor.paths, sums)
}

/// Multiplies every gradient of `model` by `scale` (one value, on the device).
fn scale_gradients(model: &Transformer, grads: &mut GradientsParams, scale: &Tensor<1>) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        scale: &'a Tensor<1>,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                let scale = self.scale.clone().reshape([1; D]);
                self.grads.register(param.id, grad * scale);
            }
        }
    }
    model.visit(&mut Scale { grads, scale });
}

/// Relative size of the last update, overall and per tensor.
struct Updates {
    total: f64,
    tensors: Vec<(String, f64)>,
}

/// `‖after − before‖ / ‖before‖` per parameter tensor and over all of them, reduced on the
/// device: the sums to read back (none without parameters), and what turns them into ratios.
fn reduce_updates(
    before: &Transformer,
    after: &Transformer,
) -> (UpdatesReadBack, Option<Tensor<1>>) {
    // Autodiff is not needed to compare weights: work on the plain tensors.
    let collect = |model: &Transformer| {
        let mut flat = FlatParameters::of(model);
        flat.tensors = flat.tensors.into_iter().map(Tensor::inner).collect();
        flat
    };
    let old = collect(before);
    let new = collect(after);
    let paths = old.paths.iter().map(|(path, _)| path.clone()).collect();
    if old.tensors.is_empty() {
        return (UpdatesReadBack { paths }, None);
    }
    // Per tensor: Σ (after − before)², then Σ before².
    let mut sums = Vec::with_capacity(2 * old.tensors.len());
    for (old_values, new_values) in old.tensors.into_iter().zip(new.tensors) {
        sums.push((new_values - old_values.clone()).square().sum());
        sums.push(old_values.square().sum());
    }
    (UpdatesReadBack { paths }, Some(Tensor::cat(sums, 0)))
}

/// Turns the read-back of [`reduce_updates`] into [`Updates`].
struct UpdatesReadBack {
    paths: Vec<String>,
}

impl UpdatesReadBack {
    fn read(self, data: &mut impl Iterator<Item = TensorData>) -> Result<Updates, TrainError> {
        if self.paths.is_empty() {
            return Ok(Updates {
                total: 0.0,
                tensors: Vec::new(),
            });
        }
        let values = floats(data.next().ok_or_else(|| missing("update sizes"))?)?;
        let ratio = |change: f64, size: f64| {
            if size > 0.0 {
                (change / size).sqrt()
            } else {
                0.0
            }
        };
        let mut change_total = 0.0;
        let mut size_total = 0.0;
        let tensors = self
            .paths
            .into_iter()
            .zip(values.chunks_exact(2))
            .map(|(path, pair)| {
                let (change, size) = (f64::from(pair[0]), f64::from(pair[1]));
                change_total += change;
                size_total += size;
                (path, ratio(change, size))
            })
            .collect();
        Ok(Updates {
            total: ratio(change_total, size_total),
            tensors,
        })
    }
}

/// A read-back that lacks `what`.
fn missing(what: &str) -> TrainError {
    ModelError::ReadBack(format!("{what} missing from the read-back")).into()
}

async fn read(transaction: Transaction) -> Result<Vec<TensorData>, TrainError> {
    Ok(execute(transaction).await?)
}

fn floats(data: TensorData) -> Result<Vec<f32>, TrainError> {
    Ok(data
        .try_into_vec_as::<f32>()
        .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?)
}

fn first_value(data: Option<TensorData>) -> Result<f64, TrainError> {
    let data = data.ok_or_else(|| ModelError::ReadBack("value missing".into()))?;
    Ok(floats(data)?.first().copied().map_or(f64::NAN, f64::from))
}
