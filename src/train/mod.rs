//! Training: seeded toy tasks and the one training loop the CLI and the page share.

pub mod gradients;
pub mod tasks;
pub mod trainer;

pub use crate::analysis::ParameterGradient;
pub use gradients::gradient_statistics;
pub use tasks::{Batch, Task, TaskKind, token_accuracy};
pub use trainer::{
    EVAL_BATCHES, Evaluation, OptimizerKind, Schedule, StepReport, TrainConfig, TrainError,
    Trainer, batch_loss, evaluate,
};
