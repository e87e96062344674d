//! The Diagnostics tab's burn work, returned as plain data: every parameter's path and shape,
//! and the statistics of the weights read back from the device.

use crate::analysis::diagnostics::ParameterStatistics;
use crate::model::Transformer;
use crate::model::checkpoint::{CheckpointError, FlatParameters, read_parameters};

/// Every parameter's path and shape, in module order, without reading any value.
pub fn parameter_shapes(model: &Transformer) -> Vec<(String, Vec<usize>)> {
    FlatParameters::of(model).paths
}

/// Reads every weight back (asynchronously, so it works on WebGPU) and reduces each tensor,
/// and all of them together, to [`ParameterStatistics`].
pub async fn weight_statistics(
    model: &Transformer,
) -> Result<ParameterStatistics, CheckpointError> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = read_parameters(model)
        .await?
        .into_iter()
        .map(|(path, data)| (path, data.shape, data.values))
        .collect();
    Ok(ParameterStatistics::of(&tensors))
}
