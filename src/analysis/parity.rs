//! How far glassbox's numbers lie from a reference implementation's (PyTorch's parity fixtures):
//! the one comparison that the native tests and the page's WebGPU check both run.
//!
//! A fixture (`tests/fixtures/`, see its README) is a safetensors file of expected tensors
//! (`input_ids`, `targets`, `logits`, `attention.layers.{i}`, `modules.{path}`) and a JSON file
//! with the loss and per-parameter gradient statistics. [`Reference::parse`] reads both;
//! [`compare_forward`] and [`compare_gradients`] return the largest difference per quantity,
//! with where it is, and the tolerances the project holds every backend to.

use std::collections::{BTreeMap, BTreeSet};

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

use super::gradients::ParameterGradient;
use crate::structure::trace::fixture_names;
use crate::structure::{NormPosition, Trace};

/// Largest absolute error allowed in an attention weight.
pub const ATTENTION_TOLERANCE: f64 = 1e-5;
/// Largest absolute error allowed in a logit or a sub-module's output.
pub const OUTPUT_TOLERANCE: f64 = 1e-4;
/// Largest relative error allowed in a gradient statistic (mean, std, min, max, norm).
pub const GRADIENT_TOLERANCE: f64 = 1e-4;
/// Largest relative error allowed in the loss.
pub const LOSS_TOLERANCE: f64 = 1e-5;
/// A reference gradient with a norm below this (times the largest reference norm, at least 1)
/// is zero up to round-off, as is a key bias's, whose gradient softmax cancels.
pub const ZERO_GRADIENT_NORM: f64 = 1e-7;
/// glassbox's norm for a gradient that is zero up to round-off must be below this, times the
/// largest reference norm (at least 1): f32 round-off, seven orders below a real gradient.
pub const ZERO_GRADIENT_TOLERANCE: f64 = 1e-6;

/// Why a comparison could not be made: the fixture or the computed data do not fit together.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParityError {
    /// The fixture files could not be read.
    #[error("the fixture is malformed: {0}")]
    Fixture(String),
    /// The fixture lacks a tensor or entry the comparison needs.
    #[error("the fixture has no `{0}`")]
    Missing(String),
    /// A computed tensor's shape differs from the reference's.
    #[error("{what}: glassbox's shape is {actual:?}, the reference's {expected:?}")]
    Shape {
        /// The quantity compared.
        what: String,
        /// The reference's shape.
        expected: Vec<usize>,
        /// glassbox's shape.
        actual: Vec<usize>,
    },
    /// glassbox and the reference computed different sets of things.
    #[error("{0}")]
    Coverage(String),
}

/// One expected tensor, its values widened to `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedTensor {
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: Vec<f64>,
}

/// The reference's statistics of one parameter's gradient (float64 in the fixture).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct ExpectedGradient {
    /// Mean of the elements.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Smallest element.
    pub min: f64,
    /// Largest element.
    pub max: f64,
    /// L2 norm.
    pub norm: f64,
    /// Number of elements.
    pub numel: u64,
}

/// What a reference implementation computed for one model: expected tensors, loss and gradient
/// statistics by glassbox parameter path.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Expected tensors by fixture name.
    pub tensors: BTreeMap<String, ExpectedTensor>,
    /// Mean cross-entropy of the logits on the targets.
    pub loss: f64,
    /// Gradient statistics by parameter path.
    pub gradients: BTreeMap<String, ExpectedGradient>,
}

impl Reference {
    /// Reads a fixture: `tensors` is `<name>.expected.safetensors` (F32 and I64 tensors),
    /// `json` is `<name>.expected.json` (with `loss` and `gradients`).
    pub fn parse(tensors: &[u8], json: &str) -> Result<Self, ParityError> {
        let file =
            SafeTensors::deserialize(tensors).map_err(|e| ParityError::Fixture(e.to_string()))?;
        let mut expected = BTreeMap::new();
        for (name, view) in file.iter() {
            let values: Vec<f64> = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect(),
                Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|b| {
                        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64
                    })
                    .collect(),
                other => {
                    return Err(ParityError::Fixture(format!(
                        "`{name}` is {other:?}; only F32 and I64 are expected"
                    )));
                }
            };
            let shape = view.shape().to_vec();
            expected.insert(name.to_string(), ExpectedTensor { shape, values });
        }
        #[derive(serde::Deserialize)]
        struct Json {
            loss: f64,
            gradients: BTreeMap<String, ExpectedGradient>,
        }
        let json: Json =
            serde_json::from_str(json).map_err(|e| ParityError::Fixture(e.to_string()))?;
        Ok(Self {
            tensors: expected,
            loss: json.loss,
            gradients: json.gradients,
        })
    }

    /// The expected tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&ExpectedTensor, ParityError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ParityError::Missing(name.to_string()))
    }

    /// A `[batch, seq]` integer tensor (`input_ids`, `targets`) as one id list per sequence.
    pub fn ids(&self, name: &str) -> Result<Vec<Vec<u32>>, ParityError> {
        let tensor = self.tensor(name)?;
        let [_, seq] = tensor.shape[..] else {
            return Err(ParityError::Fixture(format!(
                "`{name}` has shape {:?}, not [batch, seq]",
                tensor.shape
            )));
        };
        let id = |&value: &f64| {
            u32::try_from(value as i64).map_err(|_| {
                ParityError::Fixture(format!("`{name}` holds {value}, not a token id"))
            })
        };
        tensor
            .values
            .chunks(seq.max(1))
            .map(|row| row.iter().map(id).collect())
            .collect()
    }

    /// The names of the expected sub-module outputs (`modules.*`).
    fn module_names(&self) -> BTreeSet<&str> {
        self.tensors
            .keys()
            .map(String::as_str)
            .filter(|name| name.starts_with("modules."))
            .collect()
    }
}

/// The element where a quantity's largest error is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worst {
    /// The tensor or statistic, e.g. `layers.0.attn` or `layers.1.ff.linear1.weight std`.
    pub what: String,
    /// Flat row-major index into it (0 for a statistic).
    pub index: usize,
    /// glassbox's value.
    pub actual: f64,
    /// The reference's value.
    pub expected: f64,
}

/// The largest error of one quantity over everything compared, against its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Largest error found (absolute or relative, as the quantity's tolerance is).
    pub largest: f64,
    /// The most an error may be.
    pub tolerance: f64,
    /// How many values were compared.
    pub compared: usize,
    /// Where the largest error is; `None` when nothing was compared.
    pub worst: Option<Worst>,
}

impl Difference {
    pub(crate) fn new(tolerance: f64) -> Self {
        Self {
            largest: 0.0,
            tolerance,
            compared: 0,
            worst: None,
        }
    }

    /// Whether every error is within the tolerance (NaN never is).
    pub fn within_tolerance(&self) -> bool {
        self.largest <= self.tolerance
    }

    /// Counts one compared value whose error is `error`, keeping the largest.
    fn record(&mut self, error: f64, worst: impl FnOnce() -> Worst) {
        self.compared += 1;
        // A NaN error is the largest of all, so that it is never hidden.
        if self.largest.is_nan() {
            return;
        }
        if error.is_nan() || error > self.largest || self.worst.is_none() {
            self.largest = error;
            self.worst = Some(worst());
        }
    }

    /// Compares `actual` with `expected` element by element (absolute error).
    pub(crate) fn absolute(&mut self, what: &str, actual: &[f32], expected: &[f64]) {
        for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let error = (f64::from(a) - e).abs();
            self.record(error, || Worst {
                what: what.to_string(),
                index,
                actual: f64::from(a),
                expected: e,
            });
        }
    }

    /// Words for a report: `largest 3.2e-7 (≤ 1e-5) at layers.0.attn[17]: 0.51 vs 0.51`.
    pub fn describe(&self) -> String {
        let at = self.worst.as_ref().map_or_else(String::new, |worst| {
            format!(
                " at {}[{}]: glassbox {:e} vs reference {:e}",
                worst.what, worst.index, worst.actual, worst.expected
            )
        });
        format!(
            "largest error {:.2e} (tolerance {:.0e}, {} values){at}",
            self.largest, self.tolerance, self.compared
        )
    }
}

/// The forward pass against the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForwardParity {
    /// Attention weights of every layer and head.
    pub attention: Difference,
    /// Every captured sub-module output.
    pub modules: Difference,
    /// The logits.
    pub logits: Difference,
}

impl ForwardParity {
    /// Whether every quantity is within its tolerance.
    pub fn within_tolerance(&self) -> bool {
        [&self.attention, &self.modules, &self.logits]
            .iter()
            .all(|difference| difference.within_tolerance())
    }
}

/// `Ok` when `actual` is `expected`, else the shape error naming `what`.
pub(crate) fn check_shape(
    what: &str,
    expected: &[usize],
    actual: &[usize],
) -> Result<(), ParityError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ParityError::Shape {
            what: what.to_string(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        })
    }
}

/// Compares a traced forward pass (`trace`, and the `logits` it produced, row-major
/// `[batch, seq, vocab]`) with the reference: every layer's attention, every fixture module
/// (each must be captured) and the logits.
///
/// Captures are matched to the fixture's names by role and layer ([`fixture_names`]), never by
/// label: a post-LN model (`norm`) captures its layer output once, which PyTorch hooks twice.
pub fn compare_forward(
    reference: &Reference,
    trace: &Trace,
    logits: &[f32],
    norm: NormPosition,
) -> Result<ForwardParity, ParityError> {
    let mut attention = Difference::new(ATTENTION_TOLERANCE);
    let expected_layers = reference
        .tensors
        .keys()
        .filter(|name| name.starts_with("attention.layers."))
        .count();
    if trace.attention.len() != expected_layers {
        return Err(ParityError::Coverage(format!(
            "glassbox captured attention in {} layers, the reference in {expected_layers}",
            trace.attention.len()
        )));
    }
    for capture in &trace.attention {
        let what = format!("attention.layers.{}", capture.layer);
        let expected = reference.tensor(&what)?;
        let shape = [capture.batch, capture.heads, capture.queries, capture.keys];
        check_shape(&what, &expected.shape, &shape)?;
        check_shape(&what, &[expected.values.len()], &[capture.values.len()])?;
        attention.absolute(&what, &capture.values, &expected.values);
    }

    let mut modules = Difference::new(OUTPUT_TOLERANCE);
    let mut covered = BTreeSet::new();
    for capture in &trace.modules {
        for name in fixture_names(capture.site(), norm) {
            let expected = reference.tensor(&name)?;
            check_shape(&name, &expected.shape, &capture.shape)?;
            check_shape(&name, &[expected.values.len()], &[capture.values.len()])?;
            modules.absolute(&capture.path, &capture.values, &expected.values);
            covered.insert(name);
        }
    }
    let missing: Vec<&str> = reference
        .module_names()
        .into_iter()
        .filter(|name| !covered.contains(*name))
        .collect();
    if !missing.is_empty() {
        return Err(ParityError::Coverage(format!(
            "glassbox captured no output for {}",
            missing.join(", ")
        )));
    }

    let mut logit_difference = Difference::new(OUTPUT_TOLERANCE);
    let expected = reference.tensor("logits")?;
    check_shape("logits", &[expected.values.len()], &[logits.len()])?;
    logit_difference.absolute("logits", logits, &expected.values);
    Ok(ForwardParity {
        attention,
        modules,
        logits: logit_difference,
    })
}

/// One batch's loss and gradient statistics against the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradientParity {
    /// Relative error of the loss.
    pub loss: Difference,
    /// Relative error of each statistic (`mean`, `std`, `min`, `max`, `norm`) over every
    /// parameter whose reference gradient is not zero up to round-off, scaled as
    /// [`compare_gradients`] says.
    pub statistics: BTreeMap<String, Difference>,
    /// glassbox's gradient norm for the parameters whose reference gradient is zero up to
    /// round-off: it must be too.
    pub zero_norms: Difference,
}

impl GradientParity {
    /// Whether the loss and every statistic are within their tolerances.
    pub fn within_tolerance(&self) -> bool {
        self.loss.within_tolerance()
            && self.zero_norms.within_tolerance()
            && self.statistics.values().all(Difference::within_tolerance)
    }
}

/// Compares one batch's `loss` and per-parameter `gradients` with the reference's.
///
/// Each statistic's error is relative to the larger of its reference value and the gradient's
/// own scale (`max(std, norm / √n)`, floored at 1e-7): several statistics are zero up to
/// round-off (the mean of many gradients next to a LayerNorm or the softmax), where a purely
/// relative error means nothing. A key bias, and a parameter whose reference gradient norm is
/// below [`ZERO_GRADIENT_NORM`] (scaled by the largest reference norm), is checked only for a
/// norm below [`ZERO_GRADIENT_TOLERANCE`] (scaled alike) in glassbox.
pub fn compare_gradients(
    reference: &Reference,
    loss: f64,
    gradients: &[ParameterGradient],
) -> Result<GradientParity, ParityError> {
    let mut loss_difference = Difference::new(LOSS_TOLERANCE);
    loss_difference.record((loss - reference.loss).abs() / reference.loss.abs(), || {
        Worst {
            what: "loss".into(),
            index: 0,
            actual: loss,
            expected: reference.loss,
        }
    });
    let computed: BTreeSet<&str> = gradients.iter().map(|p| p.path.as_str()).collect();
    let expected: BTreeSet<&str> = reference.gradients.keys().map(String::as_str).collect();
    if computed != expected {
        let only = |a: &BTreeSet<&str>, b: &BTreeSet<&str>| {
            a.difference(b).copied().collect::<Vec<_>>().join(", ")
        };
        return Err(ParityError::Coverage(format!(
            "the gradients cover different parameters: only glassbox has [{}], only the reference [{}]",
            only(&computed, &expected),
            only(&expected, &computed)
        )));
    }
    let mut statistics: BTreeMap<String, Difference> = ["mean", "std", "min", "max", "norm"]
        .into_iter()
        .map(|key| (key.to_string(), Difference::new(GRADIENT_TOLERANCE)))
        .collect();
    // Round-off in a gradient that is zero in exact arithmetic grows with the model's
    // gradients: the zero threshold is scaled by the largest reference norm (at least 1).
    let scale = reference
        .gradients
        .values()
        .map(|gradient| gradient.norm)
        .fold(1.0, f64::max);
    let mut zero_norms = Difference::new(ZERO_GRADIENT_TOLERANCE * scale);
    for parameter in gradients {
        let Some(&want) = reference.gradients.get(&parameter.path) else {
            return Err(ParityError::Missing(format!(
                "gradients.{}",
                parameter.path
            )));
        };
        let got = parameter.gradient;
        if got.count as u64 != want.numel {
            return Err(ParityError::Shape {
                what: format!("gradient of {}", parameter.path),
                expected: vec![want.numel as usize],
                actual: vec![got.count],
            });
        }
        // A key bias in glassbox's names or a checkpoint's (`attention.self.key.bias`).
        let key_bias = super::gradients::structurally_zero(&parameter.path)
            || parameter.path.ends_with("attention.self.key.bias");
        if want.norm < ZERO_GRADIENT_NORM * scale || key_bias {
            zero_norms.record(got.norm, || Worst {
                what: format!("{} norm", parameter.path),
                index: 0,
                actual: got.norm,
                expected: want.norm,
            });
            continue;
        }
        let scale = want.std.max(want.norm / (got.count as f64).sqrt());
        for (key, value, reference_value) in [
            ("mean", got.mean, want.mean),
            ("std", got.std, want.std),
            ("min", got.min, want.min),
            ("max", got.max, want.max),
            ("norm", got.norm, want.norm),
        ] {
            let error =
                (value - reference_value).abs() / reference_value.abs().max(scale).max(1e-7);
            if let Some(difference) = statistics.get_mut(key) {
                difference.record(error, || Worst {
                    what: format!("{} {key}", parameter.path),
                    index: 0,
                    actual: value,
                    expected: reference_value,
                });
            }
        }
    }
    Ok(GradientParity {
        loss: loss_difference,
        statistics,
        zero_norms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Summary;
    use crate::structure::AttentionCapture;
    use crate::structure::{Capture, Role};

    fn tensor(shape: &[usize], values: &[f64]) -> ExpectedTensor {
        ExpectedTensor {
            shape: shape.to_vec(),
            values: values.to_vec(),
        }
    }

    /// A reference for a one-layer, one-head model on two tokens with a two-word vocabulary.
    fn reference() -> Reference {
        Reference {
            tensors: BTreeMap::from([
                (
                    "attention.layers.0".into(),
                    tensor(&[1, 1, 2, 2], &[1.0, 0.0, 0.25, 0.75]),
                ),
                ("modules.embedding".into(), tensor(&[1, 2, 1], &[0.5, -0.5])),
                ("logits".into(), tensor(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0])),
                ("input_ids".into(), tensor(&[1, 2], &[0.0, 1.0])),
            ]),
            loss: 2.0,
            gradients: BTreeMap::from([
                (
                    "w".into(),
                    ExpectedGradient {
                        mean: 0.5,
                        std: 1.0,
                        min: -1.0,
                        max: 2.0,
                        norm: 3.0,
                        numel: 4,
                    },
                ),
                (
                    "key.bias".into(),
                    ExpectedGradient {
                        mean: 0.0,
                        std: 0.0,
                        min: 0.0,
                        max: 0.0,
                        norm: 1e-9,
                        numel: 2,
                    },
                ),
            ]),
        }
    }

    fn trace(attention: [f32; 4], embedding: [f32; 2]) -> Trace {
        Trace {
            attention: vec![AttentionCapture {
                layer: 0,
                batch: 1,
                heads: 1,
                queries: 2,
                keys: 2,
                values: attention.to_vec(),
            }],
            modules: vec![Capture {
                role: Role::Embedding,
                layer: None,
                path: "embedding".into(),
                shape: vec![1, 2, 1],
                values: embedding.to_vec(),
            }],
        }
    }

    fn gradient(
        path: &str,
        count: usize,
        [mean, std, min, max, norm]: [f64; 5],
    ) -> ParameterGradient {
        ParameterGradient {
            path: path.into(),
            shape: vec![count],
            gradient: Summary {
                count,
                mean,
                std,
                min,
                max,
                norm,
            },
            weight_norm: 1.0,
        }
    }

    #[test]
    fn equal_numbers_give_zero_error_and_count_every_value() {
        let parity = compare_forward(
            &reference(),
            &trace([1.0, 0.0, 0.25, 0.75], [0.5, -0.5]),
            &[1.0, 2.0, 3.0, 4.0],
            NormPosition::Post,
        )
        .unwrap();
        assert_eq!(parity.attention.largest, 0.0);
        assert_eq!(parity.attention.compared, 4);
        assert_eq!(parity.modules.compared, 2);
        assert_eq!(parity.logits.compared, 4);
        assert!(parity.within_tolerance());
    }

    #[test]
    fn the_largest_error_is_found_and_located() {
        let parity = compare_forward(
            &reference(),
            &trace([1.0, 0.0, 0.25 + 2e-5, 0.75 - 1e-6], [0.5, -0.5 + 3e-4]),
            &[1.0, 2.0, 3.0, 4.00005],
            NormPosition::Post,
        )
        .unwrap();
        assert!((parity.attention.largest - 2e-5).abs() < 1e-7);
        let worst = parity.attention.worst.as_ref().unwrap();
        assert_eq!(
            (worst.what.as_str(), worst.index),
            ("attention.layers.0", 2)
        );
        assert!(!parity.attention.within_tolerance(), "2e-5 is over 1e-5");
        assert_eq!(parity.modules.worst.as_ref().unwrap().index, 1);
        assert!(!parity.modules.within_tolerance(), "3e-4 is over 1e-4");
        assert!(parity.logits.within_tolerance(), "5e-5 is within 1e-4");
        assert_eq!(parity.logits.worst.as_ref().unwrap().index, 3);
        assert!(!parity.within_tolerance());
    }

    #[test]
    fn a_nan_is_never_within_tolerance() {
        let parity = compare_forward(
            &reference(),
            &trace([f32::NAN, 0.0, 0.25, 0.75], [0.5, -0.5]),
            &[1.0, 2.0, 3.0, 4.0],
            NormPosition::Post,
        )
        .unwrap();
        assert!(parity.attention.largest.is_nan());
        assert!(!parity.attention.within_tolerance());
    }

    #[test]
    fn shapes_and_coverage_must_match() {
        let mut wrong_shape = trace([1.0, 0.0, 0.25, 0.75], [0.5, -0.5]);
        wrong_shape.modules[0].shape = vec![2, 1, 1];
        assert!(matches!(
            compare_forward(
                &reference(),
                &wrong_shape,
                &[1.0, 2.0, 3.0, 4.0],
                NormPosition::Post
            ),
            Err(ParityError::Shape { .. })
        ));
        let mut uncaptured = trace([1.0, 0.0, 0.25, 0.75], [0.5, -0.5]);
        uncaptured.modules.clear();
        assert_eq!(
            compare_forward(
                &reference(),
                &uncaptured,
                &[1.0, 2.0, 3.0, 4.0],
                NormPosition::Post
            ),
            Err(ParityError::Coverage(
                "glassbox captured no output for modules.embedding".into()
            ))
        );
        let mut extra = trace([1.0, 0.0, 0.25, 0.75], [0.5, -0.5]);
        extra.modules[0].role = Role::Logits;
        assert_eq!(
            compare_forward(
                &reference(),
                &extra,
                &[1.0, 2.0, 3.0, 4.0],
                NormPosition::Post
            ),
            Err(ParityError::Missing("modules.output".into()))
        );
        assert!(
            compare_forward(
                &reference(),
                &trace([0.0; 4], [0.0; 2]),
                &[1.0],
                NormPosition::Post
            )
            .is_err()
        );
    }

    #[test]
    fn gradient_statistics_are_relative_with_a_floor_and_zero_gradients_stay_zero() {
        let exact = [
            gradient("w", 4, [0.5, 1.0, -1.0, 2.0, 3.0]),
            gradient("key.bias", 2, [0.0, 0.0, 0.0, 0.0, 5e-9]),
        ];
        let parity = compare_gradients(&reference(), 2.0, &exact).unwrap();
        assert!(parity.within_tolerance());
        assert_eq!(parity.statistics["mean"].compared, 1);
        assert_eq!(parity.zero_norms.compared, 1);

        // The mean is off by 1e-3 on a gradient of std 1 and norm 3 over 4 values: its scale is
        // max(|0.5|, 1, 3 / √4) = 1.5, so the error is 1e-3 / 1.5.
        let off = [
            gradient("w", 4, [0.501, 1.0, -1.0, 2.0, 3.0]),
            gradient("key.bias", 2, [0.0, 0.0, 0.0, 0.0, 1e-3]),
        ];
        let parity = compare_gradients(&reference(), 2.0 * (1.0 + 2e-5), &off).unwrap();
        assert!((parity.statistics["mean"].largest - 1e-3 / 1.5).abs() < 1e-9);
        assert!(!parity.statistics["mean"].within_tolerance());
        assert!(parity.statistics["std"].within_tolerance());
        assert!(
            !parity.zero_norms.within_tolerance(),
            "a key bias with a real gradient"
        );
        assert!(
            !parity.loss.within_tolerance(),
            "2e-5 relative is over 1e-5"
        );
        assert!(!parity.within_tolerance());
    }

    #[test]
    fn gradients_must_cover_the_same_parameters() {
        let only_w = [gradient("w", 4, [0.5, 1.0, -1.0, 2.0, 3.0])];
        assert!(matches!(
            compare_gradients(&reference(), 2.0, &only_w),
            Err(ParityError::Coverage(message)) if message.contains("only the reference [key.bias]")
        ));
    }

    #[test]
    fn ids_come_back_per_sequence() {
        assert_eq!(reference().ids("input_ids").unwrap(), vec![vec![0, 1]]);
        assert_eq!(
            reference().ids("targets"),
            Err(ParityError::Missing("targets".into()))
        );
    }
}
