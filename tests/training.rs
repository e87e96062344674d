//! The training loop the CLI and the page share: it really learns, what it reports equals a
//! direct computation on the weights, and a blow-up pauses it without losing the weights.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use glassbox::model::TransformerConfig;
use glassbox::model::checkpoint::{read_parameters, save_checkpoint};
use glassbox::train::{
    OptimizerKind, Schedule, Task, TaskKind, TrainConfig, TrainError, Trainer, batch_loss,
    gradient_statistics,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn reverse_config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        seed: 1,
        ..TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny())
    }
}

#[test]
fn tiny_learns_to_reverse_within_a_fixed_budget() {
    let config = reverse_config(700);
    let mut trainer = Trainer::new(config.clone(), &Device::flex()).unwrap();
    let first = pollster::block_on(trainer.step()).unwrap();
    for _ in 1..config.steps {
        pollster::block_on(trainer.step()).unwrap();
    }
    let evaluation = pollster::block_on(trainer.evaluate()).unwrap();
    println!(
        "reverse after {} steps: first loss {:.3}, held-out accuracy {:.4} over {} tokens",
        config.steps,
        first.loss,
        evaluation.accuracy(),
        evaluation.total
    );
    assert!(
        evaluation.accuracy() >= 0.95,
        "held-out accuracy {} after {} steps",
        evaluation.accuracy(),
        config.steps
    );
}

fn values(
    parameters: &BTreeMap<String, glassbox::model::checkpoint::ParameterData>,
) -> Vec<(&str, &[f32])> {
    parameters
        .iter()
        .map(|(path, data)| (path.as_str(), data.values.as_slice()))
        .collect()
}

#[test]
fn reported_gradient_norm_and_update_ratios_equal_direct_computations() {
    let config = TrainConfig {
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        warmup_steps: 0,
        clip_norm: None,
        ..reverse_config(10)
    };
    let mut trainer = Trainer::new(config.clone(), &Device::flex()).unwrap();
    let before_model = trainer.model();
    let before = pollster::block_on(read_parameters(&before_model)).unwrap();

    // The trainer's first batch, drawn the same way.
    let task = Task::new(config.task);
    let batch = task.train_batch(
        &mut ChaCha8Rng::seed_from_u64(config.seed),
        config.batch_size,
    );
    let device = Device::flex().autodiff();
    let model = before_model.fork(&device).train();
    let (loss, _) = batch_loss(&model, &batch, &device).unwrap();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let statistics = pollster::block_on(gradient_statistics(&model, &grads)).unwrap();
    let direct_norm = statistics
        .iter()
        .map(|parameter| parameter.gradient.norm.powi(2))
        .sum::<f64>()
        .sqrt();

    let report = pollster::block_on(trainer.step()).unwrap();
    let after = pollster::block_on(read_parameters(&trainer.model())).unwrap();
    assert!(
        (report.grad_norm - direct_norm).abs() <= 1e-4 * direct_norm,
        "grad norm {} vs {direct_norm}",
        report.grad_norm
    );

    let mut change_total = 0.0;
    let mut size_total = 0.0;
    let reported: BTreeMap<&str, f64> = report
        .tensor_update_ratios
        .iter()
        .map(|(path, ratio)| (path.as_str(), *ratio))
        .collect();
    assert_eq!(reported.len(), before.len());
    for ((path, old), (_, new)) in values(&before).into_iter().zip(values(&after)) {
        let change: f64 = old
            .iter()
            .zip(new)
            .map(|(a, b)| (f64::from(*b) - f64::from(*a)).powi(2))
            .sum();
        let size: f64 = old.iter().map(|a| f64::from(*a).powi(2)).sum();
        change_total += change;
        size_total += size;
        if size > 0.0 {
            let direct = (change / size).sqrt();
            let got = reported[path];
            assert!(
                (got - direct).abs() <= 1e-3 * direct + 1e-9,
                "{path}: update ratio {got} vs {direct}"
            );
        }
    }
    let direct_total = (change_total / size_total).sqrt();
    assert!(
        (report.update_ratio - direct_total).abs() <= 1e-4 * direct_total,
        "update ratio {} vs {direct_total}",
        report.update_ratio
    );
    // Adam's first step moves each weight by about lr, not lr·‖g‖: the ratio is far from lr·‖g‖/‖w‖.
    println!(
        "grad norm {:.5}, update ratio {:.3e} (direct {:.3e})",
        report.grad_norm, report.update_ratio, direct_total
    );
}

#[test]
fn a_learning_rate_of_ten_pauses_on_non_finite_numbers_and_keeps_finite_weights() {
    let config = TrainConfig {
        learning_rate: 10.0,
        warmup_steps: 0,
        schedule: Schedule::Constant,
        clip_norm: None,
        optimizer: OptimizerKind::Sgd { momentum: 0.9 },
        ..reverse_config(200)
    };
    let mut trainer = Trainer::new(config, &Device::flex()).unwrap();
    let mut paused = None;
    for _ in 0..200 {
        match pollster::block_on(trainer.step()) {
            Ok(_) => {}
            Err(error @ TrainError::NonFinite { .. }) => {
                paused = Some(error);
                break;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    let error = paused.expect("a learning rate of 10 never produced a NaN or infinity");
    println!("{error}");
    assert!(error.to_string().contains("lower the learning rate"));
    let weights = pollster::block_on(read_parameters(&trainer.model())).unwrap();
    assert!(
        weights
            .values()
            .all(|data| data.values.iter().all(|v| v.is_finite())),
        "the kept weights are not finite"
    );
    // Resuming with a sane learning rate works from the kept weights.
    trainer.set_learning_rate(1e-3).unwrap();
    let report = pollster::block_on(trainer.step());
    assert!(
        report.as_ref().is_ok_and(|report| report.loss.is_finite()),
        "resume failed: {report:?}"
    );
    assert!(trainer.set_learning_rate(f64::NAN).is_err());
}

#[test]
fn frozen_modules_get_no_gradient_and_keep_their_weights() {
    let config = TrainConfig {
        frozen: vec!["embedding".into(), "layers.0".into()],
        ..reverse_config(3)
    };
    let mut trainer = Trainer::new(config, &Device::flex()).unwrap();
    trainer.set_analysis(1);
    let before = pollster::block_on(read_parameters(&trainer.model())).unwrap();
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(pollster::block_on(trainer.step()).unwrap());
    }
    let after = pollster::block_on(read_parameters(&trainer.model())).unwrap();
    let frozen = |path: &str| path == "embedding.weight" || path.starts_with("layers.0.");
    let mut frozen_count = 0;
    for (path, old) in &before {
        let unchanged = old.values == after[path].values;
        assert_eq!(
            unchanged,
            frozen(path),
            "{path}: frozen {} but unchanged {unchanged}",
            frozen(path)
        );
        if frozen(path) {
            frozen_count += old.values.len();
        }
    }
    assert_eq!(frozen_count, 12 * 64 + 49_984, "the embedding and layer 0");
    // Frozen tensors have no gradient: neither the global norm nor the statistics count them.
    let analysis = reports[0].analysis.as_ref().unwrap();
    assert!(analysis.gradients.iter().all(|g| !frozen(&g.path)));
    assert!(
        reports[0]
            .tensor_grad_norms
            .iter()
            .all(|(path, _)| !frozen(path))
    );
    assert!(
        reports[0]
            .tensor_update_ratios
            .iter()
            .all(|(path, ratio)| !frozen(path) || *ratio == 0.0)
    );
    // A module that does not exist is refused in words.
    let wrong = TrainConfig {
        frozen: vec!["layers.7".into()],
        ..reverse_config(3)
    };
    assert!(matches!(
        Trainer::new(wrong, &Device::flex()),
        Err(TrainError::Config(message)) if message.contains("no module `layers.7`")
    ));
}

#[test]
fn a_paused_run_takes_new_steps_batch_and_schedule_and_refuses_a_new_optimizer() {
    let config = TrainConfig {
        batch_size: 8,
        ..reverse_config(3)
    };
    let mut trainer = Trainer::new(config.clone(), &Device::flex()).unwrap();
    for _ in 0..2 {
        pollster::block_on(trainer.step()).unwrap();
    }
    assert_eq!(trainer.examples_seen(), 16);
    // More steps, a smaller batch and another schedule apply from the next step on.
    let longer = TrainConfig {
        steps: 5,
        batch_size: 4,
        schedule: Schedule::Constant,
        warmup_steps: 0,
        learning_rate: 2e-3,
        ..config.clone()
    };
    trainer.reconfigure(longer.clone()).unwrap();
    let report = pollster::block_on(trainer.step()).unwrap();
    assert_eq!(
        report.learning_rate, 2e-3,
        "the new schedule and rate apply"
    );
    assert_eq!(trainer.examples_seen(), 20, "the new batch size applies");
    assert_eq!(trainer.config().steps, 5);
    let epochs = trainer.epochs();
    assert!((epochs - 20.0 / 10_000.0).abs() < 1e-12, "{epochs}");
    // What made the weights, the data or the optimizer state is refused, and so is a step
    // count the run has already reached.
    for refused in [
        TrainConfig {
            optimizer: OptimizerKind::Adam,
            ..longer.clone()
        },
        TrainConfig {
            seed: 9,
            ..longer.clone()
        },
        TrainConfig {
            frozen: vec!["embedding".into()],
            ..longer.clone()
        },
        TrainConfig {
            steps: 3,
            ..longer.clone()
        },
    ] {
        let error = trainer.reconfigure(refused).unwrap_err();
        assert!(matches!(error, TrainError::Config(_)), "{error}");
    }
    assert_eq!(
        trainer.config(),
        &longer,
        "a refused change leaves the run as it was"
    );
}

#[test]
fn a_run_resumed_from_a_snapshot_goes_on_as_the_run_itself() {
    // SGD without momentum has no state beyond the weights, and no dropout draws: the resumed
    // run must then take exactly the steps the first run takes.
    let config = TrainConfig {
        optimizer: OptimizerKind::Sgd { momentum: 0.0 },
        model: TransformerConfig {
            dropout: 0.0,
            ..TransformerConfig::tiny()
        },
        ..reverse_config(40)
    };
    let device = Device::flex();
    let mut trainer = Trainer::new(config.clone(), &device).unwrap();
    for _ in 0..5 {
        pollster::block_on(trainer.step()).unwrap();
    }
    let progress = trainer.progress();
    assert_eq!(progress.steps_done, 5);
    let snapshot = pollster::block_on(save_checkpoint(
        &trainer.model(),
        trainer.model_config(),
        trainer.task().vocabulary(),
        &BTreeMap::new(),
    ))
    .unwrap();
    let mut resumed = Trainer::resume(config.clone(), &snapshot, progress, &device).unwrap();
    assert_eq!(resumed.progress(), progress);
    for _ in 0..3 {
        let (original, again) = (
            pollster::block_on(trainer.step()).unwrap(),
            pollster::block_on(resumed.step()).unwrap(),
        );
        assert_eq!(again.step, original.step);
        assert!(
            (again.loss - original.loss).abs() <= 1e-6 * original.loss.abs().max(1.0),
            "step {}: loss {} after the resume, {} in the run",
            original.step,
            again.loss,
            original.loss
        );
        assert!((again.grad_norm - original.grad_norm).abs() <= 1e-5 * original.grad_norm.max(1.0));
    }
    assert_eq!(resumed.examples_seen(), trainer.examples_seen());

    // A snapshot of another architecture is refused in words.
    let other = TrainConfig {
        model: TransformerConfig {
            d_model: TransformerConfig::tiny().d_model * 2,
            ..config.model.clone()
        },
        ..config
    };
    let Err(refused) = Trainer::resume(other, &snapshot, progress, &device) else {
        panic!("a snapshot of another architecture was taken up");
    };
    assert!(refused.to_string().contains("architecture"), "{refused}");
}

#[test]
fn clipping_scales_the_update_to_the_clip_norm_and_leaves_a_small_gradient_alone() {
    // Plain SGD moves the weights by lr · g: after clipping to c the step is lr · c long when
    // ‖g‖ > c, and lr · ‖g‖ when the clip is above the norm.
    let update_length = |clip_norm: Option<f64>| {
        let config = TrainConfig {
            optimizer: OptimizerKind::Sgd { momentum: 0.0 },
            schedule: Schedule::Constant,
            warmup_steps: 0,
            learning_rate: 0.1,
            clip_norm,
            ..reverse_config(10)
        };
        let mut trainer = Trainer::new(config, &Device::flex()).unwrap();
        let before = pollster::block_on(read_parameters(&trainer.model())).unwrap();
        let report = pollster::block_on(trainer.step()).unwrap();
        let after = pollster::block_on(read_parameters(&trainer.model())).unwrap();
        let length = values(&before)
            .into_iter()
            .zip(values(&after))
            .flat_map(|((_, old), (_, new))| old.iter().zip(new))
            .map(|(a, b)| (f64::from(*b) - f64::from(*a)).powi(2))
            .sum::<f64>()
            .sqrt();
        (report.grad_norm, length)
    };
    let (norm, unclipped) = update_length(None);
    assert!(
        norm > 1e-3,
        "the first gradient is too small to clip: {norm}"
    );
    assert!(
        (unclipped - 0.1 * norm).abs() <= 1e-3 * 0.1 * norm,
        "{unclipped} vs {}",
        0.1 * norm
    );
    let (clipped_norm, clipped) = update_length(Some(norm / 4.0));
    assert!(
        (clipped_norm - norm).abs() <= 1e-6 * norm,
        "the reported norm is the norm before clipping"
    );
    let expected = 0.1 * norm / 4.0;
    assert!(
        (clipped - expected).abs() <= 1e-3 * expected,
        "clipped step {clipped} vs {expected}"
    );
    let (_, above) = update_length(Some(norm * 4.0));
    assert!(
        (above - unclipped).abs() <= 1e-4 * unclipped,
        "a clip above the norm changed the step"
    );
}
