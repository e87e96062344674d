//! Model diagnostics against PyTorch and against the model itself: FLOPs against
//! `torch.utils.flop_counter` (the parity fixtures), parameter counts against the fixtures and the
//! built model, and the activation memory predicted from shapes against a real traced forward.

use burn::tensor::Device;
use glassbox::analysis::diagnostics::{
    OpClass, activation_bytes, forward_flops, leaf_table, measured_trace_bytes, parameter_bytes,
    parameter_count, project_activation_bytes,
};
use glassbox::model::checkpoint::{FlatParameters, parse_config, read_parameters};
use glassbox::model::{Activation, NormPosition, Positional, TransformerConfig, run_traced};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> (TransformerConfig, Value) {
    let config = std::fs::read_to_string(format!("{FIXTURES}/{name}.config.json")).unwrap();
    let json = std::fs::read_to_string(format!("{FIXTURES}/{name}.expected.json")).unwrap();
    (
        parse_config(&config).unwrap(),
        serde_json::from_str(&json).unwrap(),
    )
}

fn u64_at(value: &Value, key: &str) -> u64 {
    value
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {key} in {value}"))
}

const LINEAR_OPS: [&str; 2] = ["aten.addmm", "aten.mm"];
const ATTENTION_OP: &str = "aten._scaled_dot_product_flash_attention_for_cpu";

#[test]
fn flops_match_torch_flop_counter() {
    for (name, total) in [("seed", 136_888_320), ("tiny", 7_938_048)] {
        let (config, json) = fixture(name);
        let flops = &json["flops"];
        let (batch, seq) = (
            u64_at(&json, "batch") as usize,
            u64_at(&json, "seq_len") as usize,
        );
        let count = forward_flops(&config, batch, seq);
        assert_eq!(u64_at(flops, "total"), total, "{name}: the fixture's total");
        assert_eq!(count.matmul_total(), total, "{name} total");
        assert!(
            count.total() > count.matmul_total(),
            "{name}: the rest counts"
        );

        // Per op: linears are addmm (with bias) plus mm (the packed in-projection).
        let by_op = &flops["forward_by_op"];
        let linear: u64 = LINEAR_OPS.iter().map(|op| u64_at(by_op, op)).sum();
        assert_eq!(count.class_total(OpClass::Linear), linear, "{name} linear");
        assert_eq!(
            count.class_total(OpClass::QueryKey) + count.class_total(OpClass::AttentionValue),
            u64_at(by_op, ATTENTION_OP),
            "{name} attention"
        );
        assert_eq!(
            count.class_total(OpClass::QueryKey),
            count.class_total(OpClass::AttentionValue)
        );

        // Per layer and the head outside the layers.
        let by_module = &flops["by_module"];
        assert_eq!(count.layers.len(), config.num_layers);
        for layer in 0..config.num_layers {
            let module = &by_module[format!("DummyTransformer.transformer.layers.{layer}")];
            let ops = module.as_object().unwrap();
            let expected: u64 = ops.values().map(|v| v.as_u64().unwrap()).sum();
            assert_eq!(
                count.per_layer_matmul(layer),
                expected,
                "{name} layer {layer}"
            );
            let layer_flops = &count.layers[layer];
            assert_eq!(
                layer_flops[&OpClass::Linear],
                LINEAR_OPS.iter().map(|op| u64_at(module, op)).sum::<u64>(),
                "{name} layer {layer} linear"
            );
            assert_eq!(
                layer_flops[&OpClass::QueryKey] + layer_flops[&OpClass::AttentionValue],
                u64_at(module, ATTENTION_OP),
                "{name} layer {layer} attention"
            );
            assert!(count.per_layer_total(layer) > expected);
        }
        let head = u64_at(&by_module["DummyTransformer.output"], "aten.addmm");
        assert_eq!(count.outside[&OpClass::Linear], head, "{name} head");
    }
}

#[test]
fn parameter_counts_match_the_fixtures_and_the_model() {
    for name in ["seed", "tiny"] {
        let (config, json) = fixture(name);
        let counts = &json["parameter_count"];
        let total = u64_at(counts, "total");
        let tensors = counts["tensors"].as_object().unwrap();
        let model = config.init(&Device::flex()).unwrap();
        let flat = FlatParameters::of(&model);
        let rows = leaf_table(&flat.paths);
        assert_eq!(rows.len(), tensors.len(), "{name}: one row per tensor");
        for row in &rows {
            let expected = tensors
                .get(&row.path)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("{name}: the fixture lacks {}", row.path));
            assert_eq!(row.count as u64, expected, "{name} {}", row.path);
            assert!((row.share - expected as f64 / total as f64).abs() < 1e-12);
        }
        let counted: usize = rows.iter().map(|row| row.count).sum();
        assert_eq!(counted as u64, total, "{name} total");
        assert_eq!(parameter_count(&config), total, "{name} from the config");
        assert_eq!(model.parameter_count() as u64, total);

        assert_eq!(parameter_bytes(counted, 4), total * 4);
        let parameters = pollster::block_on(read_parameters(&model)).unwrap();
        let f32_bytes: usize = parameters
            .values()
            .map(|p| p.values.len() * std::mem::size_of::<f32>())
            .sum();
        assert_eq!(
            parameter_bytes(counted, 4),
            f32_bytes as u64,
            "{name} bytes"
        );
    }
}

/// Token ids `batch × seq`, all below `vocab`.
fn tokens(batch: usize, seq: usize, vocab: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| {
            (0..seq)
                .map(|t| ((b * 31 + t * 7 + 1) % vocab) as u32)
                .collect()
        })
        .collect()
}

#[test]
fn activation_bytes_equal_a_real_trace() {
    let configs = [
        ("seed", fixture("seed").0, 2, 10),
        ("tiny", fixture("tiny").0, 2, 12),
        (
            "pre-LN causal GELU, sinusoidal",
            TransformerConfig::new(50, 16, 4, 32, 3)
                .with_norm_position(NormPosition::Pre)
                .with_causal(true)
                .with_activation(Activation::Gelu)
                .with_positional(Positional::Sinusoidal)
                .with_max_seq_len(16),
            3,
            7,
        ),
        (
            "no LayerNorm, no residual",
            TransformerConfig::new(40, 8, 2, 24, 2)
                .with_norm_position(NormPosition::None)
                .with_residual(false)
                .with_activation(Activation::Sigmoid),
            1,
            5,
        ),
    ];
    for (name, config, batch, seq) in configs {
        let model = config.init(&Device::flex()).unwrap();
        let trace = pollster::block_on(run_traced(
            &model,
            &tokens(batch, seq, config.vocab_size),
            &Device::flex(),
        ))
        .unwrap();
        let predicted = activation_bytes(&config, batch, seq);
        assert_eq!(predicted, measured_trace_bytes(&trace), "{name}");
        assert_eq!(
            project_activation_bytes(&config, &[batch], &[seq]),
            vec![vec![predicted]]
        );
    }
}
