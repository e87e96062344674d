//! The attention explorer page: text in, attention views out.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::Matrix;
use crate::charts::{HeatmapLayout, Style};

use super::bench;
use super::session::{RunResult, Session};
use super::views::{HeadChoice, ViewKind, draw_flow_view, draw_heads_view, draw_heatmap_view};
use super::web;

/// The text the page opens with: from the bundled corpus, and short enough (9 tokens) that
/// the flow view's default threshold of 0.1 keeps some arrows even on untrained weights.
const DEFAULT_TEXT: &str = "Call me Ishmael. I would sail about.";

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
    let bench_mode = web::query_param("bench").is_some();
    let bench_output = RwSignal::new(String::new());
    let session = StoredValue::new_local(None::<Session>);
    let backend_label = RwSignal::new("Starting: asking the browser for WebGPU…".to_string());
    let provenance = RwSignal::new(String::new());
    let num_layers = RwSignal::new(0usize);
    let num_heads = RwSignal::new(0usize);
    let max_tokens = RwSignal::new(0usize);
    let ready = RwSignal::new(false);

    let text = RwSignal::new(DEFAULT_TEXT.to_string());
    let layer = RwSignal::new(0usize);
    let head = RwSignal::new(HeadChoice::Mean);
    let view = RwSignal::new(ViewKind::Heatmap);
    let threshold = RwSignal::new(0.1f32);

    let result = RwSignal::new(None::<Arc<RunResult>>);
    let running = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let runs = RwSignal::new(0u32);
    let draws = RwSignal::new(0u32);
    let generation = StoredValue::new(0u64);
    let shown = StoredValue::new_local(None::<Shown>);
    let hover = RwSignal::new(None::<String>);

    let heatmap_ref = NodeRef::<html::Canvas>::new();
    let flow_ref = NodeRef::<html::Canvas>::new();
    let grid_ref = NodeRef::<html::Canvas>::new();
    let similarity_ref = NodeRef::<html::Canvas>::new();

    // Pick a device and build the model once.
    web::spawn(async move {
        match Session::start(force_cpu).await {
            Ok(started) => {
                backend_label.set(started.backend.label.clone());
                provenance.set(started.provenance.clone());
                num_layers.set(started.config.num_layers);
                num_heads.set(started.config.num_heads);
                max_tokens.set(started.tokenizer.max_len);
                if bench_mode {
                    let outcome = bench::run(&started).await;
                    bench_output.set(
                        outcome.unwrap_or_else(|failure| format!("{{\"error\":{failure:?}}}")),
                    );
                }
                session.set_value(Some(started));
                ready.set(true);
            }
            Err(failure) => error.set(Some(format!("The model could not start: {failure}"))),
        }
    });

    // Changing the text re-runs the model; a newer run makes an older one's result stale.
    Effect::new(move |_| {
        let text = text.get();
        if !ready.get() {
            return;
        }
        let Some(current) = session.get_value() else {
            return;
        };
        let this_run = generation.get_value() + 1;
        generation.set_value(this_run);
        running.set(true);
        web::spawn(async move {
            web::next_frame().await;
            let outcome = current.run(&text).await;
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
        let style = if web::prefers_dark() {
            Style::dark()
        } else {
            Style::light()
        };
        let drawn = match view {
            ViewKind::Heatmap => heatmap_ref
                .get()
                .ok_or_else(|| "the heatmap canvas is missing".to_string())
                .and_then(|canvas| draw_heatmap_view(&canvas, &run, layer, head, &style))
                .map(|(layout, matrix)| shown.set_value(Some(Shown { layout, matrix }))),
            ViewKind::Flow => flow_ref
                .get()
                .ok_or_else(|| "the flow canvas is missing".to_string())
                .and_then(|canvas| {
                    draw_flow_view(&canvas, &run, layer, head, threshold, &style).map(|_| ())
                }),
            ViewKind::Heads => match (grid_ref.get(), similarity_ref.get()) {
                (Some(grid), Some(similarity)) => {
                    draw_heads_view(&grid, &similarity, &run, layer, &style)
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
        let rect = canvas.get_bounding_client_rect();
        if rect.width() <= 0.0 || rect.height() <= 0.0 {
            return;
        }
        // The canvas may be scaled by CSS: map client pixels to canvas pixels.
        let x =
            (f64::from(event.client_x()) - rect.left()) * f64::from(canvas.width()) / rect.width();
        let y =
            (f64::from(event.client_y()) - rect.top()) * f64::from(canvas.height()) / rect.height();
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
        (false, Some(run)) => format!(
            "last forward + capture: {:.1} ms for {} tokens",
            run.forward_ms,
            run.tokens.tokens.len()
        ),
        (false, None) => String::new(),
    };
    let page_state = move || {
        if error.get().is_some() {
            "error"
        } else if !ready.get() || running.get() {
            "busy"
        } else {
            "ready"
        }
    };
    let is_empty = move || ready.get() && !running.get() && result.get().is_none();

    view! {
        <main id="app" data-state=page_state data-runs=move || runs.get().to_string()
            data-draws=move || draws.get().to_string()>
            <header>
                <h1>"glassbox"</h1>
                <p class="tagline">"Look inside a Transformer while it runs."</p>
            </header>
            <p class="status" aria-live="polite">
                <span id="backend">{move || backend_label.get()}</span>
                <span id="forward">{forward_label}</span>
            </p>
            <p id="provenance" class="notice">{move || provenance.get()}</p>
            <label class="field" for="text">"Text"</label>
            <textarea id="text" rows="3" spellcheck="false"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))></textarea>
            <p id="token-notice" class="notice" hidden=move || token_notice().is_none()>
                {token_notice}
            </p>
            <div class="controls" role="group" aria-label="View controls">
                <label>"View "
                    <select id="view" aria-label="View"
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
                        <option value="mean">"Mean of heads"</option>
                        {move || (0..num_heads.get()).map(|index| view! {
                            <option value=index.to_string()>{format!("Head {index}")}</option>
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
                <section class="view" hidden=move || view.get() != ViewKind::Heatmap>
                    <canvas id="heatmap" node_ref=heatmap_ref width="760" height="700"
                        aria-label="Attention heatmap: rows are queries, columns are keys"
                        on:mousemove=on_heatmap_move
                        on:mouseleave=move |_| hover.set(None)></canvas>
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
                </section>
            </div>
            <pre id="bench-output" hidden=move || !bench_mode>{move || bench_output.get()}</pre>
        </main>
    }
}
