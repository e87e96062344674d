//! The training tab's controllers: start, resume, pause, single step, reset, hand the model
//! to the explorer and export the history. Each changes the [`TrainingSession`]; the loop
//! yields to the browser between steps.

use leptos::prelude::*;
use std::sync::Arc;

use crate::analysis::thinning;
use crate::analysis::training::{EvalRecord, StepRecord, UpdateRatios};
use crate::model::{TextTokenizer, TransformerConfig, WordTokenizer, run_traced};
use crate::page::training_report::provenance;
use crate::page::training_run::{Phase, finished_words};
use crate::train::{StepReport, TrainError, Trainer};

use super::super::session::{LoadedModel, RunResult};
use super::super::web;
use super::state::{RunInfo, Snapshot, TrainingSession};
use crate::page::slices::{RunTrace, TraceSlices};

/// Attention snapshots kept for the replay slider; older ones are thinned beyond this.
const MAX_SNAPSHOTS: usize = 120;
/// Step records kept; older ones are thinned beyond this (see `History::thin`).
const MAX_STEP_RECORDS: usize = 20_000;
/// Per-tensor update ratios are summarised every this many steps.
const UPDATE_SUMMARY_EVERY: usize = 10;
/// The monitor is redrawn at most this often while training.
const REDRAW_EVERY_MS: f64 = 250.0;

/// Start (or resume) training until the run's last step or a pause.
pub(super) fn start(session: TrainingSession) {
    launch(session, false);
}

/// One step, then pause.
pub(super) fn single_step(session: TrainingSession) {
    launch(session, true);
}

/// Asks the loop to stop after the step in flight.
pub(super) fn pause(session: TrainingSession) {
    if session.phase.get_untracked() == Phase::Running {
        session.pausing.set(true);
    }
}

/// Drops the run and everything it recorded; the form stays as it is.
pub(super) fn reset(session: TrainingSession) {
    session
        .generation
        .update_value(|generation| *generation += 1);
    session.pausing.set(false);
    *session.trainer.get_value().borrow_mut() = None;
    session.history.set_value(Default::default());
    session.snapshots.set_value(Vec::new());
    session.snapshot_count.set(0);
    session.snapshot_index.set(None);
    session.steps_done.set(0);
    session.message.set(None);
    session.notice.set(None);
    session.zoom.set(None);
    session.cursor.set(None);
    session.run.set(None);
    session.phase.set(Phase::Idle);
    session.redraw();
    session.inside.reset_training();
}

/// Gets a trainer ready and runs steps on it: all that are left, or one when `once`.
fn launch(session: TrainingSession, once: bool) {
    if session.phase.get_untracked() == Phase::Running {
        return;
    }
    session.message.set(None);
    session.notice.set(None);
    let current = match take_trainer(session) {
        Ok(current) => current,
        Err(failure) => {
            session.message.set(Some(failure));
            return;
        }
    };
    if current.steps_done() >= current.config().steps {
        session.phase.set(Phase::Done);
        session
            .message
            .set(Some(finished_words(current.config().steps)));
        put_back(session, current);
        return;
    }
    let this_run = session.generation.get_value() + 1;
    session.generation.set_value(this_run);
    session.phase.set(Phase::Running);
    web::spawn(run_steps(session, current, this_run, once));
}

/// Steps `current` until the run ends, a pause, an error or (with `once`) one step, then puts
/// it back, unless a reset came in between.
async fn run_steps(session: TrainingSession, mut current: Trainer, this_run: u64, once: bool) {
    let started_ms = web::now_ms();
    let current_run = move || session.generation.get_value() == this_run;
    loop {
        let (back, keep_going) = run_step(session, current, started_ms, this_run).await;
        current = back;
        if !current_run() {
            // Reset while this step ran: drop the old trainer.
            return;
        }
        if once || !keep_going || session.pausing.get_untracked() {
            break;
        }
        web::next_frame().await;
        if session.pausing.get_untracked() || !current_run() {
            break;
        }
    }
    if !current_run() {
        return;
    }
    session.pausing.set(false);
    session
        .elapsed_before_ms
        .update_value(|elapsed| *elapsed += web::now_ms() - started_ms);
    if session.phase.get_untracked() == Phase::Running {
        session.phase.set(Phase::Paused);
    }
    put_back(session, current);
    session.redraw();
}

/// The trainer to step: a new one from the form when there is none, else the run's, with the
/// form's changes applied where the reuse rules allow them. A refusal leaves the run as it was.
fn take_trainer(session: TrainingSession) -> Result<Trainer, String> {
    let cell = session.trainer.get_value();
    let existing = cell.borrow_mut().take();
    let Some(mut current) = existing else {
        return fresh_trainer(session);
    };
    let decided = session.pending_untracked();
    if decided.is_empty() {
        return Ok(current);
    }
    if let Some(refusal) = decided.refusal() {
        put_back(session, current);
        return Err(refusal);
    }
    let settings = session.form.get_untracked();
    let frozen = session.frozen.get_untracked();
    let applied = settings.config(frozen.clone()).and_then(|config| {
        current
            .reconfigure(config)
            .map_err(|error| error.to_string())
    });
    if let Err(failure) = applied {
        put_back(session, current);
        return Err(failure);
    }
    current.set_analysis(settings.analyse_every);
    session.notice.set(decided.applied_words());
    session.run.set(Some(RunInfo { settings, frozen }));
    Ok(current)
}

/// A trainer for the form's settings, with the history of the last run cleared.
fn fresh_trainer(session: TrainingSession) -> Result<Trainer, String> {
    let device = session
        .backend
        .get_value()
        .ok_or("the device is not ready yet")?
        .device;
    let settings = session.form.get_untracked();
    let frozen = session.frozen.get_untracked();
    let config = settings.config(frozen.clone())?;
    session.history.set_value(Default::default());
    session.snapshots.set_value(Vec::new());
    session.snapshot_count.set(0);
    session.snapshot_index.set(None);
    session.elapsed_before_ms.set_value(0.0);
    session.inside.reset_training();
    let mut fresh = Trainer::new(config, &device).map_err(|error| error.to_string())?;
    fresh.set_analysis(settings.analyse_every);
    session.run.set(Some(RunInfo { settings, frozen }));
    Ok(fresh)
}

/// Hands the trainer back to its cell.
fn put_back(session: TrainingSession, current: Trainer) {
    *session.trainer.get_value().borrow_mut() = Some(current);
}

/// One step with its bookkeeping; `false` when training must stop.
async fn run_step(
    session: TrainingSession,
    mut current: Trainer,
    started_ms: f64,
    this_run: u64,
) -> (Trainer, bool) {
    let outcome = current.step().await;
    if session.generation.get_value() != this_run {
        return (current, false);
    }
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            let text = match &error {
                TrainError::NonFinite { .. } => error.to_string(),
                other => format!("Training stopped: {other}"),
            };
            session.message.set(Some(text));
            // After a NaN the trainer went back to its last good weights and step count.
            session.steps_done.set(current.steps_done());
            session.inside.touch();
            return (current, false);
        }
    };
    record_step(session, &current, &report, started_ms);
    let last = report.step >= current.config().steps;
    let (eval_every, probe_every) = session.run.with_untracked(|run| {
        run.as_ref().map_or((1, 1), |run| {
            (
                run.settings.eval_every.max(1),
                run.settings.probe_every.max(1),
            )
        })
    });
    if (report.step.is_multiple_of(eval_every) || last)
        && let Err(failure) = evaluate(session, &current, &report, this_run).await
    {
        session.message.set(Some(failure));
        return (current, false);
    }
    if report.step.is_multiple_of(probe_every) || last {
        take_snapshot(session, &current, report.step, this_run).await;
    }
    // A reset while the evaluation or the probe ran makes this run stale: it writes nothing.
    if session.generation.get_value() != this_run {
        return (current, false);
    }
    session
        .history
        .update_value(|history| history.thin(MAX_STEP_RECORDS));
    session.steps_done.set(report.step);
    if last {
        session.phase.set(Phase::Done);
    }
    let now = web::now_ms();
    if last || now - session.last_draw_ms.get_value() >= REDRAW_EVERY_MS {
        session.last_draw_ms.set_value(now);
        session.redraw();
        session.inside.touch();
    }
    (current, !last)
}

/// Keeps what the step measured in the history and hands it to the Inside tab.
fn record_step(session: TrainingSession, current: &Trainer, report: &StepReport, started_ms: f64) {
    let elapsed_ms = session.elapsed_before_ms.get_value() + web::now_ms() - started_ms;
    session
        .inside
        .record_step(report, current.task().kind().name());
    session.history.update_value(|history| {
        history.push_step(StepRecord {
            step: report.step,
            loss: report.loss,
            grad_norm: report.grad_norm,
            learning_rate: report.learning_rate,
            update_ratio: Some(report.update_ratio),
            elapsed_ms,
        });
        if report.step.is_multiple_of(UPDATE_SUMMARY_EVERY) {
            history.push_update_ratios(UpdateRatios {
                step: report.step,
                tensors: report.tensor_update_ratios.clone(),
            });
        }
    });
}

/// Evaluates on the held-out set and records it.
async fn evaluate(
    session: TrainingSession,
    current: &Trainer,
    report: &StepReport,
    this_run: u64,
) -> Result<(), String> {
    let evaluation = current
        .evaluate()
        .await
        .map_err(|error| format!("Evaluation failed: {error}"))?;
    if session.generation.get_value() != this_run {
        return Ok(());
    }
    let epoch = current.epochs();
    session.history.update_value(|history| {
        let previous = history.evals.last().map_or(0, |eval| eval.step);
        let train_loss = history
            .mean_train_loss_since(previous)
            .unwrap_or(report.loss);
        history.push_eval(EvalRecord {
            step: report.step,
            epoch,
            train_loss,
            val_loss: evaluation.loss,
            val_accuracy: evaluation.accuracy(),
            learning_rate: report.learning_rate,
        });
    });
    Ok(())
}

/// Traces the probe text through the current weights and keeps its attention.
async fn take_snapshot(session: TrainingSession, current: &Trainer, step: usize, this_run: u64) {
    let Some(device) = session.backend.get_value().map(|backend| backend.device) else {
        return;
    };
    let task = current.task();
    let tokenizer = WordTokenizer::new(
        task.vocabulary().clone(),
        current.model_config().max_seq_len,
    );
    let tokens = tokenizer.tokenize(task.probe_text());
    let Ok(mut trace) = run_traced(&current.model(), &[tokens.ids()], &device).await else {
        return;
    };
    if session.generation.get_value() != this_run {
        return;
    }
    // Only the attention is replayed; the module outputs would cost memory.
    trace.modules.clear();
    let run = Arc::new(RunResult {
        tokens,
        trace: TraceSlices::new(RunTrace::Host(trace), Vec::new()),
        forward_ms: 0.0,
    });
    session.snapshots.update_value(|kept| {
        kept.push(Snapshot { step, run });
        thinning::thin(kept, MAX_SNAPSHOTS, 0);
    });
    session
        .snapshot_count
        .set(session.snapshots.with_value(Vec::len));
}

/// Hands the trained model to the explorer.
pub(super) fn use_in_explorer(session: TrainingSession) {
    let cell = session.trainer.get_value();
    let borrowed = cell.borrow();
    let Some(current) = borrowed.as_ref() else {
        session.message.set(Some("Train a model first.".into()));
        return;
    };
    let config = current.model_config().clone();
    let task = current.task();
    let accuracy = session
        .history
        .with_value(|history| history.evals.last().map(|eval| eval.val_accuracy));
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("glassbox.task".to_string(), task.kind().name().to_string());
    metadata.insert(
        "glassbox.steps".to_string(),
        current.steps_done().to_string(),
    );
    if let Some(accuracy) = accuracy {
        metadata.insert(
            "glassbox.heldout_accuracy".to_string(),
            format!("{accuracy:.4}"),
        );
    }
    session.on_use.run(LoadedModel {
        id: "trained".into(),
        tokenizer: TextTokenizer::Word(WordTokenizer::new(
            task.vocabulary().clone(),
            config.max_seq_len,
        )),
        model: current.model(),
        provenance: provenance(task.kind(), current.steps_done(), accuracy),
        probe_text: Some(task.probe_text().to_string()),
        metadata,
        file_name: format!("trained-{}.safetensors", task.kind().name()),
        config: TransformerConfig {
            dropout: 0.0,
            ..config
        },
    });
}

/// Which history export to download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Export {
    /// Steps, evaluations and update ratios as JSON.
    Json,
    /// The steps as CSV.
    Steps,
    /// The evaluations as CSV.
    Evaluations,
}

/// Downloads the history as `kind`.
pub(super) fn export(session: TrainingSession, kind: Export) {
    let (name, text) = session.history.with_value(|history| match kind {
        Export::Json => ("glassbox-training.json", history.to_json()),
        Export::Evaluations => ("glassbox-evaluations.csv", history.evals_csv()),
        Export::Steps => ("glassbox-steps.csv", history.steps_csv()),
    });
    if let Err(failure) = web::files::download(name, text.as_bytes()) {
        session
            .message
            .set(Some(format!("Export failed: {failure}")));
    }
}
