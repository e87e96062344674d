//! A traced run whose captures stay on the device: a view asks for what it draws (one head's
//! map, the mean of heads, a layer's thumbnails, the heads' entropies, the top-k predictions)
//! and only that answer is read back, reduced on the device first. [`DeviceTrace::read_all`]
//! is the one path that reads everything (the trace export), a tensor at a time.
//!
//! Every answer is the plain type `analysis` computes from a host [`Trace`] (`tests/slices.rs`
//! proves the two equal), so the views draw the same numbers whichever side made them.

use burn::tensor::{Int, Tensor, TensorData, Transaction};

use super::capture::{RecordedOutput, Recorder, execute};
use super::error::ModelError;
use super::trace::{AttentionCapture, Capture, Role, Site, Trace};
use crate::structure::slices::{HeadSummary, query_weights, thumbnail_bins};

/// What one traced forward pass captured, still on the device it ran on.
#[derive(Debug)]
pub struct DeviceTrace {
    /// Per layer, `[batch, heads, queries, keys]`.
    attention: Vec<Tensor<4>>,
    modules: Vec<RecordedOutput>,
    causal: bool,
}

/// One captured tensor, described without reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureInfo {
    /// Where it sits.
    pub site: Site,
    /// Its label, the module path that made it.
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl DeviceTrace {
    /// Keeps what `recorder` captured during a forward pass of a model whose attention is
    /// `causal` (or not).
    pub fn new(recorder: Recorder, causal: bool) -> Self {
        let (attention, modules) = recorder.into_parts();
        Self {
            attention,
            modules,
            causal,
        }
    }

    /// Layers with attention captured.
    pub fn layers(&self) -> usize {
        self.attention.len()
    }

    /// Heads per layer.
    pub fn heads(&self) -> usize {
        self.attention
            .first()
            .map_or(0, |weights| weights.dims()[1])
    }

    /// Query (and key) positions.
    pub fn tokens(&self) -> usize {
        self.attention
            .first()
            .map_or(0, |weights| weights.dims()[2])
    }

    /// Whether the model's attention is causal.
    pub fn causal(&self) -> bool {
        self.causal
    }

    /// Every sub-module output captured, in execution order, without reading any.
    pub fn captures(&self) -> Vec<CaptureInfo> {
        self.modules
            .iter()
            .map(|recorded| CaptureInfo {
                site: recorded.site,
                path: recorded.path.clone(),
                shape: recorded.output.dims().to_vec(),
            })
            .collect()
    }

    /// Bytes the trace holds on the device (f32 values).
    pub fn device_bytes(&self) -> usize {
        let attention: usize = self
            .attention
            .iter()
            .map(|weights| weights.shape().num_elements())
            .sum();
        let modules: usize = self
            .modules
            .iter()
            .map(|recorded| recorded.output.shape().num_elements())
            .sum();
        4 * (attention + modules)
    }

    fn layer(&self, layer: usize) -> Result<&Tensor<4>, ModelError> {
        self.attention
            .get(layer)
            .ok_or_else(|| ModelError::ReadBack(format!("layer {layer} was not captured")))
    }

    /// Sequence 0 of `layer`: `[heads, queries, keys]`.
    fn sequence(&self, layer: usize) -> Result<Tensor<3>, ModelError> {
        let weights = self.layer(layer)?.clone();
        let [_, heads, queries, keys] = weights.dims();
        Ok(weights.narrow(0, 0, 1).reshape([heads, queries, keys]))
    }

    /// One head's `[queries, keys]` map of sequence 0, or the mean over the layer's heads
    /// (`head: None`), averaged on the device: a capture with one head.
    pub async fn map(
        &self,
        layer: usize,
        head: Option<usize>,
    ) -> Result<AttentionCapture, ModelError> {
        let weights = self.sequence(layer)?; // [heads, queries, keys]
        let [heads, queries, keys] = weights.dims();
        let map = match head {
            Some(head) if head < heads => weights.narrow(0, head, 1),
            Some(head) => {
                return Err(ModelError::ReadBack(format!(
                    "layer {layer} has {heads} heads, not {}",
                    head + 1
                )));
            }
            None => weights.mean_dim(0),
        }; // [1, queries, keys]
        let values = read_floats(map, "attention map").await?;
        Ok(AttentionCapture {
            layer,
            batch: 1,
            heads: 1,
            queries,
            keys,
            values,
        })
    }

    /// Every head of `layer` (sequence 0) shrunk on the device to at most `size × size` cells,
    /// each the mean of its bin (`analysis::thumbnails` on the host).
    pub async fn thumbnails(
        &self,
        layer: usize,
        size: usize,
    ) -> Result<AttentionCapture, ModelError> {
        let mut all = self.thumbnails_of(&[layer], size).await?;
        all.pop()
            .ok_or_else(|| ModelError::ReadBack(format!("layer {layer} has no thumbnails")))
    }

    /// [`Self::thumbnails`] of several layers, read back in one transaction (the model view).
    pub async fn thumbnails_of(
        &self,
        layers: &[usize],
        size: usize,
    ) -> Result<Vec<AttentionCapture>, ModelError> {
        let mut transaction = Transaction::default();
        let mut shapes = Vec::with_capacity(layers.len());
        for &layer in layers {
            let weights = self.sequence(layer)?;
            let [heads, queries, keys] = weights.dims();
            let (bins_q, bins_k) = (
                thumbnail_bins(queries, size).len(),
                thumbnail_bins(keys, size).len(),
            );
            shapes.push((layer, heads, bins_q, bins_k));
            if (bins_q, bins_k) == (queries, keys) {
                // Nothing to shrink: the maps themselves.
                transaction = transaction.register(weights);
                continue;
            }
            // Averaging over bins is a product with a pooling matrix on each side:
            // P_rows · A · P_colsᵀ, exact for any bin lengths.
            let device = weights.device();
            let rows = pooling(queries, size, &device) // [bins_q, queries]
                .unsqueeze_dim::<3>(0)
                .expand([heads, bins_q, queries]);
            let cols = pooling(keys, size, &device) // [bins_k, keys]
                .transpose()
                .unsqueeze_dim::<3>(0)
                .expand([heads, keys, bins_k]);
            let small = rows.matmul(weights).matmul(cols); // [heads, bins_q, bins_k]
            transaction = transaction.register(small);
        }
        let data = execute(transaction).await?;
        shapes
            .into_iter()
            .zip(data)
            .map(|((layer, heads, queries, keys), data)| {
                Ok(AttentionCapture {
                    layer,
                    batch: 1,
                    heads,
                    queries,
                    keys,
                    values: floats(data, "thumbnails")?,
                })
            })
            .collect()
    }

    /// The `[heads, heads]` dot products of `layer`'s flattened head maps (sequence 0), made
    /// on the device: `analysis::similarity_from_gram` turns them into cosine similarities.
    pub async fn head_gram(&self, layer: usize) -> Result<Vec<f64>, ModelError> {
        let weights = self.sequence(layer)?;
        let [heads, queries, keys] = weights.dims();
        let flat = weights.reshape([heads, queries * keys]);
        let gram = flat.clone().matmul(flat.transpose()); // [heads, heads]
        let values = read_floats(gram, "head similarity").await?;
        Ok(values.into_iter().map(f64::from).collect())
    }

    /// Every head of every layer measured on the device (sequence 0): mean row entropy,
    /// normalised entropy and the most attended key, as `analysis::head_sharpness` measures
    /// them on the host. Heads with no query that may see two keys are left out.
    pub async fn head_summaries(&self) -> Result<Vec<HeadSummary>, ModelError> {
        let (queries, keys) = (
            self.tokens(),
            self.attention.first().map_or(0, |w| w.dims()[3]),
        );
        let weights = query_weights(queries, keys, self.causal);
        let counted = weights.iter().filter(|&&w| w > 0.0).count();
        if self.attention.is_empty() || counted == 0 {
            return Ok(Vec::new());
        }
        let device = self.attention[0].device();
        let weight = Tensor::<2>::from_data(
            TensorData::new(
                weights.iter().map(|&w| w as f32).collect::<Vec<_>>(),
                [1, queries],
            ),
            &device,
        );
        let counts = weight.clone().greater_elem(0.0).float(); // [1, queries]
        let mut transaction = Transaction::default();
        for layer in 0..self.layers() {
            let map = self.sequence(layer)?; // [heads, queries, keys]
            let heads = map.dims()[0];
            // −p ln p with 0 ln 0 = 0: ln of a clamped p times a p that is 0 there.
            let entropy = (map.clone() * map.clone().clamp_min(f32::MIN_POSITIVE).log())
                .sum_dim(2)
                .reshape([heads, queries])
                .neg(); // [heads, queries]
            let mean = entropy.clone().mean_dim(1); // [heads, 1]
            let normalised = (entropy * weight.clone())
                .sum_dim(1)
                .div_scalar(counted as f32); // [heads, 1]
            let key_weight = (map * counts.clone().reshape([1, queries, 1]))
                .sum_dim(1)
                .reshape([heads, keys])
                .div_scalar(counted as f32); // [heads, keys]
            let top: Tensor<2, Int> = key_weight.clone().argmax(1); // [heads, 1]
            let share = key_weight.gather(1, top.clone()); // [heads, 1]
            transaction = transaction
                .register(Tensor::cat(vec![mean, normalised, share], 1)) // [heads, 3]
                .register(top);
        }
        let data = execute(transaction).await?;
        let mut summaries = Vec::new();
        for (layer, pair) in data.chunks(2).enumerate() {
            let numbers = floats(pair[0].clone(), "head entropy")?;
            let top = ints(pair[1].clone(), "top keys")?;
            for (head, (row, &key)) in numbers.chunks_exact(3).zip(&top).enumerate() {
                summaries.push(HeadSummary {
                    layer,
                    head,
                    entropy: f64::from(row[0]),
                    normalised_entropy: f64::from(row[1]),
                    top_key: (key as usize, f64::from(row[2])),
                });
            }
        }
        Ok(summaries)
    }

    /// The `k` most likely tokens at each of `positions` (sequence 0), with their softmax
    /// probabilities, most likely first: found on the device by `k` rounds of argmax, so the
    /// full-vocabulary logits never leave it. Empty when the model has no logits.
    pub async fn top_k(
        &self,
        positions: &[usize],
        k: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, ModelError> {
        let Some(logits) = self.module_tensor(Site::global(Role::Logits)) else {
            return Ok(Vec::new());
        };
        let [_, seq, vocab] = logits.dims();
        let positions: Vec<usize> = positions.iter().copied().filter(|&p| p < seq).collect();
        let k = k.min(vocab);
        if positions.is_empty() || k == 0 {
            return Ok(vec![Vec::new(); positions.len()]);
        }
        let device = logits.device();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(
                positions.iter().map(|&p| p as i64).collect::<Vec<_>>(),
                [positions.len()],
            ),
            &device,
        );
        let rows = logits
            .narrow(0, 0, 1)
            .reshape([seq, vocab])
            .select(0, index);
        let mut probabilities = burn::tensor::activation::softmax(rows, 1); // [positions, vocab]
        let ids = Tensor::<1, Int>::arange(0..vocab as i64, &device)
            .unsqueeze_dim::<2>(0)
            .expand([positions.len(), vocab]);
        let (mut picked, mut values) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for _ in 0..k {
            let top = probabilities.clone().argmax(1); // [positions, 1]
            values.push(probabilities.clone().gather(1, top.clone()));
            let taken = ids
                .clone()
                .equal(top.clone().expand([positions.len(), vocab]));
            probabilities = probabilities.mask_fill(taken, -1.0);
            picked.push(top);
        }
        let data = execute(
            Transaction::default()
                .register(Tensor::cat(values, 1))
                .register(Tensor::cat(picked, 1)),
        )
        .await?;
        let (values, ids) = (
            floats(data[0].clone(), "predictions")?,
            ints(data[1].clone(), "predicted ids")?,
        );
        Ok(values
            .chunks_exact(k)
            .zip(ids.chunks_exact(k))
            .map(|(values, ids)| {
                ids.iter()
                    .zip(values)
                    .map(|(&id, &p)| (id as u32, p))
                    .collect()
            })
            .collect())
    }

    fn module_tensor(&self, site: Site) -> Option<Tensor<3>> {
        self.modules
            .iter()
            .find(|recorded| recorded.site == site)
            .map(|recorded| recorded.output.clone())
    }

    /// One sub-module output, whole.
    pub async fn capture(&self, site: Site) -> Result<Capture, ModelError> {
        let recorded = self
            .modules
            .iter()
            .find(|recorded| recorded.site == site)
            .ok_or_else(|| ModelError::ReadBack(format!("{site:?} was not captured")))?;
        let shape = recorded.output.dims().to_vec();
        let values = read_floats(recorded.output.clone(), &recorded.path).await?;
        Ok(Capture {
            role: site.role,
            layer: site.layer,
            path: recorded.path.clone(),
            shape,
            values,
        })
    }

    /// Everything, read back a tensor at a time: the export path. `progress` hears the tensors
    /// read so far and their number.
    pub async fn read_all(
        &self,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Trace, ModelError> {
        let total = self.attention.len() + self.modules.len();
        let mut attention = Vec::with_capacity(self.attention.len());
        for (layer, weights) in self.attention.iter().enumerate() {
            let [batch, heads, queries, keys] = weights.dims();
            let values = read_floats(weights.clone(), "attention weights").await?;
            attention.push(AttentionCapture {
                layer,
                batch,
                heads,
                queries,
                keys,
                values,
            });
            progress(attention.len(), total);
        }
        let mut modules = Vec::with_capacity(self.modules.len());
        for recorded in &self.modules {
            modules.push(self.capture(recorded.site).await?);
            progress(attention.len() + modules.len(), total);
        }
        Ok(Trace { attention, modules })
    }
}

/// `[bins, n]`: row `i` averages the positions of bin `i` ([`thumbnail_bins`]).
fn pooling(n: usize, size: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let bins = thumbnail_bins(n, size);
    let mut values = vec![0.0f32; bins.len() * n];
    for (row, bin) in bins.iter().enumerate() {
        let share = 1.0 / bin.len() as f32;
        values[row * n + bin.start..row * n + bin.end].fill(share);
    }
    Tensor::from_data(TensorData::new(values, [bins.len(), n]), device)
}

async fn read_floats<const D: usize>(
    tensor: Tensor<D>,
    what: &str,
) -> Result<Vec<f32>, ModelError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|error| ModelError::ReadBack(format!("{what}: {error:?}")))?;
    floats(data, what)
}

fn floats(data: TensorData, what: &str) -> Result<Vec<f32>, ModelError> {
    super::capture::floats(Some(data), what)
}

fn ints(data: TensorData, what: &str) -> Result<Vec<i64>, ModelError> {
    data.try_into_vec_as::<i64>()
        .map_err(|error| ModelError::ReadBack(format!("{what}: {error:?}")))
}
