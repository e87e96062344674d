//! `glassbox-train`: trains a small Transformer on a toy task and writes a checkpoint the page
//! can open.
//!
//! ```text
//! cargo run --release --bin glassbox-train -- --task reverse --preset tiny --out assets/models/reverse.safetensors
//! ```
//!
//! `--backend cpu|wgpu|cuda` chooses where it trains: burn-flex on the CPU (the default),
//! burn's wgpu runtime (Vulkan, Metal or DX12), or CUDA in a build with `--features cuda`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use glassbox::analysis::activations::SPARSE_THRESHOLD;
use glassbox::analysis::gradients::{GradientHistory, GradientThresholds, detect};
use glassbox::model::checkpoint::save_checkpoint;
use glassbox::model::{NativeBackend, TransformerConfig, native_device};
use glassbox::train::{
    Analysis, OptimizerChoice, Problem, ScheduleChoice, TaskKind, TrainConfig, Trainer,
};

/// Train a small Transformer on a seeded toy task and save it as a glassbox checkpoint.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The toy task.
    #[arg(long, value_enum)]
    task: TaskKind,
    /// Model preset (`tiny` or `seed`), shaped to the task's vocabulary and length.
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Where to write the checkpoint (.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Optimisation steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "adamw")]
    optimizer: OptimizerChoice,
    /// Learning-rate schedule after warm-up (step: ×0.5 every quarter of the run).
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: ScheduleChoice,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Clip the global gradient norm (0 = no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Evaluate on the held-out set every this many steps.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Override the preset's layer count.
    #[arg(long)]
    layers: Option<usize>,
    /// Override the preset's width.
    #[arg(long)]
    d_model: Option<usize>,
    /// Override the preset's feed-forward width.
    #[arg(long)]
    d_ff: Option<usize>,
    /// Dropout while training (the page always runs without it).
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Reproduce a failure (applied after the other settings, which it overrides where it
    /// must).
    #[arg(long, value_enum, default_value = "healthy")]
    problem: Problem,
    /// Analyse gradients and activations every this many steps and print what the detectors
    /// find at each evaluation (0 = never).
    #[arg(long, default_value_t = 0)]
    analyse_every: usize,
    /// Where the model trains.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: NativeBackend,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match pollster::block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("glassbox-train: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let Some(mut preset) = TransformerConfig::preset(&args.preset) else {
        return Err(format!(
            "unknown preset `{}` (try tiny or seed)",
            args.preset
        ));
    };
    preset.num_layers = args.layers.unwrap_or(preset.num_layers);
    preset.d_model = args.d_model.unwrap_or(preset.d_model);
    preset.d_ff = args.d_ff.unwrap_or(preset.d_ff);
    preset.dropout = args.dropout;
    let task = args.task;
    let config = TrainConfig {
        optimizer: args.optimizer.kind(),
        learning_rate: args.lr,
        schedule: args.schedule.schedule(args.steps),
        warmup_steps: args.warmup,
        batch_size: args.batch_size,
        steps: args.steps,
        clip_norm: (args.clip > 0.0).then_some(args.clip),
        seed: args.seed,
        ..TrainConfig::new(task, preset)
    };
    let config = args.problem.apply(config);
    let (device, backend) = native_device(args.backend)?;
    let mut trainer = Trainer::new(config.clone(), &device).map_err(|e| e.to_string())?;
    trainer.set_analysis(args.analyse_every);
    let mut history: Option<GradientHistory> = None;
    let mut latest = None;
    println!(
        "task {} · {} parameters · {} steps of {} · {} lr {} · on {backend}",
        task.name(),
        trainer.model().parameter_count(),
        config.steps,
        config.batch_size,
        config.optimizer.name(),
        config.learning_rate
    );
    // Native only: the wasm ban on `Instant` (clippy.toml) does not apply to this CLI.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    for _ in 0..config.steps {
        let report = trainer.step().await.map_err(|e| e.to_string())?;
        if args.analyse_every > 0 {
            let norms: Vec<f64> = report.tensor_grad_norms.iter().map(|(_, n)| *n).collect();
            history
                .get_or_insert_with(|| {
                    let paths = report
                        .tensor_grad_norms
                        .iter()
                        .map(|(p, _)| p.clone())
                        .collect();
                    GradientHistory::new(paths, 512)
                })
                .push(report.step, &norms);
            if let Some(analysis) = &report.analysis {
                latest = Some(analysis.clone());
            }
        }
        if !report.loss.is_finite() {
            return Err(format!(
                "the loss became {} at step {}",
                report.loss, report.step
            ));
        }
        if report.step % args.eval_every.max(1) == 0 || report.step == config.steps {
            let evaluation = trainer.evaluate().await.map_err(|e| e.to_string())?;
            println!(
                "step {:>6}  loss {:.4}  grad norm {:.3}  lr {:.2e}  held-out loss {:.4}  accuracy {:.2}%  ({:.1} s)",
                report.step,
                report.loss,
                report.grad_norm,
                report.learning_rate,
                evaluation.loss,
                100.0 * evaluation.accuracy(),
                started.elapsed().as_secs_f64()
            );
            if let Some(analysis) = &latest {
                print_findings(analysis, history.as_ref());
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} steps in {seconds:.1} s: {:.2} steps/s (analysis every {} steps)",
        config.steps,
        config.steps as f64 / seconds,
        args.analyse_every
    );
    let evaluation = trainer.evaluate().await.map_err(|e| e.to_string())?;
    let mut metadata = BTreeMap::new();
    metadata.insert("glassbox.task".to_string(), task.name().to_string());
    metadata.insert(
        "glassbox.heldout_accuracy".to_string(),
        format!("{:.4}", evaluation.accuracy()),
    );
    metadata.insert(
        "glassbox.heldout_tokens".to_string(),
        evaluation.total.to_string(),
    );
    metadata.insert("glassbox.steps".to_string(), config.steps.to_string());
    metadata.insert(
        "glassbox.training".to_string(),
        format!(
            "{} lr {} {:?} warm-up {} batch {} clip {:?} dropout {} seed {}",
            config.optimizer.name(),
            config.learning_rate,
            config.schedule,
            config.warmup_steps,
            config.batch_size,
            config.clip_norm,
            args.dropout,
            config.seed
        ),
    );
    let model = trainer.model();
    // The checkpoint describes the model as the page runs it: without dropout.
    let saved_config = TransformerConfig {
        dropout: 0.0,
        ..trainer.model_config().clone()
    };
    let bytes = save_checkpoint(
        &model,
        &saved_config,
        trainer.task().vocabulary(),
        &metadata,
    )
    .await
    .map_err(|e| e.to_string())?;
    std::fs::write(&args.out, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes): held-out token accuracy {:.2}% over {} tokens, {:.1} s",
        args.out.display(),
        bytes.len(),
        100.0 * evaluation.accuracy(),
        evaluation.total,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints what the gradient and activation detectors find in `analysis`.
fn print_findings(analysis: &Analysis, history: Option<&GradientHistory>) {
    let findings = detect(&analysis.gradients, history, &GradientThresholds::default());
    for finding in &findings {
        println!("    {finding}");
    }
    for module in analysis.activations.sparse_modules(SPARSE_THRESHOLD) {
        println!(
            "    {}: {:.1}% of the outputs are exactly zero",
            module.path,
            100.0 * module.zero_fraction
        );
    }
    println!(
        "    {} detector findings; {:.1}% of feed-forward units dead",
        findings.len(),
        100.0 * analysis.activations.dead_share()
    );
}
