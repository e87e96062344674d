//! The model layer: the Transformer in burn, built from the plain description in
//! [`crate::structure`] (re-exported here), its traced forward pass, checkpoints and
//! HuggingFace folders, the tokenizers and device selection. Nothing here knows about the page.

mod capture;
pub mod checkpoint;
mod device;
mod device_trace;
mod error;
pub mod hf;
pub mod hf_tokenizer;
pub mod paths;
mod text;
mod tokenizer;
pub mod trace_file;
mod transformer;

pub use crate::structure::{
    Activation, AttentionCapture, Capture, Head, Layout, NormPosition, Positional, Role, Site,
    Trace, TransformerConfig, config, layout, trace,
};
pub use capture::{RecordedOutput, Recorder};
pub(crate) use capture::{execute, floats};
pub use checkpoint::{Checkpoint, CheckpointError, Naming, Sidecars};
#[cfg(target_arch = "wasm32")]
pub use device::init_browser_device;
pub use device::{AdapterSummary, BackendChoice, BackendInfo, cpu_instead_of};
#[cfg(not(target_arch = "wasm32"))]
pub use device::{NativeBackend, native_device};
pub use device_trace::{CaptureInfo, DeviceTrace};
pub use error::ModelError;
pub use text::TextTokenizer;
pub use tokenizer::{BUNDLED_CORPUS, Token, Tokenized, Vocabulary, WordTokenizer, split_words};
pub use trace_file::{TraceFile, TraceFileError};
pub use transformer::{EncoderLayer, FeedForward, HeadTransform, Transformer};

use burn::tensor::Device;

/// Runs `model` on `batch` and reads everything it captured back as plain data.
///
/// The read-back is asynchronous because WebGPU cannot read synchronously. The explorer keeps
/// its runs on the device instead ([`run_on_device`]).
pub async fn run_traced(
    model: &Transformer,
    batch: &[Vec<u32>],
    device: &Device,
) -> Result<Trace, ModelError> {
    run_traced_typed(model, batch, None, device).await
}

/// [`run_traced`] with token types (sentence A/B) for a model that has them.
pub async fn run_traced_typed(
    model: &Transformer,
    batch: &[Vec<u32>],
    types: Option<&[Vec<u32>]>,
    device: &Device,
) -> Result<Trace, ModelError> {
    traced_forward(model, batch, types, device)?.read().await
}

/// Runs `model` on `batch` and keeps what it captured on the device, for views that read back
/// only what they draw.
pub async fn run_on_device(
    model: &Transformer,
    batch: &[Vec<u32>],
    types: Option<&[Vec<u32>]>,
    device: &Device,
) -> Result<DeviceTrace, ModelError> {
    let recorder = traced_forward(model, batch, types, device)?;
    Ok(DeviceTrace::new(recorder, model.causal))
}

/// The traced forward pass both entry points share: what it recorded, still on the device.
fn traced_forward(
    model: &Transformer,
    batch: &[Vec<u32>],
    types: Option<&[Vec<u32>]>,
    device: &Device,
) -> Result<Recorder, ModelError> {
    let tokens = model.token_tensor(batch, device)?;
    let types = model.types_for(types, device)?;
    let (_logits, recorder) = model.forward_traced_typed(tokens, types);
    Ok(recorder)
}

/// Tokenizes `text`, runs `model` on it and returns that run as a trace file named `name`,
/// described by `about`: what the page's "Trace (JSON)" saves, made without a page.
pub async fn capture_trace(
    model: &Transformer,
    tokenizer: &TextTokenizer,
    text: &str,
    name: &str,
    about: &str,
    device: &Device,
) -> Result<TraceFile, ModelError> {
    let tokens = tokenizer.tokenize(text);
    if tokens.tokens.is_empty() {
        return Err(ModelError::EmptyInput);
    }
    let trace =
        run_traced_typed(model, &[tokens.ids()], Some(&[tokens.segments()]), device).await?;
    Ok(TraceFile::new(name, about, text, &tokens, &trace))
}
