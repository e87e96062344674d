//! Activation statistics per sub-module: mean, spread, exact zeros, a histogram from a bounded
//! sample, and the feed-forward neurons that are zero for every token (dead neurons).

use super::Summary;
use crate::structure::{Role, Site, Trace};

/// Bins of every activation histogram.
pub const HISTOGRAM_BINS: usize = 50;

/// Most values a histogram is drawn from; larger outputs are sampled (see [`sample_indices`]).
pub const SAMPLE_LIMIT: usize = 4096;

/// Share of exact zeros above which a module is flagged (seed chapter: 90 %).
pub const SPARSE_THRESHOLD: f64 = 0.9;

/// Counts of values in equal-width bins between `min` and `max`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub min: f64,
    /// Right edge of the last bin.
    pub max: f64,
    /// Values per bin.
    pub counts: Vec<u32>,
}

impl Histogram {
    /// Bins the finite `values` into `bins` equal bins spanning their range (a range of zero
    /// width is widened by 0.5 each side so that constant outputs still draw one bar).
    pub fn of(values: &[f32], bins: usize) -> Self {
        let bins = bins.max(1);
        let finite = values.iter().copied().filter(|value| value.is_finite());
        let (mut min, mut max) = finite
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(f64::from(v)), hi.max(f64::from(v)))
            });
        if min > max {
            return Self {
                min: 0.0,
                max: 0.0,
                counts: vec![0; bins],
            };
        }
        if max - min < 1e-12 {
            min -= 0.5;
            max += 0.5;
        }
        let mut counts = vec![0u32; bins];
        let width = (max - min) / bins as f64;
        for value in finite {
            let bin = (((f64::from(value) - min) / width) as usize).min(bins - 1);
            counts[bin] += 1;
        }
        Self { min, max, counts }
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&count| u64::from(count)).sum()
    }
}

/// Flat indices of at most `limit` values spread over `len` values: one seeded random index in
/// each of `limit` equal strata, ascending.
///
/// An even stride would alias with the width of a `[rows, width]` tensor (a stride of 64 over
/// 256 units picks only units 0, 64, 128 and 192); a random offset in each stratum lets every
/// unit appear, while the strata keep the sample spread over every row. The seed is fixed, so
/// the device and the host pick the same values.
pub fn sample_indices(len: usize, limit: usize) -> Vec<usize> {
    if len <= limit {
        return (0..len).collect();
    }
    (0..limit)
        .map(|stratum| {
            let start = stratum * len / limit;
            let end = ((stratum + 1) * len / limit).max(start + 1);
            start + (mix(stratum as u64 ^ ((len as u64) << 32)) % (end - start) as u64) as usize
        })
        .collect()
}

/// SplitMix64's output function: a well-spread 64-bit hash of `value`.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one sub-module produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModuleActivation {
    /// Where the tensor sits in the model; `None` for a histogram of something else (weights).
    pub site: Option<Site>,
    /// Its label, e.g. `layers.0.ff.activation`.
    pub path: String,
    /// Output shape, `[batch, seq, width]`.
    pub shape: Vec<usize>,
    /// Mean over every value.
    pub mean: f64,
    /// Sample standard deviation over every value.
    pub std: f64,
    /// Share of values exactly 0.
    pub zero_fraction: f64,
    /// Histogram of a sample of at most [`SAMPLE_LIMIT`] values ([`sample_indices`]).
    pub histogram: Histogram,
}

impl ModuleActivation {
    /// Whether more than `threshold` of the values are exactly zero.
    pub fn is_sparse(&self, threshold: f64) -> bool {
        self.zero_fraction > threshold
    }
}

/// Hidden units of one feed-forward block that were zero for every token of the batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadNeurons {
    /// Encoder layer, from 0.
    pub layer: usize,
    /// Path of the activation module, e.g. `layers.0.ff.activation`.
    pub path: String,
    /// Hidden units in the block.
    pub width: usize,
    /// Indices of the dead units, ascending.
    pub dead: Vec<usize>,
}

impl DeadNeurons {
    /// Share of the block's units that are dead.
    pub fn share(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.dead.len() as f64 / self.width as f64
        }
    }
}

/// Activation statistics of one forward pass.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ActivationSummary {
    /// Every recorded sub-module, in execution order.
    pub modules: Vec<ModuleActivation>,
    /// Dead feed-forward units per layer.
    pub dead: Vec<DeadNeurons>,
}

impl ActivationSummary {
    /// Share of all feed-forward units that are dead.
    pub fn dead_share(&self) -> f64 {
        let width: usize = self.dead.iter().map(|layer| layer.width).sum();
        let dead: usize = self.dead.iter().map(|layer| layer.dead.len()).sum();
        if width == 0 {
            0.0
        } else {
            dead as f64 / width as f64
        }
    }

    /// Modules with more than `threshold` exact zeros.
    pub fn sparse_modules(&self, threshold: f64) -> Vec<&ModuleActivation> {
        self.modules
            .iter()
            .filter(|module| module.is_sparse(threshold))
            .collect()
    }
}

/// The layer of a feed-forward activation, where dead units are counted; `None` for any other
/// site.
pub fn feed_forward_layer(site: Site) -> Option<usize> {
    (site.role == Role::FeedForwardActivation)
        .then_some(site.layer)
        .flatten()
}

/// Why no unit can be dead, when that is so: a unit counts as dead only when it is exactly 0
/// for every token, which a ReLU produces and GELU or sigmoid (which are exactly 0 almost
/// nowhere) do not. Seen in the data: no feed-forward activation output is exactly 0.
pub fn dead_units_note(summary: &ActivationSummary) -> Option<String> {
    let activations: Vec<&ModuleActivation> = summary
        .modules
        .iter()
        .filter(|module| {
            module
                .site
                .is_some_and(|site| feed_forward_layer(site).is_some())
        })
        .collect();
    if activations.is_empty() || activations.iter().any(|module| module.zero_fraction > 0.0) {
        return None;
    }
    Some(
        "No feed-forward activation output is exactly 0, as with GELU or sigmoid: a unit counts \
         as dead only when it is exactly 0 for every token, which only a ReLU produces, so \
         \"0 dead\" here says nothing about units that barely fire."
            .to_string(),
    )
}

/// Summarises a trace already read back to the host (the explorer's forward pass).
pub fn summarise_trace(trace: &Trace) -> ActivationSummary {
    let mut summary = ActivationSummary::default();
    for capture in &trace.modules {
        let Some(stats) = Summary::of(&capture.values) else {
            continue;
        };
        let zeros = capture.values.iter().filter(|&&value| value == 0.0).count();
        let sample: Vec<f32> = sample_indices(capture.values.len(), SAMPLE_LIMIT)
            .into_iter()
            .map(|index| capture.values[index])
            .collect();
        summary.modules.push(ModuleActivation {
            site: Some(capture.site()),
            path: capture.path.clone(),
            shape: capture.shape.clone(),
            mean: stats.mean,
            std: stats.std,
            zero_fraction: zeros as f64 / capture.values.len() as f64,
            histogram: Histogram::of(&sample, HISTOGRAM_BINS),
        });
        if let Some(layer) = feed_forward_layer(capture.site()) {
            let width = capture.shape.last().copied().unwrap_or(0);
            let mut alive = vec![false; width];
            for row in capture.values.chunks(width.max(1)) {
                for (unit, &value) in row.iter().enumerate() {
                    alive[unit] |= value != 0.0;
                }
            }
            summary.dead.push(DeadNeurons {
                layer,
                path: capture.path.clone(),
                width,
                dead: (0..width).filter(|&unit| !alive[unit]).collect(),
            });
        }
    }
    summary
}

/// Share of dead feed-forward units per recorded step, bounded like the gradient history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeadHistory {
    /// Recorded steps.
    pub steps: Vec<usize>,
    /// Share of dead units per layer at each recorded step.
    pub shares: Vec<Vec<f64>>,
}

impl DeadHistory {
    /// Most steps kept; past it every other old step is dropped.
    pub const CAPACITY: usize = 512;

    /// Records the per-layer dead shares of `summary` at `step`.
    pub fn push(&mut self, step: usize, summary: &ActivationSummary) {
        self.steps.push(step);
        self.shares
            .push(summary.dead.iter().map(DeadNeurons::share).collect());
        let keep = super::thinning::kept(self.steps.len(), Self::CAPACITY, 0);
        super::thinning::retain_kept(&mut self.steps, &keep);
        super::thinning::retain_kept(&mut self.shares, &keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::Capture;

    #[test]
    fn histogram_counts_every_finite_value_once() {
        let values: Vec<f32> = (0..1000)
            .map(|i| i as f32 / 10.0)
            .chain([f32::NAN])
            .collect();
        let histogram = Histogram::of(&values, HISTOGRAM_BINS);
        assert_eq!(histogram.counts.len(), 50);
        assert_eq!(histogram.total(), 1000);
        assert_eq!((histogram.min, histogram.max), (0.0, 99.9f32 as f64));
        assert!(
            histogram.counts.iter().all(|&count| count == 20),
            "{:?}",
            histogram.counts
        );
        let constant = Histogram::of(&[0.0; 10], 50);
        assert_eq!(constant.total(), 10);
        assert!(constant.min < 0.0 && constant.max > 0.0);
    }

    #[test]
    fn samples_are_bounded_and_spread_over_the_whole_tensor() {
        assert_eq!(sample_indices(10, 4096), (0..10).collect::<Vec<_>>());
        let indices = sample_indices(1_000_000, SAMPLE_LIMIT);
        assert_eq!(indices.len(), SAMPLE_LIMIT);
        assert!(indices[0] < 1_000_000 / SAMPLE_LIMIT);
        assert!(*indices.last().unwrap() > 999_000);
        assert!(
            indices.windows(2).all(|pair| pair[0] < pair[1]),
            "ascending, no repeats"
        );
        assert_eq!(indices, sample_indices(1_000_000, SAMPLE_LIMIT), "seeded");
    }

    #[test]
    fn samples_reach_every_unit_of_a_wide_tensor() {
        // [batch·seq, width] shapes of the reverse run and the seed preset: an even stride
        // of len/4096 picked 8 to 64 of 256 units there, and 32 of 1,024.
        for (rows, width) in [(64, 256), (128, 256), (512, 256), (128, 1024), (512, 1024)] {
            let len = rows * width;
            let mut seen = vec![false; width];
            for index in sample_indices(len, SAMPLE_LIMIT) {
                seen[index % width] = true;
            }
            let units = seen.iter().filter(|&&seen| seen).count();
            let least = (SAMPLE_LIMIT.min(len) * 9 / 10).min(width * 9 / 10);
            assert!(units >= least, "{rows} × {width}: {units} units sampled");
        }
    }

    #[test]
    fn a_histogram_of_units_with_different_distributions_shows_them_all() {
        // 64 tokens × 256 units: every fourth unit is a large "outlier" unit at 100, the others
        // spread over [0, 1). An even stride of 4 sampled only the outliers.
        let (rows, width) = (64, 256);
        let values: Vec<f32> = (0..rows * width)
            .map(|index| {
                let (row, unit) = (index / width, index % width);
                if unit % 4 == 0 {
                    100.0
                } else {
                    ((row * 7 + unit * 13) % 100) as f32 / 100.0
                }
            })
            .collect();
        let trace = Trace {
            attention: Vec::new(),
            modules: vec![Capture {
                role: Role::FeedForwardActivation,
                layer: Some(0),
                path: "layers.0.ff.activation".into(),
                shape: vec![1, rows, width],
                values,
            }],
        };
        let histogram = &summarise_trace(&trace).modules[0].histogram;
        let total = histogram.total() as f64;
        let outliers = f64::from(*histogram.counts.last().unwrap()) / total;
        assert_eq!(total, SAMPLE_LIMIT as f64);
        assert!((outliers - 0.25).abs() < 0.05, "outlier share {outliers}");
        assert!(
            f64::from(histogram.counts[0]) / total > 0.5,
            "{:?}",
            histogram.counts
        );
    }

    #[test]
    fn zero_dead_units_are_explained_when_the_activation_is_never_exactly_zero() {
        let summary = |values: Vec<f32>| {
            summarise_trace(&Trace {
                attention: Vec::new(),
                modules: vec![Capture {
                    role: Role::FeedForwardActivation,
                    layer: Some(0),
                    path: "layers.0.ff.activation".into(),
                    shape: vec![1, 2, 2],
                    values,
                }],
            })
        };
        // GELU: small negative values, never exactly 0; no dead unit, and the page says why.
        let gelu = summary(vec![-0.17, 0.3, -1e-7, 2.0]);
        assert_eq!(gelu.dead[0].dead.len(), 0);
        assert!(gelu_note(&gelu).contains("only a ReLU"));
        // ReLU: exact zeros, one dead unit; the count speaks for itself.
        let relu = summary(vec![0.0, 0.3, 0.0, 2.0]);
        assert_eq!(relu.dead[0].dead, [0]);
        assert_eq!(dead_units_note(&relu), None);
        assert_eq!(dead_units_note(&ActivationSummary::default()), None);
    }

    fn gelu_note(summary: &ActivationSummary) -> String {
        dead_units_note(summary).expect("a note")
    }

    #[test]
    fn trace_summary_finds_zeros_and_dead_units() {
        // Two tokens × three units: unit 1 is zero for both tokens, unit 0 only for one.
        let trace = Trace {
            attention: Vec::new(),
            modules: vec![Capture {
                role: Role::FeedForwardActivation,
                layer: Some(3),
                path: "layers.3.ff.activation".into(),
                shape: vec![1, 2, 3],
                values: vec![0.0, 0.0, 2.0, 1.0, 0.0, 4.0],
            }],
        };
        let summary = summarise_trace(&trace);
        let module = &summary.modules[0];
        assert!((module.zero_fraction - 0.5).abs() < 1e-12);
        assert!((module.mean - 7.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            summary.dead,
            vec![DeadNeurons {
                layer: 3,
                path: "layers.3.ff.activation".into(),
                width: 3,
                dead: vec![1]
            }]
        );
        assert!((summary.dead_share() - 1.0 / 3.0).abs() < 1e-12);
        assert!(
            summary.sparse_modules(0.4).len() == 1
                && summary.sparse_modules(SPARSE_THRESHOLD).is_empty()
        );
        assert_eq!(
            feed_forward_layer(Site::layer(Role::FeedForwardActivation, 12)),
            Some(12)
        );
        assert_eq!(
            feed_forward_layer(Site::layer(Role::FeedForwardHidden, 1)),
            None
        );
    }
}
