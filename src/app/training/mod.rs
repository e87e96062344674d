//! The training tab: train a Transformer on a toy task in the page, watch the six monitor
//! panels and the probe's attention form, read the report, export the history.
//!
//! The tab's state is one [`state::TrainingSession`], provided by context to small components
//! (`form.rs`, `panels.rs`); `control.rs` holds the controllers that change it. What the tab
//! decides and says (the form and its address keys, the trainer reuse rules, the status line,
//! the report) is plain Rust in `crate::page::training*`.

mod control;
mod form;
mod panels;
mod state;

use leptos::prelude::*;

use crate::model::BackendInfo;
use crate::page::training::RunSettings;

use super::inside::InsideState;
use super::model_worker::client::ModelWorker;
use super::session::LoadedModel;
use super::web;
use form::TrainingForm;
use panels::{Invitation, Results, TrainButtons};
use state::TrainingSession;

/// The training tab.
#[component]
pub fn TrainingPanel(
    /// The device the page runs on, once chosen.
    backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    /// The model worker that trains, or why the browser could not start one.
    worker: StoredValue<Result<ModelWorker, String>, LocalStorage>,
    /// Hands a trained model to the explorer.
    on_use: Callback<LoadedModel>,
    /// Where each step's gradients and activations go.
    inside: InsideState,
    /// Module paths to keep fixed, chosen in the diagnostics tab.
    frozen: RwSignal<Vec<String>>,
) -> impl IntoView {
    let session = TrainingSession::new(
        backend,
        worker,
        on_use,
        inside,
        frozen,
        RunSettings::from_query(&web::location_search()),
    );
    provide_context(session);
    keep_address(session);
    control::listen(session);
    let val_accuracy = move || {
        session.history_version.track();
        session.history.with_value(|history| {
            history
                .evals
                .last()
                .map_or(String::new(), |eval| format!("{:.4}", eval.val_accuracy))
        })
    };
    view! {
        <section id="training" class="training" data-phase=move || session.phase.get().name()
            data-steps=move || session.steps_done.get().to_string()
            data-run-steps=move || session.total_steps().to_string()
            data-monitor-draws=move || session.monitor_draws.get().to_string()
            data-snapshots=move || session.snapshot_count.get().to_string()
            data-val-accuracy=val_accuracy>
            <TrainingForm />
            <TrainButtons />
            <Invitation />
            <Results />
        </section>
    }
}

/// Keeps the address (`task`, `train_*`) on the run's settings while there is a run, else on
/// the form's, so a link reopens what is running; back and forward restore the form.
fn keep_address(session: TrainingSession) {
    Effect::new(move |_| {
        let current = web::location_search();
        let query = session.described().in_query(&current);
        if query != current {
            web::set_query(&query, false);
        }
    });
    web::on_history_change(move || {
        let settings = RunSettings::from_query(&web::location_search());
        if session.form.with_untracked(|form| *form != settings) {
            session.form.set(settings);
        }
    });
}
