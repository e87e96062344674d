//! `glassbox-trace`, the command-line twin of the page's "Trace (JSON)": it runs a checkpoint on
//! a text and writes a trace that reads back to exactly the numbers of the same run here.

use std::process::Command;

use burn::tensor::Device;
use glassbox::model::{Checkpoint, Sidecars, TraceFile, WordTokenizer, run_traced};

const REVERSE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/reverse.safetensors"
);

fn out_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("glassbox-{}-{name}", std::process::id()))
}

#[test]
fn the_cli_writes_the_trace_of_the_same_run_the_library_makes() {
    let out = out_path("reverse-trace.json");
    let status = Command::new(env!("CARGO_BIN_EXE_glassbox-trace"))
        .args(["--checkpoint", REVERSE, "--text", "3 1 4 1 5 9", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("6 tokens, 2 layers"));
    let file = TraceFile::parse(&std::fs::read(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(file.model, "reverse");
    assert_eq!(file.text, "3 1 4 1 5 9");

    let checkpoint =
        Checkpoint::parse(&std::fs::read(REVERSE).unwrap(), Sidecars::default()).unwrap();
    let device = Device::flex();
    let model = checkpoint.to_model(&device).unwrap();
    let tokens = WordTokenizer::new(checkpoint.vocabulary.clone(), checkpoint.config.max_seq_len)
        .tokenize("3 1 4 1 5 9");
    let trace = pollster::block_on(run_traced(&model, &[tokens.ids()], &device)).unwrap();
    assert_eq!(file.tokens, tokens.tokens);
    // Bit for bit: JSON carries every f32 exactly.
    assert_eq!(file.attention, trace.attention);
    assert_eq!(file.modules, trace.modules);
    assert!(!file.modules.is_empty());

    // The binary form holds the same trace.
    let binary = out_path("reverse-trace.safetensors");
    let run = Command::new(env!("CARGO_BIN_EXE_glassbox-trace"))
        .args(["--checkpoint", REVERSE, "--text", "3 1 4 1 5 9", "--out"])
        .arg(&binary)
        .output()
        .unwrap();
    assert!(run.status.success());
    let bytes = std::fs::read(&binary).unwrap();
    std::fs::remove_file(&binary).unwrap();
    assert!(TraceFile::is_binary_trace(&bytes));
    assert_eq!(TraceFile::parse(&bytes).unwrap(), file);
}

#[test]
fn the_cli_says_what_is_wrong_and_writes_nothing() {
    let out = out_path("never-written.json");
    for args in [
        vec![
            "--checkpoint",
            "/nonexistent/model.safetensors",
            "--text",
            "1 2",
        ],
        vec!["--checkpoint", REVERSE, "--text", "   "],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_glassbox-trace"))
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!run.status.success(), "{args:?}");
        let message = String::from_utf8_lossy(&run.stderr);
        assert!(message.starts_with("glassbox-trace: "), "{message}");
        assert!(
            message.contains("/nonexistent/model.safetensors") || message.contains("no tokens"),
            "{message}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn the_cli_traces_a_huggingface_folder_with_its_module_paths_and_transformers_attention() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/bert-mlm");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hf/bert-mlm.expected.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let text = expected["text"].as_str().unwrap();
    let text_b = expected["text_b"].as_str().unwrap();
    let out = out_path("bert-trace.json");
    let run = Command::new(env!("CARGO_BIN_EXE_glassbox-trace"))
        .args([
            "--model", folder, "--text", text, "--text-b", text_b, "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let file = TraceFile::parse(&std::fs::read(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(file.model, "bert-mlm");
    assert!(file.about.starts_with("BERT"), "{}", file.about);
    let ids: Vec<u64> = file
        .tokens
        .iter()
        .map(|token| u64::from(token.id))
        .collect();
    let want: Vec<u64> = expected["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap())
        .collect();
    assert_eq!(ids, want);
    assert!(
        file.modules
            .iter()
            .any(|capture| capture.path == "bert.encoder.layer.1.intermediate.dense")
    );
    // The page opens the same file: its attention is transformers' (checked in tests/hf.rs).
    let reference = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hf/bert-mlm.expected.safetensors"
    ))
    .unwrap();
    let reference = safetensors::SafeTensors::deserialize(&reference).unwrap();
    for capture in &file.attention {
        let want = reference
            .tensor(&format!("attention.{}", capture.layer))
            .unwrap();
        let want: Vec<f32> = want
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let largest = capture
            .values
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(largest <= 1e-5, "layer {}: {largest}", capture.layer);
    }
    // A folder that is not a model is refused in words.
    let run = Command::new(env!("CARGO_BIN_EXE_glassbox-trace"))
        .args([
            "--model",
            concat!(env!("CARGO_MANIFEST_DIR"), "/src"),
            "--text",
            "x",
            "--out",
        ])
        .arg(out_path("none.json"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no config.json"));
}
