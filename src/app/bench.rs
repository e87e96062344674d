//! In-page benchmark (`?bench=1`): forward + capture time and a 512×512 heatmap redraw,
//! measured on the device the page runs on; `scripts/bench` reads the printed JSON.

use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

use crate::analysis::diagnostics::Timing;
use crate::charts::Style;
use crate::model::{BUNDLED_CORPUS, ModelError, run_traced, split_words};

use super::session::{LoadedModel, RunResult};
use super::views::{HeadChoice, draw_heatmap_view};
use super::web;
use crate::model::BackendInfo;

const WARM_UP_RUNS: usize = 3;
const TIMED_RUNS: usize = 20;
const REDRAWS: usize = 10;

fn median(values: &[f64]) -> f64 {
    Timing::of(values).map_or(f64::NAN, |timing| timing.median_ms)
}

fn json_list(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
    format!("[{}]", items.join(","))
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
        .run(&long_text, backend)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the corpus has no tokens")?;
    let forward_512_ms = web::now_ms() - started;
    let redraw_ms = time_redraws(&long)?;

    Ok(format!(
        "{{\"backend\":{:?},\"batch\":2,\"tokens\":10,\"forward_ms_median\":{:.3},\"forward_ms_all\":{},\
         \"forward_512_tokens_ms\":{:.3},\"heatmap_512_redraw_ms_median\":{:.3},\"heatmap_512_redraw_ms_all\":{}}}",
        backend.label,
        median(&forward_ms),
        json_list(&forward_ms),
        forward_512_ms,
        median(&redraw_ms),
        json_list(&redraw_ms),
    ))
}

fn time_redraws(run: &RunResult) -> Result<Vec<f64>, String> {
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
    let style = Style::light();
    let mut times = Vec::with_capacity(REDRAWS);
    for _ in 0..REDRAWS {
        let started = web::now_ms();
        draw_heatmap_view(&canvas, run, 0, HeadChoice::Mean, None, &style)?;
        times.push(web::now_ms() - started);
    }
    Ok(times)
}
