//! One timed unit of work for the in-page speed benchmark: a forward pass, or a forward and
//! backward pass, each finished by reading one number back so that the device has really done it.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Transaction};

use super::tasks::Batch;
use super::trainer::{TrainError, batch_loss};
use crate::analysis::diagnostics::BenchPass;
use crate::model::checkpoint::read_parameters;
use crate::model::{
    BackendInfo, Checkpoint, CheckpointError, ModelError, Naming, Transformer, TransformerConfig,
    Vocabulary,
};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A pass failed.
    #[error(transparent)]
    Run(#[from] TrainError),
    /// The model could not be copied to the CPU.
    #[error("copying the model to the CPU failed: {0}")]
    Copy(#[from] CheckpointError),
}

/// The label of the CPU probe that runs beside a WebGPU one.
pub const CPU_LABEL: &str = "CPU (burn-flex)";

/// A model and a batch, ready to be run again and again.
pub struct SpeedProbe {
    model: Transformer,
    device: Device,
    batch: Batch,
}

impl SpeedProbe {
    /// `model` (moved to `device`) on `batch`.
    pub fn new(model: &Transformer, device: &Device, batch: Batch) -> Self {
        Self {
            model: model.clone().to_device(device),
            device: device.clone(),
            batch,
        }
    }

    /// How many probes [`SpeedProbe::for_backend`] makes for `backend`.
    pub fn count_for(backend: &BackendInfo) -> usize {
        if backend.webgpu { 2 } else { 1 }
    }

    /// One probe on the page's device, and one on the CPU beside it when the page runs on
    /// WebGPU, each with its label.
    ///
    /// The CPU copy is built from weights read back asynchronously: moving a WebGPU model with
    /// `to_device` reads synchronously, which panics in the browser.
    pub async fn for_backend(
        model: &Transformer,
        config: &TransformerConfig,
        backend: &BackendInfo,
        batch: Batch,
    ) -> Result<Vec<(String, Self)>, BenchError> {
        let mut probes = vec![(
            backend.label.clone(),
            Self::new(model, &backend.device, batch.clone()),
        )];
        if backend.webgpu {
            let cpu = Device::flex();
            let copy = Checkpoint {
                config: config.clone(),
                // `to_model` reads only the config and the parameters.
                vocabulary: Vocabulary::bundled(),
                naming: Naming::Glassbox,
                metadata: BTreeMap::new(),
                parameters: read_parameters(model).await?,
            }
            .to_model(&cpu)?;
            probes.push((
                CPU_LABEL.to_string(),
                Self {
                    model: copy,
                    device: cpu,
                    batch,
                },
            ));
        }
        Ok(probes)
    }

    /// One run of `pass`, waited for.
    pub async fn run(&self, pass: BenchPass) -> Result<(), TrainError> {
        match pass {
            BenchPass::Forward => self.forward().await,
            BenchPass::ForwardBackward => self.forward_backward().await,
        }
    }

    /// Sequences per run.
    pub fn batch_size(&self) -> usize {
        self.batch.inputs.len()
    }

    /// One forward pass, waited for.
    pub async fn forward(&self) -> Result<(), TrainError> {
        let (loss, _) = batch_loss(&self.model, &self.batch, &self.device)?;
        wait_for(loss).await
    }

    /// One forward and backward pass (no update), waited for.
    pub async fn forward_backward(&self) -> Result<(), TrainError> {
        let device = self.device.clone().autodiff();
        let model = self.model.clone().fork(&device).train();
        let (loss, _) = batch_loss(&model, &self.batch, &device)?;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // Reading the last gradient computed (the embedding's) waits for the whole backward pass.
        let embedding = grads
            .get::<2>(model.embedding.weight.id)
            .ok_or_else(|| TrainError::Config("the embedding got no gradient".into()))?;
        wait_for(embedding.sum()).await?;
        Ok(())
    }
}

/// Waits until the device has computed `value`.
async fn wait_for(value: burn::tensor::Tensor<1>) -> Result<(), TrainError> {
    Transaction::default()
        .register(value.inner())
        .execute_async()
        .await
        .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?;
    Ok(())
}
