//! The model diagnostics tab: structure and freezing, parameter statistics, FLOPs, the memory of
//! a training step, an in-page speed benchmark and a report to export, all for the model the
//! explorer shows. The words, rows and rules come from `page::diagnostics`, the numbers from
//! `analysis::diagnostics`, the device work from `train`; the components here only wire them.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::diagnostics::{
    BenchPass, ParameterStatistics, SortKey, Timing, TrainingMemory, attention_overtakes,
    flops_over_lengths, format_bytes, forward_flops, leaf_table, project_saved_bytes,
    saved_for_backward,
};
use crate::charts::diagnostics::{draw_flops_over_length, draw_weight_histograms};
use crate::format::group_thousands;
use crate::model::{BackendInfo, TransformerConfig};
use crate::page::diagnostics::{
    MAX_MEMORY_BATCH, MEMORY_NOTE, PROJECT_BATCHES, PROJECT_SEQS, ParamCounts, Report, SortState,
    SpeedRow, TrainingShape, architecture, bench_note, bench_total_runs, flops_note, flops_rows,
    flops_seq, leaf_cells, memory_rows, module_count, overall_text, parse_count, report_json,
    toggle_frozen,
};
use crate::train::speed::SpeedProbe;
use crate::train::weights::{parameter_shapes, weight_statistics};

use super::session::{LoadedModel, RunResult};
use super::views::{image_buttons, panel_heading, with_area};
use super::web;

/// The weight statistics of one installed model.
#[derive(Clone)]
struct Statistics {
    /// The model version they were read for.
    version: u32,
    /// The statistics.
    stats: Arc<ParameterStatistics>,
}

/// The tab's state, handed to each section: what it was given, what it derives, and its own.
#[derive(Clone, Copy)]
struct DiagnosticsState {
    backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    loaded: StoredValue<Option<LoadedModel>, LocalStorage>,
    model_version: RwSignal<u32>,
    text: RwSignal<String>,
    frozen: RwSignal<Vec<String>>,
    visible: Signal<bool>,
    open_layer: Callback<usize>,
    /// The installed model's config.
    config: Memo<Option<TransformerConfig>>,
    /// Every parameter's path and shape.
    paths: Memo<Vec<(String, Vec<usize>)>>,
    /// Tokens of the explorer's input, `None` without a run.
    run_len: Memo<Option<usize>>,
    /// Bytes of the explorer's trace, `None` without a run.
    trace_bytes: Memo<Option<u64>>,
    /// The Train tab's batch and sequence length, when the page hands them over.
    training_shape: Option<Signal<Option<TrainingShape>>>,
    /// The batch and sequence length typed in the memory section.
    typed_shape: RwSignal<Option<TrainingShape>>,
    message: RwSignal<Option<String>>,
    sort: RwSignal<SortState>,
    selected: RwSignal<Option<usize>>,
    statistics: RwSignal<Option<Statistics>>,
    bench_rows: RwSignal<Vec<SpeedRow>>,
    bench_progress: RwSignal<Option<(usize, usize)>>,
    bench_cancel: StoredValue<bool>,
}

impl DiagnosticsState {
    fn counts(&self) -> ParamCounts {
        ParamCounts::of(&self.paths.get(), &self.frozen.get())
    }

    /// The training shape the memory is computed for: typed, else the Train tab's, else the
    /// training form's default batch at the model's longest input.
    fn shape(&self, config: &TransformerConfig) -> TrainingShape {
        self.typed_shape
            .get()
            .or_else(|| self.training_shape.and_then(|shape| shape.get()))
            .unwrap_or_else(|| TrainingShape::default_for(config))
    }

    fn memory(&self) -> Option<TrainingMemory> {
        let config = self.config.get()?;
        let shape = self.shape(&config);
        let counts = self.counts();
        Some(TrainingMemory::new(
            counts.total,
            counts.trainable,
            saved_for_backward(&config, shape.batch, shape.seq),
        ))
    }

    fn stats(&self) -> Option<Arc<ParameterStatistics>> {
        self.statistics.get().map(|s| s.stats)
    }

    fn fail(&self, text: String) {
        self.message.set(Some(text));
    }
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
    /// The Train tab's batch size and sequence length, which the memory section follows until
    /// the user types other values; without it, the training form's default batch at the
    /// model's longest input.
    #[prop(optional)]
    training_shape: Option<Signal<Option<TrainingShape>>>,
) -> impl IntoView {
    let state = DiagnosticsState {
        backend,
        loaded,
        model_version,
        text,
        frozen,
        visible,
        open_layer,
        config: Memo::new(move |_| {
            model_version.track();
            loaded.with_value(|model| model.as_ref().map(|model| model.config.clone()))
        }),
        paths: Memo::new(move |_| {
            model_version.track();
            loaded.with_value(|model| {
                model
                    .as_ref()
                    .map_or_else(Vec::new, |model| parameter_shapes(&model.model))
            })
        }),
        run_len: Memo::new(move |_| result.get().map(|run| run.tokens.ids().len())),
        trace_bytes: Memo::new(move |_| result.get().map(|run| run.trace.trace.bytes())),
        training_shape,
        typed_shape: RwSignal::new(None),
        message: RwSignal::new(None),
        sort: RwSignal::new(SortState::default()),
        selected: RwSignal::new(None),
        statistics: RwSignal::new(None),
        bench_rows: RwSignal::new(Vec::new()),
        bench_progress: RwSignal::new(None),
        bench_cancel: StoredValue::new(false),
    };
    read_statistics_when_shown(state);
    // A new model starts the memory section from its own defaults.
    Effect::new(move |_| {
        model_version.track();
        state.typed_shape.set(None);
    });
    let flops_total = move || {
        state.config.get().map_or(0, |config| {
            forward_flops(&config, 1, flops_seq(&config, state.run_len.get())).matmul_total()
        })
    };
    view! {
        <section id="diagnostics" class="diagnostics"
            data-params=move || state.counts().total.to_string()
            data-trainable=move || state.counts().trainable.to_string()
            data-frozen=move || state.counts().frozen.to_string()
            data-flops=move || flops_total().to_string()
            data-stats=move || state.stats().map_or(0, |s| s.tensors.len()).to_string()
            data-bench=move || if state.bench_progress.get().is_some() { "running".to_string() } else { state.bench_rows.get().len().to_string() }>
            <p id="diagnostics-message" class="error" role="alert" hidden=move || state.message.get().is_none()>
                {move || state.message.get()}
            </p>
            <ReportButtons state=state />
            <StructureSection state=state />
            <ParametersSection state=state />
            <ComputeSection state=state />
            <MemorySection state=state />
            <SpeedSection state=state />
        </section>
    }
}

/// Reads the weights back once per model, when the tab is open.
fn read_statistics_when_shown(state: DiagnosticsState) {
    Effect::new(move |_| {
        let version = state.model_version.get();
        let current = state
            .statistics
            .with_untracked(|s| s.as_ref().is_some_and(|s| s.version == version));
        if !state.visible.get() || current {
            return;
        }
        let Some(model) = state
            .loaded
            .with_value(|model| model.as_ref().map(|m| m.model.clone()))
        else {
            return;
        };
        web::spawn(async move {
            match weight_statistics(&model).await {
                Ok(stats) => state.statistics.set(Some(Statistics {
                    version,
                    stats: Arc::new(stats),
                })),
                Err(error) => state.fail(format!("Reading the weights failed: {error}")),
            }
        });
    });
}

/// Export and print buttons.
#[component]
fn ReportButtons(state: DiagnosticsState) -> impl IntoView {
    let export_json = move |_| {
        let text = serde_json::to_string_pretty(&report(state)).unwrap_or_default();
        if let Err(failure) = web::files::download("glassbox-diagnostics.json", text.as_bytes()) {
            state.fail(format!("Export failed: {failure}"));
        }
    };
    let print = move |_| {
        if let Some(window) = web_sys::window()
            && let Err(error) = window.print()
        {
            state.fail(format!("Printing failed: {error:?}"));
        }
    };
    view! {
        <div class="controls no-print">
            <button id="export-diagnostics" type="button" on:click=export_json>"Export report (JSON)"</button>
            <button id="print-diagnostics" type="button" on:click=print>"Printable report"</button>
        </div>
    }
}

/// The report of everything the tab shows, as JSON.
fn report(state: DiagnosticsState) -> serde_json::Value {
    let config = state.config.get_untracked();
    let paths = state.paths.get_untracked();
    let frozen = state.frozen.get_untracked();
    let tensors = leaf_table(&paths);
    let stats = state.statistics.get_untracked().map(|s| s.stats);
    let run_len = state.run_len.get_untracked();
    let flops = config.as_ref().map(|c| {
        (
            forward_flops(c, 1, flops_seq(c, run_len)),
            flops_seq(c, run_len),
        )
    });
    let memory = untrack(|| state.memory());
    let speed = state.bench_rows.get_untracked();
    let provenance = state
        .loaded
        .with_value(|m| m.as_ref().map(|m| m.provenance.clone()));
    report_json(&Report {
        provenance: provenance.as_deref(),
        config: config.as_ref(),
        counts: ParamCounts::of(&paths, &frozen),
        frozen: &frozen,
        tensors: &tensors,
        statistics: stats.as_deref(),
        flops: flops.as_ref().map(|(count, seq)| (count, *seq)),
        memory: memory.as_ref(),
        trace_bytes: state.trace_bytes.get_untracked(),
        speed: &speed,
    })
}

/// The parameter counts, the architecture with its freeze boxes, and every tensor.
#[component]
fn StructureSection(state: DiagnosticsState) -> impl IntoView {
    view! {
        {panel_heading("structure", "Structure", true)}
        <p id="param-counts">{move || state.counts().text()}</p>
        <ArchitectureList state=state />
        <LeafTable state=state />
    }
}

/// One line per block; a layer's line opens its attention, each block can be frozen.
#[component]
fn ArchitectureList(state: DiagnosticsState) -> impl IntoView {
    let blocks = move || {
        state.config.get().map_or_else(Vec::new, |config| {
            architecture(&config, state.run_len.get())
        })
    };
    view! {
        <ol id="architecture" class="architecture">
            {move || blocks().into_iter().map(|block| {
                let count = module_count(&state.paths.get(), &block.module);
                let (checked, toggled) = (block.module.clone(), block.module.clone());
                let description = block.description.clone();
                view! {
                    <li class="arch-block">
                        {match block.layer {
                            Some(layer) => view! {
                                <button type="button" class="link" id=format!("arch-layer-{layer}")
                                    title="Open this layer's attention"
                                    on:click=move |_| state.open_layer.run(layer)>{description}</button>
                            }.into_any(),
                            None => view! { <span>{description}</span> }.into_any(),
                        }}
                        <span class="count">{format!(" · {} parameters", group_thousands(count))}</span>
                        <label class="freeze">
                            <input type="checkbox" id=block.freeze_id()
                                prop:checked=move || state.frozen.get().contains(&checked)
                                on:change=move |event| {
                                    let on = event_target_checked(&event);
                                    state.frozen.update(|frozen| *frozen = toggle_frozen(frozen, &toggled, on));
                                } />
                            " freeze"
                        </label>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

/// Every parameter tensor, sortable by path or count.
#[component]
fn LeafTable(state: DiagnosticsState) -> impl IntoView {
    let click = move |key: SortKey| state.sort.update(|sort| *sort = sort.clicked(key));
    view! {
        <table id="leaf-table">
            <caption>"Every parameter tensor"</caption>
            <thead><tr>
                <th><button type="button" id="sort-path" class="link" on:click=move |_| click(SortKey::Path)>"path"</button></th>
                <th>"shape"</th>
                <th><button type="button" id="sort-count" class="link" on:click=move |_| click(SortKey::Count)>"count"</button></th>
                <th>"share"</th>
            </tr></thead>
            <tbody>
                {move || state.sort.get().sorted(leaf_table(&state.paths.get())).iter().map(|row| {
                    let cells = leaf_cells(row);
                    view! { <tr>{cells.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr> }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Statistics of the weights: all together, per tensor, and histograms.
#[component]
fn ParametersSection(state: DiagnosticsState) -> impl IntoView {
    let histogram_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let (stats, chosen) = (state.stats(), state.selected.get());
        if !state.visible.get() {
            return;
        }
        let (Some(canvas), Some(stats)) = (histogram_ref.get(), stats) else {
            return;
        };
        let mut cells = vec![&stats.overall];
        if let Some(tensor) = chosen.and_then(|index| stats.tensors.get(index)) {
            cells.push(tensor);
        }
        let style = web::chart_style();
        if let Err(failure) =
            with_area(&canvas, |area| draw_weight_histograms(area, &cells, &style))
        {
            state.fail(format!("Drawing the weight histogram failed: {failure}"));
        }
    });
    view! {
        {panel_heading("parameters", "Parameters", true)}
        <p id="param-overall">{move || state.stats().map(|stats| overall_text(&stats))}</p>
        {image_buttons("param-histogram", histogram_ref, "glassbox-weights", state.message)}
        <canvas id="param-histogram" node_ref=histogram_ref width="1140" height="200"
            aria-label="Histogram of all weights and of the chosen tensor"></canvas>
        <ParamStatsTable state=state />
    }
}

/// One row per tensor; a click shows its histogram.
#[component]
fn ParamStatsTable(state: DiagnosticsState) -> impl IntoView {
    let number = |value: f64| format!("{value:.3e}");
    view! {
        <table id="param-stats">
            <caption>"Per tensor (click a row for its histogram)"</caption>
            <thead><tr><th>"path"</th><th>"mean"</th><th>"std"</th><th>"min"</th><th>"max"</th><th>"|w| < 1e-6"</th></tr></thead>
            <tbody>
                {move || state.stats().map(|stats| stats.tensors.iter().enumerate().map(|(index, s)| view! {
                    <tr class:selected=move || state.selected.get() == Some(index)
                        on:click=move |_| state.selected.set(Some(index))>
                        <td>{s.path.clone()}</td>
                        <td>{number(s.summary.mean)}</td>
                        <td>{number(s.summary.std)}</td>
                        <td>{number(s.summary.min)}</td>
                        <td>{number(s.summary.max)}</td>
                        <td>{format!("{:.2}%", 100.0 * s.sparsity)}</td>
                    </tr>
                }).collect_view())}
            </tbody>
        </table>
    }
}

/// FLOPs of one forward pass by op class and layer, and against sequence length.
#[component]
fn ComputeSection(state: DiagnosticsState) -> impl IntoView {
    let flops_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let config = state.config.get();
        if !state.visible.get() {
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
            state.fail(format!("Drawing the FLOPs chart failed: {failure}"));
        }
    });
    let rows = move || {
        state.config.get().map(|config| {
            flops_rows(&forward_flops(
                &config,
                1,
                flops_seq(&config, state.run_len.get()),
            ))
        })
    };
    view! {
        {panel_heading("compute", "Compute", true)}
        <p id="flops-note" class="note">{move || state.config.get().map(|config| flops_note(&config, state.run_len.get()))}</p>
        <table id="flops-table">
            <thead><tr>
                <th>"op class"</th>
                {move || (0..state.config.get().map_or(0, |c| c.num_layers)).map(|layer| view! { <th>{format!("layer {layer}")}</th> }).collect_view()}
                <th>"outside layers"</th><th>"total"</th>
            </tr></thead>
            <tbody>
                {move || rows().map(|rows| rows.into_iter().map(|row| view! {
                    <tr class:total=row.is_total>
                        <td>{row.label}</td>
                        {row.layers.into_iter().map(|value| view! { <td>{value}</td> }).collect_view()}
                        <td>{row.outside}</td>
                        <td>{row.total}</td>
                    </tr>
                }).collect_view())}
            </tbody>
        </table>
        {image_buttons("flops-chart", flops_ref, "glassbox-flops", state.message)}
        <canvas id="flops-chart" node_ref=flops_ref width="1140" height="320"
            aria-label="FLOPs of attention and of the linear layers against sequence length"></canvas>
    }
}

/// The memory of one training step, and the saved activations by batch and length.
#[component]
fn MemorySection(state: DiagnosticsState) -> impl IntoView {
    view! {
        {panel_heading("memory", "Memory", true)}
        <TrainingShapeForm state=state />
        <table id="memory-table">
            <tbody>
                {move || state.memory().map(|memory| memory_rows(&memory, state.trace_bytes.get()).into_iter().map(|row| view! {
                    <tr class:total=row.is_total><td>{row.label.clone()}</td><td>{row.size()}</td><td>{row.exact()}</td></tr>
                }).collect_view())}
            </tbody>
        </table>
        <p id="memory-note" class="note">{MEMORY_NOTE}</p>
        <table id="memory-projection">
            <caption>"Activations kept for backward by one training step, by batch size (rows) and sequence length (columns)"</caption>
            {move || state.config.get().map(|config| {
                let seqs: Vec<usize> = PROJECT_SEQS.iter().copied().filter(|&s| s <= config.max_seq_len).collect();
                let grid = project_saved_bytes(&config, &PROJECT_BATCHES, &seqs);
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
    }
}

/// The batch size and sequence length the memory is computed for.
#[component]
fn TrainingShapeForm(state: DiagnosticsState) -> impl IntoView {
    let current = move || state.config.get().map(|config| state.shape(&config));
    let change = move |batch_text: Option<String>, seq_text: Option<String>| {
        let (Some(config), Some(shape)) = (state.config.get_untracked(), untrack(current)) else {
            return;
        };
        let parsed = (
            batch_text.map_or(Ok(shape.batch), |t| {
                parse_count(&t, "batch", MAX_MEMORY_BATCH)
            }),
            seq_text.map_or(Ok(shape.seq), |t| {
                parse_count(&t, "sequence length", config.max_seq_len)
            }),
        );
        match parsed {
            (Ok(batch), Ok(seq)) => {
                state.message.set(None);
                state.typed_shape.set(Some(TrainingShape { batch, seq }));
            }
            (Err(failure), _) | (_, Err(failure)) => state.fail(failure),
        }
    };
    view! {
        <div class="controls no-print">
            <label>"Training batch "
                <input id="memory-batch" type="number" min="1" step="1"
                    prop:value=move || current().map_or(String::new(), |s| s.batch.to_string())
                    on:change=move |event| change(Some(event_target_value(&event)), None) />
            </label>
            <label>" × tokens "
                <input id="memory-seq" type="number" min="1" step="1"
                    prop:value=move || current().map_or(String::new(), |s| s.seq.to_string())
                    on:change=move |event| change(None, Some(event_target_value(&event))) />
            </label>
        </div>
    }
}

/// The benchmark: buttons, progress and results.
#[component]
fn SpeedSection(state: DiagnosticsState) -> impl IntoView {
    view! {
        {panel_heading("speed", "Speed", true)}
        <div class="controls no-print">
            <button id="bench-start" type="button" on:click=move |_| run_benchmark(state)
                disabled=move || state.bench_progress.get().is_some()>"Run the benchmark"</button>
            <button id="bench-cancel" type="button" on:click=move |_| state.bench_cancel.set_value(true)
                disabled=move || state.bench_progress.get().is_none()>"Cancel"</button>
            <progress id="bench-progress" max="1"
                prop:value=move || state.bench_progress.get().map_or(0.0, |(done, total)| done as f64 / total.max(1) as f64)></progress>
            <span class="note">{bench_note()}</span>
        </div>
        <table id="bench-table">
            <thead><tr><th>"backend"</th><th>"pass"</th><th>"median ms"</th><th>"p95 ms"</th><th>"sequences/s"</th></tr></thead>
            <tbody>
                {move || state.bench_rows.get().iter().map(|row| view! {
                    <tr>{row.cells().into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Starts the benchmark on the page's backend (and the CPU beside WebGPU), unless it runs.
fn run_benchmark(state: DiagnosticsState) {
    if state.bench_progress.get_untracked().is_some() {
        return;
    }
    let prepared = state.loaded.with_value(|model| {
        let model = model.as_ref().ok_or("no model is loaded yet")?;
        let (batch, _) = model.analysis_batch(&state.text.get_untracked(), "")?;
        Ok::<_, String>((model.model.clone(), model.config.clone(), batch))
    });
    let (model, config, batch) = match prepared {
        Ok(prepared) => prepared,
        Err(failure) => return state.fail(failure),
    };
    let Some(info) = state.backend.get_value() else {
        return state.fail("The device is not ready yet.".into());
    };
    let total = bench_total_runs(SpeedProbe::count_for(&info));
    state.bench_cancel.set_value(false);
    state.bench_rows.set(Vec::new());
    state.bench_progress.set(Some((0, total)));
    state.message.set(None);
    web::spawn(async move {
        let probes = match SpeedProbe::for_backend(&model, &config, &info, batch).await {
            Ok(probes) => probes,
            Err(error) => {
                state.fail(format!("The benchmark could not start: {error}"));
                state.bench_progress.set(None);
                return;
            }
        };
        let mut done = 0;
        'probes: for (label, probe) in probes {
            for pass in BenchPass::all() {
                let Some(samples) = time_pass(state, &probe, pass, &mut done, total).await else {
                    break 'probes;
                };
                if let Some(timing) = Timing::of(&samples) {
                    let row = SpeedRow {
                        backend: label.clone(),
                        pass,
                        timing,
                        batch: probe.batch_size(),
                    };
                    state.bench_rows.update(|rows| rows.push(row));
                }
            }
        }
        if state.bench_cancel.get_value() {
            state.fail("Benchmark cancelled; the rows above are the passes that finished.".into());
        }
        state.bench_progress.set(None);
    });
}

/// The timed runs of `pass` after its warm-up, or `None` when cancelled or failed.
async fn time_pass(
    state: DiagnosticsState,
    probe: &SpeedProbe,
    pass: BenchPass,
    done: &mut usize,
    total: usize,
) -> Option<Vec<f64>> {
    use crate::page::diagnostics::{TIMED, WARM_UP};
    let mut samples = Vec::with_capacity(TIMED);
    for run in 0..WARM_UP + TIMED {
        if state.bench_cancel.get_value() {
            return None;
        }
        let started = web::now_ms();
        if let Err(error) = probe.run(pass).await {
            state.fail(format!("The benchmark failed: {error}"));
            return None;
        }
        if run >= WARM_UP {
            samples.push(web::now_ms() - started);
        }
        *done += 1;
        state.bench_progress.set(Some((*done, total)));
        // Let the page answer clicks (Cancel) between runs.
        web::next_frame().await;
    }
    Some(samples)
}
