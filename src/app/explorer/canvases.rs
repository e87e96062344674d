//! The explorer's three views on their canvases: drawing them when the run or a setting
//! changes, and the heatmap's hover and click.

use std::sync::Arc;

use leptos::prelude::*;

use crate::analysis::strongest_keys;
use crate::model::AttentionCapture;
use crate::page::explorer::{
    GRID_THUMBNAIL, HeadChoice, MODEL_THUMBNAIL, ViewKind, Window, keys_of_view, strongest_summary,
};
use crate::page::slices::{Slice, SliceKey};
use crate::structure::HeadSummary;

use super::super::session::RunResult;
use super::super::views::{
    HeadsData, draw_flow_view, draw_heads_view, draw_heatmap_window, draw_minimap_view,
    draw_model_views, image_buttons,
};
use super::super::web;
use super::controller::pin;
use super::export::ViewCanvases;
use super::state::{Explorer, ModelShown, Shown};

/// Redraws the view on show whenever the run, the layer, head, view, threshold or pin changes;
/// nothing here runs the model. What the view draws is asked of the run first: a live run
/// reads it back from the device (reduced there), and the view redraws when it has come.
pub fn redraw_on_change(explorer: Explorer, canvases: ViewCanvases) {
    let (view, run) = (explorer.view, explorer.run);
    Effect::new(move |_| {
        let Some(result) = run.result.get() else {
            return;
        };
        run.slices_ready.track();
        let (layer, head, kind) = (view.layer.get(), view.head.get(), view.view.get());
        let keys = keys_of_view(kind, layer, head, result.trace.layers());
        if keys.iter().any(|&key| result.trace.get(key).is_none()) {
            fetch(explorer, result, keys);
            return;
        }
        let drawn = draw_view(explorer, canvases, &result, kind);
        match drawn {
            Ok(()) => {
                if run.draw_error.with_untracked(Option::is_some) {
                    run.draw_error.set(None);
                }
                if run.shipped.with_untracked(Option::is_some) {
                    run.shipped_drawn.set(true);
                } else {
                    run.draws.update(|count| *count += 1);
                }
            }
            Err(failure) => run
                .draw_error
                .set(Some(format!("Drawing failed: {failure}"))),
        }
    });
}

/// Lowers a count of work in flight when dropped.
struct CountDown(RwSignal<u32>);

impl Drop for CountDown {
    fn drop(&mut self) {
        self.0.update(|count| *count = count.saturating_sub(1));
    }
}

/// Reads back what `keys` ask of `result`, then wakes the views (unless a newer run replaced
/// it meanwhile).
fn fetch(explorer: Explorer, result: Arc<RunResult>, keys: Vec<SliceKey>) {
    let run = explorer.run;
    run.fetching.update(|count| *count += 1);
    web::spawn(async move {
        let outcome = result.trace.load(&keys).await;
        // Counted down after the views are woken below, so that the page reads "ready" only
        // once they have drawn what came.
        let _done = CountDown(run.fetching);
        let current = run.result.with_untracked(|shown| {
            shown
                .as_ref()
                .is_some_and(|shown| Arc::ptr_eq(shown, &result))
        });
        if !current {
            return;
        }
        match outcome {
            Ok(bytes) => {
                run.last_read_bytes.set(bytes);
                run.slices_ready.update(|count| *count += 1);
            }
            Err(failure) => run
                .draw_error
                .set(Some(format!("Reading the view back failed: {failure}"))),
        }
    });
}

/// Draws `kind` from what the host has of `result` (every slice it needs is there).
fn draw_view(
    explorer: Explorer,
    canvases: ViewCanvases,
    result: &RunResult,
    kind: ViewKind,
) -> Result<(), String> {
    let (view, run) = (explorer.view, explorer.run);
    let (layer, head) = (view.layer.get(), view.head.get());
    let pinned = view.pinned.get();
    let style = web::chart_style();
    let labels = result.tokens.labels();
    let map = || {
        result
            .trace
            .get(SliceKey::Map { layer, head })
            .and_then(|slice| slice.map().cloned())
            .ok_or_else(|| "no such layer or head".to_string())
    };
    let canvas = |node: NodeRef<leptos::html::Canvas>, what: &str| {
        node.get()
            .ok_or_else(|| format!("the {what} canvas is missing"))
    };
    match kind {
        ViewKind::Heatmap => {
            let matrix = map()?;
            let n = matrix.rows;
            let window = view.zoom.get().map_or(Window::full(n), |zoom| zoom.fit(n));
            let layout = draw_heatmap_window(
                &canvas(canvases.heatmap, "heatmap")?,
                &matrix,
                &labels,
                (layer, head),
                window,
                pinned,
                &style,
            )?;
            if window.is_zoomed(n) {
                draw_minimap_view(
                    &canvas(canvases.minimap, "minimap")?,
                    &matrix,
                    window,
                    &style,
                )?;
            }
            run.strongest.set(strongest_keys(&matrix));
            run.shown.set_value(Some(Shown {
                layout,
                matrix,
                window,
            }));
            Ok(())
        }
        ViewKind::Flow => {
            let matrix = map()?;
            let limits = (view.threshold.get(), view.flow_k.get());
            draw_flow_view(
                &canvas(canvases.flow, "flow")?,
                &matrix,
                &labels,
                (layer, head),
                limits,
                pinned,
                &style,
            )
            .map(|_| ())
        }
        ViewKind::Heads => {
            let thumbnails = result.trace.get(SliceKey::Thumbnails {
                layer,
                size: GRID_THUMBNAIL,
            });
            let similarity = result.trace.get(SliceKey::Similarity { layer });
            let (Some(Slice::Thumbnails(thumbnails)), Some(Slice::Similarity(similarity))) =
                (thumbnails, similarity)
            else {
                return Err("no such layer".into());
            };
            let entropy = layer_entropy(result, layer, thumbnails.heads);
            draw_heads_view(
                &canvas(canvases.grid, "head grid")?,
                &canvas(canvases.similarity, "similarity")?,
                &HeadsData {
                    layer,
                    thumbnails: &thumbnails,
                    similarity: &similarity,
                    entropy: &entropy,
                    tokens: result.tokens.tokens.len(),
                },
                pinned,
                &style,
            )
        }
        ViewKind::Model => {
            let thumbnails: Vec<Arc<AttentionCapture>> = (0..result.trace.layers())
                .filter_map(|layer| {
                    match result.trace.get(SliceKey::Thumbnails {
                        layer,
                        size: MODEL_THUMBNAIL,
                    }) {
                        Some(Slice::Thumbnails(capture)) => Some(capture),
                        _ => None,
                    }
                })
                .collect();
            let summaries = summaries(result);
            let selected = (
                layer,
                match head {
                    HeadChoice::Head(head) => head,
                    HeadChoice::Mean => usize::MAX,
                },
            );
            let (grid, entropy) = draw_model_views(
                &canvas(canvases.model, "model view")?,
                &canvas(canvases.entropy, "entropy")?,
                &thumbnails,
                &summaries,
                selected,
                &style,
            )?;
            run.model_shown
                .set_value(Some(ModelShown { grid, entropy }));
            Ok(())
        }
    }
}

/// Every head's measurements, when the run has them.
fn summaries(result: &RunResult) -> Vec<HeadSummary> {
    match result.trace.get(SliceKey::Summaries) {
        Some(Slice::Summaries(all)) => all.as_ref().clone(),
        _ => Vec::new(),
    }
}

/// Mean row entropy of each of `heads` heads of `layer`.
fn layer_entropy(result: &RunResult, layer: usize, heads: usize) -> Vec<f64> {
    let all = summaries(result);
    (0..heads)
        .filter_map(|head| {
            all.iter()
                .find(|summary| summary.layer == layer && summary.head == head)
                .map(|summary| summary.entropy)
        })
        .collect()
}

/// The heatmap cell under a mouse event: `(query, key, weight)`.
fn cell_under(
    explorer: Explorer,
    canvases: ViewCanvases,
    event: &leptos::ev::MouseEvent,
) -> Option<(usize, usize, f32)> {
    let canvas = canvases.heatmap.get_untracked()?;
    let (x, y) = web::canvas_point(&canvas, event)?;
    explorer.run.shown.with_value(|shown| {
        let shown = shown.as_ref()?;
        let (query, key) = shown.layout.cell_at(x as i32, y as i32)?;
        let (query, key) = (query + shown.window.row, key + shown.window.col);
        Some((query, key, shown.matrix.get(query, key)?))
    })
}

/// The heatmap with its hover read-out and its text alternative.
#[component]
pub fn HeatmapSection(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let (view, run) = (explorer.view, explorer.run);
    let on_move = move |event: leptos::ev::MouseEvent| {
        let Some((query, key, weight)) = cell_under(explorer, canvases, &event) else {
            run.hover.set(None);
            return;
        };
        let description = run.result.with_untracked(|result| {
            let tokens = &result.as_ref()?.tokens.tokens;
            let (query_token, key_token) = (tokens.get(query)?, tokens.get(key)?);
            Some(format!(
                "query “{}” (#{query}, id {}) → key “{}” (#{key}, id {}): weight {weight:.4}",
                query_token.display, query_token.id, key_token.display, key_token.id
            ))
        });
        run.hover.set(description);
        // The host page of an embedded view hears about the cell under the pointer.
        web::post_to_host(&serde_json::json!({
            "type": "glassbox:hover",
            "layer": view.layer.get_untracked(),
            "head": view.head.get_untracked().to_json(),
            "query": query,
            "key": key,
            "weight": weight,
        }));
    };
    // A drag pans the zoomed map; a click that did not drag pins the token.
    let drag = StoredValue::new(None::<Drag>);
    let on_click = move |event: leptos::ev::MouseEvent| {
        if drag.get_value().is_some_and(|drag| drag.moved) {
            drag.set_value(None);
            return;
        }
        drag.set_value(None);
        if let Some((query, _, _)) = cell_under(explorer, canvases, &event) {
            // Clicking the pinned token again lets it go.
            let pinned = view.pinned.get_untracked();
            pin(explorer, (pinned != Some(query)).then_some(query));
        }
    };
    let on_wheel = move |event: leptos::ev::WheelEvent| {
        let Some((query, key, _)) = cell_under(explorer, canvases, &event) else {
            return;
        };
        event.prevent_default();
        let factor = if event.delta_y() < 0.0 {
            ZOOM_STEP
        } else {
            1.0 / ZOOM_STEP
        };
        zoom_by(explorer, Some((query, key)), factor);
    };
    let on_down = move |event: leptos::ev::MouseEvent| {
        let point = canvases
            .heatmap
            .get_untracked()
            .and_then(|canvas| web::canvas_point(&canvas, &event));
        let window = run
            .shown
            .with_value(|shown| shown.as_ref().map(|shown| shown.window));
        if let (Some(point), Some(window)) = (point, window) {
            drag.set_value(Some(Drag {
                from: point,
                window,
                moved: false,
            }));
        }
    };
    let on_drag = move |event: &leptos::ev::MouseEvent| {
        let Some(start) = drag.get_value() else {
            return;
        };
        if event.buttons() & 1 == 0 {
            return;
        }
        let Some((x, y)) = canvases
            .heatmap
            .get_untracked()
            .and_then(|canvas| web::canvas_point(&canvas, event))
        else {
            return;
        };
        let pitch = run.shown.with_value(|shown| {
            shown
                .as_ref()
                .map(|shown| f64::from(shown.layout.plot.2) / shown.layout.cols.max(1) as f64)
        });
        let Some(pitch) = pitch.filter(|&pitch| pitch > 0.0) else {
            return;
        };
        let (cols, rows) = (
            ((start.from.0 - x) / pitch).round() as isize,
            ((start.from.1 - y) / pitch).round() as isize,
        );
        if rows == 0 && cols == 0 {
            return;
        }
        drag.set_value(Some(Drag {
            moved: true,
            ..start
        }));
        let n = shown_tokens(run);
        let moved = start.window.pan(n, rows, cols);
        if view.zoom.get_untracked() != Some(moved) && start.window.is_zoomed(n) {
            view.zoom.set(Some(moved));
        }
    };
    let on_key = move |event: leptos::ev::KeyboardEvent| {
        let n = shown_tokens(run);
        let window = view
            .zoom
            .get_untracked()
            .map_or(Window::full(n), |zoom| zoom.fit(n));
        let step = (window.span / 8).max(1) as isize;
        let next = match event.key().as_str() {
            "+" | "=" => return zoom_by(explorer, None, ZOOM_STEP),
            "-" | "_" => return zoom_by(explorer, None, 1.0 / ZOOM_STEP),
            "0" => Window::full(n),
            "ArrowUp" => window.pan(n, -step, 0),
            "ArrowDown" => window.pan(n, step, 0),
            "ArrowLeft" => window.pan(n, 0, -step),
            "ArrowRight" => window.pan(n, 0, step),
            _ => return,
        };
        event.prevent_default();
        view.zoom.set(next.is_zoomed(n).then_some(next));
    };
    let strongest_keys = move || {
        let keys: Vec<String> = run.strongest.get().iter().map(usize::to_string).collect();
        keys.join(" ")
    };
    let summary = move || {
        let Some(result) = run.result.get() else {
            return String::new();
        };
        let tokens: Vec<String> = result
            .tokens
            .tokens
            .iter()
            .map(|token| token.display.clone())
            .collect();
        strongest_summary(&run.strongest.get(), &tokens)
    };
    view! {
        <section class="view" hidden=move || view.view.get() != ViewKind::Heatmap>
            <div class="heatmap-frame">
                <canvas id="heatmap" node_ref=canvases.heatmap width="760" height="700" tabindex="0"
                    aria-label="Attention heatmap: rows are queries, columns are keys. Wheel or + and − zoom, drag or the arrow keys pan, 0 shows it all."
                    on:mousemove=move |event| { on_drag(&event); on_move(event) } on:click=on_click
                    on:mousedown=on_down on:wheel=on_wheel on:keydown=on_key
                    on:mouseleave=move |_| run.hover.set(None)></canvas>
                <canvas id="minimap" node_ref=canvases.minimap width="132" height="132"
                    aria-label="The whole map, with the zoomed window outlined"
                    hidden=move || view.zoom.get().is_none()></canvas>
            </div>
            <p class="controls zoom-controls">
                <button id="zoom-in" type="button" on:click=move |_| zoom_by(explorer, None, ZOOM_STEP)>"Zoom in"</button>
                <button id="zoom-out" type="button" on:click=move |_| zoom_by(explorer, None, 1.0 / ZOOM_STEP)>"Zoom out"</button>
                <button id="zoom-reset" type="button" disabled=move || view.zoom.get().is_none()
                    on:click=move |_| view.zoom.set(None)>"Whole map"</button>
            </p>
            <p id="tooltip" class="tooltip" aria-live="polite">
                {move || run.hover.get().unwrap_or_else(|| "Hover a cell to read its weight.".to_string())}
            </p>
            <p id="heatmap-summary" class="summary" data-keys=strongest_keys>{summary}</p>
        </section>
    }
}

/// How much one wheel notch or key press zooms in.
const ZOOM_STEP: f64 = 0.5;

/// Where a drag on the heatmap started, and the window then.
#[derive(Clone, Copy)]
struct Drag {
    from: (f64, f64),
    window: Window,
    moved: bool,
}

/// Tokens a side of the map the heatmap shows (0 before its first draw).
fn shown_tokens(run: super::state::RunState) -> usize {
    run.shown
        .with_value(|shown| shown.as_ref().map_or(0, |shown| shown.matrix.rows))
}

/// Zooms the heatmap by `factor` around `at` (the window's centre when `None`).
fn zoom_by(explorer: Explorer, at: Option<(usize, usize)>, factor: f64) {
    let (view, run) = (explorer.view, explorer.run);
    let n = shown_tokens(run);
    if n == 0 {
        return;
    }
    let window = view
        .zoom
        .get_untracked()
        .map_or(Window::full(n), |zoom| zoom.fit(n));
    let centre = (window.row + window.span / 2, window.col + window.span / 2);
    let next = window.zoom(n, at.unwrap_or(centre), factor);
    let next = next.is_zoomed(n).then_some(next);
    if view.zoom.get_untracked() != next {
        view.zoom.set(next);
    }
}

/// The flow diagram: query → key arrows above the threshold.
#[component]
pub fn FlowSection(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let view = explorer.view;
    view! {
        <section class="view" hidden=move || view.view.get() != ViewKind::Flow>
            <label class="controls">"Arrows per query, at most: "
                <input id="flow-k" type="number" min="1" max="64" step="1"
                    prop:value=move || view.flow_k.get().to_string()
                    on:change=move |event| {
                        if let Ok(k) = event_target_value(&event).parse::<usize>() {
                            view.flow_k.set(k.clamp(1, 64));
                        }
                    } />
            </label>
            <canvas id="flow" node_ref=canvases.flow width="760" height="700"
                aria-label="Attention flow from query tokens to key tokens"></canvas>
        </section>
    }
}

/// Every head of the layer, and how alike the heads are.
#[component]
pub fn HeadsSection(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let view = explorer.view;
    view! {
        <section class="view heads" hidden=move || view.view.get() != ViewKind::Heads>
            <canvas id="head-grid" node_ref=canvases.grid width="760" height="440"
                aria-label="Every head of the layer"></canvas>
            <canvas id="similarity" node_ref=canvases.similarity width="520" height="480"
                aria-label="Head-to-head similarity"></canvas>
            <p class="controls">"Similarity matrix: "
                {image_buttons("similarity", canvases.similarity, "glassbox-head-similarity", explorer.page.export_status)}
            </p>
        </section>
    }
}

/// Every head of every layer at once, and each head's entropy; a click opens that head in the
/// heatmap.
#[component]
pub fn ModelSection(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let (view, run) = (explorer.view, explorer.run);
    let hover = RwSignal::new(None::<String>);
    // The (layer, head) under the pointer in either canvas.
    let head_under = move |event: &leptos::ev::MouseEvent, entropy: bool| {
        let node = if entropy {
            canvases.entropy
        } else {
            canvases.model
        };
        let canvas = node.get_untracked()?;
        let (x, y) = web::canvas_point(&canvas, event)?;
        let shown = run.model_shown.get_value()?;
        if entropy {
            shown.entropy.cell_at(x as i32, y as i32)
        } else {
            shown.grid.cell_at(x as i32, y as i32)
        }
    };
    let describe = move |(layer, head): (usize, usize)| {
        let result = run.result.get_untracked()?;
        let all = summaries(&result);
        let summary = all.iter().find(|s| s.layer == layer && s.head == head)?;
        Some(format!(
            "layer {layer}, head {head}: entropy {:.3} nats, normalised {:.3}; most attended token #{} ({:.0}% of the weight). Click to open it.",
            summary.entropy,
            summary.normalised_entropy,
            summary.top_key.0,
            100.0 * summary.top_key.1
        ))
    };
    let on_move = move |entropy: bool| {
        move |event: leptos::ev::MouseEvent| {
            hover.set(head_under(&event, entropy).and_then(describe));
        }
    };
    let on_click = move |entropy: bool| {
        move |event: leptos::ev::MouseEvent| {
            if let Some((layer, head)) = head_under(&event, entropy) {
                view.layer.set(layer);
                view.head.set(HeadChoice::Head(head));
                view.view.set(ViewKind::Heatmap);
            }
        }
    };
    view! {
        <section class="view model-view" hidden=move || view.view.get() != ViewKind::Model>
            <canvas id="model-view" node_ref=canvases.model width="760" height="700"
                aria-label="Every head of every layer: rows are layers, columns are heads"
                on:mousemove=on_move(false) on:click=on_click(false)
                on:mouseleave=move |_| hover.set(None)></canvas>
            <canvas id="entropy" node_ref=canvases.entropy width="520" height="480"
                aria-label="Normalised attention entropy of every head"
                on:mousemove=on_move(true) on:click=on_click(true)
                on:mouseleave=move |_| hover.set(None)></canvas>
            <p id="model-tooltip" class="tooltip" aria-live="polite">
                {move || hover.get().unwrap_or_else(|| "Hover a head to read its entropy; click it to open it in the heatmap.".to_string())}
            </p>
        </section>
    }
}
