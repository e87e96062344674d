//! `glassbox-trace`: runs a checkpoint on a text and writes the trace the page opens without
//! the model (its "Open checkpoint or trace…" button), the same file as its "Trace (JSON)".
//!
//! ```text
//! cargo run --release --bin glassbox-trace -- --checkpoint assets/models/reverse.safetensors \
//!     --text "3 1 4 1 5 9" --out reverse-trace.json
//! ```
//!
//! It runs on the CPU (burn-flex). An `--out` ending in `.safetensors` writes the binary form.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Device;
use clap::Parser;
use glassbox::model::{Checkpoint, Sidecars, WordTokenizer, capture_trace};

/// Run a glassbox or PyTorch checkpoint on a text and save everything it computed as a trace.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The .safetensors checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// A glassbox config JSON, for a checkpoint without glassbox metadata.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A vocabulary (JSON list, JSON word → id map, or one word per line).
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// The text to run.
    #[arg(long)]
    text: String,
    /// Where to write the trace: `.safetensors` for the binary form (half the size, for long
    /// texts), anything else for JSON.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match pollster::block_on(run(&args)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("glassbox-trace: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_text(path: &Option<PathBuf>) -> Result<Option<String>, String> {
    path.as_ref()
        .map(|path| {
            std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
        })
        .transpose()
}

async fn run(args: &Args) -> Result<String, String> {
    let bytes = std::fs::read(&args.checkpoint)
        .map_err(|error| format!("{}: {error}", args.checkpoint.display()))?;
    let (config_json, vocabulary) = (read_text(&args.config)?, read_text(&args.vocab)?);
    let checkpoint = Checkpoint::parse(
        &bytes,
        Sidecars {
            config_json: config_json.as_deref(),
            vocabulary: vocabulary.as_deref(),
        },
    )
    .map_err(|error| format!("{}: {error}", args.checkpoint.display()))?;
    let device = Device::flex();
    let model = checkpoint
        .to_model(&device)
        .map_err(|error| error.to_string())?;
    let tokenizer =
        WordTokenizer::new(checkpoint.vocabulary.clone(), checkpoint.config.max_seq_len);
    let name = args.checkpoint.file_stem().map_or_else(
        || "checkpoint".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let config = &checkpoint.config;
    let about = format!(
        "{}: {} layers, {} heads, d_model {}; traced by glassbox-trace on the CPU",
        args.checkpoint.display(),
        config.num_layers,
        config.num_heads,
        config.d_model
    );
    let trace = capture_trace(&model, &tokenizer, &args.text, &name, &about, &device)
        .await
        .map_err(|error| error.to_string())?;
    let binary = args
        .out
        .extension()
        .is_some_and(|extension| extension == "safetensors");
    let bytes = if binary {
        trace.to_safetensors().map_err(|error| error.to_string())?
    } else {
        trace.to_json().into_bytes()
    };
    std::fs::write(&args.out, &bytes)
        .map_err(|error| format!("{}: {error}", args.out.display()))?;
    Ok(format!(
        "{}: {} tokens, {} layers, {} module outputs, {} bytes",
        args.out.display(),
        trace.tokens.len(),
        trace.attention.len(),
        trace.modules.len(),
        bytes.len()
    ))
}
