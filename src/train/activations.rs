//! Activation statistics of a traced forward pass, reduced on the device: the numbers the
//! gradients & activations tab shows, read back as a few values per module.

use burn::tensor::{Int, Tensor, TensorData, Transaction};

use crate::analysis::activations::{
    ActivationSummary, DeadNeurons, HISTOGRAM_BINS, Histogram, ModuleActivation, SAMPLE_LIMIT,
    feed_forward_layer, sample_indices,
};
use crate::model::{ModelError, RecordedOutput, Recorder, Site, execute, floats};

/// Activation statistics of every recorded sub-module, reduced on the device: three numbers
/// per module (sum, squared deviations, zeros), a sample of at most [`SAMPLE_LIMIT`] values
/// for its histogram (the host's [`sample_indices`]), and per feed-forward unit its largest magnitude over the batch
/// (zero means dead). Whole activations never leave the device.
pub async fn activation_statistics(recorder: Recorder) -> Result<ActivationSummary, ModelError> {
    let (transaction, pending) = reduce_activations(recorder).register(Transaction::default());
    pending.read(&mut execute(transaction).await?.into_iter())
}

/// What a recorded module's statistics need besides the numbers read back.
type Described = (Site, String, Vec<usize>, usize, Option<usize>);

/// [`activation_statistics`] reduced on the device and not yet read: register them into a
/// transaction with others, then [`ActivationsReadBack::read`] the answer.
pub fn reduce_activations(recorder: Recorder) -> PendingActivations {
    let outputs = recorder.into_outputs();
    let mut sums = Vec::with_capacity(outputs.len() * 3);
    let mut samples = Vec::with_capacity(outputs.len());
    let mut magnitudes = Vec::new();
    let mut described = Vec::with_capacity(outputs.len());
    for RecordedOutput { site, path, output } in outputs {
        let output = output.inner();
        let shape = output.dims().to_vec();
        let count: usize = shape.iter().product();
        let width = shape[2].max(1);
        let device = output.device();
        let rows = output.reshape([count / width, width]); // [batch * seq, width]
        // Row sums first keep f32 sums of many values close to an f64 sum.
        let total = rows.clone().sum_dim(1).sum(); // [1]
        let mean = total.clone() / count.max(1) as f64;
        let deviations = (rows.clone() - mean.unsqueeze::<2>())
            .square()
            .sum_dim(1)
            .sum();
        let zeros = rows.clone().equal_elem(0.0).float().sum_dim(1).sum();
        sums.extend([total, deviations, zeros]);
        let picks: Vec<i64> = sample_indices(count, SAMPLE_LIMIT)
            .into_iter()
            .map(|index| index as i64)
            .collect();
        let picks =
            Tensor::<1, Int>::from_data(TensorData::new(picks, [count.min(SAMPLE_LIMIT)]), &device);
        let sampled = rows.clone().reshape([count]).select(0, picks);
        samples.push(sampled);
        let layer = feed_forward_layer(site);
        if layer.is_some() {
            magnitudes.push(rows.abs().max_dim(0).reshape([width])); // [width]
        }
        described.push((site, path, shape, count, layer));
    }
    let tensors = if described.is_empty() {
        Vec::new()
    } else {
        let mut tensors = vec![Tensor::cat(sums, 0), Tensor::cat(samples, 0)];
        if !magnitudes.is_empty() {
            tensors.push(Tensor::cat(magnitudes, 0));
        }
        tensors
    };
    PendingActivations { described, tensors }
}

/// Activation statistics on the device, waiting for a read-back.
pub struct PendingActivations {
    described: Vec<Described>,
    /// Sums, samples and (when there is a feed-forward layer) unit magnitudes; none without
    /// recorded modules.
    tensors: Vec<Tensor<1>>,
}

impl PendingActivations {
    /// Adds the statistics to `transaction`; what it reads back goes to the returned reader.
    pub fn register(self, transaction: Transaction) -> (Transaction, ActivationsReadBack) {
        let reader = ActivationsReadBack {
            described: self.described,
            registered: self.tensors.len(),
        };
        let transaction = self
            .tensors
            .into_iter()
            .fold(transaction, Transaction::register);
        (transaction, reader)
    }
}

/// Turns the read-back of [`PendingActivations`] into an [`ActivationSummary`].
pub struct ActivationsReadBack {
    described: Vec<Described>,
    /// How many results of the transaction are this reader's.
    registered: usize,
}

impl ActivationsReadBack {
    /// Takes this reader's values from `data` (the transaction's results, in registration order).
    pub fn read(
        self,
        data: &mut impl Iterator<Item = TensorData>,
    ) -> Result<ActivationSummary, ModelError> {
        if self.registered == 0 {
            return Ok(ActivationSummary::default());
        }
        let sums = floats(data.next(), "activation sums")?;
        let samples = floats(data.next(), "activation samples")?;
        let magnitudes = if self.registered > 2 {
            floats(data.next(), "feed-forward magnitudes")?
        } else {
            Vec::new()
        };
        let mut summary = ActivationSummary::default();
        let (mut sample_at, mut magnitude_at) = (0, 0);
        for ((site, path, shape, count, layer), sums) in
            self.described.into_iter().zip(sums.chunks_exact(3))
        {
            let taken = count.min(SAMPLE_LIMIT);
            let sample = samples
                .get(sample_at..sample_at + taken)
                .unwrap_or_default();
            sample_at += taken;
            let denominator = count.saturating_sub(1).max(1) as f64;
            summary.modules.push(ModuleActivation {
                site: Some(site),
                path: path.clone(),
                mean: f64::from(sums[0]) / count.max(1) as f64,
                std: (f64::from(sums[1]) / denominator).sqrt(),
                zero_fraction: f64::from(sums[2]) / count.max(1) as f64,
                histogram: Histogram::of(sample, HISTOGRAM_BINS),
                shape: shape.clone(),
            });
            if let Some(layer) = layer {
                let width = shape[2];
                let units = magnitudes
                    .get(magnitude_at..magnitude_at + width)
                    .unwrap_or_default();
                magnitude_at += width;
                summary.dead.push(DeadNeurons {
                    layer,
                    path,
                    width,
                    dead: (0..units.len())
                        .filter(|&unit| units[unit] == 0.0)
                        .collect(),
                });
            }
        }
        Ok(summary)
    }
}
