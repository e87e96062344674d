//! Native tests of the model layer: shapes, captured attention against a by-hand computation,
//! masks, module paths and bad input.

use burn::tensor::{Device, Tensor};
use glassbox::model::{
    Activation, ModelError, NormPosition, Positional, Role, Site, Trace, Transformer,
    TransformerConfig, run_traced,
};

fn trace(model: &Transformer, batch: &[Vec<u32>]) -> Trace {
    pollster::block_on(run_traced(model, batch, &Device::flex())).expect("traced forward")
}

fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 data")
}

fn sample_batch(batch: usize, seq_len: usize, vocab_size: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| {
            (0..seq_len)
                .map(|t| ((b * 37 + t * 11 + 3) % vocab_size) as u32)
                .collect()
        })
        .collect()
}

#[test]
fn seed_preset_matches_the_chapters_model_in_size_and_shapes() {
    let model = TransformerConfig::seed()
        .init_seeded(7, &Device::flex())
        .unwrap();
    // PyTorch counts 3,672,040 parameters for the seed chapter's demo model.
    assert_eq!(model.parameter_count(), 3_672_040);
    let trace = trace(&model, &sample_batch(2, 10, 1000));
    assert_eq!(trace.attention.len(), 4);
    for (layer, attention) in trace.attention.iter().enumerate() {
        assert_eq!(attention.layer, layer);
        assert_eq!(
            [
                attention.batch,
                attention.heads,
                attention.queries,
                attention.keys
            ],
            [2, 8, 10, 10]
        );
        assert_eq!(attention.values.len(), 2 * 8 * 10 * 10);
    }
    let logits = trace.module("output").expect("output captured");
    assert_eq!(logits.shape, [2, 10, 1000]);
    assert_eq!(
        trace.module("layers.2.ff.linear1").unwrap().shape,
        [2, 10, 1024]
    );
    assert_eq!(
        trace.at(Site::layer(Role::BlockOutput, 3)).unwrap().shape,
        [2, 10, 256]
    );
    for capture in &trace.modules {
        assert_eq!(capture.values.len(), capture.numel(), "{}", capture.path);
        assert!(
            capture.values.iter().all(|v| v.is_finite()),
            "{}",
            capture.path
        );
    }
}

/// The roles and labels of `trace`'s captures, in order.
fn sites(trace: &Trace) -> Vec<(Role, Option<usize>, String)> {
    trace
        .modules
        .iter()
        .map(|c| (c.role, c.layer, c.path.clone()))
        .collect()
}

/// The captures one layer of `norm` should give, in execution order.
fn layer_sites(layer: usize, norm: NormPosition) -> Vec<(Role, Option<usize>, String)> {
    let parts: &[(Role, &str)] = match norm {
        NormPosition::Pre => &[
            (Role::AttentionInput, ".norm1"),
            (Role::AttentionOutput, ".attn"),
            (Role::FeedForwardInput, ".norm2"),
            (Role::FeedForwardHidden, ".ff.linear1"),
            (Role::FeedForwardActivation, ".ff.activation"),
            (Role::FeedForwardOutput, ".ff.linear2"),
            (Role::BlockOutput, ""),
        ],
        NormPosition::Post => &[
            (Role::AttentionOutput, ".attn"),
            (Role::FeedForwardInput, ".norm1"),
            (Role::FeedForwardHidden, ".ff.linear1"),
            (Role::FeedForwardActivation, ".ff.activation"),
            (Role::FeedForwardOutput, ".ff.linear2"),
            (Role::BlockOutput, ".norm2"),
        ],
        NormPosition::None => &[
            (Role::AttentionOutput, ".attn"),
            (Role::FeedForwardHidden, ".ff.linear1"),
            (Role::FeedForwardActivation, ".ff.activation"),
            (Role::FeedForwardOutput, ".ff.linear2"),
            (Role::BlockOutput, ""),
        ],
    };
    parts
        .iter()
        .map(|(role, part)| (*role, Some(layer), format!("layers.{layer}{part}")))
        .collect()
}

#[test]
fn every_distinct_tensor_is_captured_once_under_its_role_in_execution_order() {
    for norm in [NormPosition::Post, NormPosition::Pre, NormPosition::None] {
        let model = TransformerConfig::tiny()
            .with_norm_position(norm)
            .init_seeded(1, &Device::flex())
            .unwrap();
        let trace = trace(&model, &sample_batch(1, 5, 1000));
        let mut expected = vec![
            (Role::Embedding, None, "embedding".to_string()),
            (Role::Positional, None, "positional".to_string()),
        ];
        for layer in 0..2 {
            expected.extend(layer_sites(layer, norm));
        }
        expected.push((Role::Logits, None, "output".to_string()));
        assert_eq!(sites(&trace), expected, "{norm:?}");
        // No two captures hold the same values: post-LN's second norm is the layer's output,
        // and it is read back once.
        for (i, a) in trace.modules.iter().enumerate() {
            for b in &trace.modules[i + 1..] {
                assert_ne!(a.values, b.values, "{norm:?}: {} and {}", a.path, b.path);
            }
        }
    }
}

#[test]
fn every_attention_row_sums_to_one() {
    let model = TransformerConfig::seed()
        .init_seeded(3, &Device::flex())
        .unwrap();
    let trace = trace(&model, &sample_batch(2, 7, 1000));
    for attention in &trace.attention {
        for row in attention.values.chunks(attention.keys) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "row sums to {sum}");
            assert!(row.iter().all(|&w| (0.0..=1.0).contains(&w)));
        }
    }
}

#[test]
fn causal_mask_zeroes_the_upper_triangle() {
    let config = TransformerConfig::tiny().with_causal(true);
    let model = config.init_seeded(5, &Device::flex()).unwrap();
    let trace = trace(&model, &sample_batch(2, 6, 1000));
    for attention in &trace.attention {
        for (index, &weight) in attention.values.iter().enumerate() {
            let key = index % attention.keys;
            let query = (index / attention.keys) % attention.queries;
            if key > query {
                assert_eq!(weight, 0.0, "query {query} sees future key {key}");
            } else {
                assert!(weight > 0.0);
            }
        }
        // The first query can only attend to itself.
        assert!((attention.values[0] - 1.0).abs() < 1e-6);
    }
    // Without the mask the upper triangle is not zero.
    let open = TransformerConfig::tiny()
        .init_seeded(5, &Device::flex())
        .unwrap();
    let open_trace = trace_of(&open);
    assert!(open_trace.attention[0].values[1] > 0.0);
}

fn trace_of(model: &Transformer) -> Trace {
    trace(model, &sample_batch(2, 6, 1000))
}

/// `x @ w + b` for a row-major `x: [rows, d_in]` and burn's `w: [d_in, d_out]`.
fn linear(x: &[f32], rows: usize, w: &[f32], b: &[f32], d_in: usize, d_out: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; rows * d_out];
    for r in 0..rows {
        for o in 0..d_out {
            let mut acc = f64::from(b[o]);
            for i in 0..d_in {
                acc += f64::from(x[r * d_in + i]) * f64::from(w[i * d_out + o]);
            }
            out[r * d_out + o] = acc;
        }
    }
    out
}

/// Recomputes softmax(QKᵀ/√d_head) from each layer's own query and key projections and that
/// layer's captured input, and compares with the weights burn's attention returned.
fn assert_attention_matches_by_hand(config: TransformerConfig, seed: u64) {
    let model = config.init_seeded(seed, &Device::flex()).unwrap();
    let seq_len = 6;
    let batch = sample_batch(2, seq_len, config.vocab_size);
    let trace = trace(&model, &batch);
    let d_model = config.d_model;
    let d_head = config.d_head();
    let scale = (d_head as f64).sqrt();
    let mut max_error = 0.0f64;
    for (index, layer) in model.layers.iter().enumerate() {
        // The attention sees the previous layer's output (its feed-forward output when the
        // layer adds nothing back), or its normalised input in pre-LN.
        let input = match (config.norm_position, index) {
            (NormPosition::Pre, _) => trace.at(Site::layer(Role::AttentionInput, index)),
            (_, 0) if config.positional == Positional::None => {
                trace.at(Site::global(Role::Embedding))
            }
            (_, 0) => trace.at(Site::global(Role::Positional)),
            (_, _) => trace
                .at(Site::layer(Role::BlockOutput, index - 1))
                .or_else(|| trace.at(Site::layer(Role::FeedForwardOutput, index - 1))),
        };
        let input = &input.unwrap().values;
        let wq = floats(layer.attn.query.weight.val());
        let bq = floats(layer.attn.query.bias.as_ref().unwrap().val());
        let wk = floats(layer.attn.key.weight.val());
        let bk = floats(layer.attn.key.bias.as_ref().unwrap().val());
        let attention = &trace.attention[index];
        for b in 0..batch.len() {
            let x = &input[b * seq_len * d_model..(b + 1) * seq_len * d_model];
            let q = linear(x, seq_len, &wq, &bq, d_model, d_model);
            let k = linear(x, seq_len, &wk, &bk, d_model, d_model);
            for h in 0..config.num_heads {
                let captured = attention.head_map(b, h).unwrap();
                for i in 0..seq_len {
                    let scores: Vec<f64> = (0..seq_len)
                        .map(|j| {
                            if config.causal && j > i {
                                return f64::NEG_INFINITY;
                            }
                            (0..d_head)
                                .map(|c| {
                                    q[i * d_model + h * d_head + c]
                                        * k[j * d_model + h * d_head + c]
                                })
                                .sum::<f64>()
                                / scale
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    for j in 0..seq_len {
                        let expected = exps[j] / total;
                        let got = f64::from(captured[i * seq_len + j]);
                        max_error = max_error.max((expected - got).abs());
                    }
                }
            }
        }
    }
    assert!(max_error <= 1e-5, "largest difference {max_error:e}");
}

#[test]
fn captured_weights_equal_softmax_of_the_layers_own_projections_post_ln() {
    assert_attention_matches_by_hand(TransformerConfig::seed(), 11);
}

#[test]
fn captured_weights_equal_softmax_of_the_layers_own_projections_pre_ln_causal() {
    let config = TransformerConfig::tiny()
        .with_norm_position(NormPosition::Pre)
        .with_causal(true)
        .with_activation(Activation::Gelu)
        .with_positional(Positional::Sinusoidal);
    assert_attention_matches_by_hand(config, 12);
}

#[test]
fn activation_capture_is_relu_of_the_first_linear() {
    let model = TransformerConfig::tiny()
        .init_seeded(2, &Device::flex())
        .unwrap();
    let trace = trace(&model, &sample_batch(1, 4, 1000));
    let linear1 = &trace.module("layers.1.ff.linear1").unwrap().values;
    let activation = &trace.module("layers.1.ff.activation").unwrap().values;
    assert!(linear1.iter().any(|&v| v < 0.0));
    for (pre, post) in linear1.iter().zip(activation) {
        assert_eq!(*post, pre.max(0.0));
    }
}

#[test]
fn without_residuals_or_layer_norm_each_layer_is_its_sub_layers_alone() {
    let config = TransformerConfig {
        residual: false,
        norm_position: NormPosition::None,
        activation: Activation::Sigmoid,
        ..TransformerConfig::tiny()
    };
    let model = config.init_seeded(4, &Device::flex()).unwrap();
    assert!(
        model
            .layers
            .iter()
            .all(|layer| layer.norm1.is_none() && layer.norm2.is_none())
    );
    let trace = trace(&model, &sample_batch(1, 5, 1000));
    assert!(trace.module("layers.0.norm1").is_none());
    assert_attention_matches_by_hand(config, 4);
    for index in 0..2 {
        let module = |name: &str| {
            &trace
                .module(&format!("layers.{index}.{name}"))
                .unwrap()
                .values
        };
        // The feed-forward block sees the attention output itself, and the layer's output is
        // the feed-forward output itself: nothing is added back.
        let linear1 = module("ff.linear1");
        let activation = module("ff.activation");
        for (pre, post) in linear1.iter().zip(activation) {
            assert!((post - 1.0 / (1.0 + (-pre).exp())).abs() < 1e-6);
        }
        // The layer's output is the feed-forward output itself, so it is not captured again.
        assert!(module("ff.linear2").iter().all(|v| v.is_finite()));
        assert!(trace.at(Site::layer(Role::BlockOutput, index)).is_none());
    }
    // 4 fewer vectors of d_model per layer than with LayerNorm.
    assert_eq!(
        TransformerConfig::tiny()
            .init(&Device::flex())
            .unwrap()
            .parameter_count()
            - model.parameter_count(),
        2 * 4 * 64
    );
}

#[test]
fn same_seed_gives_the_same_model_and_another_seed_does_not() {
    let a = trace_of(
        &TransformerConfig::tiny()
            .init_seeded(9, &Device::flex())
            .unwrap(),
    );
    let b = trace_of(
        &TransformerConfig::tiny()
            .init_seeded(9, &Device::flex())
            .unwrap(),
    );
    let c = trace_of(
        &TransformerConfig::tiny()
            .init_seeded(10, &Device::flex())
            .unwrap(),
    );
    // Compared with `assert!`: a failing `assert_eq!` would print every captured value.
    assert!(a == b, "the same seed gave different traces");
    assert!(
        a.attention[0].values != c.attention[0].values,
        "another seed gave the same trace"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let model = TransformerConfig::tiny()
        .with_max_seq_len(8)
        .init_seeded(1, &Device::flex())
        .unwrap();
    let device = Device::flex();
    let run = |batch: &[Vec<u32>]| pollster::block_on(run_traced(&model, batch, &device));
    assert_eq!(run(&[]), Err(ModelError::EmptyInput));
    assert_eq!(run(&[vec![]]), Err(ModelError::EmptyInput));
    assert_eq!(
        run(&[vec![1; 9]]),
        Err(ModelError::TooLong { len: 9, max: 8 })
    );
    assert_eq!(run(&[vec![1, 2], vec![3]]), Err(ModelError::RaggedBatch));
    assert_eq!(
        run(&[vec![1, 5000]]),
        Err(ModelError::UnknownId {
            id: 5000,
            vocab_size: 1000
        })
    );
    let bad_heads = TransformerConfig {
        num_heads: 5,
        ..TransformerConfig::tiny()
    }
    .init(&device);
    assert!(matches!(bad_heads, Err(ModelError::Config(message)) if message.contains("divisible")));
}
