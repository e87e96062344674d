//! One timed unit of work for the in-page speed benchmark: a forward pass, or a forward and
//! backward pass, each finished by reading one number back so that the device has really done it.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Transaction};

use super::tasks::Batch;
use super::trainer::{TrainError, batch_loss};
use crate::model::{ModelError, Transformer};

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

async fn wait_for(value: burn::tensor::Tensor<1>) -> Result<(), TrainError> {
    Transaction::default()
        .register(value.inner())
        .execute_async()
        .await
        .map_err(|error| ModelError::ReadBack(format!("{error:?}")))?;
    Ok(())
}
