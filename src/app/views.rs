//! Draws the attention views of one run onto the page's canvases.

use std::cell::RefCell;
use std::collections::HashMap;

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, IntoDrawingArea};
use web_sys::HtmlCanvasElement;

use std::sync::Arc;

use crate::analysis::{Matrix, flow_top_edges};
use crate::charts::{
    ChartError, DisplayList, FlowData, HeadGridData, HeatmapData, HeatmapLayout, ModelViewData,
    ModelViewLayout, Recording, SimilarityData, Style, draw_flow, draw_head_grid, draw_heatmap,
    draw_minimap, draw_model_view, draw_similarity,
};
use crate::model::AttentionCapture;
use crate::page::explorer::Window;
use crate::page::slices::thumbnail_maps;
use crate::structure::{HeadSummary, thumbnail_bins};

use super::web::canvas::CanvasDrawing;

pub use crate::page::explorer::{HeadChoice, selected_matrix};

/// The area every chart of the page draws on: the canvas, with each call recorded.
pub type PageArea = DrawingArea<Recording<CanvasDrawing>, Shift>;

thread_local! {
    /// What each canvas (by id) shows, as the calls that drew it: replayed for SVG export.
    static DRAWN: RefCell<HashMap<String, DisplayList>> = RefCell::new(HashMap::new());
}

/// Runs `draw` on a plotters area over `canvas` and presents it; remembers what it drew, for
/// [`canvas_svg`].
pub fn with_area<T>(
    canvas: &HtmlCanvasElement,
    draw: impl FnOnce(&PageArea) -> Result<T, ChartError>,
) -> Result<T, String> {
    super::web::canvas::fit_to_pixel_ratio(canvas);
    let backend = CanvasDrawing::new(canvas).ok_or("the canvas has no 2D context")?;
    let (recording, list) = Recording::new(backend);
    let area = recording.into_drawing_area();
    // Each chart clears its area with the style's background itself.
    let out = draw(&area).map_err(|e| e.to_string())?;
    area.present().map_err(|e| e.to_string())?;
    drop(area);
    let id = canvas.id();
    if !id.is_empty() {
        let list = std::mem::take(&mut *list.borrow_mut());
        DRAWN.with(|drawn| drawn.borrow_mut().insert(id, list));
    }
    Ok(out)
}

/// The chart on `canvas` as an SVG document: the calls that drew it, replayed on plotters'
/// SVG backend.
pub fn canvas_svg(canvas: &HtmlCanvasElement) -> Result<String, String> {
    DRAWN.with(|drawn| {
        drawn
            .borrow()
            .get(&canvas.id())
            .filter(|list| !list.is_empty())
            .map(DisplayList::to_svg)
            .ok_or_else(|| "the chart is not drawn yet".to_string())
    })
}

/// Downloads `canvas` as `{base}.png` (its pixels) or `{base}.svg` (its drawing, as vectors).
pub fn save_canvas(canvas: &HtmlCanvasElement, base: &str, kind: &str) -> Result<(), String> {
    if kind == "svg" {
        let svg = canvas_svg(canvas)?;
        super::web::files::download(&format!("{base}.svg"), svg.as_bytes())
    } else {
        let url = canvas.to_data_url().map_err(|error| format!("{error:?}"))?;
        super::web::files::download_url(&format!("{base}.png"), &url)
    }
}

/// Draws the heatmap of `matrix` (layer `layer`, `head`); returns its layout, for hover
/// look-ups.
pub fn draw_heatmap_view(
    canvas: &HtmlCanvasElement,
    matrix: &Matrix,
    labels: &[String],
    (layer, head): (usize, HeadChoice),
    pinned: Option<usize>,
    style: &Style,
) -> Result<HeatmapLayout, String> {
    draw_heatmap_window(
        canvas,
        matrix,
        labels,
        (layer, head),
        Window::full(matrix.rows),
        pinned,
        style,
    )
}

/// [`draw_heatmap_view`] of the part of `matrix` that `window` shows (the whole map when it is
/// not zoomed), labelled with its own tokens. The colour scale is the whole map's, so that a
/// cell keeps its colour when zooming.
pub fn draw_heatmap_window(
    canvas: &HtmlCanvasElement,
    matrix: &Matrix,
    labels: &[String],
    (layer, head): (usize, HeadChoice),
    window: Window,
    pinned: Option<usize>,
    style: &Style,
) -> Result<HeatmapLayout, String> {
    let n = matrix.rows;
    let zoomed = window.is_zoomed(n) && matrix.cols == n;
    let cut;
    let (shown, rows, cols, title) = if zoomed {
        cut = window.cut(&matrix.values, n);
        let end = |start: usize| (start + window.span).min(labels.len());
        (
            &cut,
            &labels[window.row.min(labels.len())..end(window.row)],
            &labels[window.col.min(labels.len())..end(window.col)],
            format!(
                "Layer {layer} · {} · queries {}–{}, keys {}–{} of {n}",
                head.describe(),
                window.row,
                window.row + window.span - 1,
                window.col,
                window.col + window.span - 1
            ),
        )
    } else {
        (
            matrix,
            labels,
            labels,
            format!("Layer {layer} · {}", head.describe()),
        )
    };
    let layout = with_area(canvas, |area| {
        draw_heatmap(
            area,
            &HeatmapData {
                matrix: shown,
                row_labels: rows,
                col_labels: cols,
                title: &title,
                vmax: matrix.max(),
                pinned,
                offset: if zoomed {
                    (window.row, window.col)
                } else {
                    (0, 0)
                },
            },
            style,
        )
    })?;
    mark_cells(canvas, &layout);
    let _ = canvas.set_attribute(
        "data-window",
        &format!("{} {} {}", window.row, window.col, window.span),
    );
    Ok(layout)
}

/// The minimap of a zoomed heatmap: the whole map, shrunk, with the window outlined.
pub fn draw_minimap_view(
    canvas: &HtmlCanvasElement,
    matrix: &Matrix,
    window: Window,
    style: &Style,
) -> Result<(), String> {
    let n = matrix.rows;
    let capture = AttentionCapture {
        layer: 0,
        batch: 1,
        heads: 1,
        queries: n,
        keys: matrix.cols,
        values: matrix.values.clone(),
    };
    let small = crate::analysis::thumbnails(&capture, 0, MINIMAP_CELLS)
        .and_then(|t| Matrix::new(t.queries, t.keys, t.values))
        .ok_or("no map to shrink")?;
    let share = |at: usize| at as f64 / n.max(1) as f64;
    with_area(canvas, |area| {
        draw_minimap(
            area,
            &small,
            (share(window.row), share(window.col), share(window.span)),
            style,
        )
    })
}

/// Cells a side of the minimap.
const MINIMAP_CELLS: usize = 128;

/// Names where a heatmap's cells are, in the canvas' own pixels (not CSS pixels): the browser
/// tests sample each cell's colour there.
fn mark_cells(canvas: &HtmlCanvasElement, layout: &HeatmapLayout) {
    let (x, y, width, height) = layout.plot;
    let _ = canvas.set_attribute("data-plot", &format!("{x} {y} {width} {height}"));
    let _ = canvas.set_attribute("data-cells", &format!("{} {}", layout.rows, layout.cols));
}

/// Draws the flow diagram of `matrix`: each query's `k` strongest keys above `threshold`;
/// returns how many arrows it drew.
pub fn draw_flow_view(
    canvas: &HtmlCanvasElement,
    matrix: &Matrix,
    labels: &[String],
    (layer, head): (usize, HeadChoice),
    (threshold, k): (f32, usize),
    pinned: Option<usize>,
    style: &Style,
) -> Result<usize, String> {
    let edges = flow_top_edges(matrix, threshold, k);
    let title = format!(
        "Layer {layer} · {} · weights ≥ {threshold:.2}, top {k} per query",
        head.describe()
    );
    with_area(canvas, |area| {
        draw_flow(
            area,
            &FlowData {
                edges: &edges,
                query_labels: labels,
                key_labels: labels,
                threshold,
                title: &title,
                pinned,
            },
            style,
        )
    })?;
    let _ = canvas.set_attribute("data-arrows", &edges.len().to_string());
    Ok(edges.len())
}

/// What the head grid draws of one layer: every head's thumbnail, the heads' similarity and
/// each head's entropy.
pub struct HeadsData<'a> {
    /// The layer.
    pub layer: usize,
    /// Every head, shrunk on the device to at most the grid's size.
    pub thumbnails: &'a AttentionCapture,
    /// Head-to-head cosine similarity.
    pub similarity: &'a Matrix,
    /// Mean row entropy per head, in nats.
    pub entropy: &'a [f64],
    /// Tokens in the run (the thumbnails may have fewer cells).
    pub tokens: usize,
}

/// Draws every head of a layer in a grid, and the head-to-head similarity matrix.
pub fn draw_heads_view(
    grid_canvas: &HtmlCanvasElement,
    similarity_canvas: &HtmlCanvasElement,
    data: &HeadsData,
    pinned: Option<usize>,
    style: &Style,
) -> Result<(), String> {
    let maps = thumbnail_maps(data.thumbnails);
    let titles: Vec<String> = (0..maps.len())
        .map(|head| match data.entropy.get(head) {
            Some(h) => format!("head {head} · H {h:.2}"),
            None => format!("head {head}"),
        })
        .collect();
    // A pinned token is outlined in the bin that holds it.
    let pinned = pinned.and_then(|token| {
        thumbnail_bins(data.tokens, data.thumbnails.queries)
            .iter()
            .position(|bin| bin.contains(&token))
    });
    with_area(grid_canvas, |area| {
        draw_head_grid(
            area,
            &HeadGridData {
                maps: &maps,
                titles: &titles,
                vmax: None,
                pinned,
            },
            style,
        )
        .map(|_| ())
    })?;
    let labels: Vec<String> = (0..maps.len()).map(|head| format!("h{head}")).collect();
    let title = format!("Layer {} · head-to-head cosine similarity", data.layer);
    with_area(similarity_canvas, |area| {
        draw_similarity(
            area,
            &SimilarityData {
                matrix: data.similarity,
                labels: &labels,
                title: &title,
            },
            style,
        )
        .map(|_| ())
    })
}

/// Draws every head of every layer (`thumbnails`, one capture per layer) and, beside it, each
/// head's normalised entropy as a layers × heads heatmap; returns both layouts, for clicks.
pub fn draw_model_views(
    grid_canvas: &HtmlCanvasElement,
    entropy_canvas: &HtmlCanvasElement,
    thumbnails: &[Arc<AttentionCapture>],
    summaries: &[HeadSummary],
    selected: (usize, usize),
    style: &Style,
) -> Result<(ModelViewLayout, HeatmapLayout), String> {
    let maps: Vec<Vec<Matrix>> = thumbnails.iter().map(|t| thumbnail_maps(t)).collect();
    let layers = maps.len();
    let heads = maps.iter().map(Vec::len).max().unwrap_or(0);
    let grid = with_area(grid_canvas, |area| {
        draw_model_view(
            area,
            &ModelViewData {
                maps: &maps,
                selected: Some(selected),
                title: "Every head of every layer (each in its own colour scale)",
            },
            style,
        )
    })?;
    let _ = grid_canvas.set_attribute(
        "data-grid",
        &format!(
            "{} {} {} {} {}",
            grid.origin.0, grid.origin.1, grid.side, grid.layers, grid.heads
        ),
    );
    let entropy = entropy_matrix(summaries, layers, heads);
    let rows: Vec<String> = (0..layers).map(|layer| format!("L{layer}")).collect();
    let cols: Vec<String> = (0..heads).map(|head| format!("h{head}")).collect();
    let heat = with_area(entropy_canvas, |area| {
        draw_heatmap(
            area,
            &HeatmapData {
                matrix: &entropy,
                row_labels: &rows,
                col_labels: &cols,
                title: "Normalised entropy: 0 sharp · 1 uniform",
                vmax: Some(1.0),
                pinned: None,
                offset: (0, 0),
            },
            style,
        )
    })?;
    mark_cells(entropy_canvas, &heat);
    Ok((grid, heat))
}

/// Each head's normalised entropy as a layers × heads matrix (0 where a head was not measured).
pub fn entropy_matrix(summaries: &[HeadSummary], layers: usize, heads: usize) -> Matrix {
    let mut matrix = Matrix::zeros(layers, heads);
    for summary in summaries {
        if summary.layer < layers && summary.head < heads {
            matrix.values[summary.layer * heads + summary.head] = summary.normalised_entropy as f32;
        }
    }
    matrix
}

/// Two buttons, `{id}-png` and `{id}-svg`, that download `canvas` as `{base}.png` and
/// `{base}.svg`; failures go to `message`.
pub fn image_buttons(
    id: &'static str,
    canvas: leptos::prelude::NodeRef<leptos::html::Canvas>,
    base: &'static str,
    message: leptos::prelude::RwSignal<Option<String>>,
) -> impl leptos::prelude::IntoView {
    use leptos::prelude::*;
    let save = move |kind: &'static str| {
        let outcome = canvas
            .get_untracked()
            .ok_or_else(|| "the chart is not drawn".to_string())
            .and_then(|canvas| save_canvas(&canvas, base, kind));
        if let Err(failure) = outcome {
            message.set(Some(format!("Saving the image failed: {failure}")));
        }
    };
    view! {
        <span class="image-buttons no-print">
            <button id=format!("{id}-png") type="button" class="png"
                title="Download this chart as a PNG image" on:click=move |_| save("png")>"PNG"</button>
            <button id=format!("{id}-svg") type="button" class="png"
                title="Download this chart as an SVG drawing" on:click=move |_| save("svg")>"SVG"</button>
        </span>
    }
}

/// The panel of the open tab that the address names (`panel=…`), shared with every tab.
#[derive(Clone, Copy)]
pub struct PanelLink(pub leptos::prelude::RwSignal<Option<String>>);

/// A panel's heading, `h2` when `major` else `h3`, with id `panel-{name}` and a "#" button that
/// puts the panel in the address, so that a link opens the tab scrolled to it.
pub fn panel_heading(
    name: &'static str,
    title: &'static str,
    major: bool,
) -> impl leptos::prelude::IntoView {
    use leptos::either::Either;
    use leptos::prelude::*;
    let link = use_context::<PanelLink>();
    let button = move || {
        view! {
            <button type="button" class="panel-link no-print" id=format!("link-{name}")
                aria-label=format!("Link to the {title} panel: put it in the address")
                title="Link to this panel"
                on:click=move |_| {
                    if let Some(PanelLink(panel)) = link {
                        panel.set(Some(name.to_string()));
                    }
                }>"#"</button>
        }
    };
    let id = format!("panel-{name}");
    if major {
        Either::Left(view! { <h2 id=id>{title}" "{button()}</h2> })
    } else {
        Either::Right(view! { <h3 id=id>{title}" "{button()}</h3> })
    }
}
