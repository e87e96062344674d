//! The training tab's controllers: start, resume, pause, single step, reset, hand the model
//! to the explorer and export the history. The trainer lives in the model worker: each
//! controller sends it a request, and [`listen`] turns what it sends back (a report per step,
//! the run's end, the worker's death) into the [`TrainingSession`].

use leptos::prelude::*;
use std::sync::Arc;

use crate::analysis::thinning;
use crate::analysis::training::{EvalRecord, StepRecord, UpdateRatios};
use crate::model::{Checkpoint, Sidecars, TextTokenizer, TransformerConfig, WordTokenizer};
use crate::page::training_report::provenance;
use crate::page::training_run::{Phase, finished_words};
use crate::structure::Trace;
use crate::train::{StepReport, Task};
use crate::worker::protocol::{Reply, Request, RunPlan, StepMessage, Stop};

use super::super::model_worker::client::WorkerEvent;
use super::super::session::{LoadedModel, RunResult};
use super::super::web;
use super::state::{RemoteRun, RunInfo, Snapshot, TrainingSession};
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

/// Asks the worker to stop after the step in flight. The page says so at once: the worker
/// reads the request between steps.
pub(super) fn pause(session: TrainingSession) {
    if session.phase.get_untracked() == Phase::Running
        && let Ok(worker) = session.worker()
    {
        session.pausing.set(true);
        worker.send(Request::Pause);
    }
}

/// Drops the run and everything it recorded; the form stays as it is.
pub(super) fn reset(session: TrainingSession) {
    session
        .generation
        .update_value(|generation| *generation += 1);
    if let Ok(worker) = session.worker() {
        worker.send(Request::Reset);
    }
    forget_run(session);
    session.message.set(None);
    session.notice.set(None);
    session.redraw();
}

/// Forgets the worker's run and what it recorded.
fn forget_run(session: TrainingSession) {
    session.run_id.set_value(None);
    session.remote.set_value(None);
    session.saved.set_value(None);
    session.pausing.set(false);
    session.history.set_value(Default::default());
    session.snapshots.set_value(Vec::new());
    session.snapshot_count.set(0);
    session.snapshot_index.set(None);
    session.steps_done.set(0);
    session.zoom.set(None);
    session.cursor.set(None);
    session.run.set(None);
    session.phase.set(Phase::Idle);
    session.inside.reset_training();
}

/// Gets the worker's trainer ready, then has it step: all that are left, or one when `once`.
fn launch(session: TrainingSession, once: bool) {
    if session.phase.get_untracked() == Phase::Running {
        return;
    }
    session.message.set(None);
    session.notice.set(None);
    let before = session.phase.get_untracked();
    session.phase.set(Phase::Running);
    let generation = session.generation.get_value();
    web::spawn(async move {
        let steps = match prepare(session, generation).await {
            // Reset while the worker was getting ready.
            Ok(None) => return,
            Ok(Some(steps)) => steps,
            Err(failure) => {
                session.message.set(Some(failure));
                session.phase.set(before);
                return;
            }
        };
        if session.steps_done.get_untracked() >= steps {
            session.phase.set(Phase::Done);
            session.message.set(Some(finished_words(steps)));
            return;
        }
        let (eval_every, probe_every) = session.run.with_untracked(|run| {
            run.as_ref().map_or((1, 1), |run| {
                (run.settings.eval_every, run.settings.probe_every)
            })
        });
        let Ok(worker) = session.worker() else {
            return;
        };
        session.started_ms.set_value(web::now_ms());
        let id = worker.send(Request::Run(RunPlan {
            once,
            eval_every,
            probe_every,
        }));
        session.run_id.set_value(Some(id));
    });
}

/// The worker's trainer made ready for the form: a new one when there is no run, else the
/// run's with the form's changes applied where the reuse rules allow them. Gives the run's
/// planned steps (`None` when a reset came in the meantime); a refusal leaves the run as it was.
async fn prepare(session: TrainingSession, generation: u64) -> Result<Option<usize>, String> {
    let worker = session.worker()?;
    let settings = session.form.get_untracked();
    let frozen = session.frozen.get_untracked();
    let fresh = session.remote.with_value(Option::is_none);
    let decided = session.pending_untracked();
    if !fresh && decided.is_empty() {
        return Ok(session
            .remote
            .with_value(|run| run.as_ref().map(|run| run.config.steps)));
    }
    if let Some(refusal) = decided.refusal() {
        return Err(refusal);
    }
    let config = settings.config(frozen.clone())?;
    let request = if fresh {
        Request::NewRun {
            config: config.clone(),
            analyse_every: settings.analyse_every,
        }
    } else {
        Request::Reconfigure {
            config: config.clone(),
            analyse_every: settings.analyse_every,
        }
    };
    let answer = worker.ask(request).await?;
    if session.generation.get_value() != generation {
        return Ok(None);
    }
    match answer {
        Reply::Done => {}
        Reply::Refused(failure) => return Err(failure),
        other => return Err(format!("the model worker answered {other:?}")),
    }
    if fresh {
        forget_run(session);
        session.elapsed_before_ms.set_value(0.0);
        session.phase.set(Phase::Running);
    } else {
        session.notice.set(decided.applied_words());
    }
    let steps = config.steps;
    session.remote.set_value(Some(RemoteRun {
        task: Task::new(config.task),
        config,
        epochs: session
            .remote
            .with_value(|run| run.as_ref().map_or(0.0, |run| run.epochs)),
    }));
    session.run.set(Some(RunInfo { settings, frozen }));
    Ok(Some(steps))
}

/// Turns what the worker sends unasked into the session: each step's report and the run's
/// end. A worker that died is reported in words; what the page holds stays.
pub(super) fn listen(session: TrainingSession) {
    let Ok(worker) = session.worker() else {
        return;
    };
    let on_event = move |event: &WorkerEvent| match event {
        WorkerEvent::Message(message) => {
            if let Reply::Started { label, .. } = &message.body {
                session.worker_label.set(Some(label.clone()));
                return;
            }
            if session.run_id.get_value() != Some(message.id) {
                // A run that was reset: what it still sends is stale.
                return;
            }
            match &message.body {
                Reply::Step(step) => record(session, step.as_ref().clone()),
                Reply::Snapshot(snapshot) => {
                    session.saved.set_value(Some(snapshot.as_ref().clone()))
                }
                Reply::Stopped { steps_done, why } => stopped(session, *steps_done, why.clone()),
                Reply::Refused(failure) => stopped(
                    session,
                    session.steps_done.get_untracked(),
                    Stop::Failed(failure.clone()),
                ),
                _ => {}
            }
        }
        WorkerEvent::Died(reason) => died(session, reason.clone()),
    };
    worker.listen(on_event);
}

/// The worker died and a new one started: it takes the run up from the last snapshot
/// received, when there is one; else the run is lost. The history stays either way.
fn died(session: TrainingSession, reason: String) {
    session.worker_label.set(None);
    session.run_id.set_value(None);
    session.pausing.set(false);
    if session.phase.get_untracked() == Phase::Running {
        session.phase.set(Phase::Paused);
    }
    let config = session
        .remote
        .with_value(|run| run.as_ref().map(|run| run.config.clone()));
    let analyse_every = session
        .run
        .with_untracked(|run| run.as_ref().map(|run| run.settings.analyse_every));
    let (Some(config), Some(analyse_every)) = (config, analyse_every) else {
        // No run: nothing was lost.
        forget_worker_run(session);
        session.message.set(Some(reason));
        return;
    };
    let Some(snapshot) = session.saved.get_value() else {
        lost(session, &reason, "no snapshot of its weights had come");
        return;
    };
    let taken = snapshot.progress.steps_done;
    let restarts = config.optimizer.has_state();
    let generation = session.generation.get_value();
    session.message.set(Some(format!(
        "{reason} Taking the run up again from its snapshot after step {taken}…"
    )));
    web::spawn(async move {
        let request = Request::Resume {
            config,
            analyse_every,
            snapshot: Box::new(snapshot),
        };
        let answer = match session.worker() {
            Ok(worker) => worker.ask(request).await,
            Err(failure) => Err(failure),
        };
        if session.generation.get_value() != generation {
            // Reset meanwhile.
            return;
        }
        match answer {
            Ok(Reply::Done) => {
                session.steps_done.set(taken);
                let optimizer = if restarts {
                    " The optimizer's state (its moments) starts again: a snapshot holds the weights only."
                } else {
                    ""
                };
                session.message.set(Some(format!(
                    "{reason} It took the run up from the weights after step {taken}, the last \
                     snapshot received; the history after step {taken} is replaced when training \
                     resumes.{optimizer}"
                )));
                session.redraw();
            }
            Ok(Reply::Refused(failure)) | Err(failure) => lost(session, &reason, &failure),
            Ok(other) => lost(session, &reason, &format!("it answered {other:?}")),
        }
    });
}

/// The worker's run could not be taken up (`why`): it is gone, its history stays.
fn lost(session: TrainingSession, reason: &str, why: &str) {
    let steps = session.steps_done.get_untracked();
    forget_worker_run(session);
    session.message.set(Some(format!(
        "{reason} Its run after step {steps} could not be taken up again ({why}); the history up \
         to there stays. Reset to train again."
    )));
}

/// After the worker died: its run is gone, the history stays for reading and export.
fn forget_worker_run(session: TrainingSession) {
    session.run_id.set_value(None);
    session.remote.set_value(None);
    session.saved.set_value(None);
    session.pausing.set(false);
    session.run.set(None);
    if session.phase.get_untracked() == Phase::Running {
        session.phase.set(Phase::Paused);
    }
    session.redraw();
}

/// The run stopped: after its last step, a pause or an error.
fn stopped(session: TrainingSession, steps_done: usize, why: Stop) {
    session.run_id.set_value(None);
    session.pausing.set(false);
    session.elapsed_before_ms.update_value(|elapsed| {
        *elapsed += web::now_ms() - session.started_ms.get_value();
    });
    session.steps_done.set(steps_done);
    match why {
        Stop::Finished => session.phase.set(Phase::Done),
        Stop::Paused => session.phase.set(Phase::Paused),
        Stop::Failed(failure) => {
            session.message.set(Some(failure));
            session.phase.set(Phase::Paused);
            session.inside.touch();
        }
    }
    session.redraw();
}

/// One step's report, evaluation and snapshot into the history.
fn record(session: TrainingSession, step: StepMessage) {
    let StepMessage {
        report,
        epochs,
        evaluation,
        snapshot,
    } = step;
    let Some(task) = session
        .remote
        .with_value(|run| run.as_ref().map(|run| run.task.clone()))
    else {
        return;
    };
    session.remote.update_value(|run| {
        if let Some(run) = run {
            run.epochs = epochs;
        }
    });
    record_step(session, &task, &report);
    if let Some(evaluation) = evaluation {
        session.history.update_value(|history| {
            let previous = history.evals.last().map_or(0, |eval| eval.step);
            let train_loss = history
                .mean_train_loss_since(previous)
                .unwrap_or(report.loss);
            history.push_eval(EvalRecord {
                step: report.step,
                epoch: epochs,
                train_loss,
                val_loss: evaluation.loss,
                val_accuracy: evaluation.accuracy(),
                learning_rate: report.learning_rate,
            });
        });
    }
    if let Some(attention) = snapshot {
        keep_snapshot(session, &task, report.step, attention);
    }
    session
        .history
        .update_value(|history| history.thin(MAX_STEP_RECORDS));
    session.steps_done.set(report.step);
    let last = session.remote.with_value(|run| {
        run.as_ref()
            .is_some_and(|run| report.step >= run.config.steps)
    });
    let now = web::now_ms();
    if last || now - session.last_draw_ms.get_value() >= REDRAW_EVERY_MS {
        session.last_draw_ms.set_value(now);
        session.redraw();
        session.inside.touch();
    }
}

/// Keeps what the step measured in the history and hands it to the Inside tab.
fn record_step(session: TrainingSession, task: &Task, report: &StepReport) {
    let elapsed_ms =
        session.elapsed_before_ms.get_value() + web::now_ms() - session.started_ms.get_value();
    session.inside.record_step(report, task.kind().name());
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

/// Keeps the probe's attention after `step` for the replay slider.
fn keep_snapshot(
    session: TrainingSession,
    task: &Task,
    step: usize,
    attention: Vec<crate::structure::AttentionCapture>,
) {
    let max_len = session
        .remote
        .with_value(|run| {
            run.as_ref()
                .map(|run| run.config.model_config(task).max_seq_len)
        })
        .unwrap_or(task.max_len());
    let tokens = WordTokenizer::new(task.vocabulary().clone(), max_len).tokenize(task.probe_text());
    // Only the attention is replayed; the module outputs would cost memory.
    let trace = Trace {
        attention,
        modules: Vec::new(),
    };
    let run = Arc::new(RunResult {
        tokens,
        trace: TraceSlices::new(RunTrace::Host(trace), Vec::new()),
        forward_ms: 0.0,
    });
    session.snapshots.update_value(|kept| {
        // A run taken up from an earlier step replaces what followed it, as the history does.
        kept.retain(|snapshot| snapshot.step < step);
        kept.push(Snapshot { step, run });
        thinning::thin(kept, MAX_SNAPSHOTS, 0);
    });
    session
        .snapshot_count
        .set(session.snapshots.with_value(Vec::len));
}

/// Hands the trained model to the explorer: the worker sends its weights, the page opens
/// them on its own device.
pub(super) fn use_in_explorer(session: TrainingSession) {
    let Some((config, task)) = session.remote.with_value(|run| {
        run.as_ref()
            .map(|run| (run.config.clone(), run.task.clone()))
    }) else {
        session.message.set(Some("Train a model first.".into()));
        return;
    };
    web::spawn(async move {
        match trained_model(session, &config, &task).await {
            Ok(model) => session.on_use.run(model),
            Err(failure) => session.message.set(Some(format!(
                "The trained model could not be opened: {failure}"
            ))),
        }
    });
}

/// The worker's weights as a model for the explorer.
async fn trained_model(
    session: TrainingSession,
    config: &crate::train::TrainConfig,
    task: &Task,
) -> Result<LoadedModel, String> {
    let device = session
        .backend
        .get_value()
        .ok_or("the device is not ready yet")?
        .device;
    let (steps_done, bytes) = match session.worker()?.ask(Request::Weights).await? {
        Reply::Weights { steps_done, bytes } => (steps_done, bytes),
        Reply::Refused(failure) => return Err(failure),
        other => return Err(format!("the model worker answered {other:?}")),
    };
    let model = Checkpoint::parse(&bytes, Sidecars::default())
        .and_then(|checkpoint| checkpoint.to_model(&device))
        .map_err(|error| error.to_string())?;
    let model_config = config.model_config(task);
    let accuracy = session
        .history
        .with_value(|history| history.evals.last().map(|eval| eval.val_accuracy));
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("glassbox.task".to_string(), task.kind().name().to_string());
    metadata.insert("glassbox.steps".to_string(), steps_done.to_string());
    if let Some(accuracy) = accuracy {
        metadata.insert(
            "glassbox.heldout_accuracy".to_string(),
            format!("{accuracy:.4}"),
        );
    }
    Ok(LoadedModel {
        id: "trained".into(),
        tokenizer: TextTokenizer::Word(WordTokenizer::new(
            task.vocabulary().clone(),
            model_config.max_seq_len,
        )),
        model,
        provenance: provenance(task.kind(), steps_done, accuracy),
        probe_text: Some(task.probe_text().to_string()),
        metadata,
        file_name: format!("trained-{}.safetensors", task.kind().name()),
        config: TransformerConfig {
            dropout: 0.0,
            ..model_config
        },
        worker_weights: None,
    }
    .with_worker_weights(bytes, None, None))
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
