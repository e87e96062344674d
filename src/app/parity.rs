//! The internal parity check (`?parity=tiny`, `?parity=seed`, and `?parity=hf/gpt2&files=…`
//! for a HuggingFace folder of `tests/fixtures/hf/`): loads a PyTorch fixture, runs it
//! through the page's own code on the page's device (WebGPU, or the CPU) and reports how far
//! glassbox's numbers lie from PyTorch's, for the browser tests.
//!
//! The fixture files are not part of the page: the browser tests' server serves
//! `tests/fixtures/` under [`FIXTURE_ROUTE`]. The comparison is
//! [`crate::analysis::parity`], the same one `tests/parity.rs` runs natively.

use leptos::prelude::*;
use serde_json::json;

use crate::analysis::hf_parity::{
    HfReference, compare_hf_forward, gradient_reference, gradients_by_checkpoint_name,
};
use crate::analysis::parity::{ForwardParity, GradientParity, Reference};
use crate::analysis::parity::{compare_forward, compare_gradients};
use crate::model::hf::open_folder;
use crate::model::{BackendChoice, BackendInfo, Checkpoint, Head, Sidecars};
use crate::train::{Batch, analyse_batch, masked_lm_batch, next_token_batch};

use super::session::start_backend;
use super::web;

/// Where the test server serves `tests/fixtures/`, relative to the page.
pub const FIXTURE_ROUTE: &str = "__fixtures";

/// The fixtures there are (`tests/fixtures/README.md`).
const FIXTURES: [&str; 2] = ["tiny", "seed"];

/// The HuggingFace fixture folders (`tests/fixtures/hf/`).
const HF_FIXTURES: [&str; 5] = ["bert-mlm", "bert-plain", "gpt2", "gpt2-bare", "roberta-mlm"];

/// What one check found, and how long its two passes took on the device.
struct Outcome {
    backend: BackendInfo,
    forward: Forward,
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

/// The forward comparison of a glassbox fixture or a HuggingFace one.
enum Forward {
    Glassbox(ForwardParity),
    Hf(crate::analysis::hf_parity::HfForwardParity),
}

impl Forward {
    fn within_tolerance(&self) -> bool {
        match self {
            Self::Glassbox(forward) => forward.within_tolerance(),
            Self::Hf(forward) => forward.within_tolerance(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Glassbox(forward) => json!(forward),
            Self::Hf(forward) => json!(forward),
        }
    }

    /// Attention, module outputs (hidden states), logits: each one's largest error.
    fn largest(&self) -> [f64; 3] {
        match self {
            Self::Glassbox(f) => [f.attention.largest, f.modules.largest, f.logits.largest],
            Self::Hf(f) => [f.attention.largest, f.hidden.largest, f.logits.largest],
        }
    }

    fn lines(&self) -> Vec<String> {
        match self {
            Self::Glassbox(f) => vec![
                format!("Attention: {}", f.attention.describe()),
                format!("Module outputs: {}", f.modules.describe()),
                format!("Logits: {}", f.logits.describe()),
            ],
            Self::Hf(f) => vec![
                format!("Attention: {}", f.attention.describe()),
                format!("Hidden states: {}", f.hidden.describe()),
                format!("Logits: {}", f.logits.describe()),
            ],
        }
    }
}

/// Reads a run's logits back to the host, asynchronously as WebGPU needs.
async fn read_logits(logits: burn::tensor::Tensor<3>) -> Result<Vec<f32>, String> {
    logits
        .into_data_async()
        .await
        .map_err(|error| format!("reading the logits back failed: {error:?}"))?
        .try_into_vec_as::<f32>()
        .map_err(|error| format!("the logits are not f32: {error:?}"))
}

/// Opens the HuggingFace fixture folder `hf/{name}` (its `files`, fetched from the test
/// server) with the page's folder loader and compares a traced run and "analyse one batch"
/// with `transformers`' numbers, on the page's device.
async fn check_hf(name: &str, files: &[String], choice: BackendChoice) -> Result<Outcome, String> {
    if !HF_FIXTURES.contains(&name) {
        return Err(format!(
            "there is no HuggingFace fixture called “{name}”: use one of {}",
            HF_FIXTURES.join(", ")
        ));
    }
    if let Some(file) = files
        .iter()
        .find(|file| file.contains('/') || file.starts_with('.'))
    {
        return Err(format!("“{file}” is not a file name of the folder"));
    }
    let backend = start_backend(choice).await;
    let mut folder = Vec::new();
    for file in files {
        folder.push((
            format!("{name}/{file}"),
            fetch(&format!("hf/{name}/{file}"), "").await?,
        ));
    }
    let expected = fetch(&format!("hf/{name}"), ".expected.safetensors").await?;
    let expected_json = fetch_text(&format!("hf/{name}"), ".expected.json").await?;
    let reference =
        HfReference::parse(&expected, &expected_json).map_err(|error| error.to_string())?;
    let device = &backend.device;
    let opened = open_folder(folder, device, |_, _| {})
        .await
        .map_err(|error| error.to_string())?;
    let text_b = reference.expected.text_b.as_deref();
    let tokens = opened.tokenizer.tokenize(&reference.expected.text, text_b);
    if tokens.ids() != reference.expected.ids {
        return Err(format!(
            "the token ids differ from transformers': {:?} vs {:?}",
            tokens.ids(),
            reference.expected.ids
        ));
    }
    let started_ms = web::now_ms();
    let model = &opened.model;
    let ids = model
        .token_tensor(&[tokens.ids()], device)
        .map_err(|e| e.to_string())?;
    let types = model
        .types_for(Some(&[tokens.segments()]), device)
        .map_err(|e| e.to_string())?;
    let (logits, recorder) = model.forward_traced_typed(ids, types);
    let trace = recorder.read().await.map_err(|error| error.to_string())?;
    let logits = read_logits(logits).await?;
    let forward_ms = web::now_ms() - started_ms;
    let forward = compare_hf_forward(&reference, &trace, &logits).map_err(|e| e.to_string())?;
    let analysis = reference
        .expected
        .analysis
        .as_ref()
        .ok_or("the fixture has no analysed batch (a model without a head)")?;
    let batch = match model.head {
        Head::MaskedLm => {
            let (mask_token, mask) = opened.tokenizer.mask().ok_or("no mask token")?;
            let unmasked = reference.expected.text.replace(mask_token, "Ishmael");
            let tokens = opened.tokenizer.tokenize(&unmasked, text_b);
            masked_lm_batch(&tokens, mask)
                .ok_or("too few tokens to mask")?
                .0
        }
        _ => next_token_batch(&tokens).ok_or("too few tokens")?,
    };
    let started_ms = web::now_ms();
    let result = analyse_batch(model, &batch)
        .await
        .map_err(|error| error.to_string())?;
    let analysis_ms = web::now_ms() - started_ms;
    let layout = opened.plan.config.layout;
    let gradients = gradients_by_checkpoint_name(&result.gradients, layout, &analysis.gradients);
    let gradients = compare_gradients(&gradient_reference(analysis), result.loss, &gradients)
        .map_err(|error| error.to_string())?;
    Ok(Outcome {
        backend,
        forward: Forward::Hf(forward),
        gradients,
        forward_ms,
        analysis_ms,
    })
}

/// Loads fixture `name` with the page's checkpoint loader, runs the traced forward pass and
/// "analyse one batch" on the page's device, reading everything back asynchronously, and
/// compares both with PyTorch's numbers.
async fn check(name: &str, choice: BackendChoice) -> Result<Outcome, String> {
    if !FIXTURES.contains(&name) {
        return Err(format!(
            "there is no parity fixture called “{name}”: use one of {}",
            FIXTURES.join(", ")
        ));
    }
    let backend = start_backend(choice).await;
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
    let logits = read_logits(logits).await?;
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
        forward: Forward::Glassbox(forward),
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
            "forward": self.forward.to_json(),
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
    let gradients = &outcome.gradients;
    let mut lines = outcome.forward.lines();
    lines.push(format!("Loss (relative): {}", gradients.loss.describe()));
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
    let choice = BackendChoice::from_query(web::query_param("backend").as_deref());
    let state = RwSignal::new("running");
    let status = RwSignal::new(format!("Checking the {fixture} fixture against PyTorch…"));
    let report = RwSignal::new(String::new());
    let numbers = RwSignal::new(None::<[f64; 5]>);
    let backend = RwSignal::new(String::new());
    let name = fixture.clone();
    web::spawn(async move {
        let outcome = match name.strip_prefix("hf/") {
            Some(folder) => {
                let files: Vec<String> = web::query_param("files")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|file| !file.is_empty())
                    .map(str::to_string)
                    .collect();
                check_hf(folder, &files, choice).await
            }
            None => check(&name, choice).await,
        };
        match outcome {
            Ok(outcome) => {
                let forward = &outcome.forward;
                let [attention, modules, logits] = forward.largest();
                numbers.set(Some([
                    attention,
                    modules,
                    logits,
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
