//! The "Inside" tab: gradient flow and activations of the last analysed backward pass, from a
//! training step or from one batch on the explorer's model, with the detectors in words.
//!
//! [`InsideState`] is what the training tab and the explorer feed; [`InsidePanel`] provides an
//! `InsideView` (the tab's own typed view state) to small components that each draw one part.
//! What the tab says and decides is plain Rust in `page::inside`.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;

use crate::analysis::activations::{DeadHistory, SPARSE_THRESHOLD, dead_units_note};
use crate::analysis::gradients::{GradientFinding, GradientHistory, GradientThresholds, detect};
use crate::charts::activations::{draw_activation_grid, draw_dead_share, grid_rows};
use crate::charts::gradients::{
    GradientHeatmapData, GradientHeatmapLayout, GradientPanelsData, GradientPanelsLayout,
    draw_gradient_heatmap, draw_gradient_panels,
};
use crate::page::inside::{self as words, Shown};
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
    /// Which thread computed it: `worker` (the model worker) or `page`.
    made_in: &'static str,
}

impl Latest {
    /// The parts the tab shows.
    fn shown(&self) -> Shown<'_> {
        Shown {
            source: &self.source,
            step: self.step,
            loss: self.analysis.loss,
            gradients: &self.analysis.gradients,
            activations: &self.analysis.activations,
        }
    }
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
        let paths: Vec<&String> = report.tensor_grad_norms.iter().map(|(p, _)| p).collect();
        let norms: Vec<f64> = report.tensor_grad_norms.iter().map(|(_, n)| *n).collect();
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
                // Training runs in the model worker.
                made_in: "worker",
            }));
        }
    }

    /// Keeps the analysis of one batch outside training.
    pub fn record_batch(&self, source: String, analysis: Analysis, made_in: &'static str) {
        self.latest.set_value(Some(Latest {
            source,
            step: None,
            analysis: Arc::new(analysis),
            made_in,
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

impl Default for InsideState {
    fn default() -> Self {
        Self::new()
    }
}

/// The tab's view state, provided by [`InsidePanel`] to its parts.
#[derive(Clone, Copy)]
struct InsideView {
    state: InsideState,
    /// Whether the tab is shown; hidden views are not redrawn.
    visible: Signal<bool>,
    thresholds: RwSignal<GradientThresholds>,
    /// The last failure to report.
    message: RwSignal<Option<String>>,
    /// Charts drawn so far (the browser tests wait on it).
    draws: RwSignal<u32>,
    findings: Memo<Vec<GradientFinding>>,
}

impl InsideView {
    /// The last analysis, tracking redraw requests.
    fn latest(&self) -> Option<Latest> {
        self.state.version.track();
        self.state.latest.get_value()
    }

    /// Counts a drawn chart, or reports why `what` could not be drawn.
    fn drawn<T>(&self, what: &str, outcome: Result<T, String>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.draws.update(|count| *count += 1);
                Some(value)
            }
            Err(failure) => {
                self.message
                    .set(Some(format!("Drawing {what} failed: {failure}")));
                None
            }
        }
    }
}

fn use_view() -> InsideView {
    expect_context::<InsideView>()
}

/// The Inside tab. It analyses one batch of the explorer's model by itself the first time it
/// is shown with nothing to show.
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
    /// Changes when the explorer installs a model, so that a tab shown before the model was
    /// loaded analyses it once it is.
    #[prop(optional, into)]
    model_version: Option<Signal<u32>>,
) -> impl IntoView {
    let thresholds = RwSignal::new(GradientThresholds::default());
    let findings = Memo::new(move |_| {
        let thresholds = thresholds.get();
        state.version.track();
        state.latest.with_value(|latest| {
            let Some(latest) = latest else {
                return Vec::new();
            };
            state.history.with_value(|history| {
                // The fluctuation detector reads the training history: only training has it.
                let history = history.as_ref().filter(|_| latest.step.is_some());
                detect(&latest.analysis.gradients, history, &thresholds)
            })
        })
    });
    let tab = InsideView {
        state,
        visible,
        thresholds,
        message,
        draws: RwSignal::new(0),
        findings,
    };
    provide_context(tab);

    // First showing: analyse the explorer's model as "Analyse one batch" would. A model that
    // is not loaded yet is no failure to report; the next model change tries again.
    let done_once = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(model_version) = model_version {
            model_version.track();
        }
        let has_analysis = tab.latest().is_some();
        let open = words::should_analyse_on_open(
            visible.get(),
            has_analysis,
            analysing.get_untracked(),
            done_once.get_value(),
        );
        if open && analyse.run(()).is_ok() {
            done_once.set_value(true);
        }
        if has_analysis {
            done_once.set_value(true);
        }
    });

    let counts = move || {
        let latest = tab.latest();
        let findings = findings.get();
        words::counts(latest.as_ref().map(Latest::shown), &findings)
    };
    view! {
        <section id="inside" class="inside"
            data-source=move || counts().source
            data-made-in=move || tab.latest().map_or("", |latest| latest.made_in)
            data-tensors=move || counts().tensors.to_string()
            data-findings=move || counts().findings.to_string()
            data-problems=move || counts().problems
            data-modules=move || counts().modules.to_string()
            data-sparse=move || counts().sparse.to_string()
            data-dead=move || counts().dead.to_string()
            data-draws=move || tab.draws.get().to_string()>
            <AnalysisBar analyse=analyse analysing=analysing />
            <p id="inside-message" class="error" role="alert" hidden=move || message.get().is_none()>
                {move || message.get()}
            </p>
            {panel_heading("gradient-flow", "Gradient flow", true)}
            <ThresholdControls />
            <GradientPanels />
            <GradientFindings />
            {panel_heading("gradient-norms", "Gradient norm of every tensor over training", false)}
            <GradientNorms />
            {panel_heading("activations", "Activations", true)}
            <ActivationGrid />
            <DeadUnits />
        </section>
    }
}

/// The "analyse one batch" button and the line that says what is shown.
#[component]
fn AnalysisBar(
    analyse: Callback<(), Result<(), String>>,
    analysing: Signal<bool>,
) -> impl IntoView {
    let tab = use_view();
    let source = move || {
        let latest = tab.latest();
        words::source_line(latest.as_ref().map(Latest::shown), analysing.get())
    };
    view! {
        <div class="controls" role="group" aria-label="Analysis">
            <button id="analyse-batch" type="button" disabled=move || analysing.get()
                on:click=move |_| {
                    if let Err(failure) = analyse.run(()) {
                        tab.message.set(Some(failure));
                    }
                }>"Analyse one batch of the explorer's model"</button>
            <span id="inside-source" aria-live="polite">{source}</span>
        </div>
    }
}

/// The three detectors' editable thresholds.
#[component]
fn ThresholdControls() -> impl IntoView {
    let InsideView {
        thresholds,
        message,
        ..
    } = use_view();
    view! {
        <div class="controls" role="group" aria-label="Gradient thresholds">
            {threshold_input("threshold-vanishing", "Vanishing: norm below", move || thresholds.get().vanishing, move |v| thresholds.update(|t| t.vanishing = v), message)}
            {threshold_input("threshold-exploding", "Exploding: norm above", move || thresholds.get().exploding, move |v| thresholds.update(|t| t.exploding = v), message)}
            {threshold_input("threshold-fluctuating", "Fluctuating norm: one tensor's norm std/mean over the last 20 analysed steps above", move || thresholds.get().fluctuation, move |v| thresholds.update(|t| t.fluctuation = v), message)}
        </div>
    }
}

/// The four gradient panels, their hover read-out and the JSON export of every statistic.
#[component]
fn GradientPanels() -> impl IntoView {
    let tab = use_view();
    let canvas_ref = NodeRef::<html::Canvas>::new();
    let layout = StoredValue::new(None::<GradientPanelsLayout>);
    let selected = RwSignal::new(None::<usize>);
    let readout = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let (latest, thresholds, selected) = (tab.latest(), tab.thresholds.get(), selected.get());
        let findings = tab.findings.get();
        let (true, Some(canvas), Some(latest)) = (tab.visible.get(), canvas_ref.get(), latest)
        else {
            return;
        };
        let gradients = &latest.analysis.gradients;
        let flagged = gradients
            .iter()
            .enumerate()
            .flat_map(|(index, gradient)| {
                findings
                    .iter()
                    .filter(move |finding| finding.path == gradient.path)
                    .map(move |finding| (index, finding.problem))
            })
            .collect();
        let data = GradientPanelsData {
            gradients,
            flagged,
            thresholds,
            selected,
        };
        let style = web::chart_style();
        let outcome = with_area(&canvas, |area| draw_gradient_panels(area, &data, &style));
        if let Some(drawn) = tab.drawn("the gradient panels", outcome) {
            layout.set_value(Some(drawn));
        }
    });
    let on_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = canvas_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let tensor = layout.with_value(|layout| {
            layout
                .as_ref()
                .and_then(|layout| layout.tensor_at(x as i32, y as i32))
        });
        selected.set(tensor);
        readout.set(tensor.and_then(|index| {
            tab.state.latest.with_value(|latest| {
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
    let export_json = move |_| {
        let Some(latest) = tab.state.latest.get_value() else {
            tab.message.set(Some("Nothing analysed yet.".into()));
            return;
        };
        let findings = tab.findings.get_untracked();
        let value = words::export_json(latest.shown(), &tab.thresholds.get_untracked(), &findings);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(failure) =
            web::files::download("glassbox-gradients-activations.json", text.as_bytes())
        {
            tab.message.set(Some(format!("Export failed: {failure}")));
        }
    };
    view! {
        {image_buttons("gradient-panels", canvas_ref, "glassbox-gradient-panels", tab.message)}
        <button id="inside-json" type="button" on:click=export_json>"JSON (all statistics)"</button>
        <canvas id="gradient-panels" node_ref=canvas_ref width="1140" height="640"
            aria-label="Gradient mean, norm, std and range per parameter tensor"
            on:mousemove=on_move
            on:mouseleave=move |_| { selected.set(None); readout.set(None); }></canvas>
        <p id="gradient-readout" class="tooltip" aria-live="polite">
            {move || readout.get().unwrap_or_else(|| "Hover a panel to read one tensor's statistics.".into())}
        </p>
    }
}

/// The detectors' findings in words and the table of extreme norms.
#[component]
fn GradientFindings() -> impl IntoView {
    let tab = use_view();
    let lines = move || {
        let latest = tab.latest();
        words::finding_lines(latest.as_ref().map(Latest::shown), &tab.findings.get())
    };
    let excluded = move || {
        tab.latest()
            .and_then(|latest| words::excluded_note(&latest.analysis.gradients))
            .unwrap_or_default()
    };
    let rows = move || {
        tab.latest().map_or_else(Vec::new, |latest| {
            words::extreme_rows(&latest.analysis.gradients)
        })
    };
    view! {
        <ul id="gradient-findings" class="findings">
            {move || lines().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
        </ul>
        <p class="note">{excluded}</p>
        <table id="gradient-extremes">
            <caption>"The five smallest and five largest gradient norms"</caption>
            <thead><tr><th>"smallest"</th><th>"norm"</th><th>"largest"</th><th>"norm"</th></tr></thead>
            <tbody>
                {move || rows().into_iter().map(|((small, small_norm), (large, large_norm))| view! {
                    <tr><td>{small}</td><td>{small_norm}</td><td>{large}</td><td>{large_norm}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The tensors × steps heatmap of the gradient norm over training, with its read-out.
#[component]
fn GradientNorms() -> impl IntoView {
    let tab = use_view();
    let canvas_ref = NodeRef::<html::Canvas>::new();
    let layout = StoredValue::new(None::<GradientHeatmapLayout>);
    let readout = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        tab.state.version.track();
        let thresholds = tab.thresholds.get();
        let (true, Some(canvas)) = (tab.visible.get(), canvas_ref.get()) else {
            return;
        };
        let style = web::chart_style();
        let outcome = tab.state.history.with_value(|history| {
            let empty = GradientHistory::new(Vec::new(), 4);
            let history = history.as_ref().unwrap_or(&empty);
            let rows = history.paths().len().max(4) as u32;
            web::canvas::set_css_height(&canvas, rows * HEATMAP_ROW_PX + HEATMAP_MARGIN_PX);
            let data = GradientHeatmapData {
                history,
                thresholds,
                cursor: None,
            };
            with_area(&canvas, |area| draw_gradient_heatmap(area, &data, &style))
        });
        if let Some(drawn) = tab.drawn("the gradient heatmap", outcome) {
            layout.set_value(Some(drawn));
        }
    });
    let on_move = move |event: leptos::ev::MouseEvent| {
        let Some(canvas) = canvas_ref.get_untracked() else {
            return;
        };
        let Some((x, y)) = web::canvas_point(&canvas, &event) else {
            return;
        };
        let cell = layout.with_value(|layout| {
            layout
                .as_ref()
                .and_then(|layout| layout.cell_at(x as i32, y as i32))
        });
        readout.set(cell.and_then(|(tensor, column)| {
            tab.state.history.with_value(|history| {
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
    view! {
        {image_buttons("gradient-heatmap", canvas_ref, "glassbox-gradient-norms", tab.message)}
        <canvas id="gradient-heatmap" node_ref=canvas_ref width="1140" height="400"
            aria-label="Gradient norm per tensor and training step"
            on:mousemove=on_move
            on:mouseleave=move |_| readout.set(None)></canvas>
        <p id="heatmap-readout" class="tooltip" aria-live="polite">
            {move || readout.get().unwrap_or_else(|| "Hover a cell to read a tensor's gradient norm at that step.".into())}
        </p>
    }
}

/// The sparse-module warnings and the histogram of every captured tensor.
#[component]
fn ActivationGrid() -> impl IntoView {
    let tab = use_view();
    let canvas_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let latest = tab.latest();
        let (true, Some(canvas), Some(latest)) = (tab.visible.get(), canvas_ref.get(), latest)
        else {
            return;
        };
        let modules = &latest.analysis.activations.modules;
        web::canvas::set_css_height(
            &canvas,
            grid_rows(modules.len()).max(1) as u32 * GRID_ROW_PX,
        );
        let style = web::chart_style();
        let outcome = with_area(&canvas, |area| {
            draw_activation_grid(area, modules, SPARSE_THRESHOLD, &style)
        });
        tab.drawn("the activations", outcome);
    });
    let warnings = move || {
        tab.latest().map_or_else(Vec::new, |latest| {
            words::activation_warnings(&latest.analysis.activations)
        })
    };
    view! {
        <ul id="activation-warnings" class="findings">
            {move || warnings().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
        </ul>
        {image_buttons("activation-grid", canvas_ref, "glassbox-activations", tab.message)}
        <canvas id="activation-grid" node_ref=canvas_ref width="1140" height="680"
            aria-label="Histogram of every captured tensor with its mean"></canvas>
    }
}

/// The dead feed-forward units per layer, why none can be dead without a ReLU, and their share
/// over training.
#[component]
fn DeadUnits() -> impl IntoView {
    let tab = use_view();
    let canvas_ref = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        tab.state.version.track();
        let (true, Some(canvas)) = (tab.visible.get(), canvas_ref.get()) else {
            return;
        };
        let style = web::chart_style();
        let outcome = tab
            .state
            .dead
            .with_value(|dead| with_area(&canvas, |area| draw_dead_share(area, dead, &style)));
        if let Err(failure) = outcome {
            tab.message.set(Some(format!(
                "Drawing the dead-unit curve failed: {failure}"
            )));
        }
    });
    let rows = move || {
        tab.latest().map_or_else(Vec::new, |latest| {
            latest
                .analysis
                .activations
                .dead
                .iter()
                .map(words::dead_row)
                .collect()
        })
    };
    let note = move || {
        tab.latest()
            .and_then(|latest| dead_units_note(&latest.analysis.activations))
    };
    view! {
        <table id="dead-neurons">
            <caption>"Feed-forward units that are zero for every token of the batch"</caption>
            <thead><tr><th>"layer"</th><th>"dead units"</th><th>"share"</th><th>"first dead units"</th></tr></thead>
            <tbody>
                {move || rows().into_iter().map(|[layer, dead, share, first]| view! {
                    <tr><td>{layer}</td><td>{dead}</td><td>{share}</td><td>{first}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        <p id="dead-note" class="note" hidden=move || note().is_none()>{note}</p>
        {image_buttons("dead-curve", canvas_ref, "glassbox-dead-units", tab.message)}
        <canvas id="dead-curve" node_ref=canvas_ref width="1140" height="260"
            aria-label="Share of dead feed-forward units per layer over training"></canvas>
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
