//! The training monitor's data: what each step and evaluation measured, the warnings drawn from
//! it, and its exports to JSON and CSV.

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// The newest step records that [`History::thin`] never touches, so that the recent curve keeps
/// every step.
pub const KEEP_NEWEST_STEPS: usize = 1000;

/// Steps with a finite gradient norm that [`detect_grad_norm_spread`] needs before it judges.
pub const SPREAD_MIN_STEPS: usize = 10;

/// One optimisation step, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps done so far, this one included.
    pub step: usize,
    /// Mean loss of the step's batch, before the update.
    #[serde(with = "json_float")]
    pub loss: f64,
    /// Global L2 norm of all gradients, before clipping.
    #[serde(with = "json_float")]
    pub grad_norm: f64,
    /// Learning rate used for the update.
    #[serde(with = "json_float")]
    pub learning_rate: f64,
    /// ‖w_after − w_before‖ / ‖w_before‖ over all parameters together (None when not measured
    /// this step).
    #[serde(with = "json_float::option")]
    pub update_ratio: Option<f64>,
    /// Wall-clock milliseconds from the start of training to the end of this step. It counts
    /// everything between steps too (evaluations, drawing), so [`throughput`] gives the pace the
    /// user actually sees.
    #[serde(with = "json_float")]
    pub elapsed_ms: f64,
}

/// One evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Steps done when the evaluation ran.
    pub step: usize,
    /// Passes over the training set so far: steps × batch size / training-set size. A task that
    /// generates its examples afresh has no fixed set; the trainer then states which size it
    /// divides by.
    #[serde(with = "json_float")]
    pub epoch: f64,
    /// Mean loss of the steps since the previous evaluation (see
    /// [`History::mean_train_loss_since`]).
    #[serde(with = "json_float")]
    pub train_loss: f64,
    /// Mean loss on the held-out set.
    #[serde(with = "json_float")]
    pub val_loss: f64,
    /// Share of held-out tokens predicted right, in `[0, 1]`.
    #[serde(with = "json_float")]
    pub val_accuracy: f64,
    /// Learning rate at the evaluation.
    #[serde(with = "json_float")]
    pub learning_rate: f64,
}

/// Per-tensor update ratios, summarised every N steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRatios {
    /// Step at which the ratios were measured.
    pub step: usize,
    /// Each tensor's module path and its ‖Δw‖ / ‖w‖ for that step.
    #[serde(with = "json_float::named")]
    pub tensors: Vec<(String, f64)>,
}

/// Everything the monitor recorded in one run, each list in step order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per optimisation step (thinned when long, see [`History::thin`]).
    pub steps: Vec<StepRecord>,
    /// One record per evaluation.
    pub evals: Vec<EvalRecord>,
    /// Per-tensor update ratios, every N steps.
    pub update_ratios: Vec<UpdateRatios>,
}

impl History {
    /// Appends a step. A record at or before the last recorded step first removes the records
    /// from that step on (a run resumed from an earlier checkpoint replaces what followed), so
    /// the list stays in step order.
    pub fn push_step(&mut self, record: StepRecord) {
        let keep = self.steps.partition_point(|old| old.step < record.step);
        self.steps.truncate(keep);
        self.steps.push(record);
    }

    /// Appends an evaluation, rewinding as [`History::push_step`] does.
    pub fn push_eval(&mut self, record: EvalRecord) {
        let keep = self.evals.partition_point(|old| old.step < record.step);
        self.evals.truncate(keep);
        self.evals.push(record);
    }

    /// Appends a set of per-tensor update ratios, rewinding as [`History::push_step`] does.
    pub fn push_update_ratios(&mut self, ratios: UpdateRatios) {
        let keep = self
            .update_ratios
            .partition_point(|old| old.step < ratios.step);
        self.update_ratios.truncate(keep);
        self.update_ratios.push(ratios);
    }

    /// Mean loss of the recorded steps after `step` (`record.step > step`); `None` when there
    /// are none. Once [`History::thin`] has run, steps older than the newest
    /// [`KEEP_NEWEST_STEPS`] are a sample, so call this when the evaluation is made.
    pub fn mean_train_loss_since(&self, step: usize) -> Option<f64> {
        let start = self.steps.partition_point(|record| record.step <= step);
        let recent = self.steps.get(start..)?;
        if recent.is_empty() {
            return None;
        }
        let sum: f64 = recent.iter().map(|record| record.loss).sum();
        Some(sum / recent.len() as f64)
    }

    /// The step records whose step number lies in `range`, for zooming; empty when none do.
    pub fn steps_in(&self, range: RangeInclusive<usize>) -> &[StepRecord] {
        let start = self
            .steps
            .partition_point(|record| record.step < *range.start());
        let end = self
            .steps
            .partition_point(|record| record.step <= *range.end());
        self.steps.get(start..end).unwrap_or(&[])
    }

    /// The evaluations whose step number lies in `range`; empty when none do.
    pub fn evals_in(&self, range: RangeInclusive<usize>) -> &[EvalRecord] {
        let start = self
            .evals
            .partition_point(|record| record.step < *range.start());
        let end = self
            .evals
            .partition_point(|record| record.step <= *range.end());
        self.evals.get(start..end).unwrap_or(&[])
    }

    /// Keeps memory bounded with the one thinning rule ([`super::thinning::thin`]): while
    /// there are more than `max_steps` step records, the oldest half of them loses every second
    /// record. The newest [`KEEP_NEWEST_STEPS`] records are never touched, so a `max_steps`
    /// below that leaves about that many. Evaluations and update ratios are few and are kept
    /// whole.
    pub fn thin(&mut self, max_steps: usize) {
        super::thinning::thin(&mut self.steps, max_steps, KEEP_NEWEST_STEPS);
    }

    /// The whole history as pretty JSON: `{"steps":[...],"evals":[...],"update_ratios":[...]}`.
    /// Finite numbers are JSON numbers; NaN and infinities, which JSON lacks, are the strings
    /// `"NaN"`, `"Infinity"` and `"-Infinity"`; an unmeasured update ratio is `null`.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and the number
        // serialiser never errors, so the empty fallback is never taken.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a history written by [`History::to_json`]. A `null` where a number belongs reads as
    /// NaN, which is how other JSON writers store it.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The steps as CSV, one line each after the header
    /// `step,loss,grad_norm,learning_rate,update_ratio,elapsed_ms`; an unmeasured update ratio is
    /// an empty field and non-finite numbers are `NaN`, `inf` or `-inf`.
    pub fn steps_csv(&self) -> String {
        let rows = self.steps.iter().map(|record| {
            [
                record.step.to_string(),
                record.loss.to_string(),
                record.grad_norm.to_string(),
                record.learning_rate.to_string(),
                record
                    .update_ratio
                    .map(|ratio| ratio.to_string())
                    .unwrap_or_default(),
                record.elapsed_ms.to_string(),
            ]
        });
        csv_text(
            [
                "step",
                "loss",
                "grad_norm",
                "learning_rate",
                "update_ratio",
                "elapsed_ms",
            ],
            rows,
        )
    }

    /// The evaluations as CSV, one line each after the header
    /// `step,epoch,train_loss,val_loss,val_accuracy,learning_rate`.
    pub fn evals_csv(&self) -> String {
        let rows = self.evals.iter().map(|record| {
            [
                record.step.to_string(),
                record.epoch.to_string(),
                record.train_loss.to_string(),
                record.val_loss.to_string(),
                record.val_accuracy.to_string(),
                record.learning_rate.to_string(),
            ]
        });
        csv_text(
            [
                "step",
                "epoch",
                "train_loss",
                "val_loss",
                "val_accuracy",
                "learning_rate",
            ],
            rows,
        )
    }
}

/// `header` and `rows` as CSV text.
fn csv_text<const N: usize>(header: [&str; N], rows: impl Iterator<Item = [String; N]>) -> String {
    crate::format::csv_text(std::iter::once(header.map(String::from)).chain(rows))
}

/// Thresholds of the report's warnings (shown and editable on the page).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Overfitting is flagged when the mean validation loss exceeds this multiple of the mean
    /// training loss. 1.5 is the seed chapter's value: a gap that size is past ordinary noise.
    pub overfit_ratio: f64,
    /// Evaluations averaged for the overfitting check; five smooths one noisy evaluation away.
    pub overfit_window: usize,
    /// A widely spread gradient norm is flagged when the coefficient of variation of the global
    /// gradient norm over the whole run exceeds this.
    /// 2.0 is the seed chapter's value: steady training stays well below 1.
    pub spread_cv: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            overfit_ratio: 1.5,
            overfit_window: 5,
            spread_cv: 2.0,
        }
    }
}

/// A warning the report raises about the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warning {
    /// Validation loss has pulled away from training loss.
    Overfitting {
        /// Mean validation loss over the window.
        val_loss: f64,
        /// Mean training loss over the same evaluations.
        train_loss: f64,
        /// `val_loss / train_loss`.
        ratio: f64,
        /// The ratio above which this fires ([`Thresholds::overfit_ratio`]).
        threshold: f64,
        /// Evaluations averaged ([`Thresholds::overfit_window`]).
        window: usize,
    },
    /// The global gradient norm varies widely over the whole run (not a per-tensor check: the
    /// Inside tab judges each tensor over its recent steps).
    GradNormSpread {
        /// Population standard deviation of the gradient norms over the absolute value of their
        /// mean.
        cv: f64,
        /// The coefficient of variation above which this fires ([`Thresholds::spread_cv`]).
        threshold: f64,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Warning::Overfitting {
                val_loss,
                train_loss,
                ratio,
                threshold,
                window,
            } => write!(
                f,
                "Possible overfitting: over the last {window} evaluations the mean validation \
                 loss ({val_loss:.4}) is {ratio:.2}× the mean training loss ({train_loss:.4}), \
                 above the threshold of {threshold}×."
            ),
            Warning::GradNormSpread { cv, threshold } => write!(
                f,
                "Widely spread gradient norm: over the whole run, the global gradient norm's \
                 coefficient of variation (standard deviation over mean) is {cv:.2}, above the \
                 threshold of {threshold}."
            ),
        }
    }
}

/// The summary shown when training stops: final and best values, and warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The last recorded step.
    pub final_step: Option<StepRecord>,
    /// The last evaluation.
    pub final_eval: Option<EvalRecord>,
    /// Lowest validation loss with its step and epoch (the first, on a tie; NaN is skipped).
    pub best_val_loss: Option<(f64, usize, f64)>,
    /// Highest validation accuracy with its step and epoch (the first, on a tie; NaN is skipped).
    pub best_val_accuracy: Option<(f64, usize, f64)>,
    /// Overfitting first, then a widely spread gradient norm, each when it fires.
    pub warnings: Vec<Warning>,
    /// Coefficient of variation of all finite gradient norms; `None` with fewer than two of them
    /// or a zero mean.
    pub grad_norm_cv: Option<f64>,
}

/// Summarises `history` and checks it against `thresholds`.
pub fn report(history: &History, thresholds: &Thresholds) -> Report {
    let mut best_val_loss: Option<(f64, usize, f64)> = None;
    let mut best_val_accuracy: Option<(f64, usize, f64)> = None;
    for eval in &history.evals {
        // A strict comparison keeps the first of equal values; NaN never compares true.
        if !eval.val_loss.is_nan() && best_val_loss.is_none_or(|(best, ..)| eval.val_loss < best) {
            best_val_loss = Some((eval.val_loss, eval.step, eval.epoch));
        }
        if !eval.val_accuracy.is_nan()
            && best_val_accuracy.is_none_or(|(best, ..)| eval.val_accuracy > best)
        {
            best_val_accuracy = Some((eval.val_accuracy, eval.step, eval.epoch));
        }
    }
    let warnings = detect_overfitting(&history.evals, thresholds)
        .into_iter()
        .chain(detect_grad_norm_spread(&history.steps, thresholds))
        .collect();
    Report {
        final_step: history.steps.last().copied(),
        final_eval: history.evals.last().copied(),
        best_val_loss,
        best_val_accuracy,
        warnings,
        grad_norm_cv: grad_norm_cv(&history.steps).map(|(cv, _)| cv),
    }
}

/// Overfitting: mean val loss of the last `window` evaluations > ratio × mean train loss of those
/// same evaluations (train_loss field). Needs at least `window` evaluations (a window of zero
/// never fires); a non-finite loss in the window keeps it silent.
pub fn detect_overfitting(evals: &[EvalRecord], t: &Thresholds) -> Option<Warning> {
    let window = t.overfit_window;
    if window == 0 || evals.len() < window {
        return None;
    }
    let recent = evals.get(evals.len() - window..)?;
    let val_loss = recent.iter().map(|eval| eval.val_loss).sum::<f64>() / window as f64;
    let train_loss = recent.iter().map(|eval| eval.train_loss).sum::<f64>() / window as f64;
    // The comparison is the seed's, multiplied out, so a zero training loss needs no special case.
    (val_loss > t.overfit_ratio * train_loss).then_some(Warning::Overfitting {
        val_loss,
        train_loss,
        ratio: val_loss / train_loss,
        threshold: t.overfit_ratio,
        window,
    })
}

/// Gradient-norm spread: coefficient of variation (population std / |mean|) of ALL global grad
/// norms of the run > spread_cv (needs [`SPREAD_MIN_STEPS`] steps; non-finite norms are ignored for the
/// statistic and do not count towards them).
pub fn detect_grad_norm_spread(steps: &[StepRecord], t: &Thresholds) -> Option<Warning> {
    let (cv, count) = grad_norm_cv(steps)?;
    (count >= SPREAD_MIN_STEPS && cv > t.spread_cv).then_some(Warning::GradNormSpread {
        cv,
        threshold: t.spread_cv,
    })
}

/// Coefficient of variation of the finite gradient norms and how many there were; `None` with
/// fewer than two or a zero mean.
fn grad_norm_cv(steps: &[StepRecord]) -> Option<(f64, usize)> {
    let norms: Vec<f64> = steps
        .iter()
        .map(|step| step.grad_norm)
        .filter(|norm| norm.is_finite())
        .collect();
    if norms.len() < 2 {
        return None;
    }
    let count = norms.len() as f64;
    let mean = norms.iter().sum::<f64>() / count;
    if mean == 0.0 {
        return None;
    }
    // Population variance, as `np.std`, taken around the mean in a second pass.
    let variance = norms.iter().map(|norm| (norm - mean).powi(2)).sum::<f64>() / count;
    Some((variance.sqrt() / mean.abs(), norms.len()))
}

/// First non-finite value among loss/grad norm of a step → used to pause: returns which
/// (`"loss"` or `"gradient norm"`), the loss first.
pub fn non_finite(step: &StepRecord) -> Option<&'static str> {
    if !step.loss.is_finite() {
        Some("loss")
    } else if !step.grad_norm.is_finite() {
        Some("gradient norm")
    } else {
        None
    }
}

/// Steps per second over the last `window` steps, and the seconds `remaining` more steps take at
/// that pace: `(steps_per_s, eta_s)`. The pace is the step numbers advanced over the
/// [`StepRecord::elapsed_ms`] that passed between the record `window` records back and the last
/// one, so thinned or skipped records do not skew it. `None` with fewer than two records, a zero
/// window, or no time passed.
pub fn throughput(steps: &[StepRecord], window: usize, remaining: usize) -> Option<(f64, f64)> {
    if window == 0 {
        return None;
    }
    let last = steps.last()?;
    let first = steps.get(steps.len().saturating_sub(window + 1))?;
    let elapsed_s = (last.elapsed_ms - first.elapsed_ms) / 1000.0;
    let advanced = last.step.checked_sub(first.step)?;
    if advanced == 0 || elapsed_s <= 0.0 || !elapsed_s.is_finite() {
        return None;
    }
    let steps_per_s = advanced as f64 / elapsed_s;
    Some((steps_per_s, remaining as f64 / steps_per_s))
}

/// Serde helpers that keep NaN and infinities through JSON, which has no numbers for them.
mod json_float {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// An `f64` written as a JSON number when finite and as `"NaN"`, `"Infinity"` or
    /// `"-Infinity"` otherwise.
    pub(super) struct Float(pub(super) f64);

    impl Serialize for Float {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let value = self.0;
            if value.is_finite() {
                serializer.serialize_f64(value)
            } else if value.is_nan() {
                serializer.serialize_str("NaN")
            } else if value > 0.0 {
                serializer.serialize_str("Infinity")
            } else {
                serializer.serialize_str("-Infinity")
            }
        }
    }

    impl<'de> Deserialize<'de> for Float {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(FloatVisitor)
        }
    }

    struct FloatVisitor;

    impl Visitor<'_> for FloatVisitor {
        type Value = Float;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, null, \"NaN\", \"Infinity\" or \"-Infinity\"")
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Float, E> {
            Ok(Float(value))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Float, E> {
            Ok(Float(value as f64))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Float, E> {
            Ok(Float(value as f64))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Float, E> {
            Ok(Float(f64::NAN))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Float, E> {
            match value {
                "NaN" => Ok(Float(f64::NAN)),
                "Infinity" => Ok(Float(f64::INFINITY)),
                "-Infinity" => Ok(Float(f64::NEG_INFINITY)),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }

    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        Float(*value).serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Float::deserialize(deserializer).map(|float| float.0)
    }

    /// The same for an optional number, `None` being `null`.
    pub(super) mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::Float;

        pub(in super::super) fn serialize<S: Serializer>(
            value: &Option<f64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            value.map(Float).serialize(serializer)
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<f64>, D::Error> {
            Option::<Float>::deserialize(deserializer).map(|value| value.map(|float| float.0))
        }
    }

    /// The same for named numbers, written as `[name, number]` pairs.
    pub(super) mod named {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Float;

        pub(in super::super) fn serialize<S: Serializer>(
            pairs: &[(String, f64)],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(pairs.iter().map(|(name, value)| (name, Float(*value))))
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<(String, f64)>, D::Error> {
            let pairs = Vec::<(String, Float)>::deserialize(deserializer)?;
            Ok(pairs
                .into_iter()
                .map(|(name, float)| (name, float.0))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize, loss: f64, grad_norm: f64) -> StepRecord {
        StepRecord {
            step,
            loss,
            grad_norm,
            learning_rate: 1e-3,
            update_ratio: None,
            elapsed_ms: step as f64 * 100.0,
        }
    }

    fn eval(step: usize, train_loss: f64, val_loss: f64, val_accuracy: f64) -> EvalRecord {
        EvalRecord {
            step,
            epoch: step as f64 / 10.0,
            train_loss,
            val_loss,
            val_accuracy,
            learning_rate: 1e-3,
        }
    }

    fn steps_with_norms(norms: &[f64]) -> Vec<StepRecord> {
        norms
            .iter()
            .enumerate()
            .map(|(index, &norm)| step(index + 1, 1.0, norm))
            .collect()
    }

    /// Ten evaluations: five healthy ones, then validation loss rising from 1.6 to 2.4 while
    /// training loss stays at 1.0, so the last five average 2.0 against 1.0.
    fn overfitting_evals() -> Vec<EvalRecord> {
        let mut evals: Vec<EvalRecord> = (1..=5)
            .map(|index| eval(index * 100, 1.0, 1.05, 0.5))
            .collect();
        for (offset, val_loss) in [1.6, 1.8, 2.0, 2.2, 2.4].into_iter().enumerate() {
            evals.push(eval(600 + offset * 100, 1.0, val_loss, 0.4));
        }
        evals
    }

    #[test]
    fn healthy_run_raises_no_warning() {
        let mut history = History::default();
        for index in 1..=200 {
            // Loss falls from about 3 towards 0.5; norms wobble by ±10 % around 1.
            let loss = 0.5 + 2.5 * (-(index as f64) / 50.0).exp();
            let norm = 1.0 + 0.1 * (index as f64).sin();
            history.push_step(step(index, loss, norm));
            if index % 20 == 0 {
                let train_loss = history.mean_train_loss_since(index - 20).unwrap();
                history.push_eval(eval(index, train_loss, train_loss * 1.05, 0.8));
            }
        }
        let report = report(&history, &Thresholds::default());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(report.grad_norm_cv.unwrap() < 0.1);
        assert_eq!(report.final_step.unwrap().step, 200);
        assert_eq!(report.final_eval.unwrap().step, 200);
    }

    #[test]
    fn overfitting_fires_when_validation_loss_doubles() {
        let evals = overfitting_evals();
        let warning = detect_overfitting(&evals, &Thresholds::default()).unwrap();
        let Warning::Overfitting {
            val_loss,
            train_loss,
            ratio,
            threshold,
            window,
        } = warning
        else {
            panic!("expected overfitting, got {warning:?}");
        };
        // (1.6 + 1.8 + 2.0 + 2.2 + 2.4) / 5 = 2.0 against a training loss of 1.0.
        assert!((val_loss - 2.0).abs() < 1e-12);
        assert!((train_loss - 1.0).abs() < 1e-12);
        assert!((ratio - 2.0).abs() < 1e-12);
        assert_eq!((threshold, window), (1.5, 5));
    }

    #[test]
    fn overfitting_needs_a_full_window() {
        let evals = overfitting_evals();
        let last_four = &evals[evals.len() - 4..];
        assert!(detect_overfitting(last_four, &Thresholds::default()).is_none());
        assert!(detect_overfitting(&evals[evals.len() - 5..], &Thresholds::default()).is_some());
        let no_window = Thresholds {
            overfit_window: 0,
            ..Thresholds::default()
        };
        assert!(detect_overfitting(&evals, &no_window).is_none());
    }

    #[test]
    fn thresholds_move_the_overfitting_decision() {
        let evals = overfitting_evals();
        let lenient = Thresholds {
            overfit_ratio: 3.0,
            ..Thresholds::default()
        };
        assert!(detect_overfitting(&evals, &lenient).is_none());
        // A window of ten takes in the healthy half: (5 × 1.05 + 10) / 10 = 1.525 > 1.5 × 1.0.
        let wide = Thresholds {
            overfit_window: 10,
            ..Thresholds::default()
        };
        assert!(detect_overfitting(&evals, &wide).is_some());
        let wide_and_lenient = Thresholds {
            overfit_window: 10,
            overfit_ratio: 1.6,
            ..Thresholds::default()
        };
        assert!(detect_overfitting(&evals, &wide_and_lenient).is_none());
    }

    #[test]
    fn alternating_norms_have_a_coefficient_of_variation_of_one() {
        // Half 0.01 and half 100: mean = 50.005, every value is 49.995 from it, so the
        // population std is 49.995 and CV = 49.995 / 50.005 = 0.99980. An even split of two
        // values can never pass 1, so the default threshold of 2 stays silent.
        let norms: Vec<f64> = (0..20)
            .map(|index| if index % 2 == 0 { 0.01 } else { 100.0 })
            .collect();
        let steps = steps_with_norms(&norms);
        assert!(detect_grad_norm_spread(&steps, &Thresholds::default()).is_none());
        let strict = Thresholds {
            spread_cv: 0.5,
            ..Thresholds::default()
        };
        let Some(Warning::GradNormSpread { cv, threshold }) =
            detect_grad_norm_spread(&steps, &strict)
        else {
            panic!("a threshold of 0.5 should fire");
        };
        assert!((cv - 49.995 / 50.005).abs() < 1e-9);
        assert_eq!(threshold, 0.5);
    }

    #[test]
    fn rare_gradient_spikes_spread_the_norm() {
        // One norm of 100 in every ten, the rest 0.01: mean = (9 × 0.01 + 100) / 10 = 10.009,
        // E[x²] = (9 × 0.0001 + 10000) / 10 = 1000.00009, variance = 1000.00009 − 10.009²
        // = 899.820009, std = 29.99700, so CV = 29.99700 / 10.009 = 2.99700 > 2.
        let norms: Vec<f64> = (0..30)
            .map(|index| if index % 10 == 9 { 100.0 } else { 0.01 })
            .collect();
        let steps = steps_with_norms(&norms);
        let Some(Warning::GradNormSpread { cv, threshold }) =
            detect_grad_norm_spread(&steps, &Thresholds::default())
        else {
            panic!("spikes should fire");
        };
        let expected = 899.820009f64.sqrt() / 10.009;
        assert!((cv - expected).abs() < 1e-9);
        assert!((cv - 2.997).abs() < 1e-3);
        assert_eq!(threshold, 2.0);
        // The same spikes in fewer than ten steps are not enough to judge.
        assert!(detect_grad_norm_spread(&steps[..9], &Thresholds::default()).is_none());
    }

    #[test]
    fn steady_norms_are_stable_and_non_finite_norms_are_ignored() {
        let mut norms: Vec<f64> = (0..50)
            .map(|index| 2.0 + 0.05 * f64::from(index % 3))
            .collect();
        let steps = steps_with_norms(&norms);
        assert!(detect_grad_norm_spread(&steps, &Thresholds::default()).is_none());
        norms.push(f64::NAN);
        norms.push(f64::INFINITY);
        let with_overflow = steps_with_norms(&norms);
        assert!(detect_grad_norm_spread(&with_overflow, &Thresholds::default()).is_none());
        let history = History {
            steps: with_overflow,
            ..History::default()
        };
        let cv = report(&history, &Thresholds::default())
            .grad_norm_cv
            .unwrap();
        assert!(cv.is_finite() && cv < 0.05);
        // Nine finite norms do not reach the minimum, whatever else is recorded.
        let mut sparse = vec![f64::NAN; 5];
        sparse.extend((0..9).map(|index| if index % 3 == 0 { 100.0 } else { 0.01 }));
        let sparse = steps_with_norms(&sparse);
        let strict = Thresholds {
            spread_cv: 0.1,
            ..Thresholds::default()
        };
        assert!(detect_grad_norm_spread(&sparse, &strict).is_none());
    }

    #[test]
    fn report_picks_the_best_evaluations_with_their_step_and_epoch() {
        let mut history = History::default();
        history.push_eval(eval(100, 2.0, 2.1, 0.30));
        history.push_eval(eval(200, 1.5, 1.4, 0.55));
        history.push_eval(eval(300, 1.2, f64::NAN, f64::NAN));
        history.push_eval(eval(400, 1.0, 1.4, 0.61));
        history.push_eval(eval(500, 0.9, 1.6, 0.61));
        let report = report(&history, &Thresholds::default());
        // The loss of 1.4 ties at steps 200 and 400; the first wins, as `np.argmin`.
        assert_eq!(report.best_val_loss, Some((1.4, 200, 20.0)));
        assert_eq!(report.best_val_accuracy, Some((0.61, 400, 40.0)));
        assert_eq!(report.final_eval.unwrap().step, 500);
        assert!(report.final_step.is_none() && report.grad_norm_cv.is_none());
    }

    #[test]
    fn empty_history_reports_nothing() {
        let report = report(&History::default(), &Thresholds::default());
        assert_eq!(
            report,
            Report {
                final_step: None,
                final_eval: None,
                best_val_loss: None,
                best_val_accuracy: None,
                warnings: Vec::new(),
                grad_norm_cv: None,
            }
        );
    }

    #[test]
    fn report_lists_both_warnings_in_order() {
        let history = History {
            steps: steps_with_norms(&[0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 100.0]),
            evals: overfitting_evals(),
            update_ratios: Vec::new(),
        };
        let warnings = report(&history, &Thresholds::default()).warnings;
        assert!(matches!(
            warnings.as_slice(),
            [Warning::Overfitting { .. }, Warning::GradNormSpread { .. }]
        ));
    }

    #[test]
    fn warnings_read_as_sentences_with_their_numbers() {
        let overfitting = Warning::Overfitting {
            val_loss: 2.0,
            train_loss: 1.0,
            ratio: 2.0,
            threshold: 1.5,
            window: 5,
        };
        assert_eq!(
            overfitting.to_string(),
            "Possible overfitting: over the last 5 evaluations the mean validation loss (2.0000) \
             is 2.00× the mean training loss (1.0000), above the threshold of 1.5×."
        );
        let spread = Warning::GradNormSpread {
            cv: 2.997,
            threshold: 2.0,
        };
        assert_eq!(
            spread.to_string(),
            "Widely spread gradient norm: over the whole run, the global gradient norm's \
             coefficient of variation (standard deviation over mean) is 3.00, above the \
             threshold of 2."
        );
    }

    #[test]
    fn mean_train_loss_counts_only_later_steps() {
        let mut history = History::default();
        for (index, loss) in [4.0, 3.0, 2.0, 1.0].into_iter().enumerate() {
            history.push_step(step(index + 1, loss, 1.0));
        }
        assert_eq!(history.mean_train_loss_since(0), Some(2.5));
        assert_eq!(history.mean_train_loss_since(2), Some(1.5));
        assert_eq!(history.mean_train_loss_since(4), None);
        assert_eq!(History::default().mean_train_loss_since(0), None);
    }

    #[test]
    fn pushing_an_earlier_step_rewinds() {
        let mut history = History::default();
        for index in 1..=5 {
            history.push_step(step(index, 1.0, 1.0));
            history.push_eval(eval(index, 1.0, 1.0, 0.5));
        }
        history.push_step(step(3, 9.0, 9.0));
        history.push_eval(eval(6, 1.0, 1.0, 0.5));
        let steps: Vec<usize> = history.steps.iter().map(|record| record.step).collect();
        assert_eq!(steps, [1, 2, 3]);
        assert_eq!(history.steps[2].loss, 9.0);
        assert_eq!(history.evals.len(), 6);
        history.push_update_ratios(UpdateRatios {
            step: 100,
            tensors: Vec::new(),
        });
        history.push_update_ratios(UpdateRatios {
            step: 50,
            tensors: Vec::new(),
        });
        assert_eq!(history.update_ratios.len(), 1);
        assert_eq!(history.update_ratios[0].step, 50);
    }

    #[test]
    fn steps_in_selects_by_step_number() {
        let mut history = History::default();
        for index in (10..=100).step_by(10) {
            history.push_step(step(index, 1.0, 1.0));
            history.push_eval(eval(index, 1.0, 1.0, 0.5));
        }
        let numbers = |records: &[StepRecord]| -> Vec<usize> {
            records.iter().map(|record| record.step).collect()
        };
        assert_eq!(numbers(history.steps_in(20..=40)), [20, 30, 40]);
        assert_eq!(numbers(history.steps_in(15..=45)), [20, 30, 40]);
        assert_eq!(numbers(history.steps_in(0..=10)), [10]);
        assert_eq!(numbers(history.steps_in(95..=usize::MAX)), [100]);
        assert_eq!(history.steps_in(0..=usize::MAX).len(), 10);
        assert!(history.steps_in(41..=49).is_empty());
        assert!(history.steps_in(200..=300).is_empty());
        // An inverted range is empty rather than a panic.
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = history.steps_in(60..=30);
        assert!(inverted.is_empty());
        assert!(History::default().steps_in(0..=10).is_empty());
        let evals: Vec<usize> = history
            .evals_in(50..=70)
            .iter()
            .map(|record| record.step)
            .collect();
        assert_eq!(evals, [50, 60, 70]);
    }

    #[test]
    fn thin_keeps_the_newest_steps_and_the_order() {
        let mut history = History::default();
        for index in 1..=5000 {
            history.push_step(step(index, index as f64, 1.0));
        }
        let newest: Vec<StepRecord> = history.steps[4000..].to_vec();
        history.thin(3000);
        let len = history.steps.len();
        assert!(len <= 3000, "{len}");
        assert_eq!(&history.steps[len - KEEP_NEWEST_STEPS..], newest.as_slice());
        assert!(
            history
                .steps
                .windows(2)
                .all(|pair| pair[0].step < pair[1].step)
        );
        // One pass thins the oldest 2500 to 1250, leaving 3750; a second thins the oldest 1875
        // to 938, leaving 2813.
        assert_eq!(len, 2813);
        assert_eq!(history.steps[0].step, 1);
        // Under the limit nothing changes.
        let before = history.clone();
        history.thin(3000);
        assert_eq!(history, before);
    }

    #[test]
    fn thin_never_goes_below_the_newest_thousand() {
        let mut history = History::default();
        for index in 1..=1500 {
            history.push_step(step(index, 1.0, 1.0));
        }
        history.thin(10);
        let len = history.steps.len();
        assert!(
            (KEEP_NEWEST_STEPS..KEEP_NEWEST_STEPS + 2).contains(&len),
            "{len}"
        );
        assert_eq!(history.steps[len - KEEP_NEWEST_STEPS].step, 501);
        assert_eq!(history.steps[len - 1].step, 1500);
        assert!(
            history
                .steps
                .windows(2)
                .all(|pair| pair[0].step < pair[1].step)
        );
    }

    #[test]
    fn csv_headers_and_an_unmeasured_update_ratio() {
        let mut history = History::default();
        history.push_step(StepRecord {
            step: 1,
            loss: 2.5,
            grad_norm: 0.75,
            learning_rate: 0.001,
            update_ratio: None,
            elapsed_ms: 12.5,
        });
        history.push_step(StepRecord {
            step: 2,
            loss: f64::NAN,
            grad_norm: f64::INFINITY,
            learning_rate: 0.001,
            update_ratio: Some(0.0001),
            elapsed_ms: 20.0,
        });
        history.push_eval(eval(2, 2.25, 2.5, 0.125));
        assert_eq!(
            history.steps_csv(),
            "step,loss,grad_norm,learning_rate,update_ratio,elapsed_ms\n\
             1,2.5,0.75,0.001,,12.5\n\
             2,NaN,inf,0.001,0.0001,20\n"
        );
        assert_eq!(
            history.evals_csv(),
            "step,epoch,train_loss,val_loss,val_accuracy,learning_rate\n\
             2,0.2,2.25,2.5,0.125,0.001\n"
        );
        assert_eq!(
            History::default().steps_csv(),
            "step,loss,grad_norm,learning_rate,update_ratio,elapsed_ms\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let mut history = History::default();
        history.push_step(step(1, 2.5, 0.75));
        history.push_step(StepRecord {
            update_ratio: Some(1e-3),
            grad_norm: f64::INFINITY,
            ..step(2, 2.4, 0.0)
        });
        history.push_step(StepRecord {
            grad_norm: f64::NEG_INFINITY,
            ..step(3, 2.3, 0.0)
        });
        history.push_eval(eval(2, 2.45, 2.5, 0.25));
        history.push_update_ratios(UpdateRatios {
            step: 2,
            tensors: vec![
                ("blocks.0.attention.query.weight".to_string(), 2e-3),
                ("embedding.weight".to_string(), 5e-4),
            ],
        });
        let json = history.to_json();
        assert!(json.contains("\"steps\"") && json.contains("\"update_ratios\""));
        assert!(json.contains("\"Infinity\"") && json.contains("\"-Infinity\""));
        assert!(json.contains("\"update_ratio\": null"));
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history);
        assert_eq!(History::from_json(&json).unwrap(), history);
    }

    #[test]
    fn json_keeps_nan_and_reads_null_as_nan() {
        let mut history = History::default();
        history.push_step(step(1, f64::NAN, 1.0));
        let json = history.to_json();
        assert!(json.contains("\"NaN\""));
        let back = History::from_json(&json).unwrap();
        assert!(back.steps[0].loss.is_nan());
        let written_elsewhere = r#"{"steps":[{"step":1,"loss":null,"grad_norm":1,
            "learning_rate":0.001,"update_ratio":null,"elapsed_ms":5}],
            "evals":[],"update_ratios":[]}"#;
        let read = History::from_json(written_elsewhere).unwrap();
        assert!(read.steps[0].loss.is_nan());
        assert_eq!(read.steps[0].update_ratio, None);
        assert!(History::from_json(r#"{"steps":[{"step":1,"loss":"lots"}]}"#).is_err());
    }

    #[test]
    fn throughput_from_elapsed_time() {
        // A step every 100 ms is 10 steps per second; 50 more take 5 s.
        let steps: Vec<StepRecord> = (1..=20).map(|index| step(index, 1.0, 1.0)).collect();
        let (rate, eta) = throughput(&steps, 5, 50).unwrap();
        assert!((rate - 10.0).abs() < 1e-9);
        assert!((eta - 5.0).abs() < 1e-9);
        // A window longer than the history uses all of it.
        let (rate, _) = throughput(&steps, 1000, 0).unwrap();
        assert!((rate - 10.0).abs() < 1e-9);
        // The window sees only recent steps: the last five took 1 s each.
        let mut slowing = steps.clone();
        for (offset, record) in slowing[15..].iter_mut().enumerate() {
            record.elapsed_ms = 2000.0 + 1000.0 * (offset + 1) as f64;
        }
        let (rate, eta) = throughput(&slowing, 4, 10).unwrap();
        assert!((rate - 1.0).abs() < 1e-9);
        assert!((eta - 10.0).abs() < 1e-9);
        assert!(throughput(&steps[..1], 5, 10).is_none());
        assert!(throughput(&steps, 0, 10).is_none());
        let frozen = [
            step(1, 1.0, 1.0),
            StepRecord {
                elapsed_ms: 100.0,
                ..step(2, 1.0, 1.0)
            },
        ];
        assert!(throughput(&frozen, 5, 10).is_none());
    }

    #[test]
    fn non_finite_names_the_value_and_prefers_the_loss() {
        assert_eq!(non_finite(&step(1, 1.0, 1.0)), None);
        assert_eq!(non_finite(&step(1, f64::NAN, 1.0)), Some("loss"));
        assert_eq!(
            non_finite(&step(1, 1.0, f64::INFINITY)),
            Some("gradient norm")
        );
        assert_eq!(
            non_finite(&step(1, f64::NEG_INFINITY, f64::NAN)),
            Some("loss")
        );
    }
}
