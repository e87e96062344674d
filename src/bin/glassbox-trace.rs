//! `glassbox-trace`: runs a checkpoint on a text and writes the trace the page opens without
//! the model (its "Open checkpoint or trace…" button), the same file as its "Trace (JSON)".
//!
//! ```text
//! cargo run --release --bin glassbox-trace -- --checkpoint assets/models/reverse.safetensors \
//!     --text "3 1 4 1 5 9" --out reverse-trace.json
//! ```
//!
//! `--opening` runs, instead of a `--text`, the text the page opens a checkpoint on (its task's
//! probe text): the page's build ships that trace beside its opening model and draws it before the
//! model has loaded.
//!
//! `--model DIR` opens a HuggingFace folder (BERT or GPT-2: `config.json`, `model.safetensors`
//! or its shards, the tokenizer's files) instead of a checkpoint, as the page's "Open model
//! folder…" does; `--text-b` gives BERT its sentence B.
//!
//! `--backend cpu|wgpu|cuda` chooses where it runs (burn-flex, burn's wgpu runtime on
//! Vulkan/Metal/DX12, or CUDA in a build with `--features cuda`). An `--out` ending in
//! `.safetensors` writes the binary form. `--layers`, `--modules`, `--no-attention` and `--f16`
//! write a partial trace, which records what it left out.
//!
//! Besides the summary it prints one `key=value` line per number, for benchmarks to read:
//! `backend=`, `repeat=`, `forward_capture_ms=` (the median of `--repeat` traced forwards, each
//! with its asynchronous read-back of everything captured) and, with `--plain`,
//! `forward_plain_ms=` (the forward alone, then one read of its logits).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::Device;
use clap::Parser;
use glassbox::model::hf::open_folder;
use glassbox::model::{
    Checkpoint, NativeBackend, Role, Sidecars, TextTokenizer, Tokenized, TraceFile, Transformer,
    WordTokenizer, native_device, run_traced_typed,
};
use glassbox::train::{Task, TaskKind};

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
    #[arg(long, required_unless_present = "opening")]
    text: Option<String>,
    /// Run the text the page opens the checkpoint on (the probe text of the task it was trained
    /// on) instead of a `--text`.
    #[arg(long, conflicts_with_all = ["text", "model"])]
    opening: bool,
    /// Where to write the trace: `.safetensors` for the binary form (half the size, for long
    /// texts), anything else for JSON.
    #[arg(long)]
    out: PathBuf,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: NativeBackend,
    /// Run the traced forward this many times and print the median time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Also time the forward pass without capture (logits only, one read-back), as often.
    #[arg(long)]
    plain: bool,
    /// Keep only these layers' attention and module outputs (from 0, comma-separated); the
    /// captures outside the layers (embeddings, logits) stay.
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Keep only module outputs of these roles (comma-separated: embedding, positional,
    /// embedding_norm, attention_input, attention_output, feed_forward_input,
    /// feed_forward_hidden, feed_forward_activation, feed_forward_output, block_output,
    /// final_norm, logits). Attention stays unless --no-attention.
    #[arg(long, value_delimiter = ',', value_parser = parse_role)]
    modules: Option<Vec<Role>>,
    /// Leave the attention maps out.
    #[arg(long)]
    no_attention: bool,
    /// Round every value through f16: the .safetensors form stores F16, half the size (JSON
    /// keeps f32 numbers, rounded).
    #[arg(long)]
    f16: bool,
}

/// A role by its snake_case name, with the names listed when it is none of them.
fn parse_role(name: &str) -> Result<Role, String> {
    name.trim().parse().map_err(|_| {
        let names: Vec<&'static str> = <Role as strum::IntoEnumIterator>::iter()
            .map(<&'static str>::from)
            .collect();
        format!("no role `{name}`: one of {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match pollster::block_on(run(&args)) {
        Ok(lines) => {
            // The trace is written already: a closed pipe (`| head -1`) is no failure of it.
            let _ = writeln!(std::io::stdout(), "{lines}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("glassbox-trace: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A model ready to run, with the text's tokens and the words for the trace file.
struct Prepared {
    model: Transformer,
    text: String,
    tokens: Tokenized,
    name: String,
    about: String,
}

async fn run(args: &Args) -> Result<String, String> {
    let (device, backend) = native_device(args.backend)?;
    let prepared = match (&args.model, &args.checkpoint) {
        (Some(dir), _) => open_model_folder(dir, args, &device).await?,
        (None, Some(checkpoint)) => open_checkpoint(checkpoint, args, &device)?,
        (None, None) => return Err("give --checkpoint FILE or --model DIR".into()),
    };
    let Prepared {
        model,
        text,
        tokens,
        name,
        about,
    } = prepared;
    if tokens.tokens.is_empty() {
        return Err("the text has no tokens".into());
    }
    let batch = [tokens.ids()];
    let types = [tokens.segments()];
    let repeat = args.repeat as usize;

    let mut capture_ms = Vec::with_capacity(repeat);
    let mut trace = None;
    for _ in 0..repeat {
        let started = now();
        let run = run_traced_typed(&model, &batch, Some(&types), &device)
            .await
            .map_err(|error| error.to_string())?;
        capture_ms.push(started.elapsed().as_secs_f64() * 1e3);
        trace = Some(run);
    }
    let Some(trace) = trace else {
        return Err("--repeat must be at least 1".into());
    };
    let plain_ms = if args.plain {
        Some(time_plain_forward(&model, &batch, &types, repeat, &device).await?)
    } else {
        None
    };

    let about = format!("{about}; traced by glassbox-trace on {backend}");
    let mut file = TraceFile::new(&name, &about, &text, &tokens, &trace);
    if args.layers.is_some() || args.modules.is_some() || args.no_attention {
        file.keep_only(
            args.layers.as_deref(),
            args.modules.as_deref(),
            !args.no_attention,
        )
        .map_err(|error| error.to_string())?;
    }
    if args.f16 {
        file.round_to_f16();
    }
    let mut lines = vec![
        write_trace(&file, &args.out)?,
        format!("backend={backend}"),
        format!("repeat={repeat}"),
        format!("forward_capture_ms={:.3}", median(&mut capture_ms)),
    ];
    if let Some(mut plain_ms) = plain_ms {
        lines.push(format!("forward_plain_ms={:.3}", median(&mut plain_ms)));
    }
    if let Some(missing) = file.missing_words() {
        lines.push(format!("partial={missing}"));
    }
    Ok(lines.join("\n"))
}

/// Times `repeat` forward passes that record nothing, each followed by one asynchronous read
/// of its logits (which waits for the device to finish), in milliseconds.
async fn time_plain_forward(
    model: &Transformer,
    batch: &[Vec<u32>],
    types: &[Vec<u32>],
    repeat: usize,
    device: &Device,
) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let started = now();
        let tokens = model
            .token_tensor(batch, device)
            .map_err(|error| error.to_string())?;
        let types = model
            .types_for(Some(types), device)
            .map_err(|error| error.to_string())?;
        let logits = model.forward_typed(tokens, types);
        logits
            .into_data_async()
            .await
            .map_err(|error| format!("reading the logits back: {error:?}"))?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

/// The clock for the timings.
// Native only: the wasm ban on `Instant` (clippy.toml) does not apply to this CLI.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn read_text(path: &Option<PathBuf>) -> Result<Option<String>, String> {
    path.as_ref()
        .map(|path| {
            std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
        })
        .transpose()
}

/// Opens the HuggingFace folder `dir` on `device` and tokenizes the text (and sentence B).
async fn open_model_folder(dir: &Path, args: &Args, device: &Device) -> Result<Prepared, String> {
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
    let opened = open_folder(files, device, |_, _| {})
        .await
        .map_err(|error| format!("{}: {error}", dir.display()))?;
    let text = args
        .text
        .clone()
        .ok_or("give --text: a model folder has no opening text")?;
    let tokens = opened.tokenizer.tokenize(&text, args.text_b.as_deref());
    let name = dir.file_name().map_or_else(
        || "model".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let about = opened.describe();
    Ok(Prepared {
        model: opened.model,
        text,
        tokens,
        name,
        about,
    })
}

/// Reads the checkpoint at `path` (with its sidecars), builds it on `device` and tokenizes the
/// text with its vocabulary.
fn open_checkpoint(path: &Path, args: &Args, device: &Device) -> Result<Prepared, String> {
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
    let model = checkpoint
        .to_model(device)
        .map_err(|error| error.to_string())?;
    let tokenizer = TextTokenizer::Word(WordTokenizer::new(
        checkpoint.vocabulary.clone(),
        checkpoint.config.max_seq_len,
    ));
    let name = path.file_stem().map_or_else(
        || "checkpoint".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    // clap asks for `--text` unless `--opening` is given.
    let text = match &args.text {
        Some(text) => text.clone(),
        None => opening_text(&checkpoint).ok_or_else(|| {
            format!(
                "{}: --opening needs a checkpoint trained on a task (glassbox.task), whose probe text the page opens on",
                path.display()
            )
        })?,
    };
    let config = &checkpoint.config;
    let about = format!(
        "{}: {} layers, {} heads, d_model {}",
        path.display(),
        config.num_layers,
        config.num_heads,
        config.d_model
    );
    Ok(Prepared {
        model,
        tokens: tokenizer.tokenize(&text),
        text,
        name,
        about,
    })
}

/// The text the page opens `checkpoint` on: the probe text of the task it was trained on.
fn opening_text(checkpoint: &Checkpoint) -> Option<String> {
    let kind = checkpoint
        .meta("glassbox.task")
        .and_then(TaskKind::from_name)?;
    Some(Task::new(kind).probe_text().to_string())
}

/// Writes `trace` to `out` (binary for `.safetensors`, else JSON) and says what it holds.
fn write_trace(trace: &TraceFile, out: &Path) -> Result<String, String> {
    let binary = out
        .extension()
        .is_some_and(|extension| extension == "safetensors");
    let bytes = if binary {
        trace.to_safetensors().map_err(|error| error.to_string())?
    } else {
        trace.to_json().into_bytes()
    };
    std::fs::write(out, &bytes).map_err(|error| format!("{}: {error}", out.display()))?;
    Ok(format!(
        "{}: {} tokens, {} layers, {} module outputs, {} bytes",
        out.display(),
        trace.tokens.len(),
        trace.attention.len(),
        trace.modules.len(),
        bytes.len()
    ))
}
