//! The model layer: a configurable Transformer encoder in burn, its traced forward pass, the
//! tokenizer and device selection. Nothing here knows about the page.

mod capture;
pub mod checkpoint;
mod config;
mod device;
mod error;
pub mod paths;
mod tokenizer;
pub mod trace;
pub mod trace_file;
mod transformer;

pub use capture::{RecordedOutput, Recorder};
pub use checkpoint::{Checkpoint, CheckpointError, Naming, Sidecars};
pub use config::{Activation, NormPosition, Positional, TransformerConfig};
pub use device::BackendInfo;
#[cfg(target_arch = "wasm32")]
pub use device::init_browser_device;
pub use error::ModelError;
pub use tokenizer::{BUNDLED_CORPUS, Token, Tokenized, Vocabulary, WordTokenizer, split_words};
pub use trace::{AttentionCapture, Capture, Role, Site, Trace};
pub use trace_file::{TraceFile, TraceFileError};
pub use transformer::{EncoderLayer, FeedForward, Transformer};

use burn::tensor::Device;

/// Runs `model` on `batch` and reads everything it captured back as plain data.
///
/// This is the one entry point the page uses; the read-back is asynchronous because WebGPU
/// cannot read synchronously.
pub async fn run_traced(
    model: &Transformer,
    batch: &[Vec<u32>],
    device: &Device,
) -> Result<Trace, ModelError> {
    let tokens = model.token_tensor(batch, device)?;
    let (_logits, recorder) = model.forward_traced(tokens);
    recorder.read().await
}

/// Tokenizes `text`, runs `model` on it and returns that run as a trace file named `name`,
/// described by `about`: what the page's "Trace (JSON)" saves, made without a page.
pub async fn capture_trace(
    model: &Transformer,
    tokenizer: &WordTokenizer,
    text: &str,
    name: &str,
    about: &str,
    device: &Device,
) -> Result<TraceFile, ModelError> {
    let tokens = tokenizer.tokenize(text);
    if tokens.tokens.is_empty() {
        return Err(ModelError::EmptyInput);
    }
    let trace = run_traced(model, &[tokens.ids()], device).await?;
    Ok(TraceFile::new(name, about, text, &tokens, &trace))
}
