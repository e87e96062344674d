//! The training form: one small component per group of settings, every control bound to its
//! value in the session's form both ways.

use std::str::FromStr;

use leptos::prelude::*;
use strum::VariantArray;

use crate::model::{Activation, NormPosition};
use crate::page::training::{ModelPreset, RunSettings};
use crate::train::{OptimizerChoice, Problem, ScheduleChoice, TaskKind};

use super::state::TrainingSession;

/// The whole form.
#[component]
pub(super) fn TrainingForm() -> impl IntoView {
    view! {
        <div class="controls train-form" role="group" aria-label="Training settings">
            <TaskFields />
            <ModelFields />
            <OptimizerFields />
            <RunFields />
        </div>
        <PendingChanges />
    }
}

/// A select over the words of `T`, showing `label_of` each, bound to the form by `get` and
/// `set`.
fn choice<T>(
    id: &'static str,
    label: &'static str,
    label_of: fn(T) -> String,
    get: fn(&RunSettings) -> T,
    set: fn(&mut RunSettings, T),
) -> impl IntoView
where
    T: Copy + PartialEq + VariantArray + FromStr + Into<&'static str> + Send + Sync + 'static,
{
    let form = TrainingSession::get().form;
    let options = T::VARIANTS
        .iter()
        .map(|&value| {
            let word: &'static str = value.into();
            view! {
                <option value=word selected=move || form.with(|form| get(form) == value)>
                    {label_of(value)}
                </option>
            }
        })
        .collect_view();
    view! {
        <label>{label}" "
            <select id=id aria-label=label
                prop:value=move || form.with(|form| {
                    let word: &'static str = get(form).into();
                    word.to_string()
                })
                on:change=move |event| {
                    if let Ok(value) = event_target_value(&event).parse::<T>() {
                        form.update(|form| set(form, value));
                    }
                }>
                {options}
            </select>
        </label>
    }
}

/// A checkbox bound to the form by `get` and `set`.
fn check_box(
    id: &'static str,
    label: &'static str,
    get: fn(&RunSettings) -> bool,
    set: fn(&mut RunSettings, bool),
) -> impl IntoView {
    let form = TrainingSession::get().form;
    view! {
        <label>{label}" "
            <input id=id type="checkbox" prop:checked=move || form.with(get)
                on:change=move |event| form.update(|form| set(form, event_target_checked(&event))) />
        </label>
    }
}

/// A labelled number input bound to a getter and a setter.
pub(super) fn number_input(
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

/// A number input for a whole-number setting of the form.
fn count_input(
    id: &'static str,
    label: &'static str,
    get: fn(&RunSettings) -> usize,
    set: fn(&mut RunSettings, usize),
) -> impl IntoView {
    let form = TrainingSession::get().form;
    number_input(
        id,
        label,
        move || form.with(get) as f64,
        // Negative or fractional entries round to the nearest whole number ≥ 0.
        move |value| form.update(|form| set(form, value.max(0.0).round() as usize)),
    )
}

/// Task and problem preset.
#[component]
fn TaskFields() -> impl IntoView {
    let form = TrainingSession::get().form;
    view! {
        {choice::<TaskKind>("train-task", "Task",
            |task| format!("{} — {}", task.name(), task.describe()),
            |f| f.task, |f, v| f.task = v)}
        {choice::<Problem>("train-problem", "Problem preset",
            |problem| problem.name().to_string(),
            |f| f.problem, |f, v| *f = f.with_problem(v))}
        <span id="train-problem-description" class="note">
            {move || form.with(|form| form.problem.describe())}
        </span>
    }
}

/// Model preset and, for a custom model, its size and shape.
#[component]
fn ModelFields() -> impl IntoView {
    let form = TrainingSession::get().form;
    let custom = move || form.with(|form| form.preset == ModelPreset::Custom);
    view! {
        {choice::<ModelPreset>("train-preset", "Model", |preset| preset.label().to_string(),
            |f| f.preset, |f, v| f.preset = v)}
        <span class="custom" hidden=move || !custom()>
            {count_input("train-layers", "Layers", |f| f.layers, |f, v| f.layers = v)}
            {count_input("train-d-model", "d_model", |f| f.d_model, |f, v| f.d_model = v)}
            {count_input("train-heads", "Heads", |f| f.heads, |f, v| f.heads = v)}
            {count_input("train-d-ff", "Feed-forward", |f| f.d_ff, |f, v| f.d_ff = v)}
            {choice::<NormPosition>("train-norm", "LayerNorm", |norm| match norm {
                NormPosition::Post => "post-LN".to_string(),
                NormPosition::Pre => "pre-LN".to_string(),
                NormPosition::None => "none".to_string(),
            }, |f| f.norm, |f, v| f.norm = v)}
            {choice::<Activation>("train-activation", "Activation", |activation| match activation {
                Activation::Relu => "ReLU".to_string(),
                Activation::Gelu => "GELU".to_string(),
                Activation::Sigmoid => "sigmoid".to_string(),
                Activation::GeluNew => "GELU (tanh)".to_string(),
            }, |f| f.activation, |f, v| f.activation = v)}
            {check_box("train-residual", "Residual connections", |f| f.residual, |f, v| f.residual = v)}
            {check_box("train-causal", "Causal", |f| f.causal, |f, v| f.causal = v)}
        </span>
    }
}

/// Optimizer, learning rate and its schedule, batch and clipping.
#[component]
fn OptimizerFields() -> impl IntoView {
    let form = TrainingSession::get().form;
    view! {
        {choice::<OptimizerChoice>("train-optimizer", "Optimizer", |optimizer| match optimizer {
            OptimizerChoice::Adamw => "AdamW".to_string(),
            OptimizerChoice::Adam => "Adam".to_string(),
            OptimizerChoice::Sgd => "SGD + momentum 0.9".to_string(),
        }, |f| f.optimizer, |f, v| f.optimizer = v)}
        {number_input("train-lr", "Learning rate", move || form.with(|f| f.learning_rate),
            move |v| form.update(|f| f.learning_rate = v.max(0.0)))}
        {choice::<ScheduleChoice>("train-schedule", "Schedule", |schedule| match schedule {
            ScheduleChoice::Cosine => "cosine".to_string(),
            ScheduleChoice::Constant => "constant".to_string(),
            ScheduleChoice::Step => "step decay (×0.5 each quarter)".to_string(),
        }, |f| f.schedule, |f, v| f.schedule = v)}
        {count_input("train-warmup", "Warm-up steps", |f| f.warmup, |f, v| f.warmup = v)}
        {count_input("train-batch", "Batch", |f| f.batch_size, |f, v| f.batch_size = v)}
        {number_input("train-clip", "Clip norm (0 = off)", move || form.with(|f| f.clip),
            move |v| form.update(|f| f.clip = v.max(0.0)))}
    }
}

/// Seed, steps, the intervals and the frozen modules.
#[component]
fn RunFields() -> impl IntoView {
    let session = TrainingSession::get();
    let form = session.form;
    let frozen = session.frozen;
    view! {
        {number_input("train-seed", "Seed", move || form.with(|f| f.seed as f64),
            move |v| form.update(|f| f.seed = v.max(0.0).round() as u64))}
        {count_input("train-steps", "Steps", |f| f.steps, |f, v| f.steps = v)}
        {count_input("train-eval-every", "Evaluate every", |f| f.eval_every, |f, v| f.eval_every = v)}
        {count_input("train-probe-every", "Probe every", |f| f.probe_every, |f, v| f.probe_every = v)}
        <span id="train-frozen" class="note">
            {move || frozen.with(|frozen| if frozen.is_empty() {
                "Nothing frozen (choose modules to freeze in Model diagnostics).".to_string()
            } else {
                format!("Frozen: {} (set in Model diagnostics).", frozen.join(", "))
            })}
        </span>
        {count_input("train-analyse-every", "Analyse gradients every (0 = off)",
            |f| f.analyse_every, |f, v| f.analyse_every = v)}
    }
}

/// The form's changes to a started run and whether the run will take them, in words.
#[component]
fn PendingChanges() -> impl IntoView {
    let session = TrainingSession::get();
    let words = move || session.pending().pending_words();
    view! {
        <p id="train-pending" class="note" aria-live="polite" hidden=move || words().is_none()>
            {words}
        </p>
    }
}
