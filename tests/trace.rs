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
