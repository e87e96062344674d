//! glassbox against PyTorch: the committed fixtures (`tests/fixtures/`, made by
//! `scripts/make_fixtures.py`) hold PyTorch's weights and what PyTorch computed from them; the
//! same weights loaded into glassbox must give the same numbers.
//!
//! Run with `--nocapture` to see the largest error found for each quantity.

use std::collections::BTreeMap;

use burn::tensor::Device;
use glassbox::model::trace::fixture_names;
use glassbox::model::{Checkpoint, Naming, Sidecars, Transformer};
use glassbox::train::{Batch, analyse_batch};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// One model's fixture files.
struct Fixture {
    checkpoint: Checkpoint,
    expected: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    json: Value,
}

fn load(name: &str) -> Fixture {
    let weights = std::fs::read(format!("{FIXTURES}/{name}.safetensors")).unwrap();
    let config = std::fs::read_to_string(format!("{FIXTURES}/{name}.config.json")).unwrap();
    let checkpoint = Checkpoint::parse(
        &weights,
        Sidecars {
            config_json: Some(&config),
            vocabulary: None,
        },
    )
    .unwrap();
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.expected.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut expected = BTreeMap::new();
    for (tensor_name, view) in file.iter() {
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
                .collect(),
            Dtype::I64 => view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                .collect(),
            other => panic!("unexpected dtype {other:?} for {tensor_name}"),
        };
        expected.insert(tensor_name.to_string(), (view.shape().to_vec(), values));
    }
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/{name}.expected.json")).unwrap(),
    )
    .unwrap();
    Fixture {
        checkpoint,
        expected,
        json,
    }
}

impl Fixture {
    fn tensor(&self, name: &str) -> &(Vec<usize>, Vec<f64>) {
        self.expected
            .get(name)
            .unwrap_or_else(|| panic!("fixture lacks {name}"))
    }

    fn ids(&self, name: &str) -> Vec<Vec<u32>> {
        let (shape, values) = self.tensor(name);
        values
            .chunks(shape[1])
            .map(|row| row.iter().map(|&id| id as u32).collect())
            .collect()
    }
}

/// Largest absolute difference; panics naming the first element over `tolerance`.
fn max_abs_error(what: &str, actual: &[f32], expected: &[f64], tolerance: f64) -> f64 {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let error = (f64::from(a) - e).abs();
        assert!(
            error <= tolerance,
            "{what}[{index}]: glassbox {a} vs PyTorch {e} (error {error:e} > {tolerance:e})"
        );
        worst = worst.max(error);
    }
    worst
}

fn forward_parity(name: &str) {
    let fixture = load(name);
    assert_eq!(fixture.checkpoint.naming, Naming::PyTorch);
    let device = Device::flex();
    let model = fixture.checkpoint.to_model(&device).unwrap();
    let ids = fixture.ids("input_ids");
    let tokens = model.token_tensor(&ids, &device).unwrap();
    let (logits, recorder) = model.forward_traced(tokens);
    let trace = pollster::block_on(recorder.read()).unwrap();

    let mut attention_error = 0.0f64;
    for capture in &trace.attention {
        let (shape, values) = fixture.tensor(&format!("attention.layers.{}", capture.layer));
        assert_eq!(
            shape,
            &vec![capture.batch, capture.heads, capture.queries, capture.keys]
        );
        attention_error = attention_error.max(max_abs_error(
            &format!("attention layer {}", capture.layer),
            &capture.values,
            values,
            1e-5,
        ));
    }
    assert_eq!(trace.attention.len(), fixture.checkpoint.config.num_layers);

    // Captures are matched to the fixture's hooks by role and layer (`fixture_names`), never
    // by label: post-LN's layer output is one capture and two PyTorch hooks.
    let norm = fixture.checkpoint.config.norm_position;
    let mut activation_error = 0.0f64;
    let mut compared = 0;
    for capture in &trace.modules {
        let names = fixture_names(capture.site(), norm);
        assert!(!names.is_empty(), "{} has no fixture tensor", capture.path);
        for name in names {
            let (shape, values) = fixture.tensor(&name);
            assert_eq!(shape, &capture.shape, "shape of {name}");
            activation_error = activation_error.max(max_abs_error(
                &format!("{name} ({})", capture.path),
                &capture.values,
                values,
                1e-4,
            ));
            compared += 1;
        }
    }
    let expected_modules = fixture
        .expected
        .keys()
        .filter(|key| key.starts_with("modules."))
        .count();
    assert_eq!(compared, expected_modules, "every fixture module compared");

    let logits: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().unwrap();
    let logits_error = max_abs_error("logits", &logits, &fixture.tensor("logits").1, 1e-4);
    println!(
        "{name}: largest error: attention {attention_error:.2e}, activations {activation_error:.2e} \
         ({compared} modules), logits {logits_error:.2e}"
    );
}

#[test]
fn seed_forward_matches_pytorch() {
    forward_parity("seed");
}

#[test]
fn tiny_pre_ln_causal_gelu_forward_matches_pytorch() {
    forward_parity("tiny");
}

fn gradient_parity(name: &str) {
    let fixture = load(name);
    // The page's "analyse one batch" path: one forward and backward pass, reduced on the device.
    let model: Transformer = fixture.checkpoint.to_model(&Device::flex()).unwrap();
    let batch = Batch {
        inputs: fixture.ids("input_ids"),
        targets: fixture.ids("targets"),
    };
    let analysis = pollster::block_on(analyse_batch(&model, &batch)).unwrap();
    let loss_value = analysis.loss;
    let expected_loss = fixture.json["loss"].as_f64().unwrap();
    let loss_error = (loss_value - expected_loss).abs() / expected_loss;
    assert!(loss_error <= 1e-5, "loss {loss_value} vs {expected_loss}");
    let statistics = analysis.gradients;
    let expected = fixture.json["gradients"].as_object().unwrap();
    assert_eq!(statistics.len(), expected.len(), "one entry per parameter");
    let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
    for parameter in &statistics {
        let want = &expected[&parameter.path];
        let field = |key: &str| want[key].as_f64().unwrap();
        assert_eq!(
            parameter.gradient.count as u64,
            want["numel"].as_u64().unwrap()
        );
        // A key bias shifts every score of a query equally, so softmax cancels its gradient:
        // PyTorch's is zero up to round-off (norm ~1e-9), and so must ours be.
        if field("norm") < 1e-7 {
            assert!(
                parameter.gradient.norm < 1e-7,
                "{}: PyTorch's gradient is zero up to round-off, glassbox's norm is {:e}",
                parameter.path,
                parameter.gradient.norm
            );
            continue;
        }
        // Relative to the gradient's own scale: a mean or a whole gradient that is zero up to
        // round-off (key biases, whose gradient softmax cancels) has no meaningful relative error.
        let scale = field("std").max(field("norm") / (parameter.gradient.count as f64).sqrt());
        let got = parameter.gradient;
        for (key, value) in [
            ("mean", got.mean),
            ("std", got.std),
            ("min", got.min),
            ("max", got.max),
            ("norm", got.norm),
        ] {
            let reference = field(key);
            let error = (value - reference).abs() / reference.abs().max(scale).max(1e-7);
            assert!(
                error <= 1e-4,
                "{} {key}: glassbox {value:e} vs PyTorch {reference:e} (relative error {error:e})",
                parameter.path
            );
            let entry = worst.entry(key).or_default();
            *entry = entry.max(error);
        }
    }
    let worst: Vec<String> = worst
        .iter()
        .map(|(key, error)| format!("{key} {error:.2e}"))
        .collect();
    println!(
        "{name}: loss relative error {loss_error:.2e}; largest relative gradient-statistic errors: {}",
        worst.join(", ")
    );
}

#[test]
fn seed_gradient_statistics_match_pytorch() {
    gradient_parity("seed");
}

#[test]
fn tiny_gradient_statistics_match_pytorch() {
    gradient_parity("tiny");
}

#[test]
fn parameter_counts_match_pytorch_exactly() {
    for name in ["seed", "tiny"] {
        let fixture = load(name);
        let model = fixture.checkpoint.to_model(&Device::flex()).unwrap();
        let counts = &fixture.json["parameter_count"];
        assert_eq!(
            model.parameter_count() as u64,
            counts["total"].as_u64().unwrap(),
            "{name} total"
        );
        assert_eq!(
            counts["total"], fixture.json["pytorch_parameter_count"]["total"],
            "{name}: the split q/k/v count equals PyTorch's packed count"
        );
        let tensors = counts["tensors"].as_object().unwrap();
        assert_eq!(tensors.len(), fixture.checkpoint.parameters.len());
        for (path, parameter) in &fixture.checkpoint.parameters {
            assert_eq!(
                parameter.values.len() as u64,
                tensors[path].as_u64().unwrap(),
                "{name} {path}"
            );
        }
    }
    assert_eq!(
        load("seed").checkpoint.config,
        glassbox::model::TransformerConfig::seed()
    );
}
