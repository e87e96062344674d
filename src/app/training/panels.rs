//! What the training tab shows of the run: the buttons and status line, the messages, the
//! invitation before the first step, the six-panel monitor, the report and the probe.

use leptos::html;
use leptos::prelude::*;

use crate::charts::draw_monitor;
use crate::page::training_report::{describe_step, invitation, panels, report_lines};
use crate::page::training_run::{progress, status_words};

use super::super::views::{
    HeadChoice, draw_heatmap_view, image_buttons, panel_heading, selected_matrix, with_area,
};
use super::super::web;
use super::control::{self, Export};
use super::form::number_input;
use super::state::TrainingSession;

/// Start, pause, single step, reset, hand to the explorer; the progress and the status line,
/// both counting the run's own steps.
#[component]
pub(super) fn TrainButtons() -> impl IntoView {
    let session = TrainingSession::get();
    let running = move || session.running();
    let status = move || {
        session.history_version.track();
        let (phase, pausing) = (session.phase.get(), session.pausing.get());
        let (done, total) = (session.steps_done.get(), session.total_steps());
        session
            .history
            .with_value(|history| status_words(phase, pausing, done, total, &history.steps))
    };
    view! {
        <div class="controls train-buttons" role="group" aria-label="Training">
            <button id="train-start" type="button" on:click=move |_| control::start(session)
                disabled=running>
                {move || session.phase.get().start_label()}
            </button>
            <button id="train-pause" type="button" on:click=move |_| control::pause(session)
                disabled=move || !running() || session.pausing.get()>
                {move || if session.pausing.get() { "Pausing…" } else { "Pause" }}
            </button>
            <button id="train-step" type="button" on:click=move |_| control::single_step(session)
                disabled=running>"Single step"</button>
            <button id="train-reset" type="button" on:click=move |_| control::reset(session)>"Reset"</button>
            <button id="train-use" type="button" on:click=move |_| control::use_in_explorer(session)
                disabled=move || running() || session.steps_done.get() == 0>"Show in the explorer"</button>
            <progress id="train-progress" max="1"
                prop:value=move || progress(session.steps_done.get(), session.total_steps())></progress>
            <span id="train-status" aria-live="polite">{status}</span>
        </div>
        <p id="train-backend" class="note">
            {move || match (session.worker(), session.worker_label.get()) {
                (Err(failure), _) => failure,
                (Ok(_), None) => "Starting the model worker…".to_string(),
                (Ok(_), Some(label)) => format!("Training runs in a Web Worker on {label}"),
            }}
        </p>
        <p id="train-message" class="error" role="alert" hidden=move || session.message.with(Option::is_none)>
            {move || session.message.get()}
        </p>
        <p id="train-notice" class="note" aria-live="polite" hidden=move || session.notice.with(Option::is_none)>
            {move || session.notice.get()}
        </p>
    }
}

/// Whether the run has recorded a step (the panels have something to show).
fn has_steps(session: TrainingSession) -> bool {
    session.history_version.track();
    session.steps_done.track();
    session
        .history
        .with_value(|history| !history.steps.is_empty())
}

/// One clear invitation before the first step, in place of six empty panels.
#[component]
pub(super) fn Invitation() -> impl IntoView {
    let session = TrainingSession::get();
    let text = move || {
        session
            .frozen
            .with(|frozen| session.form.with(|form| invitation(form, frozen)))
    };
    view! {
        <p id="train-invitation" class="invitation" hidden=move || has_steps(session)>{text}</p>
    }
}

/// The monitor, the report and the probe, once there is data.
#[component]
pub(super) fn Results() -> impl IntoView {
    let session = TrainingSession::get();
    view! {
        <div id="train-results" hidden=move || !has_steps(session)>
            <Monitor />
            <Report />
            <Probe />
        </div>
    }
}

/// The six monitor panels with the hover read-out, the zoom and the exports.
#[component]
fn Monitor() -> impl IntoView {
    let session = TrainingSession::get();
    let monitor_ref = NodeRef::<html::Canvas>::new();
    // The panels follow the history, the zoom and the cursor.
    Effect::new(move |_| {
        session.history_version.track();
        let (zoom, cursor) = (session.zoom.get(), session.cursor.get());
        let Some(canvas) = monitor_ref.get() else {
            return;
        };
        let drawn = session
            .history
            .with_value(|history| panels(history, zoom, cursor));
        let style = web::chart_style();
        match with_area(&canvas, |area| draw_monitor(area, &drawn, &style)) {
            Ok(layouts) => {
                session.layouts.set_value(layouts);
                session.monitor_draws.update(|count| *count += 1);
            }
            Err(failure) => session
                .message
                .set(Some(format!("Drawing the monitor failed: {failure}"))),
        }
    });
    let on_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = monitor_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let step = session.layouts.with_value(|layouts| {
            layouts.iter().find_map(|layout| {
                let (_, top, _, height) = layout.plot;
                let inside = y >= f64::from(top) && y <= f64::from(top) + f64::from(height);
                if inside {
                    layout.step_at(x as i32)
                } else {
                    None
                }
            })
        });
        session.cursor.set(step);
        session.readout.set(step.and_then(|step| {
            session
                .history
                .with_value(|history| describe_step(history, step))
        }));
    };
    let zoom = session.zoom;
    view! {
        {panel_heading("monitor", "Training monitor", false)}
        <canvas id="monitor" node_ref=monitor_ref width="1140" height="620"
            aria-label="Training monitor: loss, validation accuracy, learning rate, gradient norm, update ratio, batch loss"
            on:mousemove=on_move
            on:mouseleave=move |_| { session.cursor.set(None); session.readout.set(None); }></canvas>
        <p id="monitor-readout" class="tooltip" aria-live="polite">
            {move || session.readout.get().unwrap_or_else(|| "Hover a panel to read the step under the pointer.".into())}
        </p>
        <div class="controls" role="group" aria-label="Zoom">
            "Zoom to steps "
            {number_input("zoom-from", "from", move || zoom.get().map_or(0.0, |z| z.0), move |v| zoom.update(|z| *z = Some((v, z.map_or(f64::MAX, |z| z.1)))))}
            {number_input("zoom-to", "to", move || zoom.get().map_or(0.0, |z| z.1), move |v| zoom.update(|z| *z = Some((z.map_or(0.0, |z| z.0), v))))}
            <button id="zoom-all" type="button" on:click=move |_| zoom.set(None)>"All steps"</button>
            <button id="export-json" type="button" on:click=move |_| control::export(session, Export::Json)>"Export JSON"</button>
            <button id="export-steps" type="button" on:click=move |_| control::export(session, Export::Steps)>"Steps CSV"</button>
            <button id="export-evals" type="button" on:click=move |_| control::export(session, Export::Evaluations)>"Evaluations CSV"</button>
            {image_buttons("monitor", monitor_ref, "glassbox-training-monitor", session.message)}
        </div>
    }
}

/// The report's sentences and its warning thresholds.
#[component]
fn Report() -> impl IntoView {
    let session = TrainingSession::get();
    let thresholds = session.thresholds;
    let lines = move || {
        session.history_version.track();
        let thresholds = thresholds.get();
        let task = session.described().task;
        session
            .history
            .with_value(|history| report_lines(history, &thresholds, task))
    };
    view! {
        <div class="report" id="report">
            {panel_heading("report", "Report", false)}
            <ul>{move || lines().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}</ul>
            <div class="controls" role="group" aria-label="Warning thresholds">
                {number_input("overfit-ratio", "Overfitting: validation / training loss above", move || thresholds.get().overfit_ratio, move |v| thresholds.update(|t| t.overfit_ratio = v))}
                {number_input("spread-cv", "Gradient-norm spread over the run: CV above", move || thresholds.get().spread_cv, move |v| thresholds.update(|t| t.spread_cv = v))}
            </div>
        </div>
    }
}

/// The probe's attention at the chosen snapshot (the newest by default).
#[component]
fn Probe() -> impl IntoView {
    let session = TrainingSession::get();
    let probe_ref = NodeRef::<html::Canvas>::new();
    let (count, index, layer) = (
        session.snapshot_count,
        session.snapshot_index,
        session.probe_layer,
    );
    Effect::new(move |_| {
        count.track();
        let (index, layer) = (index.get(), layer.get());
        let Some(canvas) = probe_ref.get() else {
            return;
        };
        let shown = session.snapshots.with_value(|kept| {
            let index = index.unwrap_or(kept.len().saturating_sub(1));
            kept.get(index.min(kept.len().saturating_sub(1))).cloned()
        });
        let Some(snapshot) = shown else {
            return;
        };
        let layer = layer.min(snapshot.run.trace.layers().saturating_sub(1));
        let style = web::chart_style();
        // A probe's trace is on the host: its maps come at once.
        let drawn = selected_matrix(&snapshot.run, layer, HeadChoice::Mean)
            .ok_or_else(|| "the probe has no such layer".to_string())
            .and_then(|matrix| {
                draw_heatmap_view(
                    &canvas,
                    &matrix,
                    &snapshot.run.tokens.labels(),
                    (layer, HeadChoice::Mean),
                    None,
                    &style,
                )
            });
        if let Err(failure) = drawn {
            session
                .message
                .set(Some(format!("Drawing the attention failed: {failure}")));
        }
    });
    let label = move || {
        count.track();
        let index = index.get();
        session.snapshots.with_value(|kept| {
            let index = index.unwrap_or(kept.len().saturating_sub(1));
            kept.get(index)
                .map(|snapshot| format!("attention of the probe at step {}", snapshot.step))
                .unwrap_or_else(|| "no snapshot yet".into())
        })
    };
    view! {
        <div class="probe">
            {panel_heading("probe", "The probe's attention as it trains", false)}
            <div class="controls">
                <label>"Snapshot "
                    <input id="snapshot" type="range" min="0"
                        prop:max=move || count.get().saturating_sub(1).to_string()
                        prop:value=move || index.get().unwrap_or(count.get().saturating_sub(1)).to_string()
                        on:input=move |event| index.set(event_target_value(&event).parse().ok()) />
                </label>
                <button id="snapshot-latest" type="button" on:click=move |_| index.set(None)>"Follow the latest"</button>
                {number_input("probe-layer", "Layer", move || layer.get() as f64, move |v| layer.set(v.max(0.0) as usize))}
                <span id="snapshot-label">{label}</span>
                {image_buttons("probe", probe_ref, "glassbox-probe-attention", session.message)}
            </div>
            <canvas id="probe" node_ref=probe_ref width="520" height="480"
                aria-label="Mean attention of the probe input at the chosen training step"></canvas>
        </div>
    }
}
