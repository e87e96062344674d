//! glassbox against PyTorch: the committed fixtures (`tests/fixtures/`, made by
//! `scripts/make_fixtures.py`) hold PyTorch's weights and what PyTorch computed from them; the
//! same weights loaded into glassbox must give the same numbers.
//!
//! Run with `--nocapture` to see the largest error found for each quantity.

use burn::tensor::Device;
use glassbox::analysis::parity::{ForwardParity, Reference, compare_forward, compare_gradients};
use glassbox::model::{Checkpoint, Naming, Sidecars, Transformer};
use glassbox::train::{Batch, analyse_batch};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// One model's fixture files.
struct Fixture {
    checkpoint: Checkpoint,
    reference: Reference,
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
    let tensors = std::fs::read(format!("{FIXTURES}/{name}.expected.safetensors")).unwrap();
    let json = std::fs::read_to_string(format!("{FIXTURES}/{name}.expected.json")).unwrap();
    // The page's WebGPU check (`?parity=`) reads the same files with the same function.
    let reference = Reference::parse(&tensors, &json).unwrap();
    Fixture {
        checkpoint,
        reference,
        json: serde_json::from_str(&json).unwrap(),
    }
}

/// The fixture's model run on burn-flex over its inputs, compared with PyTorch's numbers.
fn traced_forward(fixture: &Fixture) -> ForwardParity {
    let device = Device::flex();
    let model = fixture.checkpoint.to_model(&device).unwrap();
    let ids = fixture.reference.ids("input_ids").unwrap();
    let tokens = model.token_tensor(&ids, &device).unwrap();
    let (logits, recorder) = model.forward_traced(tokens);
    let trace = pollster::block_on(recorder.read()).unwrap();
    let logits: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().unwrap();
    compare_forward(
        &fixture.reference,
        &trace,
        &logits,
        fixture.checkpoint.config.norm_position,
    )
    .unwrap()
}

fn forward_parity(name: &str) {
    let fixture = load(name);
    assert_eq!(fixture.checkpoint.naming, Naming::PyTorch);
    let parity = traced_forward(&fixture);
    for (what, difference) in [
        ("attention", &parity.attention),
        ("module outputs", &parity.modules),
        ("logits", &parity.logits),
    ] {
        println!("{name}: {what}: {}", difference.describe());
        assert!(difference.compared > 0, "{name}: no {what} compared");
        assert!(
            difference.within_tolerance(),
            "{name}: {what}: {}",
            difference.describe()
        );
    }
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
    let batch = Batch::new(
        fixture.reference.ids("input_ids").unwrap(),
        fixture.reference.ids("targets").unwrap(),
    );
    let analysis = pollster::block_on(analyse_batch(&model, &batch)).unwrap();
    let parity = compare_gradients(&fixture.reference, analysis.loss, &analysis.gradients).unwrap();
    println!("{name}: loss: {}", parity.loss.describe());
    assert!(
        parity.loss.within_tolerance(),
        "{name}: loss: {}",
        parity.loss.describe()
    );
    // A key bias shifts every score of a query equally, so softmax cancels its gradient:
    // PyTorch's is zero up to round-off (norm ~1e-9), and so must ours be.
    println!("{name}: zero gradients: {}", parity.zero_norms.describe());
    assert!(
        parity.zero_norms.within_tolerance(),
        "{name}: PyTorch's gradient is zero up to round-off, glassbox's is not: {}",
        parity.zero_norms.describe()
    );
    for (key, difference) in &parity.statistics {
        println!("{name}: gradient {key}: {}", difference.describe());
        assert!(
            difference.compared > 0,
            "{name}: no gradient {key} compared"
        );
        assert!(
            difference.within_tolerance(),
            "{name}: gradient {key}: {}",
            difference.describe()
        );
    }
    assert_eq!(
        parity.statistics["norm"].compared + parity.zero_norms.compared,
        fixture.checkpoint.parameters.len(),
        "one gradient per parameter"
    );
}

/// The comparison the page and these tests share can fail on real data: a model whose second
/// layer's query weights are off by 1% is caught in that layer's attention, in the outputs
/// after it and in the logits, and not in the first layer's attention.
#[test]
fn a_slightly_wrong_model_fails_the_shared_comparison() {
    let mut fixture = load("tiny");
    let query = fixture
        .checkpoint
        .parameters
        .get_mut("layers.1.attn.query.weight")
        .unwrap();
    for value in &mut query.values {
        *value *= 1.01;
    }
    let parity = traced_forward(&fixture);
    assert!(
        !parity.attention.within_tolerance(),
        "{}",
        parity.attention.describe()
    );
    assert_eq!(
        parity.attention.worst.as_ref().unwrap().what,
        "attention.layers.1"
    );
    assert!(
        !parity.modules.within_tolerance(),
        "{}",
        parity.modules.describe()
    );
    assert!(
        !parity.logits.within_tolerance(),
        "{}",
        parity.logits.describe()
    );
    assert!(!parity.within_tolerance());
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
