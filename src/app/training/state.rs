//! The training session's state: the form, the run (its trainer and the settings it runs
//! with), what the run recorded, and the monitor's view settings, in one typed struct that the
//! training tab provides by context.

use std::sync::Arc;

use leptos::prelude::*;

use crate::analysis::training::{History, Thresholds};
use crate::charts::PanelLayout;
use crate::model::BackendInfo;
use crate::page::training::RunSettings;
use crate::page::training_run::{Phase, Reuse, reuse};
use crate::train::{Task, TrainConfig};
use crate::worker::protocol::RunSnapshot;

use super::super::inside::InsideState;
use super::super::model_worker::client::ModelWorker;
use super::super::session::{LoadedModel, RunResult};

/// The probe's attention at one step.
#[derive(Clone)]
pub(super) struct Snapshot {
    /// The step the snapshot was taken after.
    pub step: usize,
    /// The probe's traced run (attention only).
    pub run: Arc<RunResult>,
}

/// The settings the running trainer was built with, changes it took included: what the
/// progress, the report and the address describe while a run exists.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RunInfo {
    /// The form's settings as the run has them.
    pub settings: RunSettings,
    /// The modules the run keeps fixed.
    pub frozen: Vec<String>,
}

/// The page's view of the run the worker holds: what it was built with and how far it got.
#[derive(Clone, Debug)]
pub(super) struct RemoteRun {
    /// The config the worker's trainer runs (the form's changes it took included).
    pub config: TrainConfig,
    /// The run's task.
    pub task: Task,
    /// Passes over the training data so far.
    pub epochs: f64,
}

/// Everything the training tab's components read and its controllers change; cheap to copy.
#[derive(Clone, Copy)]
pub(super) struct TrainingSession {
    /// The device the page runs on, once chosen (a trained model is handed to the explorer on it).
    pub backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    /// The worker that trains, or why the browser could not start one.
    pub worker: StoredValue<Result<ModelWorker, String>, LocalStorage>,
    /// The worker's device in words, once it has one.
    pub worker_label: RwSignal<Option<String>>,
    /// Hands a trained model to the explorer.
    pub on_use: Callback<LoadedModel>,
    /// Where each step's gradients and activations go.
    pub inside: InsideState,
    /// Module paths to keep fixed, chosen in the diagnostics tab.
    pub frozen: RwSignal<Vec<String>>,
    /// The form.
    pub form: RwSignal<RunSettings>,
    /// The run's own settings, while there is a trainer.
    pub run: RwSignal<Option<RunInfo>>,
    /// Where the run stands.
    pub phase: RwSignal<Phase>,
    /// Pause asks the loop to stop after the step in flight; the phase stays `Running` until it
    /// has.
    pub pausing: RwSignal<bool>,
    /// What went wrong, shown as an alert.
    pub message: RwSignal<Option<String>>,
    /// What the run took from the form when it went on.
    pub notice: RwSignal<Option<String>>,
    /// The worker's run, while there is one.
    pub remote: StoredValue<Option<RemoteRun>, LocalStorage>,
    /// The run's last snapshot received: a new worker takes the run up from it.
    pub saved: StoredValue<Option<RunSnapshot>, LocalStorage>,
    /// The id of the worker's run request in flight: its step reports carry it.
    pub run_id: StoredValue<Option<u32>>,
    /// When the stretch of training in flight started.
    pub started_ms: StoredValue<f64>,
    /// What the run recorded.
    pub history: StoredValue<History, LocalStorage>,
    /// Bumped when the history should be redrawn.
    pub history_version: RwSignal<u32>,
    /// The probe's attention snapshots, oldest first.
    pub snapshots: StoredValue<Vec<Snapshot>, LocalStorage>,
    /// How many snapshots there are.
    pub snapshot_count: RwSignal<usize>,
    /// The snapshot shown; `None` follows the latest.
    pub snapshot_index: RwSignal<Option<usize>>,
    /// The probe's layer shown.
    pub probe_layer: RwSignal<usize>,
    /// Bumped by every start and reset, so a loop of an older run stops.
    pub generation: StoredValue<u64>,
    /// Training time of the earlier stretches of this run.
    pub elapsed_before_ms: StoredValue<f64>,
    /// The report's warning thresholds.
    pub thresholds: RwSignal<Thresholds>,
    /// Steps the monitor shows; `None` for all.
    pub zoom: RwSignal<Option<(f64, f64)>>,
    /// Step under the pointer.
    pub cursor: RwSignal<Option<f64>>,
    /// Where the monitor's panels were drawn.
    pub layouts: StoredValue<Vec<PanelLayout>, LocalStorage>,
    /// The hover read-out.
    pub readout: RwSignal<Option<String>>,
    /// Steps the run has done.
    pub steps_done: RwSignal<usize>,
    /// When the monitor was last redrawn during training.
    pub last_draw_ms: StoredValue<f64>,
    /// How often the monitor has been drawn (for the browser tests).
    pub monitor_draws: RwSignal<u32>,
}

impl TrainingSession {
    /// A session with the form read from `form` and no run yet.
    pub fn new(
        backend: StoredValue<Option<BackendInfo>, LocalStorage>,
        worker: StoredValue<Result<ModelWorker, String>, LocalStorage>,
        on_use: Callback<LoadedModel>,
        inside: InsideState,
        frozen: RwSignal<Vec<String>>,
        form: RunSettings,
    ) -> Self {
        Self {
            backend,
            worker,
            worker_label: RwSignal::new(None),
            on_use,
            inside,
            frozen,
            form: RwSignal::new(form),
            run: RwSignal::new(None),
            phase: RwSignal::new(Phase::Idle),
            pausing: RwSignal::new(false),
            message: RwSignal::new(None),
            notice: RwSignal::new(None),
            remote: StoredValue::new_local(None),
            saved: StoredValue::new_local(None),
            run_id: StoredValue::new(None),
            started_ms: StoredValue::new(0.0),
            history: StoredValue::new_local(History::default()),
            history_version: RwSignal::new(0),
            snapshots: StoredValue::new_local(Vec::new()),
            snapshot_count: RwSignal::new(0),
            snapshot_index: RwSignal::new(None),
            probe_layer: RwSignal::new(0),
            generation: StoredValue::new(0),
            elapsed_before_ms: StoredValue::new(0.0),
            thresholds: RwSignal::new(Thresholds::default()),
            zoom: RwSignal::new(None),
            cursor: RwSignal::new(None),
            layouts: StoredValue::new_local(Vec::new()),
            readout: RwSignal::new(None),
            steps_done: RwSignal::new(0),
            last_draw_ms: StoredValue::new(f64::NEG_INFINITY),
            monitor_draws: RwSignal::new(0),
        }
    }

    /// The session the training tab provides.
    pub fn get() -> Self {
        expect_context::<Self>()
    }

    /// The worker, or why there is none.
    pub fn worker(&self) -> Result<ModelWorker, String> {
        self.worker.get_value()
    }

    /// Whether a step is running.
    pub fn running(&self) -> bool {
        self.phase.get() == Phase::Running
    }

    /// The settings the address and the progress describe: the run's while there is one, else
    /// the form's.
    pub fn described(&self) -> RunSettings {
        self.run
            .with(|run| run.as_ref().map(|run| run.settings.clone()))
            .unwrap_or_else(|| self.form.get())
    }

    /// The steps the run (or, before one, the form) plans.
    pub fn total_steps(&self) -> usize {
        self.run
            .with(|run| run.as_ref().map(|run| run.settings.steps))
            .unwrap_or_else(|| self.form.with(|form| form.steps))
    }

    /// What the reuse rules say about the form's changes to the run; empty without a run.
    pub fn pending(&self) -> Reuse {
        self.steps_done.track();
        self.run.track();
        self.form.track();
        self.frozen.track();
        self.pending_untracked()
    }

    /// [`TrainingSession::pending`], read without subscribing (for controllers).
    pub fn pending_untracked(&self) -> Reuse {
        let steps_done = self.steps_done.get_untracked();
        self.run.with_untracked(|run| match run {
            Some(run) => self.form.with_untracked(|form| {
                self.frozen.with_untracked(|frozen| {
                    reuse(&run.settings, &run.frozen, form, frozen, steps_done)
                })
            }),
            None => Reuse::default(),
        })
    }

    /// Asks the monitor, the report and the probe to redraw.
    pub fn redraw(&self) {
        self.history_version.update(|version| *version += 1);
    }
}
