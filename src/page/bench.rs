//! The in-page benchmark's report (`?bench=1`) as JSON: the numbers `app::bench` measured,
//! written by serde so any backend label is escaped as JSON, and `scripts/bench` can parse it.

use serde::{Serialize, Serializer};

/// What one `?bench=1` run measured; times in milliseconds, sizes in KiB.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BenchReport {
    /// The device the page ran on, in the page's words (an adapter name may hold any text).
    pub backend: String,
    /// Sequences per forward pass.
    pub batch: usize,
    /// Tokens per sequence.
    pub tokens: usize,
    /// Median of the timed forward + capture runs.
    #[serde(serialize_with = "millis")]
    pub forward_ms_median: f64,
    /// Every timed forward + capture run.
    #[serde(serialize_with = "millis_list")]
    pub forward_ms_all: Vec<f64>,
    /// One forward + capture of the 512-token corpus.
    #[serde(rename = "forward_512_tokens_ms", serialize_with = "millis")]
    pub forward_512_ms: f64,
    /// Median redraw of that run's 512×512 heatmap.
    #[serde(rename = "heatmap_512_redraw_ms_median", serialize_with = "millis")]
    pub redraw_ms_median: f64,
    /// Every redraw.
    #[serde(rename = "heatmap_512_redraw_ms_all", serialize_with = "millis_list")]
    pub redraw_ms_all: Vec<f64>,
    /// The heatmap's SVG export.
    #[serde(rename = "heatmap_512_svg_ms", serialize_with = "millis")]
    pub svg_ms: f64,
    /// Size of that SVG.
    #[serde(rename = "heatmap_512_svg_kb", serialize_with = "kib")]
    pub svg_kb: f64,
    /// Writing the 512-token trace as JSON.
    #[serde(rename = "trace_512_write_ms", serialize_with = "millis")]
    pub trace_write_ms: f64,
    /// Reading it back.
    #[serde(rename = "trace_512_read_ms", serialize_with = "millis")]
    pub trace_read_ms: f64,
    /// Size of the JSON trace.
    #[serde(rename = "trace_512_kb", serialize_with = "kib")]
    pub trace_kb: f64,
    /// Writing the same trace as safetensors.
    #[serde(rename = "trace_512_binary_write_ms", serialize_with = "millis")]
    pub binary_write_ms: f64,
    /// Reading it back.
    #[serde(rename = "trace_512_binary_read_ms", serialize_with = "millis")]
    pub binary_read_ms: f64,
    /// Size of the safetensors trace.
    #[serde(rename = "trace_512_binary_kb", serialize_with = "kib")]
    pub binary_kb: f64,
}

impl BenchReport {
    /// The report as one JSON object, keys in the order above.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// `value` rounded to `digits` decimals; `None` (JSON `null`) when it is not a number, such as
/// the median of no runs.
fn rounded(value: f64, digits: i32) -> Option<f64> {
    let scale = 10f64.powi(digits);
    value.is_finite().then(|| (value * scale).round() / scale)
}

fn millis<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    rounded(*value, 3).serialize(serializer)
}

fn millis_list<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(|value| rounded(*value, 3)))
}

fn kib<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    rounded(*value, 1).serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_backend_label_is_escaped_as_json() {
        // Quotes, a backslash, a control character and non-ASCII: Rust's `{:?}` writes the
        // control character as `\u{1b}`, which is not JSON.
        let label = "WebGPU (\"Intel\" \\ Iris\u{1b} é 日本)\n";
        let report = BenchReport {
            backend: label.into(),
            ..BenchReport::default()
        };
        let json = report.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["backend"], label);
        assert!(
            serde_json::from_str::<serde_json::Value>(&format!("{{\"backend\":{label:?}}}"))
                .is_err(),
            "the old way must fail on this label, or the test proves nothing"
        );
    }

    #[test]
    fn numbers_are_rounded_and_a_missing_median_is_null() {
        let report = BenchReport {
            backend: "CPU (burn-flex): 2 threads".into(),
            batch: 2,
            tokens: 10,
            forward_ms_median: f64::NAN,
            forward_ms_all: vec![1.23456, 2.0, f64::INFINITY],
            svg_kb: 12.345,
            trace_read_ms: 0.0004,
            ..BenchReport::default()
        };
        let value: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(value["batch"], 2);
        assert_eq!(value["tokens"], 10);
        assert!(value["forward_ms_median"].is_null());
        assert_eq!(
            value["forward_ms_all"],
            serde_json::json!([1.235, 2.0, null])
        );
        assert_eq!(value["heatmap_512_svg_kb"], 12.3);
        assert_eq!(value["trace_512_read_ms"], 0.0);
    }

    #[test]
    fn the_keys_are_the_ones_scripts_bench_reads_in_order() {
        let json = BenchReport::default().to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "backend",
            "batch",
            "tokens",
            "forward_ms_median",
            "forward_ms_all",
            "forward_512_tokens_ms",
            "heatmap_512_redraw_ms_median",
            "heatmap_512_redraw_ms_all",
            "heatmap_512_svg_ms",
            "heatmap_512_svg_kb",
            "trace_512_write_ms",
            "trace_512_read_ms",
            "trace_512_kb",
            "trace_512_binary_write_ms",
            "trace_512_binary_read_ms",
            "trace_512_binary_kb",
        ];
        // serde_json's map sorts its keys; the order written is checked on the text itself.
        let positions: Vec<usize> = expected
            .iter()
            .map(|key| json.find(&format!("\"{key}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{json}");
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
    }
}
