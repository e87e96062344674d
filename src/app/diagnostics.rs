//! The model diagnostics tab: structure and freezing, parameter statistics, FLOPs, memory, an
//! in-page speed benchmark and a report to export, all for the model the explorer shows.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::ModuleActivation;
use crate::analysis::diagnostics::{
    FLOP_CONVENTION, LeafRow, MemoryReport, OpClass, OptimizerState, SortKey, TensorStats, Timing,
    activation_bytes, attention_overtakes, flops_over_lengths, format_bytes, format_si,
    forward_flops, leaf_table, measured_trace_bytes, overall_stats, project_activation_bytes,
    sort_rows, tensor_stats,
};
use crate::charts::activations::draw_activation_grid;
use crate::charts::diagnostics::draw_flops_over_length;
use crate::model::checkpoint::read_parameters;
use crate::model::{BackendInfo, TransformerConfig};
use crate::train::is_under;
use crate::train::speed::SpeedProbe;

use super::session::{LoadedModel, RunResult};
use super::views::{image_buttons, panel_heading, with_area};
use super::web;

/// Warm-up runs before timing, and timed runs, per benchmark.
const WARM_UP: usize = 10;
const TIMED: usize = 100;
/// Batch sizes and sequence lengths of the activation-memory projection.
const PROJECT_BATCHES: [usize; 4] = [1, 8, 32, 64];
const PROJECT_SEQS: [usize; 4] = [16, 64, 128, 512];

/// Parameter statistics of the model shown, read back once per model.
#[derive(Clone)]
struct Parameters {
    version: u32,
    overall: Arc<TensorStats>,
    tensors: Arc<Vec<TensorStats>>,
}

/// One benchmark result row.
#[derive(Clone, Debug)]
struct SpeedRow {
    backend: String,
    pass: &'static str,
    timing: Timing,
    batch: usize,
}

/// The diagnostics tab.
#[component]
pub fn DiagnosticsPanel(
    backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    loaded: StoredValue<Option<LoadedModel>, LocalStorage>,
    /// Bumped whenever another model is installed.
    model_version: RwSignal<u32>,
    /// The explorer's last run (input tokens and trace).
    result: Signal<Option<Arc<RunResult>>>,
    /// The explorer's text, for the benchmark batch.
    text: RwSignal<String>,
    /// Module paths to keep fixed in training.
    frozen: RwSignal<Vec<String>>,
    /// Whether the tab is shown; hidden charts are not redrawn.
    visible: Signal<bool>,
    /// Opens a layer in the attention views.
    open_layer: Callback<usize>,
) -> impl IntoView {
    let message = RwSignal::new(None::<String>);
    let sort = RwSignal::new((SortKey::Count, true));
    let selected = RwSignal::new(None::<usize>);
    let parameters = RwSignal::new(None::<Parameters>);
    let bench_rows = RwSignal::new(Vec::<SpeedRow>::new());
    let bench_progress = RwSignal::new(None::<(usize, usize)>);
    let bench_cancel = StoredValue::new(false);
    let histogram_ref = NodeRef::<html::Canvas>::new();
    let flops_ref = NodeRef::<html::Canvas>::new();

    let config = move || {
        model_version.track();
        loaded.with_value(|model| model.as_ref().map(|model| model.config.clone()))
    };
    // Every parameter's path and shape, collected once per model.
    let paths = Memo::new(move |_| {
        model_version.track();
        loaded.with_value(|model| {
            model.as_ref().map_or_else(Vec::new, |model| {
                crate::model::checkpoint::FlatParameters::of(&model.model).paths
            })
        })
    });
    let seq_len = move || result.get().map_or(0, |run| run.tokens.ids().len());

    // Parameter statistics: read the weights back once per model, when the tab is open.
    Effect::new(move |_| {
        let version = model_version.get();
        if !visible.get()
            || parameters.with_untracked(|p| p.as_ref().is_some_and(|p| p.version == version))
        {
            return;
        }
        let Some(model) = loaded.with_value(|model| model.as_ref().map(|m| m.model.clone())) else {
            return;
        };
        web::spawn(async move {
            match read_parameters(&model).await {
                Ok(values) => {
                    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = values
                        .into_iter()
                        .map(|(path, data)| (path, data.shape, data.values))
                        .collect();
                    let stats: Vec<TensorStats> = tensors
                        .iter()
                        .map(|(path, shape, values)| tensor_stats(path, shape, values))
                        .collect();
                    parameters.set(Some(Parameters {
                        version,
                        overall: Arc::new(overall_stats(&tensors)),
                        tensors: Arc::new(stats),
                    }));
                }
                Err(error) => message.set(Some(format!("Reading the weights failed: {error}"))),
            }
        });
    });

    // The histogram of all weights and of the selected tensor.
    Effect::new(move |_| {
        let (stats, chosen) = (parameters.get(), selected.get());
        if !visible.get() {
            return;
        }
        let (Some(canvas), Some(stats)) = (histogram_ref.get(), stats) else {
            return;
        };
        let cell = |stats: &TensorStats| ModuleActivation {
            site: None,
            path: stats.path.clone(),
            shape: stats.shape.clone(),
            mean: stats.summary.mean,
            std: stats.summary.std,
            zero_fraction: stats.sparsity,
            histogram: stats.histogram.clone(),
        };
        let mut cells = vec![cell(&stats.overall)];
        if let Some(tensor) = chosen.and_then(|index| stats.tensors.get(index)) {
            cells.push(cell(tensor));
        }
        let style = web::chart_style();
        if let Err(failure) = with_area(&canvas, |area| {
            draw_activation_grid(area, &cells, 1.0, &style)
        }) {
            message.set(Some(format!(
                "Drawing the weight histogram failed: {failure}"
            )));
        }
    });

    // FLOPs against sequence length.
    Effect::new(move |_| {
        let config = config();
        if !visible.get() {
            return;
        }
        let (Some(canvas), Some(config)) = (flops_ref.get(), config) else {
            return;
        };
        let points = flops_over_lengths(&config, 1, config.max_seq_len);
        let overtakes = attention_overtakes(&config, 1);
        let style = web::chart_style();
        if let Err(failure) = with_area(&canvas, |area| {
            draw_flops_over_length(area, &points, overtakes, config.max_seq_len, &style)
        }) {
            message.set(Some(format!("Drawing the FLOPs chart failed: {failure}")));
        }
    });

    let leaf_rows = move || {
        let mut rows: Vec<LeafRow> = leaf_table(&paths.get());
        let (key, descending) = sort.get();
        sort_rows(&mut rows, key, descending);
        rows
    };
    let is_frozen =
        move |path: &str, frozen: &[String]| frozen.iter().any(|prefix| is_under(path, prefix));
    let counts = move || {
        let frozen = frozen.get();
        let rows = leaf_table(&paths.get());
        let total: usize = rows.iter().map(|row| row.count).sum();
        let fixed: usize = rows
            .iter()
            .filter(|row| is_frozen(&row.path, &frozen))
            .map(|row| row.count)
            .sum();
        (total, total - fixed, fixed)
    };
    let toggle = move |module: String, on: bool| {
        frozen.update(|frozen| {
            frozen.retain(|path| *path != module);
            if on {
                frozen.push(module);
                frozen.sort();
            }
        });
    };
    let module_count = move |prefix: &str| -> usize {
        leaf_table(&paths.get())
            .iter()
            .filter(|row| is_under(&row.path, prefix))
            .map(|row| row.count)
            .sum()
    };
    let architecture = move || {
        let Some(config) = config() else {
            return Vec::new();
        };
        let seq = seq_len().max(1);
        let d = config.d_model;
        let mut blocks = vec![(
            "embedding".to_string(),
            format!("token embedding [1, {seq}] → [1, {seq}, {d}]"),
            None::<usize>,
        )];
        if config.positional == crate::model::Positional::Learned {
            blocks.push((
                "position_embedding".into(),
                format!("learned positions [1, {seq}] → [1, {seq}, {d}]"),
                None,
            ));
        }
        for layer in 0..config.num_layers {
            blocks.push((
                format!("layers.{layer}"),
                format!(
                    "encoder layer {layer}: {} heads, feed-forward {} — [1, {seq}, {d}] → [1, {seq}, {d}]",
                    config.num_heads, config.d_ff
                ),
                Some(layer),
            ));
        }
        blocks.push((
            "output".into(),
            format!(
                "output head [1, {seq}, {d}] → [1, {seq}, {}]",
                config.vocab_size
            ),
            None,
        ));
        blocks
    };
    let flops = move || config().map(|config| forward_flops(&config, 1, seq_len().max(1)));
    let memory = move || {
        let config = config()?;
        let run = result.get();
        let measured = run.as_ref().map(|run| measured_trace_bytes(&run.trace));
        let (total, _, _) = counts();
        Some((
            MemoryReport::new(total, 4, measured.unwrap_or(0)),
            measured,
            activation_bytes(&config, 1, seq_len().max(1)),
            config,
        ))
    };

    let run_bench = move |_| {
        if bench_progress.get_untracked().is_some() {
            return;
        }
        let prepared = loaded.with_value(|model| {
            let model = model.as_ref().ok_or("no model is loaded yet")?;
            let (batch, _) = model.analysis_batch(&text.get_untracked())?;
            Ok::<_, String>((model.model.clone(), batch))
        });
        let (model, batch) = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => {
                message.set(Some(failure));
                return;
            }
        };
        let Some(info) = backend.get_value() else {
            return;
        };
        // The page's device, and the CPU beside it when the page runs on WebGPU.
        let mut devices = vec![(info.label.clone(), info.device.clone())];
        if info.webgpu {
            devices.push(("CPU (burn-flex)".to_string(), burn::tensor::Device::flex()));
        }
        let total = devices.len() * 2 * (WARM_UP + TIMED);
        bench_cancel.set_value(false);
        bench_rows.set(Vec::new());
        bench_progress.set(Some((0, total)));
        message.set(None);
        web::spawn(async move {
            let mut done = 0;
            'backends: for (label, device) in devices {
                let probe = SpeedProbe::new(&model, &device, batch.clone());
                for pass in ["forward", "forward + backward"] {
                    let mut samples = Vec::with_capacity(TIMED);
                    for run in 0..WARM_UP + TIMED {
                        if bench_cancel.get_value() {
                            break 'backends;
                        }
                        let started = web::now_ms();
                        let outcome = if pass == "forward" {
                            probe.forward().await
                        } else {
                            probe.forward_backward().await
                        };
                        if let Err(error) = outcome {
                            message.set(Some(format!("The benchmark failed: {error}")));
                            break 'backends;
                        }
                        if run >= WARM_UP {
                            samples.push(web::now_ms() - started);
                        }
                        done += 1;
                        bench_progress.set(Some((done, total)));
                        // Let the page answer clicks (Cancel) between runs.
                        web::next_frame().await;
                    }
                    if let Some(timing) = Timing::of(&samples) {
                        bench_rows.update(|rows| {
                            rows.push(SpeedRow {
                                backend: label.clone(),
                                pass,
                                timing,
                                batch: probe.batch_size(),
                            })
                        });
                    }
                }
            }
            if bench_cancel.get_value() {
                message.set(Some(
                    "Benchmark cancelled; the rows above are the passes that finished.".into(),
                ));
            }
            bench_progress.set(None);
        });
    };

    let report_json = move || -> serde_json::Value {
        let config = config();
        let (total, trainable, fixed) = counts();
        let flops = flops();
        let memory = memory();
        let parameters = parameters.get_untracked();
        serde_json::json!({
            "model": loaded.with_value(|m| m.as_ref().map(|m| m.provenance.clone())),
            "config": config.as_ref().map(crate::model::checkpoint::config_json),
            "parameters": {
                "total": total, "trainable": trainable, "frozen": fixed,
                "frozen_modules": frozen.get_untracked(),
                "tensors": leaf_table(&paths.get()).iter().map(|row| serde_json::json!({
                    "path": row.path, "shape": row.shape, "count": row.count, "share": row.share,
                })).collect::<Vec<_>>(),
                "statistics": parameters.as_ref().map(|p| p.tensors.iter().chain(std::iter::once(p.overall.as_ref())).map(|s| serde_json::json!({
                    "path": s.path, "mean": s.summary.mean, "std": s.summary.std,
                    "min": s.summary.min, "max": s.summary.max, "sparsity": s.sparsity,
                })).collect::<Vec<_>>()),
            },
            "flops": flops.as_ref().map(|flops| serde_json::json!({
                "convention": FLOP_CONVENTION,
                "input": {"batch": 1, "seq": seq_len()},
                "total": flops.total(),
                "matmul_total": flops.matmul_total(),
                "by_class": flops.by_class().iter().map(|(class, value)| (class.name().to_string(), serde_json::json!(value))).collect::<serde_json::Map<_, _>>(),
                "per_layer": (0..flops.layers.len()).map(|layer| flops.per_layer_total(layer)).collect::<Vec<_>>(),
            })),
            "memory_bytes": memory.as_ref().map(|(report, measured, computed, _)| serde_json::json!({
                "parameters": report.parameters,
                "gradients": report.gradients,
                "optimizer": report.optimizer.iter().map(|(state, bytes)| (state.name().to_string(), serde_json::json!(bytes))).collect::<serde_json::Map<_, _>>(),
                "activations_measured": measured,
                "activations_from_shapes": computed,
            })),
            "speed": bench_rows.get_untracked().iter().map(|row| serde_json::json!({
                "backend": row.backend, "pass": row.pass, "batch": row.batch, "runs": row.timing.runs,
                "median_ms": row.timing.median_ms, "p95_ms": row.timing.p95_ms,
                "samples_per_s": row.timing.samples_per_s(row.batch),
            })).collect::<Vec<_>>(),
        })
    };
    let export_json = move |_| {
        let text = serde_json::to_string_pretty(&report_json()).unwrap_or_default();
        if let Err(failure) = web::files::download("glassbox-diagnostics.json", text.as_bytes()) {
            message.set(Some(format!("Export failed: {failure}")));
        }
    };
    let print = move |_| {
        if let Some(window) = web_sys::window()
            && let Err(error) = window.print()
        {
            message.set(Some(format!("Printing failed: {error:?}")));
        }
    };

    view! {
        <section id="diagnostics" class="diagnostics"
            data-params=move || counts().0.to_string()
            data-trainable=move || counts().1.to_string()
            data-frozen=move || counts().2.to_string()
            data-flops=move || flops().map_or(0, |f| f.matmul_total()).to_string()
            data-stats=move || parameters.get().map_or(0, |p| p.tensors.len()).to_string()
            data-bench=move || if bench_progress.get().is_some() { "running".to_string() } else { bench_rows.get().len().to_string() }>
            <p id="diagnostics-message" class="error" role="alert" hidden=move || message.get().is_none()>
                {move || message.get()}
            </p>
            <div class="controls no-print">
                <button id="export-diagnostics" type="button" on:click=export_json>"Export report (JSON)"</button>
                <button id="print-diagnostics" type="button" on:click=print>"Printable report"</button>
            </div>
            {panel_heading("structure", "Structure", true)}
            <p id="param-counts">{move || {
                let (total, trainable, fixed) = counts();
                format!("{total} parameters: {trainable} trainable, {fixed} frozen")
            }}</p>
            <ol id="architecture" class="architecture">
                {move || architecture().into_iter().map(|(module, description, layer)| {
                    let count = module_count(&module);
                    let id = format!("freeze-{}", module.replace('.', "-"));
                    let checked_module = module.clone();
                    let toggled_module = module.clone();
                    view! {
                        <li class="arch-block">
                            {match layer {
                                Some(layer) => view! {
                                    <button type="button" class="link" id=format!("arch-layer-{layer}")
                                        title="Open this layer's attention"
                                        on:click=move |_| open_layer.run(layer)>{description.clone()}</button>
                                }.into_any(),
                                None => view! { <span>{description.clone()}</span> }.into_any(),
                            }}
                            <span class="count">{format!(" · {} parameters", format_si(count as f64))}</span>
                            <label class="freeze">
                                <input type="checkbox" id=id
                                    prop:checked=move || frozen.get().contains(&checked_module)
                                    on:change=move |event| toggle(toggled_module.clone(), event_target_checked(&event)) />
                                " freeze"
                            </label>
                        </li>
                    }
                }).collect_view()}
            </ol>
            <table id="leaf-table">
                <caption>"Every parameter tensor"</caption>
                <thead><tr>
                    <th><button type="button" id="sort-path" class="link"
                        on:click=move |_| sort.update(|s| *s = (SortKey::Path, s.0 == SortKey::Path && !s.1))>"path"</button></th>
                    <th>"shape"</th>
                    <th><button type="button" id="sort-count" class="link"
                        on:click=move |_| sort.update(|s| *s = (SortKey::Count, s.0 != SortKey::Count || !s.1))>"count"</button></th>
                    <th>"share"</th>
                </tr></thead>
                <tbody>
                    {move || leaf_rows().into_iter().map(|row| view! {
                        <tr>
                            <td>{row.path}</td>
                            <td>{format!("{:?}", row.shape)}</td>
                            <td>{row.count}</td>
                            <td>{format!("{:.2}%", 100.0 * row.share)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {panel_heading("parameters", "Parameters", true)}
            <p id="param-overall">{move || parameters.get().map(|p| {
                let s = &p.overall;
                format!(
                    "All {} weights: mean {:.4e}, std {:.4e}, min {:.4e}, max {:.4e}; {:.2}% with |w| < 1e-6.",
                    s.count, s.summary.mean, s.summary.std, s.summary.min, s.summary.max, 100.0 * s.sparsity
                )
            })}</p>
            {image_buttons("param-histogram", histogram_ref, "glassbox-weights", message)}
            <canvas id="param-histogram" node_ref=histogram_ref width="1140" height="200"
                aria-label="Histogram of all weights and of the chosen tensor"></canvas>
            <table id="param-stats">
                <caption>"Per tensor (click a row for its histogram)"</caption>
                <thead><tr><th>"path"</th><th>"mean"</th><th>"std"</th><th>"min"</th><th>"max"</th><th>"|w| < 1e-6"</th></tr></thead>
                <tbody>
                    {move || parameters.get().map(|p| p.tensors.iter().enumerate().map(|(index, s)| view! {
                        <tr class:selected=move || selected.get() == Some(index)
                            on:click=move |_| selected.set(Some(index))>
                            <td>{s.path.clone()}</td>
                            <td>{format!("{:.3e}", s.summary.mean)}</td>
                            <td>{format!("{:.3e}", s.summary.std)}</td>
                            <td>{format!("{:.3e}", s.summary.min)}</td>
                            <td>{format!("{:.3e}", s.summary.max)}</td>
                            <td>{format!("{:.2}%", 100.0 * s.sparsity)}</td>
                        </tr>
                    }).collect_view())}
                </tbody>
            </table>
            {panel_heading("compute", "Compute", true)}
            <p class="note">{move || format!(
                "FLOPs of one forward pass on the explorer's input (1 × {} tokens), counted from shapes: {FLOP_CONVENTION}.",
                seq_len()
            )}</p>
            <table id="flops-table">
                <thead><tr>
                    <th>"op class"</th>
                    {move || (0..config().map_or(0, |c| c.num_layers)).map(|layer| view! { <th>{format!("layer {layer}")}</th> }).collect_view()}
                    <th>"outside layers"</th><th>"total"</th>
                </tr></thead>
                <tbody>
                    {move || flops().map(|flops| OpClass::ALL.iter().map(|&class| {
                        let cells: Vec<u64> = flops.layers.iter().map(|layer| layer.get(&class).copied().unwrap_or(0)).collect();
                        let outside = flops.outside.get(&class).copied().unwrap_or(0);
                        view! {
                            <tr>
                                <td>{class.name()}</td>
                                {cells.into_iter().map(|value| view! { <td>{value}</td> }).collect_view()}
                                <td>{outside}</td>
                                <td>{flops.class_total(class)}</td>
                            </tr>
                        }
                    }).collect_view())}
                    {move || flops().map(|flops| view! {
                        <tr class="total">
                            <td>"all"</td>
                            {(0..flops.layers.len()).map(|layer| view! { <td>{flops.per_layer_total(layer)}</td> }).collect_view()}
                            <td>{flops.outside.values().sum::<u64>()}</td>
                            <td>{flops.total()}</td>
                        </tr>
                    })}
                </tbody>
            </table>
            {image_buttons("flops-chart", flops_ref, "glassbox-flops", message)}
            <canvas id="flops-chart" node_ref=flops_ref width="1140" height="320"
                aria-label="FLOPs of attention and of the linear layers against sequence length"></canvas>
            {panel_heading("memory", "Memory", true)}
            <table id="memory-table">
                <tbody>
                    {move || memory().map(|(report, measured, computed, _)| view! {
                        <tr><td>"parameters (f32)"</td><td>{format_bytes(report.parameters)}</td><td>{report.parameters}</td></tr>
                        <tr><td>"gradients"</td><td>{format_bytes(report.gradients)}</td><td>{report.gradients}</td></tr>
                        {OptimizerState::ALL.iter().map(|&state| {
                            let bytes = report.optimizer_bytes(state);
                            view! { <tr><td>{format!("optimizer state: {}", state.name())}</td><td>{format_bytes(bytes)}</td><td>{bytes}</td></tr> }
                        }).collect_view()}
                        <tr><td>"activations of the explorer's input, measured from the trace"</td>
                            <td>{measured.map_or("—".to_string(), format_bytes)}</td><td>{measured.unwrap_or(0)}</td></tr>
                        <tr><td>"the same, computed from shapes"</td><td>{format_bytes(computed)}</td><td>{computed}</td></tr>
                        <tr class="total"><td>"training with AdamW (parameters, gradients, state, activations)"</td>
                            <td>{format_bytes(report.training_total(OptimizerState::AdamW))}</td><td>{report.training_total(OptimizerState::AdamW)}</td></tr>
                    })}
                </tbody>
            </table>
            <table id="memory-projection">
                <caption>"Activations captured by one forward pass, by batch size (rows) and sequence length (columns)"</caption>
                {move || config().map(|config: TransformerConfig| {
                    let seqs: Vec<usize> = PROJECT_SEQS.iter().copied().filter(|&s| s <= config.max_seq_len).collect();
                    let grid = project_activation_bytes(&config, &PROJECT_BATCHES, &seqs);
                    view! {
                        <thead><tr><th>"batch × tokens"</th>{seqs.iter().map(|s| view! { <th>{*s}</th> }).collect_view()}</tr></thead>
                        <tbody>
                            {PROJECT_BATCHES.iter().zip(grid).map(|(batch, row)| view! {
                                <tr><td>{*batch}</td>{row.into_iter().map(|bytes| view! { <td>{format_bytes(bytes)}</td> }).collect_view()}</tr>
                            }).collect_view()}
                        </tbody>
                    }
                })}
            </table>
            {panel_heading("speed", "Speed", true)}
            <div class="controls no-print">
                <button id="bench-start" type="button" on:click=run_bench
                    disabled=move || bench_progress.get().is_some()>"Run the benchmark"</button>
                <button id="bench-cancel" type="button" on:click=move |_| bench_cancel.set_value(true)
                    disabled=move || bench_progress.get().is_none()>"Cancel"</button>
                <progress id="bench-progress" max="1"
                    prop:value=move || bench_progress.get().map_or(0.0, |(done, total)| done as f64 / total.max(1) as f64)></progress>
                <span class="note">{format!("{WARM_UP} warm-up runs, then {TIMED} timed runs of each pass, on the page's backend and the CPU.")}</span>
            </div>
            <table id="bench-table">
                <thead><tr><th>"backend"</th><th>"pass"</th><th>"median ms"</th><th>"p95 ms"</th><th>"sequences/s"</th></tr></thead>
                <tbody>
                    {move || bench_rows.get().into_iter().map(|row| view! {
                        <tr>
                            <td>{row.backend.clone()}</td>
                            <td>{row.pass}</td>
                            <td>{format!("{:.2}", row.timing.median_ms)}</td>
                            <td>{format!("{:.2}", row.timing.p95_ms)}</td>
                            <td>{format!("{:.1}", row.timing.samples_per_s(row.batch))}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
