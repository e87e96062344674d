//! In-page benchmark (`?bench=1`): forward + capture time, a 512×512 heatmap redraw and its SVG
//! export, and a 512-token trace file written and read, measured on the device the page runs
//! on; `scripts/bench` reads the JSON (`page::bench::BenchReport`).

use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

use crate::analysis::diagnostics::Timing;
use crate::charts::Style;
use crate::model::{BUNDLED_CORPUS, ModelError, run_traced, split_words};
use crate::page::bench::BenchReport;

use super::session::LoadedModel;
use super::views::{HeadChoice, canvas_svg, draw_heatmap_view};
use super::web;
use crate::analysis::Matrix;
use crate::model::BackendInfo;
use crate::model::TraceFile;
use crate::page::slices::SliceKey;

const WARM_UP_RUNS: usize = 3;
const TIMED_RUNS: usize = 20;
const REDRAWS: usize = 10;

fn median(values: &[f64]) -> f64 {
    Timing::of(values).map_or(f64::NAN, |timing| timing.median_ms)
}

/// Runs the benchmark on the `seed` preset and returns its result as a JSON object.
pub async fn run(backend: &BackendInfo) -> Result<String, String> {
    let session = LoadedModel::seed_preset(backend)?;
    let device = &backend.device;
    // Batch 2 × 10 tokens of the bundled corpus, as in the seed chapter's demo input shape.
    let corpus = session.tokenizer.tokenize(BUNDLED_CORPUS).ids();
    let batch: Vec<Vec<u32>> = vec![corpus[..10].to_vec(), corpus[10..20].to_vec()];
    let mut forward_ms = Vec::with_capacity(TIMED_RUNS);
    for run in 0..WARM_UP_RUNS + TIMED_RUNS {
        let started = web::now_ms();
        run_traced(&session.model, &batch, device)
            .await
            .map_err(|e: ModelError| e.to_string())?;
        if run >= WARM_UP_RUNS {
            forward_ms.push(web::now_ms() - started);
        }
        web::next_frame().await;
    }

    // A real 512-token run supplies the 512×512 map that is redrawn.
    let long_text = split_words(BUNDLED_CORPUS).join(" ");
    let started = web::now_ms();
    let long = session
        .run(&long_text, None, backend)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the corpus has no tokens")?;
    let forward_512_ms = web::now_ms() - started;
    let key = SliceKey::Map {
        layer: 0,
        head: HeadChoice::Mean,
    };
    long.trace.load(&[key]).await?;
    let matrix = long
        .trace
        .get(key)
        .and_then(|slice| slice.map().cloned())
        .ok_or("the run has no layer 0")?;
    let (redraw_ms, canvas) = time_redraws(&matrix, &long.tokens.labels())?;
    let whole = long.trace.whole(|_, _| {}).await?;

    // The SVG export of that heatmap, and the 512-token run as a trace file written and read.
    let started = web::now_ms();
    let svg = canvas_svg(&canvas)?;
    let svg_ms = web::now_ms() - started;
    let file = TraceFile::new("seed", "", &long_text, &long.tokens, &whole);
    let started = web::now_ms();
    let trace = file.to_json();
    let trace_write_ms = web::now_ms() - started;
    let started = web::now_ms();
    TraceFile::parse(trace.as_bytes()).map_err(|e| e.to_string())?;
    let trace_read_ms = web::now_ms() - started;
    let started = web::now_ms();
    let binary = file.to_safetensors().map_err(|e| e.to_string())?;
    let binary_write_ms = web::now_ms() - started;
    let started = web::now_ms();
    TraceFile::parse(&binary).map_err(|e| e.to_string())?;
    let binary_read_ms = web::now_ms() - started;

    let report = BenchReport {
        backend: backend.label.clone(),
        batch: batch.len(),
        tokens: batch.first().map_or(0, Vec::len),
        forward_ms_median: median(&forward_ms),
        forward_ms_all: forward_ms,
        forward_512_ms,
        redraw_ms_median: median(&redraw_ms),
        redraw_ms_all: redraw_ms,
        svg_ms,
        svg_kb: svg.len() as f64 / 1024.0,
        trace_write_ms,
        trace_read_ms,
        trace_kb: trace.len() as f64 / 1024.0,
        binary_write_ms,
        binary_read_ms,
        binary_kb: binary.len() as f64 / 1024.0,
    };
    report.to_json().map_err(|error| error.to_string())
}

/// Redraws the heatmap of `run` [`REDRAWS`] times on a canvas of the page's size; returns the
/// times and the canvas (its drawing is kept for the SVG export).
fn time_redraws(
    matrix: &Matrix,
    labels: &[String],
) -> Result<(Vec<f64>, HtmlCanvasElement), String> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?;
    let canvas: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(|e| format!("{e:?}"))?
        .dyn_into()
        .map_err(|_| "not a canvas")?;
    canvas.set_width(760);
    canvas.set_height(700);
    canvas.set_id("bench-heatmap");
    let style = Style::light();
    let mut times = Vec::with_capacity(REDRAWS);
    for _ in 0..REDRAWS {
        let started = web::now_ms();
        draw_heatmap_view(&canvas, matrix, labels, (0, HeadChoice::Mean), None, &style)?;
        times.push(web::now_ms() - started);
    }
    Ok((times, canvas))
}
