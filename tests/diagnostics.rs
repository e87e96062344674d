//! Model diagnostics against PyTorch and against the model itself: FLOPs against
//! `torch.utils.flop_counter` (the parity fixtures), parameter counts against the fixtures and the
//! built model, the activations a training step keeps for backward against what PyTorch's
//! autograd saves (`autograd_saved.json`), and the weight statistics read back from a model.

use burn::tensor::Device;
use glassbox::analysis::diagnostics::{
    BenchPass, OpClass, SavedPart, forward_flops, leaf_table, parameter_bytes, parameter_count,
    saved_for_backward,
};
use glassbox::model::checkpoint::{FlatParameters, parse_config, read_parameters};
use glassbox::model::{BackendInfo, TransformerConfig};
use glassbox::page::diagnostics::{DEFAULT_TRAINING_BATCH, ParamCounts};
use glassbox::train::speed::{CPU_LABEL, SpeedProbe};
use glassbox::train::weights::{parameter_shapes, weight_statistics};
use glassbox::train::{Task, TaskKind, TrainConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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

/// The activations a training step keeps for backward, computed from shapes, against the bytes
/// of every storage PyTorch's autograd saves for the same forward and loss
/// (`scripts/autograd_memory.py`): the parity models and three more configs that switch on
/// sigmoid, no LayerNorm, no residual, pre-LN, causal masks, GELU, sinusoidal positions and
/// dropout.
#[test]
fn saved_bytes_match_pytorch_autograd() {
    let json = std::fs::read_to_string(format!("{FIXTURES}/autograd_saved.json")).unwrap();
    let measured: Value = serde_json::from_str(&json).unwrap();
    let cases = measured["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let mut dropout_seen = false;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config = parse_config(&case["config"].to_string()).unwrap();
        dropout_seen |= config.dropout > 0.0;
        let (batch, seq) = (
            u64_at(case, "batch") as usize,
            u64_at(case, "seq_len") as usize,
        );
        let saved = saved_for_backward(&config, batch, seq);
        assert_eq!(
            saved.float_bytes(),
            u64_at(case, "float_bytes"),
            "{name}: {saved:?}"
        );
        assert_eq!(
            saved.part(SavedPart::CausalMask),
            u64_at(case, "bool_bytes"),
            "{name}"
        );
    }
    assert!(dropout_seen, "a case with dropout");
    // The parity models are the fixtures' own configs.
    for (index, name) in ["seed", "tiny"].into_iter().enumerate() {
        assert_eq!(
            parse_config(&cases[index]["config"].to_string()).unwrap(),
            fixture(name).0
        );
    }
}

#[test]
fn weight_statistics_cover_every_parameter() {
    let config = TransformerConfig::tiny();
    let model = config.init(&Device::flex()).unwrap();
    let shapes = parameter_shapes(&model);
    let stats = pollster::block_on(weight_statistics(&model)).unwrap();
    assert_eq!(stats.tensors.len(), shapes.len());
    assert_eq!(stats.overall.count, model.parameter_count());
    let counts = ParamCounts::of(&shapes, &["layers.0".to_string()]);
    assert_eq!(counts.total, model.parameter_count());
    assert!(counts.frozen > 0 && counts.trainable + counts.frozen == counts.total);
    for tensor in &stats.tensors {
        let (_, shape) = shapes
            .iter()
            .find(|(path, _)| *path == tensor.path)
            .unwrap();
        assert_eq!(
            tensor.count,
            shape.iter().product::<usize>(),
            "{}",
            tensor.path
        );
        assert_eq!(tensor.histogram.total() as usize, tensor.count);
    }
    // LayerNorm γ starts at 1 and β at 0: the β tensors are all below the threshold.
    let beta = stats
        .tensors
        .iter()
        .find(|t| t.path == "layers.0.norm1.beta")
        .unwrap();
    assert_eq!(beta.sparsity, 1.0);
}

#[test]
fn the_memory_default_is_the_training_forms_batch() {
    let form = TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny());
    assert_eq!(DEFAULT_TRAINING_BATCH, form.batch_size);
}

#[test]
fn the_benchmark_copies_a_webgpu_model_to_the_cpu_by_reading_it_back() {
    let task = Task::new(TaskKind::Reverse);
    let config = TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny()).model_config(&task);
    let model = config.init(&Device::flex()).unwrap();
    // A backend that says WebGPU: the CPU probe beside it is built from weights read back.
    let backend = BackendInfo {
        device: Device::flex(),
        webgpu: true,
        label: "WebGPU (test)".into(),
        max_tensor_bytes: Some(128 << 20),
    };
    let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(0), 2);
    let probes =
        pollster::block_on(SpeedProbe::for_backend(&model, &config, &backend, batch)).unwrap();
    assert_eq!(probes.len(), SpeedProbe::count_for(&backend));
    assert_eq!(
        probes
            .iter()
            .map(|(label, _)| label.as_str())
            .collect::<Vec<_>>(),
        ["WebGPU (test)", CPU_LABEL]
    );
    for (_, probe) in &probes {
        assert_eq!(probe.batch_size(), 2);
        for pass in BenchPass::all() {
            pollster::block_on(probe.run(pass)).unwrap();
        }
    }
}
