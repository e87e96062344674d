//! Errors of the model layer, worded for the person using the page.

use thiserror::Error;

/// What can go wrong between text and a captured trace.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// The configuration cannot build a model.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// No tokens to run.
    #[error("there are no tokens to run")]
    EmptyInput,
    /// More tokens than the model accepts.
    #[error("{len} tokens is more than the model's maximum of {max}")]
    TooLong {
        /// Tokens given.
        len: usize,
        /// Tokens accepted.
        max: usize,
    },
    /// Sequences of different lengths in one batch.
    #[error("all sequences in a batch must have the same length")]
    RaggedBatch,
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size}")]
    UnknownId {
        /// The offending id.
        id: u32,
        /// Size of the vocabulary.
        vocab_size: usize,
    },
    /// A token type (segment id) outside the model's type table.
    #[error("token type {id} is outside the model's {types} token types")]
    UnknownType {
        /// The offending type.
        id: u32,
        /// Rows of the type table (0: the model has none).
        types: usize,
    },
    /// The device failed to return data.
    #[error("reading results back from the device failed: {0}")]
    ReadBack(String),
    /// The run's trace would not fit the page's budget for one trace on the device.
    #[error(
        "{tokens} tokens would make a trace of {} MiB on the device, over the page's budget of {} MiB for one run: shorten the text to {fits} tokens or fewer",
        bytes >> 20,
        budget >> 20
    )]
    TraceTooLarge {
        /// Tokens asked for.
        tokens: usize,
        /// Bytes the trace would take.
        bytes: u64,
        /// The budget.
        budget: u64,
        /// The most tokens that fit.
        fits: usize,
    },
}
