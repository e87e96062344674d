//! The training tab: train a Transformer on a toy task in the page, watch the six monitor
//! panels and the probe's attention form, read the report, export the history.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::training::{
    EvalRecord, History, StepRecord, Thresholds, UpdateRatios, report, throughput,
};
use crate::charts::{PanelData, PanelLayout, Scale, Series, draw_monitor};
use crate::model::{BackendInfo, TransformerConfig, WordTokenizer, run_traced};
use crate::train::{Problem, RunSettings as Form, TaskKind, TrainError, Trainer};

use super::inside::InsideState;
use super::session::{LoadedModel, RunResult};
use super::views::{HeadChoice, draw_heatmap_view, image_buttons, panel_heading, with_area};
use super::web;

/// Attention snapshots kept for the replay slider; older ones are thinned beyond this.
const MAX_SNAPSHOTS: usize = 120;
/// Step records kept; older ones are thinned beyond this (see `History::thin`).
const MAX_STEP_RECORDS: usize = 20_000;
/// Per-tensor update ratios are summarised every this many steps.
const UPDATE_SUMMARY_EVERY: usize = 10;
/// The monitor is redrawn at most this often while training.
const REDRAW_EVERY_MS: f64 = 250.0;

/// The probe's attention at one step.
#[derive(Clone)]
struct Snapshot {
    step: usize,
    run: Arc<RunResult>,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No trainer yet.
    Idle,
    /// Steps are running.
    Running,
    /// Stopped by the user, by a NaN, or between single steps.
    Paused,
    /// All planned steps done.
    Done,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Done => "done",
        }
    }
}

/// The training tab.
#[component]
pub fn TrainingPanel(
    /// The device the page runs on, once chosen.
    backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    /// Hands a trained model to the explorer.
    on_use: Callback<LoadedModel>,
    /// Where each step's gradients and activations go.
    inside: InsideState,
    /// Module paths to keep fixed, chosen in the diagnostics tab.
    frozen: RwSignal<Vec<String>>,
) -> impl IntoView {
    // The form's settings live in the address (`task`, `train_*`): a link reopens them.
    let form = RwSignal::new(Form::from_query(&web::location_search()));
    Effect::new(move |_| {
        let current = web::location_search();
        let query = form.with(|form| form.in_query(&current));
        if query != current {
            web::set_query(&query, false);
        }
    });
    web::on_history_change(move || {
        let settings = Form::from_query(&web::location_search());
        if form.with_untracked(|form| *form != settings) {
            form.set(settings);
        }
    });
    let phase = RwSignal::new(Phase::Idle);
    // Pause asks the loop to stop after the step in flight; the phase stays `Running` until it has.
    let pausing = RwSignal::new(false);
    let message = RwSignal::new(None::<String>);
    let trainer: Rc<RefCell<Option<Trainer>>> = Rc::new(RefCell::new(None));
    let trainer = StoredValue::new_local(trainer);
    let history = StoredValue::new_local(History::default());
    let history_version = RwSignal::new(0u32);
    let snapshots = StoredValue::new_local(Vec::<Snapshot>::new());
    let snapshot_count = RwSignal::new(0usize);
    let snapshot_index = RwSignal::new(None::<usize>);
    let probe_layer = RwSignal::new(0usize);
    let generation = StoredValue::new(0u64);
    let elapsed_before_ms = StoredValue::new(0.0f64);
    let thresholds = RwSignal::new(Thresholds::default());
    let zoom = RwSignal::new(None::<(f64, f64)>);
    let cursor = RwSignal::new(None::<f64>);
    let layouts = StoredValue::new_local(Vec::<PanelLayout>::new());
    let readout = RwSignal::new(None::<String>);
    let steps_done = RwSignal::new(0usize);
    let last_draw_ms = StoredValue::new(f64::NEG_INFINITY);
    let monitor_draws = RwSignal::new(0u32);

    let monitor_ref = NodeRef::<html::Canvas>::new();
    let probe_ref = NodeRef::<html::Canvas>::new();

    let update = move |change: &dyn Fn(&mut Form)| form.update(|form| change(form));

    // Builds the trainer from the form (when there is none) and hands it out of the cell.
    let take_trainer = move || -> Result<Trainer, String> {
        if phase.get_untracked() == Phase::Running {
            return Err("a step is still running".into());
        }
        let cell = trainer.get_value();
        if let Some(mut existing) = cell.borrow_mut().take() {
            existing.set_analysis(form.get_untracked().analyse_every);
            return Ok(existing);
        }
        let device = backend
            .get_value()
            .ok_or("the device is not ready yet")?
            .device;
        let config = form.get_untracked().config(frozen.get_untracked())?;
        history.set_value(History::default());
        snapshots.set_value(Vec::new());
        snapshot_count.set(0);
        snapshot_index.set(None);
        elapsed_before_ms.set_value(0.0);
        inside.reset_training();
        let mut fresh = Trainer::new(config, &device).map_err(|error| error.to_string())?;
        fresh.set_analysis(form.get_untracked().analyse_every);
        Ok(fresh)
    };

    // One step with its bookkeeping; `false` when training must stop.
    let run_step = move |mut current: Trainer, started_ms: f64, this_run: u64| async move {
        let device = backend.get_value().map(|backend| backend.device);
        let outcome = current.step().await;
        if generation.get_value() != this_run {
            return (current, false);
        }
        let report = match outcome {
            Ok(report) => report,
            Err(error) => {
                let text = match &error {
                    TrainError::NonFinite { .. } => error.to_string(),
                    other => format!("Training stopped: {other}"),
                };
                message.set(Some(text));
                // After a NaN the trainer went back to its last good weights and step count.
                steps_done.set(current.steps_done());
                inside.touch();
                return (current, false);
            }
        };
        let elapsed_ms = elapsed_before_ms.get_value() + web::now_ms() - started_ms;
        inside.record_step(&report, current.task().kind().name());
        history.update_value(|history| {
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
        let config = current.config().clone();
        let last = report.step >= config.steps;
        if report.step.is_multiple_of(form.get_untracked().eval_every) || last {
            match current.evaluate().await {
                Ok(evaluation) => history.update_value(|history| {
                    let previous = history.evals.last().map_or(0, |eval| eval.step);
                    let train_loss = history
                        .mean_train_loss_since(previous)
                        .unwrap_or(report.loss);
                    history.push_eval(EvalRecord {
                        step: report.step,
                        epoch: (report.step * config.batch_size) as f64
                            / current.task().epoch_size() as f64,
                        train_loss,
                        val_loss: evaluation.loss,
                        val_accuracy: evaluation.accuracy(),
                        learning_rate: report.learning_rate,
                    });
                }),
                Err(error) => {
                    message.set(Some(format!("Evaluation failed: {error}")));
                    return (current, false);
                }
            }
        }
        if (report
            .step
            .is_multiple_of(form.get_untracked().probe_every.max(1))
            || last)
            && let Some(device) = device
        {
            let task = current.task();
            let tokenizer = WordTokenizer::new(
                task.vocabulary().clone(),
                current.model_config().max_seq_len,
            );
            let tokens = tokenizer.tokenize(task.probe_text());
            if let Ok(mut trace) = run_traced(&current.model(), &[tokens.ids()], &device).await {
                // Only the attention is replayed; the module outputs would cost memory.
                trace.modules.clear();
                let run = Arc::new(RunResult {
                    tokens,
                    trace,
                    forward_ms: 0.0,
                });
                snapshots.update_value(|kept| {
                    kept.push(Snapshot {
                        step: report.step,
                        run,
                    });
                    if kept.len() > MAX_SNAPSHOTS {
                        // Thin the older half: keep every second one.
                        let half = kept.len() / 2;
                        let mut index = 0;
                        kept.retain(|_| {
                            index += 1;
                            index > half || index % 2 == 0
                        });
                    }
                });
                snapshot_count.set(snapshots.with_value(Vec::len));
            }
        }
        history.update_value(|history| history.thin(MAX_STEP_RECORDS));
        steps_done.set(report.step);
        if last {
            phase.set(Phase::Done);
        }
        let now = web::now_ms();
        if last || now - last_draw_ms.get_value() >= REDRAW_EVERY_MS {
            last_draw_ms.set_value(now);
            history_version.update(|version| *version += 1);
            inside.touch();
        }
        (current, !last)
    };

    let put_back = move |current: Trainer| {
        *trainer.get_value().borrow_mut() = Some(current);
    };

    let start = move |_| {
        if phase.get_untracked() == Phase::Running {
            return;
        }
        message.set(None);
        let mut current = match take_trainer() {
            Ok(current) => current,
            Err(failure) => {
                message.set(Some(failure));
                return;
            }
        };
        // A learning rate lowered after a NaN pause takes effect on resume.
        let wanted = form.get_untracked().learning_rate;
        if current.config().learning_rate != wanted
            && let Err(error) = current.set_learning_rate(wanted)
        {
            message.set(Some(error.to_string()));
            put_back(current);
            return;
        }
        if current.steps_done() >= current.config().steps {
            phase.set(Phase::Done);
            put_back(current);
            return;
        }
        let this_run = generation.get_value() + 1;
        generation.set_value(this_run);
        phase.set(Phase::Running);
        web::spawn(async move {
            let started_ms = web::now_ms();
            loop {
                let (back, keep_going) = run_step(current, started_ms, this_run).await;
                current = back;
                if generation.get_value() != this_run {
                    // Reset while this step ran: drop the old trainer.
                    return;
                }
                if !keep_going || pausing.get_untracked() {
                    break;
                }
                web::next_frame().await;
                if pausing.get_untracked() || generation.get_value() != this_run {
                    break;
                }
            }
            if generation.get_value() != this_run {
                return;
            }
            pausing.set(false);
            elapsed_before_ms.update_value(|elapsed| *elapsed += web::now_ms() - started_ms);
            if phase.get_untracked() == Phase::Running {
                phase.set(Phase::Paused);
            }
            put_back(current);
            history_version.update(|version| *version += 1);
        });
    };

    let pause = move |_| {
        if phase.get_untracked() == Phase::Running {
            pausing.set(true);
        }
    };

    let single_step = move |_| {
        if phase.get_untracked() == Phase::Running {
            return;
        }
        message.set(None);
        let current = match take_trainer() {
            Ok(current) => current,
            Err(failure) => {
                message.set(Some(failure));
                return;
            }
        };
        let this_run = generation.get_value() + 1;
        generation.set_value(this_run);
        phase.set(Phase::Running);
        web::spawn(async move {
            let started_ms = web::now_ms();
            let (current, keep_going) = run_step(current, started_ms, this_run).await;
            if generation.get_value() != this_run {
                return;
            }
            elapsed_before_ms.update_value(|elapsed| *elapsed += web::now_ms() - started_ms);
            phase.set(if keep_going || phase.get_untracked() == Phase::Running {
                Phase::Paused
            } else {
                phase.get_untracked()
            });
            put_back(current);
            history_version.update(|version| *version += 1);
        });
    };

    let reset = move |_| {
        generation.update_value(|generation| *generation += 1);
        pausing.set(false);
        *trainer.get_value().borrow_mut() = None;
        history.set_value(History::default());
        snapshots.set_value(Vec::new());
        snapshot_count.set(0);
        snapshot_index.set(None);
        steps_done.set(0);
        message.set(None);
        zoom.set(None);
        cursor.set(None);
        phase.set(Phase::Idle);
        history_version.update(|version| *version += 1);
        inside.reset_training();
    };

    let use_in_explorer = move |_| {
        let cell = trainer.get_value();
        let borrowed = cell.borrow();
        let Some(current) = borrowed.as_ref() else {
            message.set(Some("Train a model first.".into()));
            return;
        };
        let config = current.model_config().clone();
        let task = current.task();
        let accuracy =
            history.with_value(|history| history.evals.last().map(|eval| eval.val_accuracy));
        let provenance = format!(
            "Model: trained in this page on the {} task for {} steps{}.",
            task.kind().name(),
            current.steps_done(),
            accuracy.map_or(String::new(), |accuracy| format!(
                ", {:.1}% of held-out tokens right",
                100.0 * accuracy
            ))
        );
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
        on_use.run(LoadedModel {
            id: "trained".into(),
            tokenizer: WordTokenizer::new(task.vocabulary().clone(), config.max_seq_len),
            model: current.model(),
            provenance,
            probe_text: Some(task.probe_text().to_string()),
            metadata,
            file_name: format!("trained-{}.safetensors", task.kind().name()),
            config: TransformerConfig {
                dropout: 0.0,
                ..config
            },
        });
    };

    let export = move |kind: &'static str| {
        let (name, text) = history.with_value(|history| match kind {
            "json" => ("glassbox-training.json", history.to_json()),
            "evals" => ("glassbox-evaluations.csv", history.evals_csv()),
            _ => ("glassbox-steps.csv", history.steps_csv()),
        });
        if let Err(failure) = web::files::download(name, text.as_bytes()) {
            message.set(Some(format!("Export failed: {failure}")));
        }
    };

    // The six monitor panels follow the history, the zoom and the cursor.
    Effect::new(move |_| {
        history_version.track();
        let (zoom, cursor) = (zoom.get(), cursor.get());
        let Some(canvas) = monitor_ref.get() else {
            return;
        };
        let panels = history.with_value(|history| panels(history, zoom, cursor));
        let style = web::chart_style();
        match with_area(&canvas, |area| draw_monitor(area, &panels, &style)) {
            Ok(drawn) => {
                layouts.set_value(drawn);
                monitor_draws.update(|count| *count += 1);
            }
            Err(failure) => message.set(Some(format!("Drawing the monitor failed: {failure}"))),
        }
    });

    // The probe's attention at the chosen snapshot (the newest by default).
    Effect::new(move |_| {
        snapshot_count.track();
        let (index, layer) = (snapshot_index.get(), probe_layer.get());
        let Some(canvas) = probe_ref.get() else {
            return;
        };
        let shown = snapshots.with_value(|kept| {
            let index = index.unwrap_or(kept.len().saturating_sub(1));
            kept.get(index.min(kept.len().saturating_sub(1))).cloned()
        });
        let Some(snapshot) = shown else {
            return;
        };
        let style = web::chart_style();
        let layer = layer.min(snapshot.run.trace.attention.len().saturating_sub(1));
        if let Err(failure) = draw_heatmap_view(
            &canvas,
            &snapshot.run,
            layer,
            HeadChoice::Mean,
            None,
            &style,
        ) {
            message.set(Some(format!("Drawing the attention failed: {failure}")));
        }
    });

    let on_monitor_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = monitor_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let step = layouts.with_value(|layouts| {
            layouts.iter().find_map(|layout| {
                let (left, top, width, height) = layout.plot;
                let inside = y >= f64::from(top) && y <= f64::from(top) + f64::from(height);
                let _ = (left, width);
                if inside {
                    layout.step_at(x as i32)
                } else {
                    None
                }
            })
        });
        cursor.set(step);
        readout
            .set(step.and_then(|step| history.with_value(|history| describe_step(history, step))));
    };

    let progress = move || {
        let total = form.get().steps.max(1);
        (steps_done.get() as f64 / total as f64).min(1.0)
    };
    let speed = move || {
        history_version.track();
        let total = form.get().steps;
        history.with_value(|history| {
            let remaining = total.saturating_sub(history.steps.last().map_or(0, |s| s.step));
            throughput(&history.steps, 20, remaining).map(|(per_s, eta_s)| {
                format!("{per_s:.1} steps/s · about {} left", format_seconds(eta_s))
            })
        })
    };
    let report_view = move || {
        history_version.track();
        let thresholds = thresholds.get();
        history.with_value(|history| report_lines(history, &thresholds))
    };
    let snapshot_label = move || {
        snapshot_count.track();
        let index = snapshot_index.get();
        snapshots.with_value(|kept| {
            let index = index.unwrap_or(kept.len().saturating_sub(1));
            kept.get(index)
                .map(|snapshot| format!("attention of the probe at step {}", snapshot.step))
                .unwrap_or_else(|| "no snapshot yet".into())
        })
    };
    let val_accuracy = move || {
        history_version.track();
        history.with_value(|history| {
            history
                .evals
                .last()
                .map_or(String::new(), |eval| format!("{:.4}", eval.val_accuracy))
        })
    };
    let custom = move || form.get().preset == "custom";
    let running = move || phase.get() == Phase::Running;

    view! {
        <section id="training" class="training" data-phase=move || phase.get().name()
            data-steps=move || steps_done.get().to_string()
            data-monitor-draws=move || monitor_draws.get().to_string()
            data-snapshots=move || snapshot_count.get().to_string()
            data-val-accuracy=val_accuracy>
            <div class="controls train-form" role="group" aria-label="Training settings">
                <label>"Task "
                    <select id="train-task" aria-label="Task"
                        prop:value=move || form.get().task
                        on:change=move |event| update(&|form| form.task = event_target_value(&event))>
                        {TaskKind::ALL.iter().map(|task| view! {
                            <option value=task.name() selected=move || form.get().task == task.name()>
                                {format!("{} — {}", task.name(), task.describe())}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Problem preset "
                    <select id="train-problem" aria-label="Problem preset"
                        prop:value=move || form.get().problem
                        on:change=move |event| {
                            if let Some(problem) = Problem::from_name(&event_target_value(&event)) {
                                form.update(|form| *form = form.with_problem(problem));
                            }
                        }>
                        {Problem::ALL.iter().map(|problem| view! {
                            <option value=problem.name()>{problem.name()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <span id="train-problem-description" class="note">
                    {move || Problem::from_name(&form.get().problem).map(Problem::describe)}
                </span>
                <label>"Model "
                    <select id="train-preset" aria-label="Model preset"
                        prop:value=move || form.get().preset
                        on:change=move |event| update(&|form| form.preset = event_target_value(&event))>
                        <option value="tiny">"tiny (2 layers, d 64)"</option>
                        <option value="seed">"seed (4 layers, d 256)"</option>
                        <option value="custom">"custom…"</option>
                    </select>
                </label>
                <span class="custom" hidden=move || !custom()>
                    {number_input("train-layers", "Layers", move || form.get().layers as f64, move |v| update(&|f| f.layers = v as usize))}
                    {number_input("train-d-model", "d_model", move || form.get().d_model as f64, move |v| update(&|f| f.d_model = v as usize))}
                    {number_input("train-heads", "Heads", move || form.get().heads as f64, move |v| update(&|f| f.heads = v as usize))}
                    {number_input("train-d-ff", "Feed-forward", move || form.get().d_ff as f64, move |v| update(&|f| f.d_ff = v as usize))}
                    <label>"LayerNorm "
                        <select id="train-norm" aria-label="LayerNorm position"
                            prop:value=move || form.get().norm
                            on:change=move |event| update(&|form| form.norm = event_target_value(&event))>
                            <option value="post">"post-LN"</option>
                            <option value="pre">"pre-LN"</option>
                            <option value="none">"none"</option>
                        </select>
                    </label>
                    <label>"Activation "
                        <select id="train-activation" aria-label="Activation"
                            prop:value=move || form.get().activation
                            on:change=move |event| update(&|form| form.activation = event_target_value(&event))>
                            <option value="relu">"ReLU"</option>
                            <option value="gelu">"GELU"</option>
                            <option value="sigmoid">"sigmoid"</option>
                        </select>
                    </label>
                    <label>"Residual connections "
                        <input id="train-residual" type="checkbox" prop:checked=move || form.get().residual
                            on:change=move |event| update(&|form| form.residual = event_target_checked(&event)) />
                    </label>
                    <label>"Causal "
                        <input id="train-causal" type="checkbox"
                            on:change=move |event| update(&|form| form.causal = event_target_checked(&event)) />
                    </label>
                </span>
                <label>"Optimizer "
                    <select id="train-optimizer" aria-label="Optimizer"
                        prop:value=move || form.get().optimizer
                        on:change=move |event| update(&|form| form.optimizer = event_target_value(&event))>
                        <option value="adamw">"AdamW"</option>
                        <option value="adam">"Adam"</option>
                        <option value="sgd">"SGD + momentum 0.9"</option>
                    </select>
                </label>
                {number_input("train-lr", "Learning rate", move || form.get().learning_rate, move |v| update(&|f| f.learning_rate = v))}
                <label>"Schedule "
                    <select id="train-schedule" aria-label="Learning-rate schedule"
                        prop:value=move || form.get().schedule
                        on:change=move |event| update(&|form| form.schedule = event_target_value(&event))>
                        <option value="cosine">"cosine"</option>
                        <option value="constant">"constant"</option>
                        <option value="step">"step decay (×0.5 each quarter)"</option>
                    </select>
                </label>
                {number_input("train-warmup", "Warm-up steps", move || form.get().warmup as f64, move |v| update(&|f| f.warmup = v as usize))}
                {number_input("train-batch", "Batch", move || form.get().batch_size as f64, move |v| update(&|f| f.batch_size = v as usize))}
                {number_input("train-clip", "Clip norm (0 = off)", move || form.get().clip, move |v| update(&|f| f.clip = v))}
                {number_input("train-seed", "Seed", move || form.get().seed as f64, move |v| update(&|f| f.seed = v as u64))}
                {number_input("train-steps", "Steps", move || form.get().steps as f64, move |v| update(&|f| f.steps = v as usize))}
                {number_input("train-eval-every", "Evaluate every", move || form.get().eval_every as f64, move |v| update(&|f| f.eval_every = v as usize))}
                {number_input("train-probe-every", "Probe every", move || form.get().probe_every as f64, move |v| update(&|f| f.probe_every = v as usize))}
                <span id="train-frozen" class="note">
                    {move || {
                        let frozen = frozen.get();
                        if frozen.is_empty() {
                            "Nothing frozen (choose modules to freeze in Model diagnostics).".to_string()
                        } else {
                            format!("Frozen: {} (set in Model diagnostics).", frozen.join(", "))
                        }
                    }}
                </span>
                {number_input("train-analyse-every", "Analyse gradients every (0 = off)", move || form.get().analyse_every as f64, move |v| update(&|f| f.analyse_every = v as usize))}
            </div>
            <div class="controls train-buttons" role="group" aria-label="Training">
                <button id="train-start" type="button" on:click=start disabled=running>
                    {move || if phase.get() == Phase::Paused { "Resume" } else { "Start" }}
                </button>
                <button id="train-pause" type="button" on:click=pause
                    disabled=move || !running() || pausing.get()>"Pause"</button>
                <button id="train-step" type="button" on:click=single_step disabled=running>"Single step"</button>
                <button id="train-reset" type="button" on:click=reset>"Reset"</button>
                <button id="train-use" type="button" on:click=use_in_explorer
                    disabled=move || running() || steps_done.get() == 0>"Show in the explorer"</button>
                <progress id="train-progress" max="1" prop:value=progress></progress>
                <span id="train-status" aria-live="polite">
                    {move || format!(
                        "{} · step {} of {}",
                        if pausing.get() { "pausing after this step" } else { phase.get().name() },
                        steps_done.get(),
                        form.get().steps
                    )}
                    {move || speed().map(|text| format!(" · {text}"))}
                </span>
            </div>
            <p id="train-message" class="error" role="alert" hidden=move || message.get().is_none()>
                {move || message.get()}
            </p>
            {panel_heading("monitor", "Training monitor", false)}
            <canvas id="monitor" node_ref=monitor_ref width="1140" height="620"
                aria-label="Training monitor: loss, validation accuracy, learning rate, gradient norm, update ratio, batch loss"
                on:mousemove=on_monitor_move
                on:mouseleave=move |_| { cursor.set(None); readout.set(None); }></canvas>
            <p id="monitor-readout" class="tooltip" aria-live="polite">
                {move || readout.get().unwrap_or_else(|| "Hover a panel to read the step under the pointer.".into())}
            </p>
            <div class="controls" role="group" aria-label="Zoom">
                "Zoom to steps "
                {number_input("zoom-from", "from", move || zoom.get().map_or(0.0, |z| z.0), move |v| zoom.update(|z| *z = Some((v, z.map_or(f64::MAX, |z| z.1)))))}
                {number_input("zoom-to", "to", move || zoom.get().map_or(0.0, |z| z.1), move |v| zoom.update(|z| *z = Some((z.map_or(0.0, |z| z.0), v))))}
                <button id="zoom-all" type="button" on:click=move |_| zoom.set(None)>"All steps"</button>
                <button id="export-json" type="button" on:click=move |_| export("json")>"Export JSON"</button>
                <button id="export-steps" type="button" on:click=move |_| export("steps")>"Steps CSV"</button>
                <button id="export-evals" type="button" on:click=move |_| export("evals")>"Evaluations CSV"</button>
                {image_buttons("monitor", monitor_ref, "glassbox-training-monitor", message)}
            </div>
            <div class="report" id="report">
                {panel_heading("report", "Report", false)}
                <ul>{move || report_view().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}</ul>
                <div class="controls" role="group" aria-label="Warning thresholds">
                    {number_input("overfit-ratio", "Overfitting: validation / training loss above", move || thresholds.get().overfit_ratio, move |v| thresholds.update(|t| t.overfit_ratio = v))}
                    {number_input("instability-cv", "Instability: gradient-norm CV above", move || thresholds.get().instability_cv, move |v| thresholds.update(|t| t.instability_cv = v))}
                </div>
            </div>
            <div class="probe">
                {panel_heading("probe", "The probe's attention as it trains", false)}
                <div class="controls">
                    <label>"Snapshot "
                        <input id="snapshot" type="range" min="0"
                            prop:max=move || snapshot_count.get().saturating_sub(1).to_string()
                            prop:value=move || snapshot_index.get().unwrap_or(snapshot_count.get().saturating_sub(1)).to_string()
                            on:input=move |event| snapshot_index.set(event_target_value(&event).parse().ok()) />
                    </label>
                    <button id="snapshot-latest" type="button" on:click=move |_| snapshot_index.set(None)>"Follow the latest"</button>
                    {number_input("probe-layer", "Layer", move || probe_layer.get() as f64, move |v| probe_layer.set(v as usize))}
                    <span id="snapshot-label">{snapshot_label}</span>
                    {image_buttons("probe", probe_ref, "glassbox-probe-attention", message)}
                </div>
                <canvas id="probe" node_ref=probe_ref width="520" height="480"
                    aria-label="Mean attention of the probe input at the chosen training step"></canvas>
            </div>
        </section>
    }
}

/// A labelled number input bound to a getter and a setter.
fn number_input(
    id: &'static str,
    label: &'static str,
    value: impl Fn() -> f64 + Send + Sync + 'static,
    set: impl Fn(f64) + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <label>{label}" "
            <input id=id type="number" step="any" aria-label=label class="number"
                prop:value=move || value().to_string()
                on:change=move |event| {
                    if let Ok(parsed) = event_target_value(&event).trim().parse::<f64>()
                        && parsed.is_finite()
                    {
                        set(parsed);
                    }
                } />
        </label>
    }
}

/// The six panels of the seed chapter's monitor, from real measurements.
fn panels(history: &History, zoom: Option<(f64, f64)>, cursor: Option<f64>) -> Vec<PanelData> {
    let steps = |value: fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .steps
            .iter()
            .filter_map(|record| Some((record.step as f64, value(record)?)))
            .collect()
    };
    let evals = |value: fn(&EvalRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .evals
            .iter()
            .map(|record| (record.step as f64, value(record)))
            .collect()
    };
    let panel = |title: &str, y_label: &str, scale: Scale, series: Vec<Series>| PanelData {
        title: title.into(),
        y_label: y_label.into(),
        scale,
        series,
        reference_lines: Vec::new(),
        x_range: zoom,
        cursor,
    };
    let series = |label: &str, points: Vec<(f64, f64)>| Series {
        label: label.into(),
        points,
    };
    let mut update = panel(
        "Update ratio ‖Δw‖/‖w‖",
        "ratio",
        Scale::Log,
        vec![series("update ratio", steps(|r| r.update_ratio))],
    );
    update.reference_lines.push((1e-3, "1e-3".into()));
    vec![
        panel(
            "Training and validation loss",
            "loss",
            Scale::Linear,
            vec![
                series("train", evals(|r| r.train_loss)),
                series("validation", evals(|r| r.val_loss)),
            ],
        ),
        panel(
            "Validation accuracy",
            "token accuracy",
            Scale::Linear,
            vec![series("validation", evals(|r| r.val_accuracy))],
        ),
        panel(
            "Learning rate",
            "lr",
            Scale::Log,
            vec![series("lr", steps(|r| Some(r.learning_rate)))],
        ),
        panel(
            "Gradient norm",
            "‖g‖",
            Scale::Log,
            vec![series("global norm", steps(|r| Some(r.grad_norm)))],
        ),
        update,
        panel(
            "Loss per batch",
            "loss",
            Scale::Linear,
            vec![series("batch", steps(|r| Some(r.loss)))],
        ),
    ]
}

/// What happened at (or just before) `step`, for the hover read-out.
fn describe_step(history: &History, step: f64) -> Option<String> {
    let record = history.steps.iter().min_by(|a, b| {
        (a.step as f64 - step)
            .abs()
            .total_cmp(&(b.step as f64 - step).abs())
    })?;
    let mut text = format!(
        "step {}: batch loss {:.4}, gradient norm {:.3e}, learning rate {:.2e}",
        record.step, record.loss, record.grad_norm, record.learning_rate
    );
    if let Some(ratio) = record.update_ratio {
        text.push_str(&format!(", update ratio {ratio:.2e}"));
    }
    if let Some(eval) = history
        .evals
        .iter()
        .rev()
        .find(|eval| eval.step <= record.step)
    {
        text.push_str(&format!(
            "; evaluation at step {}: validation loss {:.4}, accuracy {:.1}%",
            eval.step,
            eval.val_loss,
            100.0 * eval.val_accuracy
        ));
    }
    Some(text)
}

/// The report as sentences.
fn report_lines(history: &History, thresholds: &Thresholds) -> Vec<String> {
    let report = report(history, thresholds);
    let mut lines = Vec::new();
    match (&report.final_step, &report.final_eval) {
        (None, _) => lines.push("No steps yet.".to_string()),
        (Some(step), eval) => {
            lines.push(format!(
                "Final: step {}, batch loss {:.4}, gradient norm {:.3e}.",
                step.step, step.loss, step.grad_norm
            ));
            if let Some(eval) = eval {
                lines.push(format!(
                    "Last evaluation (step {}): training loss {:.4}, validation loss {:.4}, validation accuracy {:.2}%.",
                    eval.step,
                    eval.train_loss,
                    eval.val_loss,
                    100.0 * eval.val_accuracy
                ));
            }
        }
    }
    if let Some((loss, step, epoch)) = report.best_val_loss {
        lines.push(format!(
            "Best validation loss {loss:.4} at step {step} (epoch {epoch:.2})."
        ));
    }
    if let Some((accuracy, step, epoch)) = report.best_val_accuracy {
        lines.push(format!(
            "Best validation accuracy {:.2}% at step {step} (epoch {epoch:.2}).",
            100.0 * accuracy
        ));
    }
    if let Some(latest) = history.update_ratios.last() {
        let finite = latest.tensors.iter().filter(|(_, ratio)| ratio.is_finite());
        let largest = finite.clone().max_by(|a, b| a.1.total_cmp(&b.1));
        let smallest = finite.min_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some((big_path, big)), Some((small_path, small))) = (largest, smallest) {
            lines.push(format!(
                "Update ratios per tensor at step {}: largest {big:.2e} ({big_path}), smallest {small:.2e} ({small_path}); the 1e-3 line on the panel is the usual rule of thumb.",
                latest.step
            ));
        }
    }
    if report.final_step.is_some() {
        if report.warnings.is_empty() {
            lines.push(format!(
                "No warnings (overfitting above {:.2}× over the last {} evaluations; instability above a gradient-norm CV of {:.2}).",
                thresholds.overfit_ratio, thresholds.overfit_window, thresholds.instability_cv
            ));
        }
        for warning in &report.warnings {
            lines.push(format!("⚠ {warning}"));
        }
    }
    lines
}

fn format_seconds(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}
