//! Training: seeded toy tasks and the one training loop the CLI and the page share.

pub mod activations;
pub mod gradients;
pub mod problems;
pub mod speed;
pub mod tasks;
pub mod trainer;
pub mod weights;

pub use crate::analysis::ParameterGradient;
pub use activations::activation_statistics;
pub use gradients::gradient_statistics;
pub use problems::Problem;
pub use tasks::{
    Batch, MASK_EVERY, Task, TaskKind, masked_lm_batch, next_token_batch, token_accuracy,
};
pub use trainer::{
    Analysis, EVAL_BATCHES, Evaluation, OptimizerChoice, OptimizerKind, Progress, Schedule,
    ScheduleChoice, StepReport, TrainConfig, TrainError, Trainer, analyse, analyse_activations,
    analyse_batch, batch_loss, evaluate, is_under,
};
