//! `glassbox-trace`: runs a checkpoint on a text and writes the trace the page opens without
//! the model (its "Open checkpoint or trace…" button), the same file as its "Trace (JSON)".
//!
//! ```text
//! cargo run --release --bin glassbox-trace -- --checkpoint assets/models/reverse.safetensors \
//!     --text "3 1 4 1 5 9" --out reverse-trace.json
//! ```
//!
//! `--model DIR` opens a HuggingFace folder (BERT or GPT-2: `config.json`, `model.safetensors`
//! or its shards, the tokenizer's files) instead of a checkpoint, as the page's "Open model
//! folder…" does; `--text-b` gives BERT its sentence B.
//!
//! It runs on the CPU (burn-flex). An `--out` ending in `.safetensors` writes the binary form.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Device;
use clap::Parser;
use glassbox::model::hf::open_folder;
use glassbox::model::{
    Checkpoint, Sidecars, TextTokenizer, TraceFile, WordTokenizer, capture_trace, run_traced_typed,
};

/// Run a glassbox or PyTorch checkpoint on a text and save everything it computed as a trace.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The .safetensors checkpoint.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    checkpoint: Option<PathBuf>,
    /// A HuggingFace model folder (BERT or GPT-2).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Sentence B, for a BERT model (token type 1).
    #[arg(long)]
    text_b: Option<String>,
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

/// Opens the HuggingFace folder `dir` and traces the text (and sentence B) through it.
async fn trace_folder(dir: &std::path::Path, args: &Args) -> Result<TraceFile, String> {
    let entries = std::fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|error| error.to_string())?.path();
        if path.is_file() {
            let bytes =
                std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            files.push((path.to_string_lossy().into_owned(), bytes));
        }
    }
    let device = Device::flex();
    let opened = open_folder(files, &device, |_, _| {})
        .await
        .map_err(|error| format!("{}: {error}", dir.display()))?;
    let tokens = opened
        .tokenizer
        .tokenize(&args.text, args.text_b.as_deref());
    if tokens.tokens.is_empty() {
        return Err("the text has no tokens".into());
    }
    let trace = run_traced_typed(
        &opened.model,
        &[tokens.ids()],
        Some(&[tokens.segments()]),
        &device,
    )
    .await
    .map_err(|error| error.to_string())?;
    let name = dir.file_name().map_or_else(
        || "model".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let about = format!("{}; traced by glassbox-trace on the CPU", opened.describe());
    Ok(TraceFile::new(&name, &about, &args.text, &tokens, &trace))
}

async fn run(args: &Args) -> Result<String, String> {
    let trace = match (&args.model, &args.checkpoint) {
        (Some(dir), _) => trace_folder(dir, args).await?,
        (None, Some(checkpoint)) => trace_checkpoint(checkpoint, args).await?,
        (None, None) => return Err("give --checkpoint FILE or --model DIR".into()),
    };
    write_trace(&trace, args)
}

async fn trace_checkpoint(path: &std::path::Path, args: &Args) -> Result<TraceFile, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let (config_json, vocabulary) = (read_text(&args.config)?, read_text(&args.vocab)?);
    let checkpoint = Checkpoint::parse(
        &bytes,
        Sidecars {
            config_json: config_json.as_deref(),
            vocabulary: vocabulary.as_deref(),
        },
    )
    .map_err(|error| format!("{}: {error}", path.display()))?;
    let device = Device::flex();
    let model = checkpoint
        .to_model(&device)
        .map_err(|error| error.to_string())?;
    let tokenizer = TextTokenizer::Word(WordTokenizer::new(
        checkpoint.vocabulary.clone(),
        checkpoint.config.max_seq_len,
    ));
    let name = path.file_stem().map_or_else(
        || "checkpoint".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let config = &checkpoint.config;
    let about = format!(
        "{}: {} layers, {} heads, d_model {}; traced by glassbox-trace on the CPU",
        path.display(),
        config.num_layers,
        config.num_heads,
        config.d_model
    );
    capture_trace(&model, &tokenizer, &args.text, &name, &about, &device)
        .await
        .map_err(|error| error.to_string())
}

fn write_trace(trace: &TraceFile, args: &Args) -> Result<String, String> {
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
