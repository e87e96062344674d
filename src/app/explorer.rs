//! The attention explorer page: text in, attention views out.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::{Matrix, head_similarity, strongest_keys};
use crate::charts::HeatmapLayout;

use crate::model::trace_file::MAX_TRACE_BYTES;
use crate::model::{BackendInfo, TraceFile, TraceFileError};

use super::bench;
use super::diagnostics::DiagnosticsPanel;
use super::inside::{InsidePanel, InsideState};
use super::session::{LoadedModel, RunResult, SHIPPED_MODELS, shipped, start_backend};
use super::training::TrainingPanel;
use super::views::{
    HeadChoice, PanelLink, ViewKind, draw_flow_view, draw_heads_view, draw_heatmap_view,
    image_buttons, save_canvas, view_maps,
};
use super::web;
use crate::share::{ExportedMap, ViewState, matrix_csv, view_json};
use crate::train::analyse_batch;

/// The model the page opens on: trained, so its attention shows what it learned.
const DEFAULT_MODEL: &str = "reverse";

/// What the heatmap currently shows, kept for hover look-ups without redrawing.
#[derive(Clone)]
struct Shown {
    layout: HeatmapLayout,
    matrix: Matrix,
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let force_cpu = web::query_param("backend").as_deref() == Some("cpu");
    // Embed mode (`?embed=1`): one view without the app's chrome, for an iframe in a tutorial;
    // `controls=hide` hides the view controls, `controls=lock` shows them inert.
    let embed = web::query_param("embed").is_some_and(|value| value != "0");
    let controls_mode = match web::query_param("controls").as_deref() {
        Some("hide") => "hide",
        Some("lock") => "lock",
        _ => "show",
    };
    let locked = embed && controls_mode == "lock";
    let bench_mode = web::query_param("bench").is_some();
    let bench_output = RwSignal::new(String::new());
    let backend = StoredValue::new_local(None::<BackendInfo>);
    let loaded = StoredValue::new_local(None::<LoadedModel>);
    let model_id = RwSignal::new(String::new());
    let model_version = RwSignal::new(0u32);
    let file_label = RwSignal::new(None::<String>);
    let loading = RwSignal::new(false);
    let load_error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(None::<String>);
    let backend_label = RwSignal::new("Starting: asking the browser for WebGPU…".to_string());
    let provenance = RwSignal::new(String::new());
    let num_layers = RwSignal::new(0usize);
    let num_heads = RwSignal::new(0usize);
    let max_tokens = RwSignal::new(0usize);
    let ready = RwSignal::new(false);

    let text = RwSignal::new(String::new());
    let layer = RwSignal::new(0usize);
    let head = RwSignal::new(HeadChoice::Mean);
    let view = RwSignal::new(ViewKind::Heatmap);
    let threshold = RwSignal::new(0.1f32);

    let result = RwSignal::new(None::<Arc<RunResult>>);
    // Set while the views show an imported trace file (its name) instead of a run of the model.
    let imported = RwSignal::new(None::<String>);
    let running = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let runs = RwSignal::new(0u32);
    let draws = RwSignal::new(0u32);
    let generation = StoredValue::new(0u64);
    let shown = StoredValue::new_local(None::<Shown>);
    let hover = RwSignal::new(None::<String>);
    // The token pinned by a click on the heatmap: highlighted in every view until Escape.
    let pinned = RwSignal::new(None::<usize>);
    // The heatmap in words: each query's strongest key (the canvas' text alternative).
    let strongest = RwSignal::new(Vec::<usize>::new());

    let heatmap_ref = NodeRef::<html::Canvas>::new();
    let flow_ref = NodeRef::<html::Canvas>::new();
    let grid_ref = NodeRef::<html::Canvas>::new();
    let similarity_ref = NodeRef::<html::Canvas>::new();

    // Sets the explorer's controls from a shared link's settings (those that fit the model).
    let apply_view = move |state: &ViewState, layers: usize, heads: usize| {
        if let Some(value) = &state.text {
            text.set(value.clone());
        }
        if let Some(value) = state.layer.filter(|&value| value < layers) {
            layer.set(value);
        }
        if let Some(value) = &state.head {
            let choice = HeadChoice::parse(value);
            if !matches!(choice, HeadChoice::Head(index) if index >= heads) {
                head.set(choice);
            }
        }
        if let Some(value) = &state.view {
            view.set(ViewKind::parse(value));
        }
        if let Some(value) = state.threshold {
            threshold.set(value.clamp(0.0, 1.0));
        }
    };

    // The view settings of the address, applied once the model they refer to is installed.
    let pending_url = StoredValue::new_local(Some(ViewState::from_query(&web::location_search())));
    // Set while the page follows back/forward, so that following it writes no new entry.
    let restoring = StoredValue::new(false);
    let first_write = StoredValue::new(true);

    // Makes `model` the one the page runs; the views follow.
    // The layer and head pickers offer `layers` and `heads`; a choice past them goes back to 0
    // or the mean.
    let fit_controls = move |layers: usize, heads: usize| {
        num_layers.set(layers);
        num_heads.set(heads);
        if layer.get_untracked() >= layers {
            layer.set(0);
        }
        if matches!(head.get_untracked(), HeadChoice::Head(index) if index >= heads) {
            head.set(HeadChoice::Mean);
        }
    };

    let install = move |model: LoadedModel| {
        provenance.set(model.provenance.clone());
        fit_controls(model.config.num_layers, model.config.num_heads);
        max_tokens.set(model.tokenizer.max_len);
        if let Some(probe) = &model.probe_text {
            text.set(probe.clone());
        }
        if let Some(state) = pending_url.get_value() {
            pending_url.set_value(None);
            apply_view(&state, model.config.num_layers, model.config.num_heads);
        }
        load_error.set(None);
        saved.set(None);
        pinned.set(None);
        imported.set(None);
        model_id.set(model.id.clone());
        loaded.set_value(Some(model));
        model_version.update(|version| *version += 1);
        ready.set(true);
    };

    let tab = RwSignal::new(match web::query_param("tab").as_deref() {
        Some("train") => Tab::Train,
        Some("inside") => Tab::Inside,
        Some("diagnostics") => Tab::Diagnostics,
        _ => Tab::Explore,
    });
    // The panel the address names; headings' "#" buttons set it, and the page scrolls to it.
    let panel = RwSignal::new(ViewState::from_query(&web::location_search()).panel);
    provide_context(PanelLink(panel));
    let inside = InsideState::new();
    let frozen = RwSignal::new(Vec::<String>::new());
    let open_layer = Callback::new(move |index: usize| {
        layer.set(index);
        tab.set(Tab::Explore);
    });
    let analysing = RwSignal::new(false);
    let inside_message = RwSignal::new(None::<String>);
    // "Analyse one batch": a forward and backward pass of the explorer's model, nothing updated.
    let analyse = Callback::new(move |()| -> Result<(), String> {
        let (model, batch, source) = loaded.with_value(|current| {
            let current = current.as_ref().ok_or("no model is loaded yet")?;
            let (batch, source) = current.analysis_batch(&text.get_untracked())?;
            Ok::<_, String>((current.model.clone(), batch, source))
        })?;
        analysing.set(true);
        inside_message.set(None);
        web::spawn(async move {
            web::next_frame().await;
            match analyse_batch(&model, &batch).await {
                Ok(analysis) => inside.record_batch(source, analysis),
                Err(error) => inside_message.set(Some(format!("The analysis failed: {error}"))),
            }
            analysing.set(false);
        });
        Ok(())
    });
    // The training tab hands its model over and shows it here.
    let on_use = Callback::new(move |model: LoadedModel| {
        install(model);
        tab.set(Tab::Explore);
    });

    // Shows a trace file in the views without running the model; a bad file changes nothing.
    // `outcome` is the file `name` read; a trace in it is shown, a failure changes nothing.
    let show_trace = move |name: String, outcome: Result<Vec<u8>, String>| {
        let trace = match outcome
            .and_then(|bytes| TraceFile::parse(&bytes).map_err(|error| error.to_string()))
        {
            Ok(trace) => trace,
            Err(failure) => {
                load_error.set(Some(format!(
                    "Could not open the trace {name}: {failure}. The view is unchanged."
                )));
                return;
            }
        };
        let (model, about, trace_text) =
            (trace.model.clone(), trace.about.clone(), trace.text.clone());
        let (tokens, trace) = trace.into_parts();
        let heads = trace
            .attention
            .first()
            .map_or(0, |attention| attention.heads);
        // Marked first, so that setting the text below runs nothing.
        imported.set(Some(name.clone()));
        fit_controls(trace.attention.len(), heads);
        pinned.set(None);
        load_error.set(None);
        error.set(None);
        hover.set(None);
        text.set(trace_text);
        provenance.set(format!(
            "Viewing the trace {name} (model: {model}{}). Nothing runs: every number is the file's. Edit the text or pick a model to run a model again.",
            if about.is_empty() { String::new() } else { format!("; {about}") }
        ));
        // A run still in flight must not replace the trace when it finishes.
        generation.set_value(generation.get_value() + 1);
        running.set(false);
        result.set(Some(Arc::new(RunResult {
            tokens,
            trace,
            forward_ms: 0.0,
        })));
        runs.update(|count| *count += 1);
    };

    // Back from an imported trace to the loaded model, whose settings the controls take again.
    let leave_trace = move || {
        if imported.get_untracked().is_none() {
            return;
        }
        imported.set(None);
        loaded.with_value(|model| {
            if let Some(model) = model {
                provenance.set(model.provenance.clone());
                fit_controls(model.config.num_layers, model.config.num_heads);
            }
        });
        pinned.set(None);
    };

    // Opens a model from `source` on `device`; a failure leaves the current model in place.
    let load_model = move |source: LoadSource, device: BackendInfo| {
        loading.set(true);
        web::spawn(async move {
            web::next_frame().await;
            let outcome = match &source {
                LoadSource::Shipped(id) => match shipped(id) {
                    Some(model) => LoadedModel::shipped(model, &device).await,
                    None => Err(format!("there is no model called `{id}`")),
                },
                LoadSource::Files(files) => LoadedModel::open_files(files, &device).await,
            };
            loading.set(false);
            match outcome {
                Ok(model) => {
                    if let LoadSource::Files(_) = source {
                        file_label.set(Some(model.file_name.clone()));
                    }
                    install(model);
                }
                Err(failure) => {
                    load_error.set(Some(format!(
                        "Could not open the model: {failure}. The model already loaded is still in use."
                    )));
                }
            }
        });
    };

    // Loads a shipped model or the user's files; a failure leaves the current model in place.
    let load = move |source: LoadSource| {
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
                show_trace(file.name, outcome);
            });
            return;
        }
        let Some(device) = backend.get_value() else {
            return;
        };
        // A lone .safetensors file may be a binary trace: its header says so.
        if let LoadSource::Files(files) = &source
            && let [file] = files.as_slice()
            && file.size_bytes <= MAX_TRACE_BYTES as f64
        {
            let file = file.clone();
            loading.set(true);
            web::spawn(async move {
                let bytes = file.read().await;
                loading.set(false);
                match bytes {
                    // Read once: the trace is shown from the bytes that said it is one.
                    Ok(bytes) if TraceFile::is_binary_trace(&bytes) => {
                        show_trace(file.name, Ok(bytes));
                    }
                    _ => load_model(LoadSource::Files(vec![file]), device),
                }
            });
            return;
        }
        load_model(source, device);
    };
    // Every view setting lives in the address: a link reopens this view, back and forward work.
    Effect::new(move |_| {
        let state = ViewState {
            tab: Some(tab.get().name().to_string()),
            // A file the user opened or a model trained here cannot travel in a link.
            model: Some(model_id.get()).filter(|id| shipped(id).is_some()),
            text: Some(text.get()),
            layer: Some(layer.get()),
            head: Some(match head.get() {
                HeadChoice::Mean => "mean".to_string(),
                HeadChoice::Head(index) => index.to_string(),
            }),
            view: Some(view.get().name().to_string()),
            threshold: Some(threshold.get()),
            panel: panel.get(),
            other: ViewState::from_query(&web::location_search()).other,
        };
        // An imported trace cannot travel in a link: the address keeps the last model's view.
        if !ready.get() || pending_url.with_value(Option::is_some) || imported.get().is_some() {
            return;
        }
        let query = state.to_query();
        let current = web::location_search();
        if query == current {
            return;
        }
        let before = ViewState::from_query(&current);
        let text_only = ViewState {
            text: None,
            ..before
        } == ViewState {
            text: None,
            ..state
        };
        let push = !(text_only || restoring.get_value() || first_write.get_value());
        restoring.set_value(false);
        first_write.set_value(false);
        web::set_query(&query, push);
    });
    web::on_history_change(move || {
        let state = ViewState::from_query(&web::location_search());
        restoring.set_value(true);
        panel.set(state.panel.clone());
        tab.set(match state.tab.as_deref() {
            Some("train") => Tab::Train,
            Some("inside") => Tab::Inside,
            Some("diagnostics") => Tab::Diagnostics,
            _ => Tab::Explore,
        });
        match state
            .model
            .clone()
            .filter(|id| *id != model_id.get_untracked())
        {
            Some(id) if shipped(&id).is_some() => {
                pending_url.set_value(Some(state));
                load(LoadSource::Shipped(id));
            }
            _ => {
                let (layers, heads) = (num_layers.get_untracked(), num_heads.get_untracked());
                apply_view(&state, layers, heads);
            }
        }
    });

    // Exports the view on screen: its canvas as PNG, the attention it shows as JSON or CSV.
    let export_status = RwSignal::new(None::<String>);
    let export_view = move |kind: &'static str| {
        let Some(run) = result.get_untracked() else {
            return;
        };
        let (layer, head, view) = (
            layer.get_untracked(),
            head.get_untracked(),
            view.get_untracked(),
        );
        let base = format!(
            "glassbox-{}-layer{layer}-{}",
            model_id.get_untracked(),
            view.name()
        );
        let tokens = run.tokens.labels();
        let maps = view_maps(&run, layer, head, view);
        // The whole run, as a trace file that opens again without the model.
        let trace_file = || {
            TraceFile::new(
                &imported
                    .get_untracked()
                    .unwrap_or_else(|| model_id.get_untracked()),
                &provenance.get_untracked(),
                &text.get_untracked(),
                &run.tokens,
                &run.trace,
            )
        };
        let outcome = match kind {
            "png" | "svg" => {
                let canvas = match view {
                    ViewKind::Heatmap => heatmap_ref.get_untracked(),
                    ViewKind::Flow => flow_ref.get_untracked(),
                    ViewKind::Heads => grid_ref.get_untracked(),
                };
                canvas
                    .ok_or_else(|| "the view is not drawn".to_string())
                    .and_then(|canvas| save_canvas(&canvas, &base, kind))
            }
            "trace" => {
                let name = format!("glassbox-{}-trace.json", model_id.get_untracked());
                web::files::download(&name, trace_file().to_json().as_bytes())
            }
            "trace-binary" => {
                let name = format!("glassbox-{}-trace.safetensors", model_id.get_untracked());
                trace_file()
                    .to_safetensors()
                    .map_err(|error| error.to_string())
                    .and_then(|bytes| web::files::download(&name, &bytes))
            }
            "json" => {
                let exported: Vec<ExportedMap<'_>> = maps
                    .iter()
                    .map(|(name, matrix)| ExportedMap {
                        name: name.clone(),
                        matrix,
                    })
                    .collect();
                let threshold = (view == ViewKind::Flow).then(|| threshold.get_untracked());
                let text = view_json(
                    &model_id.get_untracked(),
                    &tokens,
                    layer,
                    view.name(),
                    threshold,
                    &exported,
                    (view == ViewKind::Heads)
                        .then(|| run.trace.attention.get(layer))
                        .flatten()
                        .and_then(|attention| head_similarity(attention, 0))
                        .as_ref(),
                );
                web::files::download(&format!("{base}.json"), text.as_bytes())
            }
            _ => {
                let text: String = maps
                    .iter()
                    .map(|(name, matrix)| {
                        if maps.len() > 1 {
                            format!("# {name}\n{}", matrix_csv(&tokens, matrix))
                        } else {
                            matrix_csv(&tokens, matrix)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                web::files::download(&format!("{base}.csv"), text.as_bytes())
            }
        };
        export_status.set(Some(match outcome {
            Ok(()) if kind == "trace" => {
                format!("Saved glassbox-{}-trace.json", model_id.get_untracked())
            }
            Ok(()) => format!("Saved {base}.{kind}"),
            Err(failure) => format!("Export failed: {failure}"),
        }));
    };

    // The host page of an embedded view can set the text and the view (see docs/embedding.md).
    web::on_host_message(move |message| {
        if message.get("type").and_then(|t| t.as_str()) != Some("glassbox:set") {
            return;
        }
        let state = ViewState {
            text: message
                .get("text")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            layer: message
                .get("layer")
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize),
            head: message.get("head").map(|v| match v {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            }),
            view: message
                .get("view")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            threshold: message
                .get("threshold")
                .and_then(serde_json::Value::as_f64)
                .map(|v| v as f32),
            ..ViewState::default()
        };
        let checked = ViewState::from_query(&state.to_query());
        if checked.text.is_some() {
            leave_trace();
        }
        apply_view(
            &checked,
            num_layers.get_untracked(),
            num_heads.get_untracked(),
        );
    });
    // Tells the host page each time a run finishes, with its tokens.
    Effect::new(move |_| {
        let count = runs.get();
        if let Some(run) = result.get_untracked() {
            web::post_to_host(&serde_json::json!({
                "type": "glassbox:run",
                "runs": count,
                "model": model_id.get_untracked(),
                "tokens": run.tokens.labels(),
            }));
        }
    });

    let link_status = RwSignal::new(None::<String>);
    let copy_link = move |_| {
        if imported.get_untracked().is_some() {
            link_status.set(Some(
                "A link cannot carry an imported trace: share the trace file itself (Trace (JSON)).".into(),
            ));
            return;
        }
        let href = web::location_href();
        web::copy_text(&href.clone(), move |outcome| {
            link_status.set(Some(match outcome {
                Ok(()) => "Link copied.".to_string(),
                Err(_) => format!("Copy this link: {href}"),
            }));
        });
    };

    // The named panel is scrolled into view once its tab shows and the model is in.
    Effect::new(move |_| {
        let (Some(name), true) = (panel.get(), ready.get()) else {
            return;
        };
        tab.track();
        web::spawn(async move {
            web::next_frame().await;
            web::scroll_to(&format!("panel-{name}"));
        });
    });

    // Pick a device, then open the first model.
    web::spawn(async move {
        let started = start_backend(force_cpu).await;
        backend_label.set(started.label.clone());
        if bench_mode {
            let outcome = bench::run(&started).await;
            bench_output
                .set(outcome.unwrap_or_else(|failure| format!("{{\"error\":{failure:?}}}")));
        }
        let first = web::query_param("model")
            .and_then(|id| shipped(&id))
            .or_else(|| shipped(DEFAULT_MODEL));
        let outcome = match first {
            Some(model) => LoadedModel::shipped(model, &started).await,
            None => LoadedModel::seed_preset(&started),
        };
        let outcome = match outcome {
            Ok(model) => Ok(model),
            // Without its checkpoint the page still works on the seeded preset, and says why.
            Err(failure) => LoadedModel::seed_preset(&started).inspect(|_| {
                load_error.set(Some(format!(
                    "Could not open the trained model ({failure}); showing the seed preset instead."
                )));
            }),
        };
        backend.set_value(Some(started));
        match outcome {
            Ok(model) => {
                let problem = load_error.get_untracked();
                install(model);
                load_error.set(problem);
            }
            Err(failure) => error.set(Some(format!("The model could not start: {failure}"))),
        }
    });

    // Changing the text or the model re-runs it; a newer run makes an older one's result stale.
    Effect::new(move |_| {
        let text = text.get();
        model_version.track();
        if !ready.get() || imported.get_untracked().is_some() {
            return;
        }
        let (Some(current), Some(device)) = (loaded.get_value(), backend.get_value()) else {
            return;
        };
        let this_run = generation.get_value() + 1;
        generation.set_value(this_run);
        running.set(true);
        web::spawn(async move {
            web::next_frame().await;
            let outcome = current.run(&text, &device).await;
            if generation.get_value() != this_run {
                return;
            }
            running.set(false);
            match outcome {
                Ok(run) => {
                    error.set(None);
                    hover.set(None);
                    result.set(run.map(Arc::new));
                    runs.update(|count| *count += 1);
                }
                Err(failure) => error.set(Some(format!("The model could not run: {failure}"))),
            }
        });
    });

    // Changing layer, head, view or threshold only redraws.
    Effect::new(move |_| {
        let Some(run) = result.get() else {
            return;
        };
        let (layer, head, view, threshold) = (layer.get(), head.get(), view.get(), threshold.get());
        let pinned = pinned.get();
        let style = web::chart_style();
        let drawn = match view {
            ViewKind::Heatmap => heatmap_ref
                .get()
                .ok_or_else(|| "the heatmap canvas is missing".to_string())
                .and_then(|canvas| draw_heatmap_view(&canvas, &run, layer, head, pinned, &style))
                .map(|(layout, matrix)| {
                    strongest.set(strongest_keys(&matrix));
                    shown.set_value(Some(Shown { layout, matrix }));
                }),
            ViewKind::Flow => flow_ref
                .get()
                .ok_or_else(|| "the flow canvas is missing".to_string())
                .and_then(|canvas| {
                    draw_flow_view(&canvas, &run, layer, head, threshold, pinned, &style)
                        .map(|_| ())
                }),
            ViewKind::Heads => match (grid_ref.get(), similarity_ref.get()) {
                (Some(grid), Some(similarity)) => {
                    draw_heads_view(&grid, &similarity, &run, layer, pinned, &style)
                }
                _ => Err("the head canvases are missing".to_string()),
            },
        };
        match drawn {
            Ok(()) => draws.update(|count| *count += 1),
            Err(failure) => error.set(Some(format!("Drawing failed: {failure}"))),
        }
    });

    let on_heatmap_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = heatmap_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let description = shown.with_value(|shown| {
            let shown = shown.as_ref()?;
            let (query, key) = shown.layout.cell_at(x as i32, y as i32)?;
            let weight = shown.matrix.get(query, key)?;
            result.with_untracked(|run| {
                let tokens = &run.as_ref()?.tokens.tokens;
                Some(format!(
                    "query “{}” (#{query}) → key “{}” (#{key}): weight {weight:.4}",
                    tokens.get(query)?.display,
                    tokens.get(key)?.display
                ))
            })
        });
        hover.set(description);
        // The host page of an embedded view hears about the cell under the pointer.
        let cell = shown.with_value(|shown| {
            let shown = shown.as_ref()?;
            let (query, key) = shown.layout.cell_at(x as i32, y as i32)?;
            Some((query, key, shown.matrix.get(query, key)?))
        });
        if let Some((query, key, weight)) = cell {
            web::post_to_host(&serde_json::json!({
                "type": "glassbox:hover",
                "layer": layer.get_untracked(),
                "head": match head.get_untracked() { HeadChoice::Mean => serde_json::json!("mean"), HeadChoice::Head(index) => serde_json::json!(index) },
                "query": query,
                "key": key,
                "weight": weight,
            }));
        }
    };

    let on_heatmap_click = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = heatmap_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let query = shown.with_value(|shown| {
            shown
                .as_ref()?
                .layout
                .cell_at(x as i32, y as i32)
                .map(|(query, _)| query)
        });
        if let Some(query) = query {
            // Clicking the pinned token again lets it go.
            pinned.update(|pinned| {
                *pinned = if *pinned == Some(query) {
                    None
                } else {
                    Some(query)
                }
            });
            web::post_to_host(
                &serde_json::json!({ "type": "glassbox:select", "token": pinned.get_untracked() }),
            );
        }
    };
    web::on_escape(move || {
        if pinned.get_untracked().is_some() {
            pinned.set(None);
            web::post_to_host(&serde_json::json!({ "type": "glassbox:select", "token": null }));
        }
    });
    let pinned_label = move || {
        let index = pinned.get()?;
        let run = result.get()?;
        let token = run.tokens.tokens.get(index)?;
        Some(format!(
            "Pinned: “{}” (#{index}), highlighted in every view. Escape or a second click lets it go.",
            token.display
        ))
    };

    let token_notice = move || {
        let run = result.get()?;
        let tokens = &run.tokens;
        let mut parts = Vec::new();
        if tokens.dropped > 0 {
            parts.push(format!(
                "Showing the first {} tokens; {} more were dropped (the model takes at most {}).",
                tokens.tokens.len(),
                tokens.dropped,
                max_tokens.get()
            ));
        }
        let unknown = tokens.unknown_count();
        if unknown > 0 {
            parts.push(format!(
                "{unknown} of {} tokens are not in the model's vocabulary and show as [UNK].",
                tokens.tokens.len()
            ));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    };
    let forward_label = move || match (running.get(), result.get()) {
        (true, _) => "running…".to_string(),
        (false, Some(run)) if imported.get().is_some() => format!(
            "imported trace: {} tokens, {} layers, no model run",
            run.tokens.tokens.len(),
            run.trace.attention.len()
        ),
        (false, Some(run)) => format!(
            "last forward + capture: {:.1} ms for {} tokens",
            run.forward_ms,
            run.tokens.tokens.len()
        ),
        (false, None) => String::new(),
    };
    let on_open = move |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&event);
        let files = web::files::input_files(&input);
        // Cleared so that choosing the same file again is a change.
        input.set_value("");
        if !files.is_empty() {
            load(LoadSource::Files(files));
        }
    };
    let on_drop = move |event: leptos::ev::DragEvent| {
        event.prevent_default();
        let files = web::files::dropped_files(&event);
        if !files.is_empty() {
            load(LoadSource::Files(files));
        }
    };
    let on_save = move |_| {
        let Some(model) = loaded.get_value() else {
            return;
        };
        web::spawn(async move {
            let outcome = model.save().await.and_then(|bytes| {
                web::files::download(&model.file_name, &bytes).map(|()| bytes.len())
            });
            match outcome {
                Ok(size_bytes) => saved.set(Some(format!(
                    "Saved {} ({size_bytes} bytes).",
                    model.file_name
                ))),
                Err(failure) => {
                    load_error.set(Some(format!("Could not save the model: {failure}")))
                }
            }
        });
    };

    let strongest_attribute = move || {
        let keys: Vec<String> = strongest.get().iter().map(usize::to_string).collect();
        keys.join(" ")
    };
    let page_state = move || {
        if error.get().is_some() {
            "error"
        } else if !ready.get() || running.get() || loading.get() {
            "busy"
        } else {
            "ready"
        }
    };
    let is_empty = move || ready.get() && !running.get() && result.get().is_none();

    view! {
        <main id="app" class:embed=embed data-controls=controls_mode
            data-state=page_state data-runs=move || runs.get().to_string()
            data-draws=move || draws.get().to_string() data-model=move || model_id.get()
            data-models=move || model_version.get().to_string()
            data-source=move || if imported.get().is_some() { "trace" } else { "model" }
            on:dragover=move |event: leptos::ev::DragEvent| event.prevent_default()
            on:drop=on_drop>
            <header>
                <h1>"glassbox"</h1>
                <p class="tagline">"Look inside a Transformer while it runs."</p>
            </header>
            <p class="status" aria-live="polite">
                <span id="backend">{move || backend_label.get()}</span>
                <span id="forward">{forward_label}</span>
            </p>
            <nav class="tabs" role="tablist" aria-label="Tools">
                <button id="tab-explore" type="button" role="tab"
                    aria-selected=move || (tab.get() == Tab::Explore).to_string()
                    on:click=move |_| { panel.set(None); tab.set(Tab::Explore); }>"Explore attention"</button>
                <button id="tab-train" type="button" role="tab"
                    aria-selected=move || (tab.get() == Tab::Train).to_string()
                    on:click=move |_| { panel.set(None); tab.set(Tab::Train); }>"Train"</button>
                <button id="tab-inside" type="button" role="tab"
                    aria-selected=move || (tab.get() == Tab::Inside).to_string()
                    on:click=move |_| { panel.set(None); tab.set(Tab::Inside); }>"Gradients & activations"</button>
                <button id="tab-diagnostics" type="button" role="tab"
                    aria-selected=move || (tab.get() == Tab::Diagnostics).to_string()
                    on:click=move |_| { panel.set(None); tab.set(Tab::Diagnostics); }>"Model diagnostics"</button>
            </nav>
            <div id="train-tab" role="tabpanel" hidden=move || tab.get() != Tab::Train>
                <TrainingPanel backend=backend on_use=on_use inside=inside frozen=frozen />
            </div>
            <div id="inside-tab" role="tabpanel" hidden=move || tab.get() != Tab::Inside>
                <InsidePanel state=inside visible=Signal::derive(move || tab.get() == Tab::Inside)
                    analyse=analyse analysing=Signal::from(analysing) message=inside_message />
            </div>
            <div id="diagnostics-tab" role="tabpanel" hidden=move || tab.get() != Tab::Diagnostics>
                <DiagnosticsPanel backend=backend loaded=loaded model_version=model_version
                    result=Signal::derive(move || if imported.get().is_some() { None } else { result.get() })
                    text=text frozen=frozen
                    visible=Signal::derive(move || tab.get() == Tab::Diagnostics)
                    open_layer=open_layer />
            </div>
            <div id="explore-tab" role="tabpanel" hidden=move || tab.get() != Tab::Explore>
            <div class="controls model-controls" role="group" aria-label="Model">
                <label>"Model "
                    <select id="model" aria-label="Model"
                        prop:value=move || model_id.get()
                        on:change=move |event| {
                            let id = event_target_value(&event);
                            if id != "file" {
                                load(LoadSource::Shipped(id));
                            }
                        }>
                        {SHIPPED_MODELS.iter().map(|model| view! {
                            <option value=model.id selected=move || model_id.get() == model.id>
                                {model.label}
                            </option>
                        }).collect_view()}
                        {move || file_label.get().map(|name| view! {
                            <option value="file" selected=move || model_id.get() == "file">
                                {format!("Opened: {name}")}
                            </option>
                        })}
                    </select>
                </label>
                <label class="file-button">"Open checkpoint or trace…"
                    <input id="open" type="file" multiple
                        accept=".safetensors,.json,.txt"
                        aria-label="Open a .safetensors checkpoint (with its config JSON and vocabulary if it has no glassbox metadata), or a glassbox trace .json"
                        on:change=on_open />
                </label>
                <button id="save" type="button" on:click=on_save
                    disabled=move || !ready.get()>"Save model (.safetensors)"</button>
                <span id="save-status" aria-live="polite">{move || saved.get()}</span>
                <button id="copy-link" type="button" on:click=copy_link
                    title="The address carries the model, text, layer, head, view and threshold">"Copy link to this view"</button>
                <span id="link-status" aria-live="polite">{move || link_status.get()}</span>
            </div>
            <p class="hint">"Or drop a .safetensors file (with its config.json and vocabulary, if it has no glassbox metadata) anywhere on the page. A trace .json (exported below) opens on its own and shows that run without the model. Files never leave this machine."</p>
            <p id="load-error" class="error" role="alert" hidden=move || load_error.get().is_none()>
                {move || load_error.get()}
            </p>
            <p id="provenance" class="notice">{move || provenance.get()}</p>
            <label class="field" for="text">"Text"</label>
            <textarea id="text" rows="3" spellcheck="false" inert=locked
                prop:value=move || text.get()
                on:input=move |event| {
                    leave_trace();
                    text.set(event_target_value(&event));
                }></textarea>
            <p id="token-notice" class="notice" hidden=move || token_notice().is_none()>
                {token_notice}
            </p>
            <div class="controls view-controls" role="group" aria-label="View controls" inert=locked>
                <label>"View "
                    <select id="view" aria-label="View"
                        prop:value=move || view.get().name()
                        on:change=move |event| view.set(ViewKind::parse(&event_target_value(&event)))>
                        <option value="heatmap">"Heatmap"</option>
                        <option value="flow">"Flow"</option>
                        <option value="heads">"All heads + similarity"</option>
                    </select>
                </label>
                <label>"Layer "
                    <select id="layer" aria-label="Layer"
                        on:change=move |event| layer.set(event_target_value(&event).parse().unwrap_or(0))>
                        {move || (0..num_layers.get()).map(|index| view! {
                            <option value=index.to_string() selected=move || layer.get() == index>
                                {format!("Layer {index}")}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Head "
                    <select id="head" aria-label="Head"
                        disabled=move || view.get() == ViewKind::Heads
                        on:change=move |event| head.set(HeadChoice::parse(&event_target_value(&event)))>
                        <option value="mean" selected=move || head.get() == HeadChoice::Mean>"Mean of heads"</option>
                        {move || (0..num_heads.get()).map(|index| view! {
                            <option value=index.to_string() selected=move || head.get() == HeadChoice::Head(index)>
                                {format!("Head {index}")}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                <label hidden=move || view.get() != ViewKind::Flow>"Threshold "
                    <input id="threshold" type="range" min="0" max="1" step="0.01" aria-label="Flow threshold"
                        prop:value=move || threshold.get().to_string()
                        on:input=move |event| threshold.set(event_target_value(&event).parse().unwrap_or(0.1)) />
                    <output for="threshold">{move || format!("{:.2}", threshold.get())}</output>
                </label>
            </div>
            <p id="error" class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get()}
            </p>
            <p id="empty-state" class="empty" hidden=move || !is_empty()>
                "Type some text above to see how the model attends to it."
            </p>
            <div class="views" hidden=move || result.get().is_none()>
                <div class="controls export" role="group" aria-label="Export this view">
                    "Export this view: "
                    <button id="export-png" type="button" on:click=move |_| export_view("png")>"PNG"</button>
                    <button id="export-svg" type="button" on:click=move |_| export_view("svg")>"SVG"</button>
                    <button id="export-view-json" type="button" on:click=move |_| export_view("json")>"JSON (its data)"</button>
                    <button id="export-csv" type="button" on:click=move |_| export_view("csv")>"CSV"</button>
                    <button id="export-trace" type="button" on:click=move |_| export_view("trace")
                        title="Every layer and head of this run, and every module's output: opens again here without the model">"Trace (JSON)"</button>
                    <button id="export-trace-binary" type="button" on:click=move |_| export_view("trace-binary")
                        title="The same trace as a safetensors file: half the size, for long texts">"Trace (.safetensors)"</button>
                    <span id="export-status" aria-live="polite">{move || export_status.get()}</span>
                </div>
                <label class="pin-picker">"Pin a token "
                    <select id="pin" aria-label="Pin a token: highlight it in every view"
                        on:change=move |event| {
                            let token = event_target_value(&event).parse::<usize>().ok();
                            pinned.set(token);
                            web::post_to_host(&serde_json::json!({ "type": "glassbox:select", "token": token }));
                        }>
                        <option value="" selected=move || pinned.get().is_none()>"None"</option>
                        {move || result.get().map(|run| run.tokens.tokens.iter().enumerate().map(|(index, token)| view! {
                            <option value=index.to_string() selected=move || pinned.get() == Some(index)>
                                {format!("#{index} “{}”", token.display)}
                            </option>
                        }).collect_view())}
                    </select>
                </label>
                <p id="pinned" class="notice" hidden=move || pinned_label().is_none()
                    data-token=move || pinned.get().map_or(String::new(), |index| index.to_string())>
                    {pinned_label}
                </p>
                <section class="view" hidden=move || view.get() != ViewKind::Heatmap>
                    <canvas id="heatmap" node_ref=heatmap_ref width="760" height="700"
                        aria-label="Attention heatmap: rows are queries, columns are keys"
                        on:mousemove=on_heatmap_move
                        on:click=on_heatmap_click
                        on:mouseleave=move |_| hover.set(None)></canvas>
                    <p id="heatmap-summary" class="summary"
                        data-keys=strongest_attribute>
                        {move || strongest_summary(&strongest.get(), result.get().as_deref())}
                    </p>
                    <p id="tooltip" class="tooltip" aria-live="polite">
                        {move || hover.get().unwrap_or_else(|| "Hover a cell to read its weight.".to_string())}
                    </p>
                </section>
                <section class="view" hidden=move || view.get() != ViewKind::Flow>
                    <canvas id="flow" node_ref=flow_ref width="760" height="700"
                        aria-label="Attention flow from query tokens to key tokens"></canvas>
                </section>
                <section class="view heads" hidden=move || view.get() != ViewKind::Heads>
                    <canvas id="head-grid" node_ref=grid_ref width="760" height="440"
                        aria-label="Every head of the layer"></canvas>
                    <canvas id="similarity" node_ref=similarity_ref width="520" height="480"
                        aria-label="Head-to-head similarity"></canvas>
                    <p class="controls">"Similarity matrix: "
                        {image_buttons("similarity", similarity_ref, "glassbox-head-similarity", export_status)}
                    </p>
                </section>
            </div>
            </div>
            <pre id="bench-output" hidden=move || !bench_mode>{move || bench_output.get()}</pre>
        </main>
    }
}

/// Where a model to load comes from.
enum LoadSource {
    /// A model that ships with the page, by id.
    Shipped(String),
    /// Files the user picked or dropped.
    Files(Vec<web::files::PickedFile>),
}

/// "Strongest key per query: “3” → “6”, …" for the tokens of `run`.
fn strongest_summary(keys: &[usize], run: Option<&RunResult>) -> String {
    let Some(run) = run else {
        return String::new();
    };
    let tokens = &run.tokens.tokens;
    let pairs: Vec<String> = keys
        .iter()
        .enumerate()
        .filter_map(|(query, &key)| {
            Some(format!(
                "“{}” → “{}”",
                tokens.get(query)?.display,
                tokens.get(key)?.display
            ))
        })
        .collect();
    format!("Strongest key per query: {}", pairs.join(", "))
}

/// The page's two tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tab {
    /// The attention explorer.
    Explore,
    /// Training with the monitor.
    Train,
    /// Gradient flow and activations.
    Inside,
    /// Structure, parameters, FLOPs, memory and speed.
    Diagnostics,
}

impl Tab {
    /// The tab's name in the address.
    fn name(self) -> &'static str {
        match self {
            Self::Explore => "explore",
            Self::Train => "train",
            Self::Inside => "inside",
            Self::Diagnostics => "diagnostics",
        }
    }
}
