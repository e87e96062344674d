//! The "Inside" tab: gradient flow and activations of the last analysed backward pass, from a
//! training step or from one batch on the explorer's model, with the detectors in words.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::activations::{DeadHistory, SPARSE_THRESHOLD};
use crate::analysis::gradients::{
    GradientHistory, GradientThresholds, detect, extremes, structurally_zero,
};
use crate::charts::activations::{draw_activation_grid, draw_dead_share, grid_rows};
use crate::charts::gradients::{
    GradientHeatmapData, GradientHeatmapLayout, GradientPanelsData, GradientPanelsLayout,
    draw_gradient_heatmap, draw_gradient_panels,
};
use crate::train::{Analysis, StepReport};

use super::views::{image_buttons, panel_heading, with_area};
use super::web;

/// Training steps whose gradient norms the heatmap keeps; older ones are thinned beyond this.
const HEATMAP_STEPS: usize = 512;
/// Height of one activation-grid row in pixels.
const GRID_ROW_PX: u32 = 170;
/// Height of one heatmap row in pixels, and room for the axes.
const HEATMAP_ROW_PX: u32 = 14;
const HEATMAP_MARGIN_PX: u32 = 90;

/// The last analysis and where it came from.
#[derive(Clone)]
struct Latest {
    source: String,
    step: Option<usize>,
    analysis: Arc<Analysis>,
}

/// What the training tab and the explorer hand to the Inside tab; cheap to copy.
#[derive(Clone, Copy)]
pub struct InsideState {
    latest: StoredValue<Option<Latest>, LocalStorage>,
    history: StoredValue<Option<GradientHistory>, LocalStorage>,
    dead: StoredValue<DeadHistory, LocalStorage>,
    version: RwSignal<u32>,
}

impl InsideState {
    /// Nothing analysed yet.
    pub fn new() -> Self {
        Self {
            latest: StoredValue::new_local(None),
            history: StoredValue::new_local(None),
            dead: StoredValue::new_local(DeadHistory::default()),
            version: RwSignal::new(0),
        }
    }

    /// Keeps what a training step measured; call [`InsideState::touch`] to redraw.
    pub fn record_step(&self, report: &StepReport, task: &str) {
        let paths: Vec<&String> = report
            .tensor_grad_norms
            .iter()
            .map(|(path, _)| path)
            .collect();
        let norms: Vec<f64> = report
            .tensor_grad_norms
            .iter()
            .map(|(_, norm)| *norm)
            .collect();
        self.history.update_value(|history| {
            let fits = history.as_ref().is_some_and(|history| {
                history.paths().len() == paths.len()
                    && history.paths().iter().zip(&paths).all(|(a, b)| a == *b)
            });
            if !fits {
                *history = Some(GradientHistory::new(
                    paths.iter().map(|path| (*path).clone()).collect(),
                    HEATMAP_STEPS,
                ));
            }
            if let Some(history) = history.as_mut() {
                history.push(report.step, &norms);
            }
        });
        if let Some(analysis) = &report.analysis {
            self.dead
                .update_value(|dead| dead.push(report.step, &analysis.activations));
            self.latest.set_value(Some(Latest {
                source: format!("training step {} on the {task} task", report.step),
                step: Some(report.step),
                analysis: Arc::new(analysis.clone()),
            }));
        }
    }

    /// Keeps the analysis of one batch outside training.
    pub fn record_batch(&self, source: String, analysis: Analysis) {
        self.latest.set_value(Some(Latest {
            source,
            step: None,
            analysis: Arc::new(analysis),
        }));
        self.touch();
    }

    /// Forgets the training history (a new run starts).
    pub fn reset_training(&self) {
        self.history.set_value(None);
        self.dead.set_value(DeadHistory::default());
        if self
            .latest
            .with_value(|latest| latest.as_ref().is_some_and(|l| l.step.is_some()))
        {
            self.latest.set_value(None);
        }
        self.touch();
    }

    /// Asks the views to redraw.
    pub fn touch(&self) {
        self.version.update(|version| *version += 1);
    }
}

/// The Inside tab.
#[component]
pub fn InsidePanel(
    state: InsideState,
    /// Whether the tab is shown; hidden views are not redrawn.
    visible: Signal<bool>,
    /// Analyses one batch on the explorer's model; answers with a message when it cannot.
    analyse: Callback<(), Result<(), String>>,
    /// Set while a batch is being analysed.
    analysing: Signal<bool>,
    /// The last failure to report.
    message: RwSignal<Option<String>>,
) -> impl IntoView {
    let thresholds = RwSignal::new(GradientThresholds::default());
    let selected = RwSignal::new(None::<usize>);
    let panels_ref = NodeRef::<html::Canvas>::new();
    let heatmap_ref = NodeRef::<html::Canvas>::new();
    let grid_ref = NodeRef::<html::Canvas>::new();
    let dead_ref = NodeRef::<html::Canvas>::new();
    let panels_layout = StoredValue::new(None::<GradientPanelsLayout>);
    let heatmap_layout = StoredValue::new(None::<GradientHeatmapLayout>);
    let gradient_readout = RwSignal::new(None::<String>);
    let heatmap_readout = RwSignal::new(None::<String>);
    let draws = RwSignal::new(0u32);
    let version = state.version;

    let latest = move || {
        version.track();
        state.latest.get_value()
    };
    let findings = Memo::new(move |_| {
        let thresholds = thresholds.get();
        let latest = latest();
        state.history.with_value(|history| {
            let Some(latest) = latest else {
                return Vec::new();
            };
            // The unstable detector reads the training history, so only a training step has it.
            let history = history.as_ref().filter(|_| latest.step.is_some());
            detect(&latest.analysis.gradients, history, &thresholds)
        })
    });

    // Gradient panels.
    Effect::new(move |_| {
        let (latest, thresholds, selected) = (latest(), thresholds.get(), selected.get());
        let flagged: Vec<(usize, crate::analysis::GradientProblem)> = {
            let findings = findings.get();
            let Some(latest) = &latest else {
                return;
            };
            latest
                .analysis
                .gradients
                .iter()
                .enumerate()
                .flat_map(|(index, gradient)| {
                    findings
                        .iter()
                        .filter(|finding| finding.path == gradient.path)
                        .map(move |finding| (index, finding.problem))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        if !visible.get() {
            return;
        }
        let (Some(canvas), Some(latest)) = (panels_ref.get(), latest) else {
            return;
        };
        let style = web::chart_style();
        let data = GradientPanelsData {
            gradients: &latest.analysis.gradients,
            flagged,
            thresholds,
            selected,
        };
        match with_area(&canvas, |area| draw_gradient_panels(area, &data, &style)) {
            Ok(layout) => {
                panels_layout.set_value(Some(layout));
                draws.update(|count| *count += 1);
            }
            Err(failure) => message.set(Some(format!(
                "Drawing the gradient panels failed: {failure}"
            ))),
        }
    });

    // Tensors × steps heatmap of the gradient norm over training.
    Effect::new(move |_| {
        version.track();
        let thresholds = thresholds.get();
        if !visible.get() {
            return;
        }
        let Some(canvas) = heatmap_ref.get() else {
            return;
        };
        let style = web::chart_style();
        let outcome = state.history.with_value(|history| {
            let empty = GradientHistory::new(Vec::new(), 4);
            let history = history.as_ref().unwrap_or(&empty);
            let rows = history.paths().len().max(4) as u32;
            canvas.set_height(rows * HEATMAP_ROW_PX + HEATMAP_MARGIN_PX);
            let data = GradientHeatmapData {
                history,
                thresholds,
                cursor: None,
            };
            with_area(&canvas, |area| draw_gradient_heatmap(area, &data, &style))
        });
        match outcome {
            Ok(layout) => {
                heatmap_layout.set_value(Some(layout));
                draws.update(|count| *count += 1);
            }
            Err(failure) => message.set(Some(format!(
                "Drawing the gradient heatmap failed: {failure}"
            ))),
        }
    });

    // Activation grid and the dead-unit curve.
    Effect::new(move |_| {
        let latest = latest();
        if !visible.get() {
            return;
        }
        let style = web::chart_style();
        if let (Some(canvas), Some(latest)) = (grid_ref.get(), &latest) {
            let modules = &latest.analysis.activations.modules;
            canvas.set_height(grid_rows(modules.len()).max(1) as u32 * GRID_ROW_PX);
            match with_area(&canvas, |area| {
                draw_activation_grid(area, modules, SPARSE_THRESHOLD, &style)
            }) {
                Ok(_) => draws.update(|count| *count += 1),
                Err(failure) => {
                    message.set(Some(format!("Drawing the activations failed: {failure}")))
                }
            }
        }
        if let Some(canvas) = dead_ref.get() {
            let outcome = state
                .dead
                .with_value(|dead| with_area(&canvas, |area| draw_dead_share(area, dead, &style)));
            if let Err(failure) = outcome {
                message.set(Some(format!(
                    "Drawing the dead-unit curve failed: {failure}"
                )));
            }
        }
    });

    let on_panels_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = panels_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let tensor = panels_layout.with_value(|layout| {
            layout
                .as_ref()
                .and_then(|layout| layout.tensor_at(x as i32, y as i32))
        });
        selected.set(tensor);
        gradient_readout.set(tensor.and_then(|index| {
            state.latest.with_value(|latest| {
                let gradient = latest.as_ref()?.analysis.gradients.get(index)?;
                let g = gradient.gradient;
                Some(format!(
                    "{} {:?}: mean {:.3e}, std {:.3e}, min {:.3e}, max {:.3e}, norm {:.3e}, ‖g‖/‖w‖ {:.3e}",
                    gradient.path, gradient.shape, g.mean, g.std, g.min, g.max, g.norm,
                    gradient.ratio_to_weight()
                ))
            })
        }));
    };

    let on_heatmap_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = heatmap_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let cell = heatmap_layout.with_value(|layout| {
            layout
                .as_ref()
                .and_then(|layout| layout.cell_at(x as i32, y as i32))
        });
        heatmap_readout.set(cell.and_then(|(tensor, column)| {
            state.history.with_value(|history| {
                let history = history.as_ref()?;
                Some(format!(
                    "{} at step {}: gradient norm {:.3e}",
                    history.paths().get(tensor)?,
                    history.steps().get(column)?,
                    history.norm(tensor, column)?
                ))
            })
        }));
    };

    let source = move || {
        latest().map_or_else(
            || "Nothing analysed yet: train a few steps (analysis on), or analyse one batch of the explorer's model.".to_string(),
            |latest| format!("Gradients and activations of {}; loss {:.4}.", latest.source, latest.analysis.loss),
        )
    };
    let finding_lines = move || {
        let findings = findings.get();
        if latest().is_none() {
            return Vec::new();
        }
        if findings.is_empty() {
            return vec![
                "No detector fired: every gradient norm lies between the thresholds.".to_string(),
            ];
        }
        findings.iter().map(ToString::to_string).collect()
    };
    let extreme_rows = move || {
        let Some(latest) = latest() else {
            return Vec::new();
        };
        let (smallest, largest) = extremes(&latest.analysis.gradients, 5);
        let cell = |gradient: Option<&&crate::analysis::ParameterGradient>| {
            gradient.map_or((String::new(), String::new()), |g| {
                (g.path.clone(), format!("{:.2e}", g.gradient.norm))
            })
        };
        (0..smallest.len().max(largest.len()))
            .map(|row| (cell(smallest.get(row)), cell(largest.get(row))))
            .collect()
    };
    let excluded = move || {
        latest().map_or(String::new(), |latest| {
            let count = latest
                .analysis
                .gradients
                .iter()
                .filter(|gradient| structurally_zero(&gradient.path))
                .count();
            if count == 0 {
                String::new()
            } else {
                format!(
                    "{count} attention key bias tensors are left out of the detectors and the table: softmax cancels a bias added to every key, so their gradient is zero by construction."
                )
            }
        })
    };
    let activation_warnings = move || {
        let Some(latest) = latest() else {
            return Vec::new();
        };
        let activations = &latest.analysis.activations;
        let mut lines: Vec<String> = activations
            .sparse_modules(SPARSE_THRESHOLD)
            .iter()
            .map(|module| {
                format!(
                    "{}: {:.1}% of the outputs are exactly zero (possible dead neurons)",
                    module.path,
                    100.0 * module.zero_fraction
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!(
                "No module has more than {:.0}% exact zeros.",
                100.0 * SPARSE_THRESHOLD
            ));
        }
        lines
    };
    let dead_rows =
        move || latest().map_or_else(Vec::new, |latest| latest.analysis.activations.dead.clone());
    let counts = move || {
        let latest = latest();
        let findings = findings.get();
        let tensors = latest.as_ref().map_or(0, |l| l.analysis.gradients.len());
        let modules = latest
            .as_ref()
            .map_or(0, |l| l.analysis.activations.modules.len());
        let sparse = latest.as_ref().map_or(0, |l| {
            l.analysis
                .activations
                .sparse_modules(SPARSE_THRESHOLD)
                .len()
        });
        let dead: usize = latest.as_ref().map_or(0, |l| {
            l.analysis
                .activations
                .dead
                .iter()
                .map(|d| d.dead.len())
                .sum()
        });
        (tensors, findings, modules, sparse, dead)
    };
    let problems = move || {
        let mut names: Vec<&str> = counts().1.iter().map(|f| f.problem.name()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(" ")
    };

    // Every number of the last analysis as JSON: per tensor and per module, histograms included.
    let export_json = move |_| {
        let Some(latest) = state.latest.get_value() else {
            message.set(Some("Nothing analysed yet.".into()));
            return;
        };
        let analysis = &latest.analysis;
        let value = serde_json::json!({
            "source": latest.source,
            "step": latest.step,
            "loss": analysis.loss,
            "thresholds": {
                "vanishing": thresholds.get_untracked().vanishing,
                "exploding": thresholds.get_untracked().exploding,
                "unstable": thresholds.get_untracked().unstable,
            },
            "findings": findings.get_untracked().iter().map(|f| serde_json::json!({
                "path": f.path, "problem": f.problem.name(), "value": f.value,
            })).collect::<Vec<_>>(),
            "gradients": analysis.gradients.iter().map(|g| serde_json::json!({
                "path": g.path, "shape": g.shape, "mean": g.gradient.mean, "std": g.gradient.std,
                "min": g.gradient.min, "max": g.gradient.max, "norm": g.gradient.norm,
                "weight_norm": g.weight_norm,
            })).collect::<Vec<_>>(),
            "activations": analysis.activations.modules.iter().map(|m| serde_json::json!({
                "path": m.path, "shape": m.shape, "mean": m.mean, "std": m.std,
                "zero_fraction": m.zero_fraction,
                "histogram": { "min": m.histogram.min, "max": m.histogram.max, "counts": m.histogram.counts },
            })).collect::<Vec<_>>(),
            "dead_units": analysis.activations.dead.iter().map(|d| serde_json::json!({
                "layer": d.layer, "width": d.width, "dead": d.dead,
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(failure) =
            web::files::download("glassbox-gradients-activations.json", text.as_bytes())
        {
            message.set(Some(format!("Export failed: {failure}")));
        }
    };

    view! {
        <section id="inside" class="inside"
            data-source=move || latest().map_or("none".to_string(), |l| if l.step.is_some() { "training".into() } else { "batch".into() })
            data-tensors=move || counts().0.to_string()
            data-findings=move || counts().1.len().to_string()
            data-problems=problems
            data-modules=move || counts().2.to_string()
            data-sparse=move || counts().3.to_string()
            data-dead=move || counts().4.to_string()
            data-draws=move || draws.get().to_string()>
            <div class="controls" role="group" aria-label="Analysis">
                <button id="analyse-batch" type="button" disabled=move || analysing.get()
                    on:click=move |_| {
                        if let Err(failure) = analyse.run(()) {
                            message.set(Some(failure));
                        }
                    }>"Analyse one batch of the explorer's model"</button>
                <span id="inside-source" aria-live="polite">{source}</span>
            </div>
            <p id="inside-message" class="error" role="alert" hidden=move || message.get().is_none()>
                {move || message.get()}
            </p>
            {panel_heading("gradient-flow", "Gradient flow", true)}
            <div class="controls" role="group" aria-label="Gradient thresholds">
                {threshold_input("threshold-vanishing", "Vanishing: norm below", move || thresholds.get().vanishing, move |v| thresholds.update(|t| t.vanishing = v), message)}
                {threshold_input("threshold-exploding", "Exploding: norm above", move || thresholds.get().exploding, move |v| thresholds.update(|t| t.exploding = v), message)}
                {threshold_input("threshold-unstable", "Unstable: norm std/mean over the last 20 steps above", move || thresholds.get().unstable, move |v| thresholds.update(|t| t.unstable = v), message)}
            </div>
            {image_buttons("gradient-panels", panels_ref, "glassbox-gradient-panels", message)}
            <button id="inside-json" type="button" on:click=export_json>"JSON (all statistics)"</button>
            <canvas id="gradient-panels" node_ref=panels_ref width="1140" height="640"
                aria-label="Gradient mean, norm, std and range per parameter tensor"
                on:mousemove=on_panels_move
                on:mouseleave=move |_| { selected.set(None); gradient_readout.set(None); }></canvas>
            <p id="gradient-readout" class="tooltip" aria-live="polite">
                {move || gradient_readout.get().unwrap_or_else(|| "Hover a panel to read one tensor's statistics.".into())}
            </p>
            <ul id="gradient-findings" class="findings">
                {move || finding_lines().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
            </ul>
            <p class="note">{excluded}</p>
            <table id="gradient-extremes">
                <caption>"The five smallest and five largest gradient norms"</caption>
                <thead><tr><th>"smallest"</th><th>"norm"</th><th>"largest"</th><th>"norm"</th></tr></thead>
                <tbody>
                    {move || extreme_rows().into_iter().map(|((small, small_norm), (large, large_norm))| view! {
                        <tr><td>{small}</td><td>{small_norm}</td><td>{large}</td><td>{large_norm}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
            {panel_heading("gradient-norms", "Gradient norm of every tensor over training", false)}
            {image_buttons("gradient-heatmap", heatmap_ref, "glassbox-gradient-norms", message)}
            <canvas id="gradient-heatmap" node_ref=heatmap_ref width="1140" height="400"
                aria-label="Gradient norm per tensor and training step"
                on:mousemove=on_heatmap_move
                on:mouseleave=move |_| heatmap_readout.set(None)></canvas>
            <p id="heatmap-readout" class="tooltip" aria-live="polite">
                {move || heatmap_readout.get().unwrap_or_else(|| "Hover a cell to read a tensor's gradient norm at that step.".into())}
            </p>
            {panel_heading("activations", "Activations", true)}
            <ul id="activation-warnings" class="findings">
                {move || activation_warnings().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
            </ul>
            {image_buttons("activation-grid", grid_ref, "glassbox-activations", message)}
            <canvas id="activation-grid" node_ref=grid_ref width="1140" height="680"
                aria-label="Histogram of every sub-module's output with its mean"></canvas>
            <table id="dead-neurons">
                <caption>"Feed-forward units that are zero for every token of the batch"</caption>
                <thead><tr><th>"layer"</th><th>"dead units"</th><th>"share"</th><th>"first dead units"</th></tr></thead>
                <tbody>
                    {move || dead_rows().into_iter().map(|layer| {
                        let first: Vec<String> = layer.dead.iter().take(12).map(usize::to_string).collect();
                        let more = if layer.dead.len() > 12 { " …" } else { "" };
                        view! {
                            <tr>
                                <td>{layer.layer}</td>
                                <td>{format!("{} of {}", layer.dead.len(), layer.width)}</td>
                                <td>{format!("{:.1}%", 100.0 * layer.share())}</td>
                                <td>{format!("{}{more}", first.join(" "))}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {image_buttons("dead-curve", dead_ref, "glassbox-dead-units", message)}
            <canvas id="dead-curve" node_ref=dead_ref width="1140" height="260"
                aria-label="Share of dead feed-forward units per layer over training"></canvas>
        </section>
    }
}

/// A labelled threshold input. A value that is not a positive number is refused with a message
/// and the input goes back to the threshold in force.
fn threshold_input(
    id: &'static str,
    label: &'static str,
    value: impl Fn() -> f64 + Send + Sync + Copy + 'static,
    set: impl Fn(f64) + Send + Sync + 'static,
    message: RwSignal<Option<String>>,
) -> impl IntoView {
    view! {
        <label>{label}" "
            <input id=id type="text" inputmode="decimal" aria-label=label class="number"
                prop:value=move || format!("{:e}", value())
                on:change=move |event| {
                    let text = event_target_value(&event);
                    match text.trim().parse::<f64>() {
                        Ok(parsed) if parsed.is_finite() && parsed > 0.0 => {
                            message.set(None);
                            set(parsed);
                        }
                        _ => {
                            let kept = value();
                            message.set(Some(format!(
                                "“{}” is not a positive number; the threshold stays {kept:e}.",
                                text.trim()
                            )));
                            event_target::<web_sys::HtmlInputElement>(&event).set_value(&format!("{kept:e}"));
                        }
                    }
                } />
        </label>
    }
}
