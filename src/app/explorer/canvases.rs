//! The explorer's three views on their canvases: drawing them when the run or a setting
//! changes, and the heatmap's hover and click.

use leptos::prelude::*;

use crate::analysis::strongest_keys;
use crate::page::explorer::{ViewKind, strongest_summary};

use super::super::views::{draw_flow_view, draw_heads_view, draw_heatmap_view, image_buttons};
use super::super::web;
use super::controller::pin;
use super::export::ViewCanvases;
use super::state::{Explorer, Shown};

/// Redraws the view on show whenever the run, the layer, head, view, threshold or pin changes;
/// nothing here runs the model.
pub fn redraw_on_change(explorer: Explorer, canvases: ViewCanvases) {
    let (view, run) = (explorer.view, explorer.run);
    Effect::new(move |_| {
        let Some(result) = run.result.get() else {
            return;
        };
        let (layer, head, kind, threshold) = (
            view.layer.get(),
            view.head.get(),
            view.view.get(),
            view.threshold.get(),
        );
        let pinned = view.pinned.get();
        let style = web::chart_style();
        let drawn = match kind {
            ViewKind::Heatmap => canvases
                .heatmap
                .get()
                .ok_or_else(|| "the heatmap canvas is missing".to_string())
                .and_then(|canvas| draw_heatmap_view(&canvas, &result, layer, head, pinned, &style))
                .map(|(layout, matrix)| {
                    run.strongest.set(strongest_keys(&matrix));
                    run.shown.set_value(Some(Shown { layout, matrix }));
                }),
            ViewKind::Flow => canvases
                .flow
                .get()
                .ok_or_else(|| "the flow canvas is missing".to_string())
                .and_then(|canvas| {
                    draw_flow_view(&canvas, &result, layer, head, threshold, pinned, &style)
                        .map(|_| ())
                }),
            ViewKind::Heads => match (canvases.grid.get(), canvases.similarity.get()) {
                (Some(grid), Some(similarity)) => {
                    draw_heads_view(&grid, &similarity, &result, layer, pinned, &style)
                }
                _ => Err("the head canvases are missing".to_string()),
            },
        };
        match drawn {
            Ok(()) => {
                if run.draw_error.with_untracked(Option::is_some) {
                    run.draw_error.set(None);
                }
                run.draws.update(|count| *count += 1);
            }
            Err(failure) => run
                .draw_error
                .set(Some(format!("Drawing failed: {failure}"))),
        }
    });
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
    let on_click = move |event: leptos::ev::MouseEvent| {
        if let Some((query, _, _)) = cell_under(explorer, canvases, &event) {
            // Clicking the pinned token again lets it go.
            let pinned = view.pinned.get_untracked();
            pin(explorer, (pinned != Some(query)).then_some(query));
        }
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
            <canvas id="heatmap" node_ref=canvases.heatmap width="760" height="700"
                aria-label="Attention heatmap: rows are queries, columns are keys"
                on:mousemove=on_move on:click=on_click
                on:mouseleave=move |_| run.hover.set(None)></canvas>
            <p id="tooltip" class="tooltip" aria-live="polite">
                {move || run.hover.get().unwrap_or_else(|| "Hover a cell to read its weight.".to_string())}
            </p>
            <p id="heatmap-summary" class="summary" data-keys=strongest_keys>{summary}</p>
        </section>
    }
}

/// The flow diagram: query → key arrows above the threshold.
#[component]
pub fn FlowSection(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let view = explorer.view;
    view! {
        <section class="view" hidden=move || view.view.get() != ViewKind::Flow>
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
