//! The Inside tab's decisions in plain Rust: what it says about the last analysis, what its
//! JSON export holds, and when it analyses the explorer's model by itself.

use crate::analysis::activations::{ActivationSummary, DeadNeurons, SPARSE_THRESHOLD};
use crate::analysis::gradients::{
    GradientFinding, GradientThresholds, ParameterGradient, extremes, structurally_zero,
};
use crate::format::group_thousands;

/// Rows of the smallest / largest gradient-norm table.
pub const EXTREME_ROWS: usize = 5;

/// Dead units listed by index per layer before the list is cut with "…".
pub const DEAD_LISTED: usize = 12;

/// What the last analysis saw, by reference: the parts of a training step's or a batch's
/// analysis the tab shows.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    /// Where the analysis came from, in words ("training step 12 on the reverse task").
    pub source: &'a str,
    /// The training step, when it came from training.
    pub step: Option<usize>,
    /// The batch's mean loss.
    pub loss: f64,
    /// Per-tensor gradient statistics.
    pub gradients: &'a [ParameterGradient],
    /// Per-module activation statistics.
    pub activations: &'a ActivationSummary,
}

/// The numbers the section carries as `data-*` attributes (the browser tests read them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `none`, `batch` or `training`.
    pub source: &'static str,
    /// Parameter tensors analysed.
    pub tensors: usize,
    /// Detector findings.
    pub findings: usize,
    /// The problems found, each once, sorted, space-separated.
    pub problems: String,
    /// Captured tensors with a histogram.
    pub modules: usize,
    /// Of them, those over the sparsity threshold.
    pub sparse: usize,
    /// Dead feed-forward units over all layers.
    pub dead: usize,
}

/// The section's counts for `shown` (nothing analysed: all zero, source `none`).
pub fn counts(shown: Option<Shown<'_>>, findings: &[GradientFinding]) -> Counts {
    let Some(shown) = shown else {
        return Counts {
            source: "none",
            ..Counts::default()
        };
    };
    let mut problems: Vec<&str> = findings.iter().map(|f| f.problem.name()).collect();
    problems.sort_unstable();
    problems.dedup();
    Counts {
        source: if shown.step.is_some() {
            "training"
        } else {
            "batch"
        },
        tensors: shown.gradients.len(),
        findings: findings.len(),
        problems: problems.join(" "),
        modules: shown.activations.modules.len(),
        sparse: shown.activations.sparse_modules(SPARSE_THRESHOLD).len(),
        dead: shown.activations.dead.iter().map(|d| d.dead.len()).sum(),
    }
}

/// The line that says what is shown, or how to get something to show.
pub fn source_line(shown: Option<Shown<'_>>, analysing: bool) -> String {
    match shown {
        Some(shown) if shown.gradients.is_empty() => format!("Activations of {}.", shown.source),
        Some(shown) => format!(
            "Gradients and activations of {}; loss {:.4}.",
            shown.source, shown.loss
        ),
        None if analysing => "Analysing one batch of the explorer's model…".to_string(),
        None => "Nothing analysed yet: train a few steps (analysis on), or analyse one batch of the explorer's model.".to_string(),
    }
}

/// The detectors' findings in words; one reassuring line when none fired.
pub fn finding_lines(shown: Option<Shown<'_>>, findings: &[GradientFinding]) -> Vec<String> {
    let Some(shown) = shown else {
        return Vec::new();
    };
    if shown.gradients.is_empty() {
        return vec!["No gradients to check: the model has no loss.".into()];
    }
    if findings.is_empty() {
        return vec!["No detector fired: every gradient norm lies between the thresholds.".into()];
    }
    findings.iter().map(ToString::to_string).collect()
}

/// Why the key biases are missing from the detectors and the table, when there are any.
pub fn excluded_note(gradients: &[ParameterGradient]) -> Option<String> {
    let count = gradients
        .iter()
        .filter(|gradient| structurally_zero(&gradient.path))
        .count();
    (count > 0).then(|| {
        format!(
            "{count} attention key bias tensors are left out of the detectors and the table: softmax cancels a bias added to every key, so their gradient is zero by construction."
        )
    })
}

/// One row of the extremes table: a tensor and its norm, each column blank past the end.
pub type ExtremeRow = ((String, String), (String, String));

/// The five smallest and five largest gradient norms, side by side.
pub fn extreme_rows(gradients: &[ParameterGradient]) -> Vec<ExtremeRow> {
    let (smallest, largest) = extremes(gradients, EXTREME_ROWS);
    let cell = |gradient: Option<&&ParameterGradient>| {
        gradient.map_or((String::new(), String::new()), |g| {
            (g.path.clone(), format!("{:.2e}", g.gradient.norm))
        })
    };
    (0..smallest.len().max(largest.len()))
        .map(|row| (cell(smallest.get(row)), cell(largest.get(row))))
        .collect()
}

/// The sparse modules in words, or one line saying there are none.
pub fn activation_warnings(activations: &ActivationSummary) -> Vec<String> {
    let mut lines: Vec<String> = activations
        .sparse_modules(SPARSE_THRESHOLD)
        .iter()
        .map(|module| {
            format!(
                "{}: {:.1}% of the outputs are exactly zero (possible dead neurons)",
                module.path,
                100.0 * module.zero_fraction
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push(format!(
            "No module has more than {:.0}% exact zeros.",
            100.0 * SPARSE_THRESHOLD
        ));
    }
    lines
}

/// One layer's row of the dead-unit table: layer, "n of width", share, the first dead units.
pub fn dead_row(layer: &DeadNeurons) -> [String; 4] {
    let first: Vec<String> = layer
        .dead
        .iter()
        .take(DEAD_LISTED)
        .map(usize::to_string)
        .collect();
    let more = if layer.dead.len() > DEAD_LISTED {
        " …"
    } else {
        ""
    };
    [
        layer.layer.to_string(),
        format!(
            "{} of {}",
            group_thousands(layer.dead.len()),
            group_thousands(layer.width)
        ),
        format!("{:.1}%", 100.0 * layer.share()),
        format!("{}{more}", first.join(" ")),
    ]
}

/// Every number of the analysis as JSON: per tensor and per module, histograms included.
pub fn export_json(
    shown: Shown<'_>,
    thresholds: &GradientThresholds,
    findings: &[GradientFinding],
) -> serde_json::Value {
    serde_json::json!({
        "source": shown.source,
        "step": shown.step,
        "loss": shown.loss,
        "thresholds": {
            "vanishing": thresholds.vanishing,
            "exploding": thresholds.exploding,
            "fluctuation": thresholds.fluctuation,
            "fluctuation_window": thresholds.window,
        },
        "findings": findings.iter().map(|f| serde_json::json!({
            "path": f.path, "problem": f.problem.name(), "value": f.value,
        })).collect::<Vec<_>>(),
        "gradients": shown.gradients.iter().map(|g| serde_json::json!({
            "path": g.path, "shape": g.shape, "mean": g.gradient.mean, "std": g.gradient.std,
            "min": g.gradient.min, "max": g.gradient.max, "norm": g.gradient.norm,
            "weight_norm": g.weight_norm,
        })).collect::<Vec<_>>(),
        "activations": shown.activations.modules.iter().map(|m| serde_json::json!({
            "role": m.site.map(|site| site.role),
            "layer": m.site.and_then(|site| site.layer),
            "path": m.path, "shape": m.shape, "mean": m.mean, "std": m.std,
            "zero_fraction": m.zero_fraction,
            "histogram": { "min": m.histogram.min, "max": m.histogram.max, "counts": m.histogram.counts },
        })).collect::<Vec<_>>(),
        "dead_units": shown.activations.dead.iter().map(|d| serde_json::json!({
            "layer": d.layer, "width": d.width, "dead": d.dead,
        })).collect::<Vec<_>>(),
    })
}

/// Whether the tab should analyse the explorer's model by itself now: it is shown for the
/// first time with nothing to show, nothing is being analysed, and it has not done so already.
pub fn should_analyse_on_open(
    visible: bool,
    has_analysis: bool,
    analysing: bool,
    done_once: bool,
) -> bool {
    visible && !has_analysis && !analysing && !done_once
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Histogram;
    use crate::analysis::activations::ModuleActivation;
    use crate::analysis::gradients::{GradientProblem, detect};
    use crate::analysis::stats::Summary;
    use crate::structure::{Role, Site};

    fn gradient(path: &str, norm: f64) -> ParameterGradient {
        ParameterGradient {
            path: path.into(),
            shape: vec![2],
            gradient: Summary {
                count: 2,
                mean: 0.0,
                std: norm,
                min: -norm,
                max: norm,
                norm,
            },
            weight_norm: 1.0,
        }
    }

    fn activations(zero_fraction: f64, dead: Vec<usize>) -> ActivationSummary {
        ActivationSummary {
            modules: vec![ModuleActivation {
                site: Some(Site::layer(Role::FeedForwardActivation, 0)),
                path: "layers.0.ff.activation".into(),
                shape: vec![1, 4, 2000],
                mean: 0.1,
                std: 1.0,
                zero_fraction,
                histogram: Histogram::of(&[0.0, 1.0], 50),
            }],
            dead: vec![DeadNeurons {
                layer: 0,
                path: "layers.0.ff.activation".into(),
                width: 2000,
                dead,
            }],
        }
    }

    #[test]
    fn counts_and_words_follow_the_analysis() {
        let gradients = vec![
            gradient("a.weight", 1e-9),
            gradient("b.weight", 5e3),
            gradient("layers.0.attn.key.bias", 0.0),
            gradient("c.weight", 1.0),
        ];
        let summary = activations(0.95, (0..1500).collect());
        let findings = detect(&gradients, None, &GradientThresholds::default());
        let shown = Shown {
            source: "one batch",
            step: None,
            loss: 2.5,
            gradients: &gradients,
            activations: &summary,
        };
        let counts = counts(Some(shown), &findings);
        assert_eq!(
            counts,
            Counts {
                source: "batch",
                tensors: 4,
                findings: 2,
                problems: "exploding vanishing".into(),
                modules: 1,
                sparse: 1,
                dead: 1500,
            }
        );
        assert_eq!(super::counts(None, &[]).source, "none");
        assert_eq!(
            source_line(Some(shown), false),
            "Gradients and activations of one batch; loss 2.5000."
        );
        assert!(source_line(None, false).starts_with("Nothing analysed yet"));
        assert!(source_line(None, true).starts_with("Analysing"));
        assert_eq!(finding_lines(Some(shown), &findings).len(), 2);
        assert!(finding_lines(Some(shown), &[])[0].starts_with("No detector fired"));
        assert!(finding_lines(None, &findings).is_empty());
        assert!(
            excluded_note(&gradients)
                .unwrap()
                .starts_with("1 attention key bias")
        );
        assert_eq!(excluded_note(&gradients[..2]), None);
        let rows = extreme_rows(&gradients);
        assert_eq!(rows.len(), 3, "the key bias is left out");
        assert_eq!(rows[0].0.0, "a.weight");
        assert_eq!(rows[0].1.0, "b.weight");
        assert!(activation_warnings(&summary)[0].contains("95.0% of the outputs"));
        assert_eq!(
            dead_row(&summary.dead[0]),
            [
                "0".to_string(),
                "1,500 of 2,000".into(),
                "75.0%".into(),
                "0 1 2 3 4 5 6 7 8 9 10 11 …".into()
            ]
        );
        let json = export_json(shown, &GradientThresholds::default(), &findings);
        assert_eq!(json["activations"][0]["role"], "feed_forward_activation");
        assert_eq!(json["thresholds"]["fluctuation"], 1.0);
        assert!(json["thresholds"].get("unstable").is_none());
        assert_eq!(json["findings"][0]["problem"], "vanishing");
        assert_eq!(
            json["dead_units"][0]["dead"].as_array().unwrap().len(),
            1500
        );
        assert_eq!(GradientProblem::Fluctuating.name(), "fluctuating");
    }

    #[test]
    fn the_tab_analyses_by_itself_only_on_its_first_empty_showing() {
        assert!(should_analyse_on_open(true, false, false, false));
        assert!(
            !should_analyse_on_open(false, false, false, false),
            "hidden"
        );
        assert!(
            !should_analyse_on_open(true, true, false, false),
            "already has one"
        );
        assert!(
            !should_analyse_on_open(true, false, true, false),
            "one is running"
        );
        assert!(
            !should_analyse_on_open(true, false, false, true),
            "done once"
        );
    }
}
