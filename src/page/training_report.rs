//! The training tab's words and what its monitor draws: the invitation before the first step,
//! the six panels, the hover read-out, the report's sentences and what an epoch and the
//! held-out set are for each task.

use super::training::{ModelPreset, RunSettings};
use crate::analysis::training::{EvalRecord, History, StepRecord, Thresholds, report};
use crate::charts::{PanelData, Scale, Series};
use crate::format::group_thousands;
use crate::train::TaskKind;

/// What Start will do, shown instead of six empty panels before the first step.
pub fn invitation(settings: &RunSettings, frozen: &[String]) -> String {
    let model = settings.model();
    let size = match settings.preset {
        ModelPreset::Custom => format!(
            "a custom {}-layer model of width {}",
            model.num_layers, model.d_model
        ),
        preset => format!(
            "the {} model ({} layers of width {})",
            <&str>::from(preset),
            model.num_layers,
            model.d_model
        ),
    };
    let frozen = if frozen.is_empty() {
        String::new()
    } else {
        format!(", with {} frozen", frozen.join(", "))
    };
    format!(
        "Start trains {size} on the {} task for {} steps of {} sequences ({}, learning rate {}, \
         {} schedule{frozen}), evaluating every {} steps. The six monitor panels, the report and \
         the probe's attention appear with the first step; Single step runs just one.",
        settings.task.name(),
        group_thousands(settings.steps),
        group_thousands(settings.batch_size),
        settings.optimizer.kind().name(),
        settings.learning_rate,
        <&str>::from(settings.schedule),
        group_thousands(settings.eval_every),
    )
}

/// What an epoch and the held-out set are for `task`, in words for the report and the page.
pub fn data_words(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Reverse | TaskKind::Sort => {
            "The digit tasks draw fresh random rows for every step, so their epoch is a nominal \
             10,000 examples, and their held-out set is a fixed seeded sample of the same \
             distribution: a held-out row may also have come up in training (likely for rows of \
             four or five digits, rare from six up)."
        }
        TaskKind::Language => {
            "An epoch is one pass over the training windows (the first 90% of the corpus); the \
             held-out set is the last 10%, which training never sees."
        }
    }
}

/// The six panels of the seed chapter's monitor, from real measurements.
pub fn panels(history: &History, zoom: Option<(f64, f64)>, cursor: Option<f64>) -> Vec<PanelData> {
    let steps = |value: fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .steps
            .iter()
            .filter_map(|record| Some((record.step as f64, value(record)?)))
            .collect()
    };
    let evals = |value: fn(&EvalRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .evals
            .iter()
            .map(|record| (record.step as f64, value(record)))
            .collect()
    };
    let panel = |title: &str, y_label: &str, scale: Scale, series: Vec<Series>| PanelData {
        title: title.into(),
        y_label: y_label.into(),
        scale,
        series,
        reference_lines: Vec::new(),
        x_range: zoom,
        cursor,
    };
    let series = |label: &str, points: Vec<(f64, f64)>| Series {
        label: label.into(),
        points,
    };
    let mut update = panel(
        "Update ratio ‖Δw‖/‖w‖",
        "ratio",
        Scale::Log,
        vec![series("update ratio", steps(|r| r.update_ratio))],
    );
    update.reference_lines.push((1e-3, "1e-3".into()));
    vec![
        panel(
            "Training and validation loss",
            "loss",
            Scale::Linear,
            vec![
                series("train", evals(|r| r.train_loss)),
                series("validation", evals(|r| r.val_loss)),
            ],
        ),
        panel(
            "Validation accuracy",
            "token accuracy",
            Scale::Linear,
            vec![series("validation", evals(|r| r.val_accuracy))],
        ),
        panel(
            "Learning rate",
            "lr",
            Scale::Log,
            vec![series("lr", steps(|r| Some(r.learning_rate)))],
        ),
        panel(
            "Gradient norm",
            "‖g‖",
            Scale::Log,
            vec![series("global norm", steps(|r| Some(r.grad_norm)))],
        ),
        update,
        panel(
            "Loss per batch",
            "loss",
            Scale::Linear,
            vec![series("batch", steps(|r| Some(r.loss)))],
        ),
    ]
}

/// What happened at (or nearest to) `step`, for the hover read-out.
pub fn describe_step(history: &History, step: f64) -> Option<String> {
    let record = history.steps.iter().min_by(|a, b| {
        (a.step as f64 - step)
            .abs()
            .total_cmp(&(b.step as f64 - step).abs())
    })?;
    let mut text = format!(
        "step {}: batch loss {:.4}, gradient norm {:.3e}, learning rate {:.2e}",
        record.step, record.loss, record.grad_norm, record.learning_rate
    );
    if let Some(ratio) = record.update_ratio {
        text.push_str(&format!(", update ratio {ratio:.2e}"));
    }
    if let Some(eval) = history
        .evals
        .iter()
        .rev()
        .find(|eval| eval.step <= record.step)
    {
        text.push_str(&format!(
            "; evaluation at step {}: validation loss {:.4}, accuracy {:.1}%",
            eval.step,
            eval.val_loss,
            100.0 * eval.val_accuracy
        ));
    }
    Some(text)
}

/// The report as sentences, for the run of `task` that `history` recorded.
pub fn report_lines(history: &History, thresholds: &Thresholds, task: TaskKind) -> Vec<String> {
    let report = report(history, thresholds);
    let mut lines = Vec::new();
    let Some(step) = &report.final_step else {
        return vec!["No steps yet.".to_string()];
    };
    lines.push(format!(
        "Final: step {}, batch loss {:.4}, gradient norm {:.3e}.",
        group_thousands(step.step),
        step.loss,
        step.grad_norm
    ));
    if let Some(eval) = &report.final_eval {
        lines.push(format!(
            "Last evaluation (step {}): training loss {:.4}, validation loss {:.4}, validation accuracy {:.2}%.",
            group_thousands(eval.step),
            eval.train_loss,
            eval.val_loss,
            100.0 * eval.val_accuracy
        ));
    }
    if let Some((loss, step, epoch)) = report.best_val_loss {
        lines.push(format!(
            "Best validation loss {loss:.4} at step {step} (epoch {epoch:.2})."
        ));
    }
    if let Some((accuracy, step, epoch)) = report.best_val_accuracy {
        lines.push(format!(
            "Best validation accuracy {:.2}% at step {step} (epoch {epoch:.2}).",
            100.0 * accuracy
        ));
    }
    if !history.evals.is_empty() {
        lines.push(data_words(task).to_string());
    }
    if let Some(latest) = history.update_ratios.last() {
        let finite = latest.tensors.iter().filter(|(_, ratio)| ratio.is_finite());
        let largest = finite.clone().max_by(|a, b| a.1.total_cmp(&b.1));
        let smallest = finite.min_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some((big_path, big)), Some((small_path, small))) = (largest, smallest) {
            lines.push(format!(
                "Update ratios per tensor at step {}: largest {big:.2e} ({big_path}), smallest {small:.2e} ({small_path}); the 1e-3 line on the panel is the usual rule of thumb.",
                latest.step
            ));
        }
    }
    if report.warnings.is_empty() {
        lines.push(format!(
            "No warnings (overfitting above {:.2}× over the last {} evaluations; a spread gradient \
             norm above a coefficient of variation of {:.2} over the whole run).",
            thresholds.overfit_ratio, thresholds.overfit_window, thresholds.spread_cv
        ));
    }
    for warning in &report.warnings {
        lines.push(format!("⚠ {warning}"));
    }
    lines
}

/// The explorer's provenance line for a model trained in the page.
pub fn provenance(task: TaskKind, steps: usize, accuracy: Option<f64>) -> String {
    format!(
        "Model: trained in this page on the {} task for {} steps{}.",
        task.name(),
        group_thousands(steps),
        accuracy.map_or(String::new(), |accuracy| format!(
            ", {:.1}% of held-out tokens right",
            100.0 * accuracy
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, loss: f64, grad_norm: f64) -> StepRecord {
        StepRecord {
            step,
            loss,
            grad_norm,
            learning_rate: 1e-3,
            update_ratio: Some(1e-3),
            elapsed_ms: step as f64,
        }
    }

    fn evaluation(step: usize, val_loss: f64) -> EvalRecord {
        EvalRecord {
            step,
            epoch: step as f64 / 100.0,
            train_loss: 1.0,
            val_loss,
            val_accuracy: 0.5,
            learning_rate: 1e-3,
        }
    }

    #[test]
    fn the_invitation_says_what_start_will_do() {
        let text = invitation(&RunSettings::default(), &[]);
        assert!(
            text.starts_with(
                "Start trains the tiny model (2 layers of width 64) on the reverse task for 600 \
                 steps of 64 sequences (adamw, learning rate 0.001, cosine schedule)"
            ),
            "{text}"
        );
        let custom = RunSettings {
            preset: ModelPreset::Custom,
            layers: 3,
            steps: 2000,
            ..RunSettings::default()
        };
        let text = invitation(&custom, &["embedding".into()]);
        assert!(
            text.contains("a custom 3-layer model of width 64"),
            "{text}"
        );
        assert!(text.contains("for 2,000 steps"), "{text}");
        assert!(text.contains("with embedding frozen"), "{text}");
    }

    #[test]
    fn the_report_says_what_the_digit_tasks_epoch_and_held_out_set_are() {
        let mut history = History::default();
        for step in 1..=20 {
            history.push_step(record(step, 1.0, 1.0));
        }
        history.push_eval(evaluation(20, 1.2));
        let lines = report_lines(&history, &Thresholds::default(), TaskKind::Reverse);
        assert!(
            lines
                .iter()
                .any(|line| line.contains("nominal 10,000 examples")
                    && line.contains("same distribution")),
            "{lines:?}"
        );
        let language = report_lines(&history, &Thresholds::default(), TaskKind::Language);
        assert!(
            language
                .iter()
                .any(|line| line.contains("training never sees"))
        );
        assert!(
            language.iter().any(
                |line| line.starts_with("No warnings") && line.contains("spread gradient norm")
            ),
            "{language:?}"
        );
        assert_eq!(
            report_lines(&History::default(), &Thresholds::default(), TaskKind::Sort),
            ["No steps yet."]
        );
    }

    #[test]
    fn the_report_names_the_spread_of_the_global_norm() {
        let mut history = History::default();
        for step in 1..=20 {
            let norm = if step % 10 == 0 { 1000.0 } else { 1.0 };
            history.push_step(record(step, 1.0, norm));
        }
        let lines = report_lines(&history, &Thresholds::default(), TaskKind::Reverse);
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("⚠ Widely spread gradient norm: over the whole run")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|line| line.contains("nstable")),
            "{lines:?}"
        );
    }

    #[test]
    fn six_panels_and_a_read_out_of_the_nearest_step() {
        let mut history = History::default();
        for step in [1, 2, 5] {
            history.push_step(record(step, step as f64, 0.5));
        }
        history.push_eval(evaluation(2, 0.75));
        let drawn = panels(&history, Some((1.0, 4.0)), Some(2.0));
        assert_eq!(drawn.len(), 6);
        assert_eq!(drawn[0].series[1].points, [(2.0, 0.75)]);
        assert_eq!(drawn[5].series[0].points.len(), 3);
        assert!(drawn.iter().all(|panel| panel.x_range == Some((1.0, 4.0))));
        let text = describe_step(&history, 4.4).unwrap();
        assert!(text.starts_with("step 5: batch loss 5.0000"), "{text}");
        assert!(
            text.contains("evaluation at step 2: validation loss 0.7500"),
            "{text}"
        );
        assert!(describe_step(&History::default(), 1.0).is_none());
        assert_eq!(
            provenance(TaskKind::Sort, 1200, Some(0.987)),
            "Model: trained in this page on the sort task for 1,200 steps, 98.7% of held-out tokens right."
        );
    }
}
