//! What changes the explorer's state: installing a model, opening files and traces, running a
//! text (after the typing pauses), and choosing the view the explorer opens on.

use std::sync::Arc;

use leptos::prelude::*;

use crate::analysis::choose_among;
use crate::model::trace_file::MAX_TRACE_BYTES;
use crate::model::{BackendChoice, BackendInfo, TraceFile, TraceFileError};
use crate::page::explorer::{HeadChoice, TYPING_PAUSE_MS};
use crate::page::slices::{RunTrace, Slice, SliceKey, TraceSlices};
use crate::share::ViewState;

use super::super::model_worker::client::ModelWorker;
use super::super::model_worker::remote;
use super::super::session::{LoadedModel, RunResult, shipped, start_backend};
use super::super::{bench, web};
use super::state::Explorer;
use crate::worker::protocol::Request;

/// The model the page opens on: trained, so its attention shows what it learned.
const DEFAULT_MODEL: &str = "reverse";

/// The trace of [`DEFAULT_MODEL`] on its opening text, made when the page is built
/// (`glassbox-trace --opening`, run by `scripts/opening-trace`): the views draw it while the
/// model loads.
const SHIPPED_OPENING: &str = "models/reverse.trace.safetensors";

/// Where a model to load comes from.
pub enum LoadSource {
    /// A model that ships with the page, by id.
    Shipped(String),
    /// Files the user picked or dropped.
    Files(Vec<web::files::PickedFile>),
}

/// Sets the controls from a link's (or host page's) settings, those that fit the model shown.
pub fn apply_view(explorer: Explorer, state: &ViewState) {
    // A layer or head the address or the host page names is kept: no view is chosen over it.
    if state.names_layer_or_head() {
        explorer.run.choose_opening.set_value(false);
    }
    let (layers, heads) = (
        explorer.model.num_layers.get_untracked(),
        explorer.model.num_heads.get_untracked(),
    );
    let mut settings = explorer.view.get_untracked();
    settings.apply(state, layers, heads);
    explorer.view.set(settings);
}

/// The layer and head pickers offer `layers` and `heads`; a choice past them goes back to 0 or
/// the mean.
pub fn fit_controls(explorer: Explorer, layers: usize, heads: usize) {
    explorer.model.num_layers.set(layers);
    explorer.model.num_heads.set(heads);
    let mut settings = explorer.view.get_untracked();
    settings.fit(layers, heads);
    explorer.view.set(settings);
}

/// Makes `model` the one the page runs; the views follow.
pub fn install(explorer: Explorer, model: LoadedModel) {
    let (page_model, view, run) = (explorer.model, explorer.view, explorer.run);
    page_model.provenance.set(model.provenance.clone());
    fit_controls(explorer, model.config.num_layers, model.config.num_heads);
    page_model.max_tokens.set(model.tokenizer.max_len());
    // BERT (two token types) and RoBERTa (one, pairs split by `</s></s>`) read sentence pairs.
    page_model.takes_pair.set(model.config.token_types > 0);
    if let Some(probe) = &model.probe_text {
        view.text.set(probe.clone());
    }
    // The page opens on a view chosen from the first model's first run, unless the address
    // names the layer or the head; a model opened later keeps the view the user set.
    let pending = explorer.address.pending.get_value();
    let named = pending.as_ref().is_some_and(ViewState::names_layer_or_head);
    // The shipped opening trace is this model's run on this text: its view choice stands, and
    // it stays on show until the model's own run replaces it.
    let shipped = run.shipped.with_untracked(Option::is_some) && model.id == DEFAULT_MODEL;
    if !shipped {
        drop_shipped(explorer);
        run.opening.set(None);
    }
    run.choose_opening
        .set_value(!named && !shipped && !page_model.ready.get_untracked());
    if let Some(state) = pending {
        explorer.address.pending.set_value(None);
        apply_view(explorer, &state);
    }
    page_model.load_error.set(None);
    page_model.saved.set(None);
    // Only a model opened from disk is kept (`keep_opened` says so once it is).
    if model.id != "file" {
        page_model.kept.set(false);
        page_model.kept_message.set(None);
    }
    view.pinned.set(None);
    run.imported.set(None);
    page_model.id.set(model.id.clone());
    let version = page_model.version.get_untracked() + 1;
    // The worker builds its own copy, and runs the explorer's texts on it.
    if let (Some(weights), Some(worker)) = (model.worker_weights.clone(), ModelWorker::page()) {
        worker.open_model(Request::Open {
            model: version,
            weights,
        });
    }
    page_model.loaded.set_value(Some(model));
    page_model.version.set(version);
    page_model.ready.set(true);
}

/// Picks a device, runs the benchmark when asked, then opens the first model.
pub fn start(explorer: Explorer, choice: BackendChoice) {
    if opens_on_shipped_trace() {
        show_shipped_opening(explorer);
    }
    web::spawn(async move {
        let started = start_backend(choice).await;
        explorer.model.backend_label.set(started.label.clone());
        if let Some(output) = explorer.page.bench {
            let outcome = bench::run(&started).await;
            output.set(
                outcome
                    .unwrap_or_else(|failure| serde_json::json!({ "error": failure }).to_string()),
            );
        }
        let asked = web::query_param("model");
        let first = asked
            .as_deref()
            .and_then(shipped)
            .or_else(|| shipped(DEFAULT_MODEL));
        let load_error = explorer.model.load_error;
        let reopened = match asked.as_deref() {
            Some("file") => Some(reopen_kept(explorer, &started).await.inspect_err(|failure| {
                load_error.set(Some(format!(
                    "The model opened from disk could not be opened again ({failure}); showing the {DEFAULT_MODEL} model instead."
                )));
            })),
            _ => None,
        };
        let outcome = match (web::query_param("config"), reopened, first) {
            (Some(config), ..) => LoadedModel::random_shape(&config, &started),
            (None, Some(Ok(model)), _) => Ok(model),
            (None, _, Some(model)) => LoadedModel::shipped(model, &started).await,
            (None, _, None) => LoadedModel::seed_preset(&started),
        };
        let outcome = outcome.or_else(|failure| {
            // Without its checkpoint the page still works on the seeded preset, and says why.
            LoadedModel::seed_preset(&started).inspect(|_| {
                load_error.set(Some(format!(
                    "Could not open the trained model ({failure}); showing the seed preset instead."
                )));
            })
        });
        explorer.model.backend.set_value(Some(started));
        match outcome {
            Ok(model) => {
                if model.id == "file" {
                    explorer.model.file_label.set(Some(model.file_name.clone()));
                }
                let problem = load_error.get_untracked();
                install(explorer, model);
                load_error.set(problem);
            }
            Err(failure) => explorer
                .run
                .error
                .set(Some(format!("The model could not start: {failure}"))),
        }
    });
}

/// Whether the page opens on [`DEFAULT_MODEL`] and its opening text, whose trace ships with it.
fn opens_on_shipped_trace() -> bool {
    matches!(
        web::query_param("model").as_deref(),
        None | Some(DEFAULT_MODEL)
    ) && web::query_param("config").is_none()
        && web::query_param("text").is_none()
}

/// Fetches the shipped opening trace and shows it, unless the model has run (or a trace was
/// opened, or another text typed) first. Nothing is lost without it: the model's own first run
/// draws the same views a little later.
fn show_shipped_opening(explorer: Explorer) {
    web::spawn(async move {
        let Ok(bytes) = web::files::fetch_bytes(SHIPPED_OPENING).await else {
            return;
        };
        let Ok(trace) = TraceFile::parse(&bytes) else {
            return;
        };
        let (model, view, run) = (explorer.model, explorer.view, explorer.run);
        let typed = view
            .text
            .with_untracked(|text| !text.is_empty() && *text != trace.text);
        if model.ready.get_untracked()
            || typed
            || run.imported.get_untracked().is_some()
            || run.result.with_untracked(Option::is_some)
        {
            return;
        }
        let (about, text, layers) = (trace.about.clone(), trace.text.clone(), trace.num_layers());
        let (tokens, trace) = trace.into_parts();
        let heads = trace
            .attention
            .first()
            .map_or(0, |attention| attention.heads);
        fit_controls(explorer, layers, heads);
        // The address' settings apply now; install applies them again to the model.
        let pending = explorer.address.pending.get_value();
        if let Some(state) = &pending {
            apply_view(explorer, state);
        }
        run.shipped.set(Some(text.clone()));
        view.text.set(text);
        let result = Arc::new(RunResult {
            tokens,
            // A word-level model's run lists no predictions.
            trace: TraceSlices::new(RunTrace::Host(trace), Vec::new()),
            forward_ms: 0.0,
        });
        if !pending.as_ref().is_some_and(ViewState::names_layer_or_head) {
            open_on_chosen_view(explorer, &result);
        }
        model.provenance.set(format!(
            "Model: {DEFAULT_MODEL}, loading. Until it has loaded, the views show its run on this text as glassbox-trace recorded it when this page was built ({about}); they go live once the model runs here."
        ));
        run.result.set(Some(result));
    });
}

/// Takes the shipped opening trace off show, if it is (another model or text replaces it).
fn drop_shipped(explorer: Explorer) {
    let run = explorer.run;
    if run.shipped.with_untracked(Option::is_some) {
        run.shipped.set(None);
        run.shipped_drawn.set(false);
        run.result.set(None);
        run.opening.set(None);
    }
}

/// While the views show the shipped opening trace and the model is still loading, a new text
/// takes the trace off show: the views would show another text's numbers.
pub fn shipped_text_changed(explorer: Explorer) {
    let changed = explorer.run.shipped.with_untracked(|shipped| {
        shipped
            .as_ref()
            .is_some_and(|text| explorer.view.text.with_untracked(|current| current != text))
    });
    if changed && !explorer.model.ready.get_untracked() {
        drop_shipped(explorer);
    }
}

/// The text or the model changed: the model runs on it once the typing pauses.
pub fn text_changed(explorer: Explorer) {
    text_changed_after(explorer, TYPING_PAUSE_MS);
}

/// The text or the model changed: the model runs on it after `pause_ms` without a newer change.
pub fn text_changed_after(explorer: Explorer, pause_ms: i32) {
    let run = explorer.run;
    let ticket = run
        .scheduler
        .try_update_value(|runs| runs.changed())
        .unwrap_or(0);
    run.running.set(true);
    web::spawn(async move {
        web::sleep_ms(pause_ms).await;
        let due = run
            .scheduler
            .try_update_value(|runs| runs.pause_over(ticket))
            .unwrap_or(false);
        if due {
            run_ticket(explorer, ticket);
        }
    });
}

/// Runs the model on the current text for `ticket`; when it finishes, shows the result if no
/// newer text came, else runs the newest text at once.
fn run_ticket(explorer: Explorer, ticket: u64) {
    let run = explorer.run;
    let (Some(current), Some(device)) = (
        explorer.model.loaded.get_value(),
        explorer.model.backend.get_value(),
    ) else {
        run.scheduler.update_value(|runs| {
            runs.finished(ticket);
        });
        run.running.set(false);
        return;
    };
    let text = explorer.view.text.get_untracked();
    let text_b = explorer.view.text_b.get_untracked();
    let version = explorer.model.version.get_untracked();
    // The page counts what the scheduler started: one count, kept in one place.
    run.started
        .set(run.scheduler.with_value(|runs| runs.started()));
    web::spawn(async move {
        web::next_frame().await;
        let first = run.runs.get_untracked() == 0;
        let outcome = run_model(&current, version, first, &text, &text_b, &device).await;
        let (show, next) = run
            .scheduler
            .try_update_value(|runs| runs.finished(ticket))
            .unwrap_or((false, None));
        if let Some(next) = next {
            run_ticket(explorer, next);
        }
        if !show || explorer.run.imported.get_untracked().is_some() {
            return;
        }
        run.running.set(false);
        match outcome {
            Ok(result) => {
                run.rerun_after_death.set_value(false);
                run.error.set(None);
                run.draw_error.set(None);
                run.hover.set(None);
                if let Some(result) = &result {
                    choose_opening(explorer, result);
                }
                // The model's own run replaces the shipped trace, and its drawings count.
                run.shipped.set(None);
                run.result.set(result.map(Arc::new));
                run.runs.update(|count| *count += 1);
            }
            Err(failure) => run
                .error
                .set(Some(format!("The model could not run: {failure}"))),
        }
    });
}

/// Runs `text` through the explorer's model `version`: in the model worker when it holds a
/// copy (the page's thread only tokenizes), else here (a HuggingFace folder). The page's
/// `first` run is made here too when the worker's device has not started yet: the first heatmap
/// does not wait for a second wasm instance and device to come up.
async fn run_model(
    model: &LoadedModel,
    version: u32,
    first: bool,
    text: &str,
    text_b: &str,
    device: &BackendInfo,
) -> Result<Option<RunResult>, String> {
    let worker = ModelWorker::page().filter(|worker| !first || worker.is_started());
    let Some(worker) = worker.filter(|_| model.worker_weights.is_some()) else {
        return model
            .run(text, Some(text_b), device)
            .await
            .map_err(|error| error.to_string());
    };
    let Some(prepared) = model
        .prepare(text, Some(text_b))
        .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    remote::run(&worker, version, prepared.tokens, prepared.positions)
        .await
        .map(Some)
}

/// The worker died, and its traces with it: a run it held is made again in the new one, once
/// (a text that kills the worker is not sent to every new one).
pub fn worker_died(explorer: Explorer, reason: &str) {
    let remote = explorer.run.result.with_untracked(|result| {
        result
            .as_ref()
            .is_some_and(|result| matches!(result.trace.trace, RunTrace::Remote(_)))
    });
    if !remote
        || !explorer.model.ready.get_untracked()
        || explorer.run.imported.get_untracked().is_some()
    {
        return;
    }
    if explorer.run.rerun_after_death.get_value() {
        explorer.run.error.set(Some(format!(
            "{reason} It died again running this text: change the text or the model to run it again."
        )));
        return;
    }
    explorer.run.rerun_after_death.set_value(true);
    text_changed(explorer);
}

/// On a model's first run, opens the layer and head that show what it learned, and says why.
fn choose_opening(explorer: Explorer, result: &RunResult) {
    if !explorer.run.choose_opening.get_value() {
        return;
    }
    explorer.run.choose_opening.set_value(false);
    open_on_chosen_view(explorer, result);
}

/// Opens the layer and head that show what the model learned in `result`, and says why.
fn open_on_chosen_view(explorer: Explorer, result: &RunResult) {
    // The heads' measurements came back with the run (made on the device for a live run).
    let Some(Slice::Summaries(heads)) = result.trace.get(SliceKey::Summaries) else {
        return;
    };
    let Some(opening) = choose_among(&heads) else {
        return;
    };
    // The chosen view replaces the address' entry, as the first write does: back does not lead
    // to the layer-0 view the page showed for a moment.
    explorer.address.first_write.set_value(true);
    explorer.view.layer.set(opening.layer);
    explorer.view.head.set(HeadChoice::Head(opening.head));
    explorer.run.opening.set(Some(opening.reason()));
}

/// Shows a trace file in the views without running the model; a bad file changes nothing.
/// `outcome` is the file `name` read.
pub fn show_trace(explorer: Explorer, name: String, outcome: Result<Vec<u8>, String>) {
    let (model, run) = (explorer.model, explorer.run);
    let trace = match outcome
        .and_then(|bytes| TraceFile::parse(&bytes).map_err(|error| error.to_string()))
    {
        Ok(trace) => trace,
        Err(failure) => {
            model.load_error.set(Some(format!(
                "Could not open the trace {name}: {failure}. The view is unchanged."
            )));
            return;
        }
    };
    let (about, trace_model, trace_text) =
        (trace.about.clone(), trace.model.clone(), trace.text.clone());
    let (layers, missing) = (trace.num_layers(), trace.missing_words());
    let (tokens, trace) = trace.into_parts();
    let heads = trace
        .attention
        .first()
        .map_or(0, |attention| attention.heads);
    // Marked first, so that setting the text below runs nothing.
    run.imported.set(Some(name.clone()));
    run.shipped.set(None);
    // A run still in flight must not replace the trace when it finishes.
    run.scheduler.update_value(|runs| {
        runs.cancel();
    });
    fit_controls(explorer, layers, heads);
    // A partial trace opens on a layer it holds.
    let current = explorer.view.layer.get_untracked();
    if trace.attention_of(current).is_none()
        && let Some(first) = trace.attention.first()
    {
        explorer.view.layer.set(first.layer);
    }
    explorer.view.pinned.set(None);
    model.load_error.set(None);
    run.error.set(None);
    run.draw_error.set(None);
    run.hover.set(None);
    run.opening.set(None);
    explorer.view.text.set(trace_text);
    model.provenance.set(format!(
        "Viewing the trace {name} (model: {trace_model}{}). Nothing runs: every number is the file's.{} Edit the text or pick a model to run a model again.",
        if about.is_empty() { String::new() } else { format!("; {about}") },
        missing.map(|words| format!(" {words}")).unwrap_or_default()
    ));
    run.running.set(false);
    let positions = trace_positions(&tokens);
    run.result.set(Some(Arc::new(RunResult {
        tokens,
        trace: TraceSlices::new(RunTrace::Host(trace), positions),
        forward_ms: 0.0,
    })));
    run.runs.update(|count| *count += 1);
}

/// The positions whose predictions a trace file can list: a trace does not say which head made
/// its logits, so every position (up to the panel's limit) is offered.
fn trace_positions(tokens: &crate::model::Tokenized) -> Vec<usize> {
    (0..tokens.tokens.len().min(crate::page::predictions::MAX_ROWS)).collect()
}

/// Back from an imported trace to the loaded model, whose settings the controls take again.
pub fn leave_trace(explorer: Explorer) {
    if explorer.run.imported.get_untracked().is_none() {
        return;
    }
    explorer.run.imported.set(None);
    explorer.model.loaded.with_value(|model| {
        if let Some(model) = model {
            explorer.model.provenance.set(model.provenance.clone());
            fit_controls(explorer, model.config.num_layers, model.config.num_heads);
        }
    });
    explorer.view.pinned.set(None);
    // The views showed the file's numbers: the model runs again, even on the same text.
    if explorer.model.ready.get_untracked() {
        text_changed(explorer);
    }
}

/// Opens a model from `source` on `device`; a failure leaves the current model in place.
fn load_model(explorer: Explorer, source: LoadSource, device: BackendInfo) {
    let model = explorer.model;
    model.loading.set(true);
    web::spawn(async move {
        web::next_frame().await;
        let outcome = match &source {
            LoadSource::Shipped(id) => match shipped(id) {
                Some(shipped) => LoadedModel::shipped(shipped, &device).await,
                None => Err(format!("there is no model called `{id}`")),
            },
            LoadSource::Files(files) => {
                let progress = model.progress;
                LoadedModel::open_files(files, &device, move |done| progress.set(Some(done))).await
            }
        };
        model.loading.set(false);
        model.progress.set(None);
        match outcome {
            Ok(loaded) => {
                if let LoadSource::Files(files) = source {
                    model.file_label.set(Some(loaded.file_name.clone()));
                    keep_opened(explorer, files, loaded.file_name.clone());
                }
                install(explorer, loaded);
            }
            Err(failure) => {
                model.load_error.set(Some(format!(
                    "Could not open the model: {failure}. The model already loaded is still in use."
                )));
                settle_pending(explorer);
            }
        }
    });
}

/// Keeps the files of the model just opened in this browser, so that a reload opens it again.
fn keep_opened(explorer: Explorer, files: Vec<web::files::PickedFile>, name: String) {
    let model = explorer.model;
    web::spawn(async move {
        match web::keep::keep(&files).await {
            Ok(()) => {
                model.kept.set(true);
                model.kept_message.set(Some(format!(
                    "{name} is kept in this browser: a reload opens it again without asking for its files."
                )));
            }
            Err(failure) => {
                model.kept.set(false);
                model.kept_message.set(Some(format!(
                    "{name} could not be kept in this browser ({failure}): a reload will ask for its files again."
                )));
            }
        }
    });
}

/// The model kept from disk, opened again from this browser's copy of its files.
async fn reopen_kept(explorer: Explorer, device: &BackendInfo) -> Result<LoadedModel, String> {
    let model = explorer.model;
    let files = web::keep::kept()
        .await?
        .ok_or("no model opened from disk is kept in this browser")?;
    let progress = model.progress;
    let loaded =
        LoadedModel::open_files(&files, device, move |done| progress.set(Some(done))).await;
    progress.set(None);
    let loaded = loaded?;
    model.kept.set(true);
    model.kept_message.set(Some(format!(
        "{} was opened again from this browser's copy of its files; none was asked for.",
        loaded.file_name
    )));
    Ok(loaded)
}

/// Forgets the model kept from disk: a reload opens the page's own model.
pub fn forget_kept(explorer: Explorer) {
    let model = explorer.model;
    web::spawn(async move {
        let message = match web::keep::forget().await {
            Ok(()) => {
                model.kept.set(false);
                format!(
                    "Forgotten: this browser no longer keeps its files, and a reload opens the {DEFAULT_MODEL} model."
                )
            }
            Err(failure) => format!("The kept files could not be forgotten ({failure})."),
        };
        model.kept_message.set(Some(message));
    });
}

/// A link's settings that waited for a model that did not open apply to the model in use, so
/// that the address follows the view again.
fn settle_pending(explorer: Explorer) {
    if let Some(state) = explorer.address.pending.get_value() {
        explorer.address.pending.set_value(None);
        apply_view(explorer, &state);
    }
}

/// Loads a shipped model or the user's files (a lone trace file is shown as a trace); a
/// failure leaves the current model in place.
pub fn load(explorer: Explorer, source: LoadSource) {
    // A lone JSON file that is not beside a checkpoint is a trace to view.
    if let LoadSource::Files(files) = &source
        && let [file] = files.as_slice()
        && file.name.to_lowercase().ends_with(".json")
    {
        let file = file.clone();
        web::spawn(async move {
            let outcome = if file.size_bytes > MAX_TRACE_BYTES as f64 {
                Err(TraceFileError::TooLarge(file.size_bytes as usize).to_string())
            } else {
                file.read().await
            };
            show_trace(explorer, file.name, outcome);
        });
        return;
    }
    let Some(device) = explorer.model.backend.get_value() else {
        settle_pending(explorer);
        return;
    };
    // A lone .safetensors file may be a binary trace: its header says so.
    if let LoadSource::Files(files) = &source
        && let [file] = files.as_slice()
        && file.size_bytes <= MAX_TRACE_BYTES as f64
    {
        let file = file.clone();
        explorer.model.loading.set(true);
        web::spawn(async move {
            let bytes = file.read().await;
            explorer.model.loading.set(false);
            match bytes {
                // Read once: the trace is shown from the bytes that said it is one.
                Ok(bytes) if TraceFile::is_binary_trace(&bytes) => {
                    show_trace(explorer, file.name, Ok(bytes));
                }
                _ => load_model(explorer, LoadSource::Files(vec![file]), device),
            }
        });
        return;
    }
    load_model(explorer, source, device);
}

/// Saves the explorer's model as a safetensors download.
pub fn save_model(explorer: Explorer) {
    let Some(model) = explorer.model.loaded.get_value() else {
        return;
    };
    let (saved, load_error) = (explorer.model.saved, explorer.model.load_error);
    web::spawn(async move {
        let outcome = model
            .save()
            .await
            .and_then(|bytes| web::files::download(&model.file_name, &bytes).map(|()| bytes.len()));
        match outcome {
            Ok(size_bytes) => saved.set(Some(format!(
                "Saved {} ({} bytes).",
                model.file_name,
                crate::format::group_thousands(size_bytes)
            ))),
            Err(failure) => load_error.set(Some(format!("Could not save the model: {failure}"))),
        }
    });
}

/// Pins `token` (or lets the pin go) and tells the host page.
pub fn pin(explorer: Explorer, token: Option<usize>) {
    explorer.view.pinned.set(token);
    web::post_to_host(&serde_json::json!({ "type": "glassbox:select", "token": token }));
}
