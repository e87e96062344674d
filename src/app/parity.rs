//! The internal parity check (`?parity=tiny`, `?parity=seed`): loads a PyTorch fixture, runs it
//! through the page's own code on the page's device (WebGPU, or the CPU) and reports how far
//! glassbox's numbers lie from PyTorch's, for the browser tests.
//!
//! The fixture files are not part of the page: the browser tests' server serves
//! `tests/fixtures/` under [`FIXTURE_ROUTE`]. The comparison is
//! [`crate::analysis::parity`], the same one `tests/parity.rs` runs natively.

use leptos::prelude::*;
use serde_json::json;

use crate::analysis::parity::{ForwardParity, GradientParity, Reference};
use crate::analysis::parity::{compare_forward, compare_gradients};
use crate::model::{BackendInfo, Checkpoint, Sidecars};
use crate::train::{Batch, analyse_batch};

use super::session::start_backend;
use super::web;

/// Where the test server serves `tests/fixtures/`, relative to the page.
pub const FIXTURE_ROUTE: &str = "__fixtures";

/// The fixtures there are (`tests/fixtures/README.md`).
const FIXTURES: [&str; 2] = ["tiny", "seed"];

/// What one check found, and how long its two passes took on the device.
struct Outcome {
    backend: BackendInfo,
    forward: ForwardParity,
    gradients: GradientParity,
    forward_ms: f64,
    analysis_ms: f64,
}

/// Fetches `{FIXTURE_ROUTE}/{name}{suffix}`.
async fn fetch(name: &str, suffix: &str) -> Result<Vec<u8>, String> {
    web::files::fetch_bytes(&format!("{FIXTURE_ROUTE}/{name}{suffix}")).await
}

async fn fetch_text(name: &str, suffix: &str) -> Result<String, String> {
    String::from_utf8(fetch(name, suffix).await?)
        .map_err(|_| format!("{name}{suffix} is not UTF-8 text"))
}

/// Loads fixture `name` with the page's checkpoint loader, runs the traced forward pass and
/// "analyse one batch" on the page's device, reading everything back asynchronously, and
/// compares both with PyTorch's numbers.
async fn check(name: &str, force_cpu: bool) -> Result<Outcome, String> {
    if !FIXTURES.contains(&name) {
        return Err(format!(
            "there is no parity fixture called “{name}”: use one of {}",
            FIXTURES.join(", ")
        ));
    }
    let backend = start_backend(force_cpu).await;
    let weights = fetch(name, ".safetensors").await?;
    let config = fetch_text(name, ".config.json").await?;
    let expected = fetch(name, ".expected.safetensors").await?;
    let expected_json = fetch_text(name, ".expected.json").await?;
    let reference =
        Reference::parse(&expected, &expected_json).map_err(|error| error.to_string())?;
    let checkpoint = Checkpoint::parse(
        &weights,
        Sidecars {
            config_json: Some(&config),
            vocabulary: None,
        },
    )
    .map_err(|error| format!("{name}.safetensors: {error}"))?;
    let device = &backend.device;
    let model = checkpoint
        .to_model(device)
        .map_err(|error| format!("{name}.safetensors: {error}"))?;
    let inputs = reference.ids("input_ids").map_err(|e| e.to_string())?;
    let targets = reference.ids("targets").map_err(|e| e.to_string())?;

    let started_ms = web::now_ms();
    let tokens = model
        .token_tensor(&inputs, device)
        .map_err(|error| error.to_string())?;
    let (logits, recorder) = model.forward_traced(tokens);
    let trace = recorder.read().await.map_err(|error| error.to_string())?;
    let logits = logits
        .into_data_async()
        .await
        .map_err(|error| format!("reading the logits back failed: {error:?}"))?
        .try_into_vec_as::<f32>()
        .map_err(|error| format!("the logits are not f32: {error:?}"))?;
    let forward_ms = web::now_ms() - started_ms;
    let forward = compare_forward(&reference, &trace, &logits, checkpoint.config.norm_position)
        .map_err(|e| e.to_string())?;

    let started_ms = web::now_ms();
    let analysis = analyse_batch(&model, &Batch::new(inputs, targets))
        .await
        .map_err(|error| error.to_string())?;
    let analysis_ms = web::now_ms() - started_ms;
    let gradients = compare_gradients(&reference, analysis.loss, &analysis.gradients)
        .map_err(|error| error.to_string())?;
    Ok(Outcome {
        backend,
        forward,
        gradients,
        forward_ms,
        analysis_ms,
    })
}

impl Outcome {
    /// The report as JSON: every difference with its tolerance and where it is.
    fn to_json(&self, name: &str) -> String {
        let value = json!({
            "format": "glassbox.parity",
            "fixture": name,
            "backend": self.backend.label,
            "webgpu": self.backend.webgpu,
            "forward": self.forward,
            "gradients": self.gradients,
            "forward_ms": self.forward_ms,
            "analysis_ms": self.analysis_ms,
            "within_tolerance": self.forward.within_tolerance() && self.gradients.within_tolerance(),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// The largest relative error over every gradient statistic.
    fn largest_gradient_error(&self) -> f64 {
        self.gradients
            .statistics
            .values()
            .map(|difference| difference.largest)
            .fold(0.0, f64::max)
    }
}

/// Each quantity's largest error in words, one per line.
fn summary(outcome: &Outcome) -> String {
    let forward = &outcome.forward;
    let gradients = &outcome.gradients;
    let mut lines = vec![
        format!("Attention: {}", forward.attention.describe()),
        format!("Module outputs: {}", forward.modules.describe()),
        format!("Logits: {}", forward.logits.describe()),
        format!("Loss (relative): {}", gradients.loss.describe()),
    ];
    for (key, difference) in &gradients.statistics {
        lines.push(format!(
            "Gradient {key} (relative): {}",
            difference.describe()
        ));
    }
    lines.push(format!(
        "Gradients zero up to round-off: {}",
        gradients.zero_norms.describe()
    ));
    lines.join("\n")
}

/// The parity check's page: a status line, then the report as `<pre id="parity">` JSON with
/// each quantity's largest error in `data-*` attributes (`data-state` is `running`, `done` or
/// `error`).
#[component]
pub fn ParityPage(
    /// The fixture to check, from `?parity=`.
    fixture: String,
) -> impl IntoView {
    let force_cpu = web::query_param("backend").as_deref() == Some("cpu");
    let state = RwSignal::new("running");
    let status = RwSignal::new(format!("Checking the {fixture} fixture against PyTorch…"));
    let report = RwSignal::new(String::new());
    let numbers = RwSignal::new(None::<[f64; 5]>);
    let backend = RwSignal::new(String::new());
    let name = fixture.clone();
    web::spawn(async move {
        match check(&name, force_cpu).await {
            Ok(outcome) => {
                let forward = &outcome.forward;
                numbers.set(Some([
                    forward.attention.largest,
                    forward.modules.largest,
                    forward.logits.largest,
                    outcome.largest_gradient_error(),
                    outcome.gradients.loss.largest,
                ]));
                backend.set(outcome.backend.label.clone());
                status.set(format!(
                    "{} on {}: forward {:.0} ms, analysis {:.0} ms.\n{}",
                    if forward.within_tolerance() && outcome.gradients.within_tolerance() {
                        "Within tolerance"
                    } else {
                        "OVER TOLERANCE"
                    },
                    outcome.backend.label,
                    outcome.forward_ms,
                    outcome.analysis_ms,
                    summary(&outcome)
                ));
                report.set(outcome.to_json(&name));
                state.set("done");
            }
            Err(message) => {
                status.set(format!("The parity check could not run: {message}"));
                state.set("error");
            }
        }
    });
    let number =
        move |index: usize| move || numbers.get().map(|values| format!("{:e}", values[index]));
    view! {
        <main class="parity">
            <h1>"glassbox against PyTorch: the " {fixture} " fixture"</h1>
            <p id="parity-status" style="white-space: pre-line">{move || status.get()}</p>
            <pre id="parity" data-state=move || state.get() data-backend=move || backend.get()
                data-attention=number(0) data-modules=number(1) data-logits=number(2)
                data-gradients=number(3) data-loss=number(4)>{move || report.get()}</pre>
        </main>
    }
}
