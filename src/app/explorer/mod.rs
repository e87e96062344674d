//! The attention explorer page: text in, attention views out; the other tabs sit beside it.
//!
//! [`state`] holds the page's state as one typed struct per concern, [`controller`] changes it,
//! [`address`] keeps the address and the host page in step, and the components in
//! [`controls`] and [`canvases`] each draw one part.

mod address;
mod canvases;
mod controller;
mod controls;
mod export;
mod state;

use leptos::prelude::*;

use crate::model::BackendChoice;
use crate::model::Transformer;
use crate::page::explorer::Tab;
use crate::page::slices::RunTrace;
use crate::train::{Analysis, Batch, analyse};
use crate::worker::protocol::{Reply, Request};

use super::diagnostics::DiagnosticsPanel;
use super::inside::{InsidePanel, InsideState};
use super::model_worker::client::{ModelWorker, WorkerEvent};
use super::session::LoadedModel;
use super::training::TrainingPanel;
use super::views::PanelLink;
use super::web;
use canvases::{FlowSection, HeadsSection, HeatmapSection, ModelSection, redraw_on_change};
use controller::{
    LoadSource, install, load, pin, shipped_text_changed, start, text_changed, text_changed_after,
    worker_died,
};
use controls::{
    ExportBar, ModelBar, PinPicker, Predictions, StatusLine, TabBar, TextBox, ViewPickers,
};
use export::ViewCanvases;
use state::Explorer;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let explorer = Explorer::from_address();
    let canvases = ViewCanvases::new();
    provide_context(PanelLink(explorer.page.panel));
    address::follow_address(explorer);
    address::answer_host(explorer);
    redraw_on_change(explorer, canvases);
    run_on_change(explorer);
    web::on_escape(move || {
        if explorer.view.pinned.get_untracked().is_some() {
            pin(explorer, None);
        }
    });
    let choice = BackendChoice::from_query(web::query_param("backend").as_deref());
    // The explorer's runs and training are the worker's; it starts its own device for the
    // same choice. Started first, so that the first model installed is sent to it.
    let spawned = ModelWorker::spawn(choice);
    if let Ok(worker) = &spawned {
        worker.listen(move |event| {
            if let WorkerEvent::Died(reason) = event {
                worker_died(explorer, reason);
            }
        });
    }
    let worker = StoredValue::new_local(spawned);
    start(explorer, choice);

    let (page, model, run) = (explorer.page, explorer.model, explorer.run);
    let page_state = move || {
        if run.error.get().is_some() || run.draw_error.get().is_some() {
            "error"
        } else if !model.ready.get()
            || run.running.get()
            || model.loading.get()
            || run.fetching.get() > 0
        {
            "busy"
        } else {
            "ready"
        }
    };
    let on_drop = move |event: leptos::ev::DragEvent| {
        event.prevent_default();
        // A dropped folder is walked for its files (after the event: its entries stay readable).
        let folders = web::files::dropped_folders(&event);
        if !folders.is_empty() {
            web::spawn(async move {
                match web::files::folder_files(folders).await {
                    Ok(files) if !files.is_empty() => load(explorer, LoadSource::Files(files)),
                    Ok(_) => explorer
                        .model
                        .load_error
                        .set(Some("The dropped folder holds no files.".into())),
                    Err(failure) => explorer.model.load_error.set(Some(failure)),
                }
            });
            return;
        }
        let files = web::files::dropped_files(&event);
        if !files.is_empty() {
            load(explorer, LoadSource::Files(files));
        }
    };
    view! {
        <main id="app" class:embed=page.embed data-controls=page.controls.name()
            data-state=page_state data-runs=move || run.runs.get().to_string()
            data-started=move || run.started.get().to_string()
            data-draws=move || run.draws.get().to_string() data-model=move || model.id.get()
            data-models=move || model.version.get().to_string()
            data-wasm-bytes=move || {
                run.runs.track();
                model.version.track();
                web::wasm_memory_bytes().to_string()
            }
            data-source=move || if run.imported.get().is_some() { "trace" } else { "model" }
            data-ran-in=move || run.result.get().map_or("", |result| match result.trace.trace {
                RunTrace::Remote(_) => "worker",
                _ if run.shipped.with(Option::is_some) => "build",
                _ => "page",
            })
            data-shipped=move || match (run.shipped.with(Option::is_some), run.shipped_drawn.get()) {
                (true, true) => "drawn",
                (true, false) => "shown",
                (false, _) => "",
            }
            data-read-bytes=move || run.last_read_bytes.get().to_string()
            data-trace-bytes=move || run.result.get().map_or(0, |result| result.trace.trace.bytes()).to_string()
            on:dragover=move |event: leptos::ev::DragEvent| event.prevent_default()
            on:drop=on_drop>
            <header>
                <h1>"glassbox"</h1>
                <p class="tagline">"Look inside a Transformer while it runs."</p>
            </header>
            <StatusLine explorer=explorer />
            <TabBar explorer=explorer />
            <OtherTabs explorer=explorer worker=worker />
            <div id="explore-tab" role="tabpanel" hidden=move || page.tab.get() != Tab::Explore>
                <ExploreTab explorer=explorer canvases=canvases />
            </div>
            <pre id="bench-output" hidden=page.bench.is_none()>
                {move || page.bench.map(|output| output.get())}
            </pre>
        </main>
    }
}

/// The explorer's own tab: the controls beside the view they set.
#[component]
fn ExploreTab(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let (model, run) = (explorer.model, explorer.run);
    let is_empty = move || model.ready.get() && !run.running.get() && run.result.get().is_none();
    view! {
        <div class="explorer">
            <div class="explorer-controls">
                <ModelBar explorer=explorer />
                <p class="hint">"Or drop a .safetensors file (with its config.json and vocabulary, if it has no glassbox metadata), or a HuggingFace model's files (BERT, MiniLM, GPT-2: config.json, model.safetensors, tokenizer.json), anywhere on the page. A trace .json (exported below) opens on its own and shows that run without the model. Files never leave this machine."</p>
                <p id="load-error" class="error" role="alert" hidden=move || model.load_error.get().is_none()>
                    {move || model.load_error.get()}
                </p>
                <p id="provenance" class="notice">{move || model.provenance.get()}</p>
                <TextBox explorer=explorer />
                <ViewPickers explorer=explorer />
                <p id="opening" class="notice" hidden=move || run.opening.get().is_none()>
                    {move || run.opening.get()}
                </p>
                <PinPicker explorer=explorer />
                <ExportBar explorer=explorer canvases=canvases />
                <Predictions explorer=explorer />
            </div>
            <div class="explorer-views">
                {web::embed_host_problem().map(|problem| view! {
                    <p id="host-problem" class="error" role="alert">{problem}</p>
                })}
                <p id="error" class="error" role="alert"
                    hidden=move || run.error.get().is_none() && run.draw_error.get().is_none()>
                    {move || run.error.get().or_else(|| run.draw_error.get())}
                </p>
                <p id="empty-state" class="empty" hidden=move || !is_empty()>
                    "Type some text to see how the model attends to it."
                </p>
                <div class="views" hidden=move || run.result.get().is_none()>
                    <HeatmapSection explorer=explorer canvases=canvases />
                    <FlowSection explorer=explorer canvases=canvases />
                    <HeadsSection explorer=explorer canvases=canvases />
                    <ModelSection explorer=explorer canvases=canvases />
                </div>
            </div>
        </div>
    }
}

/// The training, inside and diagnostics tabs, wired to the explorer's model.
#[component]
fn OtherTabs(
    explorer: Explorer,
    /// The model worker the training tab trains in.
    worker: StoredValue<Result<ModelWorker, String>, LocalStorage>,
) -> impl IntoView {
    let (page, model, view) = (explorer.page, explorer.model, explorer.view);
    let inside = InsideState::new();
    let frozen = RwSignal::new(Vec::<String>::new());
    let analysing = RwSignal::new(false);
    let inside_message = RwSignal::new(None::<String>);
    // "Analyse one batch": a forward and backward pass of the explorer's model, nothing updated.
    let analyse = Callback::new(move |()| -> Result<(), String> {
        let (current, in_worker, batch, source) = model.loaded.with_value(|current| {
            let current = current.as_ref().ok_or("no model is loaded yet")?;
            let (batch, source) =
                current.analysis_batch(&view.text.get_untracked(), &view.text_b.get_untracked())?;
            let in_worker = current.worker_weights.is_some();
            Ok::<_, String>((current.model.clone(), in_worker, batch, source))
        })?;
        let version = model.version.get_untracked();
        analysing.set(true);
        inside_message.set(None);
        web::spawn(async move {
            web::next_frame().await;
            match analyse_model(&current, in_worker.then_some(version), batch).await {
                Ok((analysis, made_in)) => inside.record_batch(source, analysis, made_in),
                Err(error) => inside_message.set(Some(format!("The analysis failed: {error}"))),
            }
            analysing.set(false);
        });
        Ok(())
    });
    // The training tab hands its model over and shows it here.
    let on_use = Callback::new(move |trained: LoadedModel| {
        install(explorer, trained);
        page.tab.set(Tab::Explore);
    });
    let open_layer = Callback::new(move |index: usize| {
        view.layer.set(index);
        page.tab.set(Tab::Explore);
    });
    let run = explorer.run;
    let shows = move |tab: Tab| Signal::derive(move || page.tab.get() == tab);
    view! {
        <div id="train-tab" role="tabpanel" hidden=move || page.tab.get() != Tab::Train>
            <TrainingPanel backend=model.backend worker=worker on_use=on_use inside=inside frozen=frozen />
        </div>
        <div id="inside-tab" role="tabpanel" hidden=move || page.tab.get() != Tab::Inside>
            <InsidePanel state=inside visible=shows(Tab::Inside)
                analyse=analyse analysing=Signal::from(analysing) message=inside_message
                model_version=Signal::from(model.version) />
        </div>
        <div id="diagnostics-tab" role="tabpanel" hidden=move || page.tab.get() != Tab::Diagnostics>
            <DiagnosticsPanel backend=model.backend loaded=model.loaded model_version=model.version
                result=Signal::derive(move || if run.imported.get().is_some() || run.shipped.with(Option::is_some) { None } else { run.result.get() })
                text=view.text frozen=frozen visible=shows(Tab::Diagnostics) open_layer=open_layer />
        </div>
    }
}

/// Analyses `batch` on the explorer's model: in the model worker, which holds its copy as the
/// page's model `in_worker`, else (a HuggingFace folder) on this thread. Says where it ran.
async fn analyse_model(
    model: &Transformer,
    in_worker: Option<u32>,
    batch: Batch,
) -> Result<(Analysis, &'static str), String> {
    if let (Some(version), Some(worker)) = (in_worker, ModelWorker::page()) {
        let request = Request::Analyse {
            model: version,
            batch: Box::new(batch),
        };
        return match worker.ask(request).await? {
            Reply::Analysis(analysis) => Ok((*analysis, "worker")),
            Reply::Refused(why) => Err(why),
            _ => Err("the model worker answered something else".into()),
        };
    }
    analyse(model, &batch)
        .await
        .map(|analysis| (analysis, "page"))
        .map_err(|error| error.to_string())
}

/// Changing the text or the model runs it again, once the typing pauses.
fn run_on_change(explorer: Explorer) {
    let (model, view, run) = (explorer.model, explorer.view, explorer.run);
    Effect::new(move |previous: Option<u32>| {
        view.text.track();
        view.text_b.track();
        let version = model.version.get();
        shipped_text_changed(explorer);
        if !model.ready.get() || run.imported.get_untracked().is_some() {
            return version;
        }
        // A model just installed runs at once; a typed text waits for the typing to pause.
        if previous == Some(version) {
            text_changed(explorer);
        } else {
            text_changed_after(explorer, 0);
        }
        version
    });
}
