//! Recording intermediate tensors during a forward pass and reading them back as plain data.

use burn::tensor::{Tensor, TensorData, Transaction};

use super::error::ModelError;
use super::trace::{AttentionCapture, Capture, Site, Trace};

/// Collects the tensors a traced forward pass produces, still on the device.
///
/// Nothing is read back until [`Recorder::read`], which fetches everything in one transaction
/// (asynchronously, as WebGPU requires).
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    attention: Vec<Tensor<4>>,
    modules: Vec<RecordedOutput>,
}

/// One recorded sub-module output, still on the device.
#[derive(Debug)]
pub struct RecordedOutput {
    /// Where the tensor sits in the model.
    pub site: Site,
    /// Its label, the module path that produced it.
    pub path: String,
    /// The tensor, `[batch, seq, width]`.
    pub output: Tensor<3>,
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

    /// Whether this recorder keeps anything (so labels need not be made for one that does not).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Keeps the tensor at `site`, labelled `path`. Each site is kept once: a second record of
    /// the same site is ignored, so the same tensor is never read back twice.
    pub(crate) fn record(&mut self, site: Site, path: String, output: &Tensor<3>) {
        if self.enabled && !self.modules.iter().any(|kept| kept.site == site) {
            self.modules.push(RecordedOutput {
                site,
                path,
                output: output.clone(),
            });
        }
    }

    /// Keeps one layer's attention weights, `[batch, heads, queries, keys]`.
    pub(crate) fn record_attention(&mut self, weights: Tensor<4>) {
        if self.enabled {
            self.attention.push(weights);
        }
    }

    /// The recorded sub-module outputs with their sites and labels, still on the device, for
    /// reductions done elsewhere (`train::activations`).
    pub fn into_outputs(self) -> Vec<RecordedOutput> {
        self.modules
    }

    /// The recorded attention maps and sub-module outputs, still on the device
    /// ([`super::DeviceTrace`] keeps them there).
    pub(crate) fn into_parts(self) -> (Vec<Tensor<4>>, Vec<RecordedOutput>) {
        (self.attention, self.modules)
    }

    /// Reads every recorded tensor back to the host in one transaction.
    pub async fn read(self) -> Result<Trace, ModelError> {
        let attention_shapes: Vec<[usize; 4]> = self.attention.iter().map(Tensor::dims).collect();
        let mut transaction = Transaction::default();
        for weights in self.attention {
            transaction = transaction.register(weights);
        }
        let mut labels = Vec::with_capacity(self.modules.len());
        for recorded in self.modules {
            labels.push((recorded.site, recorded.path));
            transaction = transaction.register(recorded.output);
        }
        let mut data = execute(transaction).await?.into_iter();

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
        let mut modules = Vec::with_capacity(labels.len());
        for (site, path) in labels {
            let item = data.next();
            let shape = item
                .as_ref()
                .map(|d| d.shape().to_vec())
                .unwrap_or_default();
            let values = floats(item, &path)?;
            modules.push(Capture {
                role: site.role,
                layer: site.layer,
                path,
                shape,
                values,
            });
        }
        Ok(Trace { attention, modules })
    }
}

/// Runs `transaction` and reads its results back, or says why it could not.
pub(crate) async fn execute(transaction: Transaction) -> Result<Vec<TensorData>, ModelError> {
    transaction
        .execute_async()
        .await
        .map_err(|error| ModelError::ReadBack(format!("{error:?}")))
}

/// The floats of `what`, one result of a read-back (missing when `data` is `None`).
pub(crate) fn floats(data: Option<TensorData>, what: &str) -> Result<Vec<f32>, ModelError> {
    let data =
        data.ok_or_else(|| ModelError::ReadBack(format!("{what}: missing from the read-back")))?;
    data.try_into_vec_as::<f32>()
        .map_err(|error| ModelError::ReadBack(format!("{what}: {error:?}")))
}
