//! Recording intermediate tensors during a forward pass and reading them back as plain data.

use burn::tensor::{Tensor, TensorData, Transaction};

use super::error::ModelError;
use super::trace::{AttentionCapture, Capture, Trace};

/// Collects the tensors a traced forward pass produces, still on the device.
///
/// Nothing is read back until [`Recorder::read`], which fetches everything in one transaction
/// (asynchronously, as WebGPU requires).
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    attention: Vec<Tensor<4>>,
    modules: Vec<(String, Tensor<3>)>,
}

impl Recorder {
    /// A recorder that keeps nothing: the forward pass of training.
    pub(crate) fn disabled() -> Self {
        Self {
            enabled: false,
            attention: Vec::new(),
            modules: Vec::new(),
        }
    }

    /// A recorder that keeps every attention map and sub-module output.
    pub(crate) fn enabled() -> Self {
        Self {
            enabled: true,
            ..Self::disabled()
        }
    }

    /// Keeps the output of the sub-module at `path`.
    pub(crate) fn record(&mut self, path: String, output: &Tensor<3>) {
        if self.enabled {
            self.modules.push((path, output.clone()));
        }
    }

    /// Keeps one layer's attention weights, `[batch, heads, queries, keys]`.
    pub(crate) fn record_attention(&mut self, weights: Tensor<4>) {
        if self.enabled {
            self.attention.push(weights);
        }
    }

    /// The recorded sub-module outputs with their paths, still on the device, for reductions
    /// done elsewhere (`train::activations`).
    pub fn into_outputs(self) -> Vec<(String, Tensor<3>)> {
        self.modules
    }

    /// Reads every recorded tensor back to the host in one transaction.
    pub async fn read(self) -> Result<Trace, ModelError> {
        let attention_shapes: Vec<[usize; 4]> = self.attention.iter().map(Tensor::dims).collect();
        let mut transaction = Transaction::default();
        for weights in self.attention {
            transaction = transaction.register(weights);
        }
        let mut paths = Vec::with_capacity(self.modules.len());
        for (path, output) in self.modules {
            paths.push(path);
            transaction = transaction.register(output);
        }
        let data = transaction
            .execute_async()
            .await
            .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?;
        let mut data = data.into_iter();

        let mut attention = Vec::with_capacity(attention_shapes.len());
        for (layer, [batch, heads, queries, keys]) in attention_shapes.into_iter().enumerate() {
            let values = floats(data.next(), "attention weights")?;
            attention.push(AttentionCapture {
                layer,
                batch,
                heads,
                queries,
                keys,
                values,
            });
        }
        let mut modules = Vec::with_capacity(paths.len());
        for path in paths {
            let item = data.next();
            let shape = item
                .as_ref()
                .map(|d| d.shape().to_vec())
                .unwrap_or_default();
            let values = floats(item, &path)?;
            modules.push(Capture {
                path,
                shape,
                values,
            });
        }
        Ok(Trace { attention, modules })
    }
}

fn floats(data: Option<TensorData>, what: &str) -> Result<Vec<f32>, ModelError> {
    let data =
        data.ok_or_else(|| ModelError::ReadBack(format!("{what}: missing from the read-back")))?;
    data.try_into_vec_as::<f32>()
        .map_err(|error| ModelError::ReadBack(format!("{what}: {error:?}")))
}
