//! Gradient flow and activation analysis: the detectors fire on the problem presets that
//! reproduce each failure and stay quiet on the healthy default; the statistics reduced on the
//! device equal the ones computed on the host and finite differences of the loss.

use burn::tensor::Device;
use glassbox::analysis::activations::{SPARSE_THRESHOLD, dead_units_note, summarise_trace};
use glassbox::analysis::gradients::{GradientHistory, GradientProblem, detect};
use glassbox::analysis::{GradientThresholds, Summary};
use glassbox::model::checkpoint::{FlatParameters, read_parameters};
use glassbox::model::{Activation, TransformerConfig};
use glassbox::train::{
    Analysis, Problem, StepReport, Task, TaskKind, TrainConfig, TrainError, Trainer,
    activation_statistics, analyse_batch, batch_loss,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn config(problem: Problem) -> TrainConfig {
    problem.apply(TrainConfig {
        steps: 200,
        ..TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny())
    })
}

/// Steps `trainer` up to `steps` times, analysing every step, until `stop` says so or training
/// pauses on a non-finite number; returns the reports and the pause, if any.
fn run(
    trainer: &mut Trainer,
    steps: usize,
    mut stop: impl FnMut(&StepReport, &GradientHistory) -> bool,
) -> (Vec<StepReport>, Option<TrainError>, GradientHistory) {
    trainer.set_analysis(1);
    let mut reports = Vec::new();
    let mut history: Option<GradientHistory> = None;
    for _ in 0..steps {
        match pollster::block_on(trainer.step()) {
            Ok(report) => {
                let history = history.get_or_insert_with(|| {
                    GradientHistory::new(
                        report
                            .tensor_grad_norms
                            .iter()
                            .map(|(path, _)| path.clone())
                            .collect(),
                        512,
                    )
                });
                let norms: Vec<f64> = report
                    .tensor_grad_norms
                    .iter()
                    .map(|(_, norm)| *norm)
                    .collect();
                assert!(history.push(report.step, &norms));
                let done = stop(&report, history);
                reports.push(report);
                if done {
                    break;
                }
            }
            Err(error) => return (reports, Some(error), history.unwrap()),
        }
    }
    (reports, None, history.unwrap())
}

fn analysis(report: &StepReport) -> &Analysis {
    report
        .analysis
        .as_ref()
        .expect("analysis was asked for every step")
}

#[test]
fn the_healthy_default_triggers_no_detector() {
    let thresholds = GradientThresholds::default();
    let mut trainer = Trainer::new(config(Problem::Healthy), &Device::flex()).unwrap();
    let mut findings = Vec::new();
    let mut sparse = Vec::new();
    let mut dead = 0.0f64;
    let (reports, paused, _) = run(&mut trainer, 60, |report, history| {
        let analysis = analysis(report);
        findings.extend(detect(&analysis.gradients, Some(history), &thresholds));
        sparse.extend(
            analysis
                .activations
                .sparse_modules(SPARSE_THRESHOLD)
                .into_iter()
                .map(|module| module.path.clone()),
        );
        dead = dead.max(analysis.activations.dead_share());
        false
    });
    assert!(paused.is_none(), "{paused:?}");
    assert_eq!(reports.len(), 60);
    println!("healthy: largest dead share {dead:.3}");
    assert!(
        findings.is_empty(),
        "healthy training flagged: {findings:#?}"
    );
    assert!(
        sparse.is_empty(),
        "healthy training has sparse modules: {sparse:?}"
    );
    assert!(dead < 0.05, "{dead}");
}

#[test]
fn the_exploding_preset_fires_the_exploding_detector_before_it_overflows() {
    let thresholds = GradientThresholds::default();
    let mut trainer = Trainer::new(config(Problem::Exploding), &Device::flex()).unwrap();
    let mut first = None;
    let (reports, paused, _) = run(&mut trainer, 100, |report, history| {
        let found = detect(&analysis(report).gradients, Some(history), &thresholds);
        let exploding: Vec<String> = found
            .iter()
            .filter(|finding| finding.problem == GradientProblem::Exploding)
            .map(|finding| finding.to_string())
            .collect();
        if !exploding.is_empty() && first.is_none() {
            first = Some((report.step, exploding));
        }
        first.is_some()
    });
    let (step, exploding) = first.unwrap_or_else(|| {
        panic!(
            "no exploding gradient in {} steps (pause: {paused:?}); norms {:?}",
            reports.len(),
            reports.iter().map(|r| r.grad_norm).collect::<Vec<_>>()
        )
    });
    println!("exploding at step {step}: {exploding:?}");
    assert!(step <= 50);
}

#[test]
fn the_vanishing_preset_fires_the_vanishing_detector_on_the_lower_layers() {
    let thresholds = GradientThresholds::default();
    let mut trainer = Trainer::new(config(Problem::Vanishing), &Device::flex()).unwrap();
    let (reports, paused, _) = run(&mut trainer, 1, |_, _| false);
    assert!(paused.is_none());
    let gradients = &analysis(&reports[0]).gradients;
    let findings = detect(gradients, None, &thresholds);
    for gradient in gradients {
        println!("{:40} {:.2e}", gradient.path, gradient.gradient.norm);
    }
    let vanishing: Vec<&str> = findings
        .iter()
        .filter(|finding| finding.problem == GradientProblem::Vanishing)
        .map(|finding| finding.path.as_str())
        .collect();
    assert!(vanishing.contains(&"embedding.weight"), "{vanishing:?}");
    assert!(
        vanishing.iter().any(|path| path.starts_with("layers.0.")),
        "{vanishing:?}"
    );
    assert!(
        !vanishing.contains(&"output.weight"),
        "the top of the stack still learns: {vanishing:?}"
    );
}

#[test]
fn the_dying_relu_preset_flags_sparse_modules_and_dead_units() {
    let mut trainer = Trainer::new(config(Problem::DyingRelu), &Device::flex()).unwrap();
    let (reports, _, _) = run(&mut trainer, 20, |_, _| false);
    for report in [&reports[0], reports.last().unwrap()] {
        let activations = &analysis(report).activations;
        let sparse: Vec<&str> = activations
            .sparse_modules(SPARSE_THRESHOLD)
            .into_iter()
            .map(|module| module.path.as_str())
            .collect();
        println!(
            "step {}: sparse {sparse:?}, dead share {:.3}",
            report.step,
            activations.dead_share()
        );
        assert!(sparse.contains(&"layers.0.ff.activation"), "{sparse:?}");
        assert!(sparse.contains(&"layers.1.ff.activation"), "{sparse:?}");
        assert!(
            activations.dead_share() > 0.5,
            "{}",
            activations.dead_share()
        );
        for layer in &activations.dead {
            assert_eq!(layer.width, 256);
        }
    }
}

#[test]
fn device_reduced_activation_statistics_equal_the_host_computation() {
    let model = TransformerConfig::seed()
        .init_seeded(7, &Device::flex())
        .unwrap();
    let device = Device::flex();
    let ids: Vec<Vec<u32>> = vec![(0..24).map(|i| (i * 37 % 1000) as u32).collect(); 2];
    let (_, host) = model.forward_traced(model.token_tensor(&ids, &device).unwrap());
    let (_, on_device) = model.forward_traced(model.token_tensor(&ids, &device).unwrap());
    let host = summarise_trace(&pollster::block_on(host.read()).unwrap());
    let on_device = pollster::block_on(activation_statistics(on_device)).unwrap();
    assert_eq!(host.modules.len(), on_device.modules.len());
    // The seed model (post-LN): embedding, then per layer the attention output, the first
    // norm (the feed-forward input), linear1, activation, linear2 and the second norm (the
    // layer output, captured once), then the logits.
    assert_eq!(host.modules.len(), 1 + 4 * 6 + 1);
    for (a, b) in host.modules.iter().zip(&on_device.modules) {
        assert_eq!((&a.site, &a.path, &a.shape), (&b.site, &b.path, &b.shape));
        let scale = a.std.max(1e-6);
        assert!(
            (a.mean - b.mean).abs() <= 1e-5 * scale.max(a.mean.abs()),
            "{}: mean {} vs {}",
            a.path,
            a.mean,
            b.mean
        );
        assert!(
            (a.std - b.std).abs() <= 1e-5 * scale,
            "{}: std {} vs {}",
            a.path,
            a.std,
            b.std
        );
        assert_eq!(a.zero_fraction, b.zero_fraction, "{}", a.path);
        assert_eq!(a.histogram, b.histogram, "{}", a.path);
    }
    assert_eq!(host.dead, on_device.dead);
    assert_eq!(host.dead.len(), 4);
    // ReLU after a freshly initialised linear: about half the values are exactly zero.
    let relu = host
        .modules
        .iter()
        .find(|m| m.path == "layers.0.ff.activation")
        .unwrap();
    assert!(
        (0.3..0.7).contains(&relu.zero_fraction),
        "{}",
        relu.zero_fraction
    );
}

/// The loss of `model` on `batch` with element `index` of the tensor chosen by `tensor`
/// replaced by `value`.
fn loss_with(
    model: &glassbox::model::Transformer,
    batch: &glassbox::train::Batch,
    tensor: &str,
    index: usize,
    delta: f32,
) -> f64 {
    let mut model = model.clone();
    let param = match tensor {
        "output.bias" => model.output.as_mut().unwrap().bias.as_mut().unwrap(),
        "layers.1.norm2.gamma" => &mut model.layers[1].norm2.as_mut().unwrap().gamma,
        other => panic!("no {other}"),
    };
    let mut values = param.val().into_data().try_to_vec::<f32>().unwrap();
    values[index] += delta;
    let shape = [values.len()];
    let tensor = burn::tensor::Tensor::<1>::from_data(
        burn::tensor::TensorData::new(values, shape),
        &Device::flex(),
    );
    *param = burn::module::Param::initialized(param.id, tensor);
    let (loss, _) = batch_loss(&model, batch, &Device::flex()).unwrap();
    f64::from(loss.into_scalar::<f32>())
}

#[test]
fn gradient_statistics_equal_finite_differences_of_the_loss() {
    let config = TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny());
    let task = Task::new(config.task);
    let model = config
        .model_config(&task)
        .init_seeded(3, &Device::flex())
        .unwrap();
    let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(11), 16);
    let analysis = pollster::block_on(analyse_batch(&model, &batch)).unwrap();
    let epsilon = 1e-2f32;
    for tensor in ["output.bias", "layers.1.norm2.gamma"] {
        let reported = analysis
            .gradients
            .iter()
            .find(|gradient| gradient.path == tensor)
            .unwrap();
        let numeric: Vec<f32> = (0..reported.gradient.count)
            .map(|index| {
                let up = loss_with(&model, &batch, tensor, index, epsilon);
                let down = loss_with(&model, &batch, tensor, index, -epsilon);
                ((up - down) / (2.0 * f64::from(epsilon))) as f32
            })
            .collect();
        let expected = Summary::of(&numeric).unwrap();
        let got = reported.gradient;
        let scale = expected
            .std
            .max(expected.norm / (expected.count as f64).sqrt());
        for (key, value, reference) in [
            ("mean", got.mean, expected.mean),
            ("std", got.std, expected.std),
            ("min", got.min, expected.min),
            ("max", got.max, expected.max),
            ("norm", got.norm, expected.norm),
        ] {
            let error = (value - reference).abs() / reference.abs().max(scale);
            println!(
                "{tensor} {key}: analytic {value:.6e}, finite difference {reference:.6e}, error {error:.1e}"
            );
            assert!(error <= 5e-3, "{tensor} {key}: {value} vs {reference}");
        }
    }
}

#[test]
fn analysing_a_batch_changes_no_weight() {
    let config = TrainConfig::new(TaskKind::Sort, TransformerConfig::tiny());
    let task = Task::new(config.task);
    let model = config
        .model_config(&task)
        .init_seeded(5, &Device::flex())
        .unwrap();
    let before = pollster::block_on(read_parameters(&model)).unwrap();
    let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(1), 8);
    let analysis = pollster::block_on(analyse_batch(&model, &batch)).unwrap();
    assert_eq!(
        analysis.gradients.len(),
        FlatParameters::of(&model).tensors.len()
    );
    assert!(analysis.loss.is_finite() && analysis.loss > 0.0);
    assert_eq!(before, pollster::block_on(read_parameters(&model)).unwrap());
}

#[test]
fn analysing_every_step_leaves_training_unchanged() {
    let run = |analyse_every: usize| {
        let mut trainer = Trainer::new(config(Problem::Healthy), &Device::flex()).unwrap();
        trainer.set_analysis(analyse_every);
        (0..6)
            .map(|_| {
                let report = pollster::block_on(trainer.step()).unwrap();
                assert_eq!(report.analysis.is_some(), analyse_every > 0);
                (report.loss, report.grad_norm)
            })
            .collect::<Vec<_>>()
    };
    let plain = run(0);
    let analysed = run(1);
    for ((loss_a, norm_a), (loss_b, norm_b)) in plain.iter().zip(&analysed) {
        assert!(
            (loss_a - loss_b).abs() <= 1e-6 * loss_a.abs(),
            "{plain:?} vs {analysed:?}"
        );
        assert!(
            (norm_a - norm_b).abs() <= 1e-5 * norm_a.abs(),
            "{plain:?} vs {analysed:?}"
        );
    }
}

#[test]
fn dead_units_are_explained_away_for_gelu_and_sigmoid_and_counted_for_relu() {
    let config = TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny());
    let task = Task::new(config.task);
    let batch = task.train_batch(&mut ChaCha8Rng::seed_from_u64(4), 8);
    for activation in [Activation::Relu, Activation::Gelu, Activation::Sigmoid] {
        let model = config
            .model_config(&task)
            .with_activation(activation)
            .init_seeded(6, &Device::flex())
            .unwrap();
        let analysis = pollster::block_on(analyse_batch(&model, &batch)).unwrap();
        let summary = &analysis.activations;
        assert_eq!(summary.dead.len(), 2, "{activation:?}");
        let note = dead_units_note(summary);
        if activation == Activation::Relu {
            assert_eq!(note, None, "a ReLU's zero count speaks for itself");
        } else {
            // Never exactly 0, so never dead by the exact test: the page says so.
            assert!(summary.dead.iter().all(|layer| layer.dead.is_empty()));
            assert!(note.unwrap().contains("only a ReLU"), "{activation:?}");
        }
    }
}
