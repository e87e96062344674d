//! The page's view settings as a URL query, so that a link reopens exactly the same view.

use std::fmt::Write as _;

/// Every setting a shared link carries; `None` leaves the page's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewState {
    /// Tab: `explore`, `train`, `inside` or `diagnostics`.
    pub tab: Option<String>,
    /// Shipped model id (`reverse`, `sort`, `language`, `seed`).
    pub model: Option<String>,
    /// The explorer's text.
    pub text: Option<String>,
    /// Layer, from 0.
    pub layer: Option<usize>,
    /// `mean` or a head index.
    pub head: Option<String>,
    /// `heatmap`, `flow` or `heads`.
    pub view: Option<String>,
    /// The flow view's threshold.
    pub threshold: Option<f32>,
    /// A panel of the tab to scroll to (`gradient-norms`, `memory`, …).
    pub panel: Option<String>,
    /// Anything else in the query (`backend`, `bench`, …), kept as it was, in order.
    pub other: Vec<(String, String)>,
}

impl ViewState {
    /// Whether the state names a layer or a head: then no view is chosen over it.
    pub fn names_layer_or_head(&self) -> bool {
        self.layer.is_some() || self.head.is_some()
    }

    /// Reads a query string, with or without its leading `?`. Values that do not parse are
    /// dropped, so a damaged link still opens, on the defaults for what it lost.
    pub fn from_query(query: &str) -> Self {
        let mut state = Self::default();
        let query = query.strip_prefix('?').unwrap_or(query);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "tab" => state.tab = Some(value),
                "model" => state.model = Some(value),
                "text" => state.text = Some(value),
                "layer" => state.layer = value.parse().ok(),
                "head" => {
                    state.head =
                        (value == "mean" || value.parse::<usize>().is_ok()).then_some(value)
                }
                "view" => {
                    state.view =
                        matches!(value.as_str(), "heatmap" | "flow" | "heads").then_some(value)
                }
                "threshold" => state.threshold = value.parse().ok().filter(|t: &f32| t.is_finite()),
                "panel" => {
                    state.panel = (!value.is_empty()
                        && value.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    .then_some(value)
                }
                other => state.other.push((other.to_string(), value)),
            }
        }
        state
    }

    /// The query string, `?` included (empty when nothing is set), in a fixed key order.
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.other {
            query.append_pair(key, value);
        }
        let mut pair = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                query.append_pair(key, &value);
            }
        };
        pair("tab", self.tab.clone());
        pair("model", self.model.clone());
        pair("layer", self.layer.map(|layer| layer.to_string()));
        pair("head", self.head.clone());
        pair("view", self.view.clone());
        pair(
            "threshold",
            self.threshold.map(|t| {
                let mut text = String::new();
                let _ = write!(text, "{t}");
                text
            }),
        );
        pair("panel", self.panel.clone());
        pair("text", self.text.clone());
        let query = query.finish();
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_the_round_trip_through_a_query() {
        let state = ViewState {
            tab: Some("explore".into()),
            model: Some("sort".into()),
            text: Some("the cat & the \"hat\" = 100% ünïcode #1?".into()),
            layer: Some(3),
            head: Some("5".into()),
            view: Some("flow".into()),
            threshold: Some(0.25),
            panel: Some("gradient-norms".into()),
            other: vec![("backend".into(), "cpu".into())],
        };
        let query = state.to_query();
        assert!(
            query.starts_with(
                "?backend=cpu&tab=explore&model=sort&layer=3&head=5&view=flow&threshold=0.25&panel=gradient-norms&text="
            ),
            "{query}"
        );
        assert!(
            !query.contains(' ') && !query.contains('#') && !query.contains('"'),
            "{query}"
        );
        assert_eq!(ViewState::from_query(&query), state);
        assert_eq!(ViewState::default().to_query(), "");
    }

    #[test]
    fn damaged_values_are_dropped_not_fatal() {
        let state = ViewState::from_query(
            "layer=two&head=first&view=pie&threshold=NaN&panel=%3Cb%3E&model=reverse",
        );
        assert_eq!(state.layer, None);
        assert_eq!(state.head, None);
        assert_eq!(state.view, None);
        assert_eq!(state.threshold, None);
        assert_eq!(state.panel, None);
        assert_eq!(state.model.as_deref(), Some("reverse"));
        assert_eq!(
            ViewState::from_query("head=mean").head.as_deref(),
            Some("mean")
        );
        assert_eq!(
            ViewState::from_query("?text=a+b%2Bc").text.as_deref(),
            Some("a b+c")
        );
    }
}

/// One attention map of an exported view, named (`mean of heads`, `head 3`).
pub struct ExportedMap<'a> {
    /// What the map is.
    pub name: String,
    /// Rows are queries, columns keys.
    pub matrix: &'a crate::analysis::Matrix,
}

/// The data behind an attention view as JSON: the tokens, the settings and every map shown,
/// rows as queries and columns as keys; for the head grid, also the head-to-head similarity.
pub fn view_json(
    model: &str,
    tokens: &[String],
    layer: usize,
    view: &str,
    threshold: Option<f32>,
    maps: &[ExportedMap<'_>],
    similarity: Option<&crate::analysis::Matrix>,
) -> String {
    let maps: Vec<serde_json::Value> = maps
        .iter()
        .map(|map| {
            let rows: Vec<&[f32]> = map.matrix.values.chunks(map.matrix.cols.max(1)).collect();
            serde_json::json!({ "name": map.name, "queries_by_keys": rows })
        })
        .collect();
    let similarity = similarity.map(|matrix| {
        matrix
            .values
            .chunks(matrix.cols.max(1))
            .collect::<Vec<&[f32]>>()
    });
    let value = serde_json::json!({
        "format": "glassbox.attention-view",
        "model": model,
        "tokens": tokens,
        "layer": layer,
        "view": view,
        "threshold": threshold,
        "maps": maps,
        "head_similarity": similarity,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// One map as CSV: a header row of key tokens, then one row per query token.
pub fn matrix_csv(tokens: &[String], matrix: &crate::analysis::Matrix) -> String {
    let label = |index: usize| {
        tokens
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    };
    let header = std::iter::once("query \\ key".to_string()).chain((0..matrix.cols).map(label));
    let header: Vec<String> = header.collect();
    let rows = matrix
        .values
        .chunks(matrix.cols.max(1))
        .enumerate()
        .map(|(query, row)| {
            std::iter::once(label(query))
                .chain(row.iter().map(f32::to_string))
                .collect::<Vec<String>>()
        });
    crate::format::csv_text(std::iter::once(header).chain(rows))
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use crate::analysis::Matrix;

    #[test]
    fn csv_quotes_awkward_tokens_and_keeps_every_value() {
        let matrix = Matrix::new(2, 2, vec![0.25, 0.75, 1.0, 0.0]).unwrap();
        let tokens = vec!["a,b".to_string(), "say \"hi\"".to_string()];
        let csv = matrix_csv(&tokens, &matrix);
        assert_eq!(
            csv,
            "query \\ key,\"a,b\",\"say \"\"hi\"\"\"\n\"a,b\",0.25,0.75\n\"say \"\"hi\"\"\",1,0\n"
        );
    }

    #[test]
    fn json_has_the_tokens_settings_and_rows() {
        let matrix = Matrix::new(2, 2, vec![0.25, 0.75, 1.0, 0.0]).unwrap();
        let text = view_json(
            "reverse",
            &["x".into(), "y".into()],
            1,
            "heatmap",
            None,
            &[ExportedMap {
                name: "head 0".into(),
                matrix: &matrix,
            }],
            Some(&Matrix::new(1, 1, vec![1.0]).unwrap()),
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["layer"], 1);
        assert_eq!(value["maps"][0]["queries_by_keys"][0][1], 0.75);
        assert_eq!(value["tokens"][1], "y");
        assert_eq!(value["head_similarity"][0][0], 1.0);
    }
}
