//! Gradient flow: per-tensor gradient statistics, the vanishing / exploding / fluctuating-norm
//! detectors, and the tensors × steps history of gradient norms.

use std::fmt;

use super::Summary;

/// The gradient of one parameter tensor, summarised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParameterGradient {
    /// Module path, e.g. `layers.0.attn.query.weight`.
    pub path: String,
    /// Shape in glassbox's layout.
    pub shape: Vec<usize>,
    /// Mean, sample std, min, max and L2 norm of the gradient.
    pub gradient: Summary,
    /// L2 norm of the parameter itself.
    pub weight_norm: f64,
}

impl ParameterGradient {
    /// `‖g‖ / ‖w‖`: how large a plain SGD step would be next to the weights (0 for zero weights).
    pub fn ratio_to_weight(&self) -> f64 {
        if self.weight_norm > 0.0 {
            self.gradient.norm / self.weight_norm
        } else {
            0.0
        }
    }

    /// The seed chapter's spread ratio `std / (|mean| + 1e-8)` of the gradient's elements.
    pub fn spread_ratio(&self) -> f64 {
        self.gradient.std / (self.gradient.mean.abs() + 1e-8)
    }
}

/// Whether the gradient at `path` is zero by construction, whatever the data.
///
/// A bias added to every key shifts each query's scores by one constant, which softmax cancels:
/// its gradient is zero up to round-off (PyTorch gives a norm of about 1e-9 too). The detectors
/// leave such tensors out instead of calling them vanishing.
pub fn structurally_zero(path: &str) -> bool {
    path.ends_with("attn.key.bias")
}

/// Limits of the gradient detectors; the page shows them and lets the user edit them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientThresholds {
    /// A tensor's gradient norm below this is vanishing (seed chapter: 1e-6).
    pub vanishing: f64,
    /// A tensor's gradient norm above this is exploding (seed chapter: 1e3).
    pub exploding: f64,
    /// A tensor whose gradient norm, over the last [`GradientThresholds::window`] recorded
    /// steps, has a coefficient of variation `std / (|mean| + 1e-8)` above this has a
    /// fluctuating norm. (The training report's "unstable" is another measure: the variation of
    /// the global norm over the whole run.)
    pub fluctuation: f64,
    /// Recorded steps the fluctuation detector looks back over.
    pub window: usize,
}

impl Default for GradientThresholds {
    fn default() -> Self {
        Self {
            vanishing: 1e-6,
            exploding: 1e3,
            fluctuation: 1.0,
            window: 20,
        }
    }
}

/// Fewest recorded steps the fluctuation detector needs before it judges a tensor.
pub const MIN_FLUCTUATION_STEPS: usize = 5;

/// What a detector found wrong with a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GradientProblem {
    /// Norm below the vanishing threshold: the tensor barely learns.
    Vanishing,
    /// Norm above the exploding threshold: updates overshoot.
    Exploding,
    /// One tensor's gradient norm varying, over the recent analysed steps, by more than the
    /// fluctuation threshold (its coefficient of variation).
    Fluctuating,
}

impl GradientProblem {
    /// Short lower-case name, as used in the page's data attributes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vanishing => "vanishing",
            Self::Exploding => "exploding",
            Self::Fluctuating => "fluctuating",
        }
    }
}

/// One flagged tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientFinding {
    /// Module path of the tensor.
    pub path: String,
    /// Which detector fired.
    pub problem: GradientProblem,
    /// The measured value: the norm, or the coefficient of variation for fluctuating.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
}

impl fmt::Display for GradientFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            GradientProblem::Vanishing => write!(
                f,
                "vanishing gradient: {} (norm {:.2e} < {:.0e})",
                self.path, self.value, self.threshold
            ),
            GradientProblem::Exploding => write!(
                f,
                "exploding gradient: {} (norm {:.2e} > {:.0e})",
                self.path, self.value, self.threshold
            ),
            GradientProblem::Fluctuating => write!(
                f,
                "fluctuating gradient norm: {} (std/mean of its norm over the recent analysed steps = {:.2} > {})",
                self.path, self.value, self.threshold
            ),
        }
    }
}

/// Runs the three detectors over one step's gradients, the fluctuation one over `history`.
///
/// Tensors that are [`structurally_zero`] are skipped. Findings come in tensor order, vanishing
/// and exploding before fluctuating.
pub fn detect(
    gradients: &[ParameterGradient],
    history: Option<&GradientHistory>,
    thresholds: &GradientThresholds,
) -> Vec<GradientFinding> {
    let mut findings = Vec::new();
    for parameter in gradients {
        if structurally_zero(&parameter.path) {
            continue;
        }
        let norm = parameter.gradient.norm;
        if norm < thresholds.vanishing {
            findings.push(GradientFinding {
                path: parameter.path.clone(),
                problem: GradientProblem::Vanishing,
                value: norm,
                threshold: thresholds.vanishing,
            });
        } else if norm > thresholds.exploding || !norm.is_finite() {
            findings.push(GradientFinding {
                path: parameter.path.clone(),
                problem: GradientProblem::Exploding,
                value: norm,
                threshold: thresholds.exploding,
            });
        }
    }
    if let Some(history) = history {
        for (index, path) in history.paths().iter().enumerate() {
            if structurally_zero(path) {
                continue;
            }
            if let Some(variation) = history.variation(index, thresholds.window)
                && variation > thresholds.fluctuation
            {
                findings.push(GradientFinding {
                    path: path.clone(),
                    problem: GradientProblem::Fluctuating,
                    value: variation,
                    threshold: thresholds.fluctuation,
                });
            }
        }
    }
    findings
}

/// The `count` smallest gradient norms (smallest first) and the `count` largest (largest
/// first), leaving out tensors that are [`structurally_zero`].
pub fn extremes(
    gradients: &[ParameterGradient],
    count: usize,
) -> (Vec<&ParameterGradient>, Vec<&ParameterGradient>) {
    let mut sorted: Vec<&ParameterGradient> = gradients
        .iter()
        .filter(|parameter| !structurally_zero(&parameter.path))
        .collect();
    sorted.sort_by(|a, b| a.gradient.norm.total_cmp(&b.gradient.norm));
    let smallest = sorted.iter().take(count).copied().collect();
    let largest = sorted.iter().rev().take(count).copied().collect();
    (smallest, largest)
}

/// Gradient norm of every tensor at each recorded step, bounded in memory: past `capacity`
/// rows every other old row is dropped, so the whole run stays covered at a coarser grain.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientHistory {
    paths: Vec<String>,
    steps: Vec<usize>,
    norms: Vec<Vec<f32>>,
    capacity: usize,
}

impl GradientHistory {
    /// An empty history for the tensors at `paths`, keeping at most `capacity` steps (≥ 4).
    pub fn new(paths: Vec<String>, capacity: usize) -> Self {
        Self {
            paths,
            steps: Vec::new(),
            norms: Vec::new(),
            capacity: capacity.max(4),
        }
    }

    /// Records the norms of `step`, one per path in order. Norms of another length are refused.
    pub fn push(&mut self, step: usize, norms: &[f64]) -> bool {
        if norms.len() != self.paths.len() {
            return false;
        }
        self.steps.push(step);
        self.norms
            .push(norms.iter().map(|&norm| norm as f32).collect());
        // The newest half stays whole: the fluctuation detector reads it.
        let keep = super::thinning::kept(self.steps.len(), self.capacity, self.capacity / 2);
        super::thinning::retain_kept(&mut self.steps, &keep);
        super::thinning::retain_kept(&mut self.norms, &keep);
        true
    }

    /// Tensor paths, the rows of the heatmap.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Recorded steps, oldest first, the columns of the heatmap.
    pub fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// Norm of tensor `tensor` at recorded column `column`.
    pub fn norm(&self, tensor: usize, column: usize) -> Option<f32> {
        self.norms.get(column)?.get(tensor).copied()
    }

    /// Number of recorded steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `std / (|mean| + 1e-8)` of tensor `tensor`'s norm over its last `window` recorded steps;
    /// `None` with fewer than [`MIN_FLUCTUATION_STEPS`] of them.
    pub fn variation(&self, tensor: usize, window: usize) -> Option<f64> {
        let start = self
            .norms
            .len()
            .saturating_sub(window.max(MIN_FLUCTUATION_STEPS));
        let values: Vec<f32> = self.norms[start..]
            .iter()
            .filter_map(|row| row.get(tensor).copied())
            .collect();
        if values.len() < MIN_FLUCTUATION_STEPS {
            return None;
        }
        let summary = Summary::of(&values)?;
        Some(summary.std / (summary.mean.abs() + 1e-8))
    }

    /// The first recorded step at which tensor `tensor`'s norm crossed below `below` or above
    /// `above`, if any: where a gradient vanished or exploded.
    pub fn first_crossing(&self, tensor: usize, below: f64, above: f64) -> Option<usize> {
        self.norms
            .iter()
            .zip(&self.steps)
            .find(|(row, _)| {
                row.get(tensor).is_some_and(|&norm| {
                    let norm = f64::from(norm);
                    norm < below || norm > above || !norm.is_finite()
                })
            })
            .map(|(_, &step)| step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(path: &str, mean: f64, std: f64, norm: f64) -> ParameterGradient {
        ParameterGradient {
            path: path.into(),
            shape: vec![4],
            gradient: Summary {
                count: 4,
                mean,
                std,
                min: -norm,
                max: norm,
                norm,
            },
            weight_norm: 2.0,
        }
    }

    #[test]
    fn vanishing_and_exploding_fire_on_their_thresholds_only() {
        let thresholds = GradientThresholds::default();
        let gradients = vec![
            gradient("a.weight", 0.0, 1e-8, 5e-7),
            gradient("b.weight", 0.0, 1.0, 1e-6),
            gradient("c.weight", 0.0, 1.0, 2e3),
            gradient("d.weight", 0.0, 1.0, 1e3),
            gradient("layers.0.attn.key.bias", 0.0, 0.0, 1e-9),
        ];
        let findings = detect(&gradients, None, &thresholds);
        let found: Vec<(&str, GradientProblem)> = findings
            .iter()
            .map(|finding| (finding.path.as_str(), finding.problem))
            .collect();
        assert_eq!(
            found,
            vec![
                ("a.weight", GradientProblem::Vanishing),
                ("c.weight", GradientProblem::Exploding)
            ]
        );
        assert_eq!(
            findings[0].to_string(),
            "vanishing gradient: a.weight (norm 5.00e-7 < 1e-6)"
        );
        // Editing a threshold changes the verdict.
        let strict = GradientThresholds {
            exploding: 500.0,
            ..thresholds
        };
        assert_eq!(detect(&gradients, None, &strict).len(), 3);
    }

    #[test]
    fn fluctuating_needs_a_swinging_norm_over_enough_steps() {
        let mut history = GradientHistory::new(vec!["steady".into(), "swinging".into()], 64);
        for step in 0..4 {
            history.push(step, &[1.0, if step % 2 == 0 { 0.01 } else { 10.0 }]);
        }
        let thresholds = GradientThresholds::default();
        assert!(
            detect(&[], Some(&history), &thresholds).is_empty(),
            "judged too early"
        );
        for step in 4..10 {
            history.push(
                step,
                &[
                    1.0 + step as f64 * 1e-3,
                    if step % 2 == 0 { 0.01 } else { 10.0 },
                ],
            );
        }
        let findings = detect(&[], Some(&history), &thresholds);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].path, "swinging");
        assert!(findings[0].value > 0.9, "{}", findings[0].value);
        assert_eq!(findings[0].problem.name(), "fluctuating");
        assert!(
            findings[0]
                .to_string()
                .starts_with("fluctuating gradient norm: swinging"),
            "{}",
            findings[0]
        );
        assert!(history.variation(0, 20).unwrap() < 0.01);
    }

    #[test]
    fn extremes_sort_by_norm_and_skip_structural_zeros() {
        let gradients: Vec<ParameterGradient> = (0..8)
            .map(|index| gradient(&format!("t{index}"), 0.0, 1.0, 10f64.powi(index - 4)))
            .chain([gradient("layers.1.attn.key.bias", 0.0, 0.0, 0.0)])
            .collect();
        let (smallest, largest) = extremes(&gradients, 5);
        let names =
            |list: Vec<&ParameterGradient>| list.iter().map(|g| g.path.clone()).collect::<Vec<_>>();
        assert_eq!(names(smallest), ["t0", "t1", "t2", "t3", "t4"]);
        assert_eq!(names(largest), ["t7", "t6", "t5", "t4", "t3"]);
    }

    #[test]
    fn history_stays_bounded_and_keeps_the_newest_steps() {
        let mut history = GradientHistory::new(vec!["a".into()], 16);
        for step in 0..1000 {
            assert!(history.push(step, &[step as f64]));
        }
        assert!(history.len() <= 16);
        assert_eq!(*history.steps().last().unwrap(), 999);
        assert_eq!(history.steps()[0], 0, "the start of the run stays covered");
        assert!(history.steps().windows(2).all(|pair| pair[0] < pair[1]));
        assert!(!history.push(1000, &[1.0, 2.0]), "wrong width refused");
        assert_eq!(history.first_crossing(0, 1e-6, 500.0), Some(0));
        assert_eq!(history.norm(0, history.len() - 1), Some(999.0));
    }
}
