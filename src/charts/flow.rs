//! Attention as flow: queries on the left, keys on the right, one arrow per strong weight.

use super::heatmap::{labelled_indices, pinned_label_font};
use super::{
    ChartError, Style, anchored, clear, draw_message, draw_title, label, label_step,
    max_text_width, text_size,
};
use crate::analysis::FlowEdge;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{PathElement, Polygon, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, RGBAColor, ShapeStyle};

/// Points sampled along each Bézier curve.
const CURVE_SAMPLES: usize = 24;

/// Weights shown in the legend.
const LEGEND_WEIGHTS: [f32; 3] = [0.25, 0.5, 1.0];

/// What [`draw_flow`] draws.
#[derive(Debug, Clone, Copy)]
pub struct FlowData<'a> {
    /// The edges to draw, in drawing order: weakest first, as
    /// [`crate::analysis::flow_edges`] returns them.
    pub edges: &'a [FlowEdge],
    /// One label per query position, listed down the left.
    pub query_labels: &'a [String],
    /// One label per key position, listed down the right.
    pub key_labels: &'a [String],
    /// The weight below which edges were dropped, shown in the legend.
    pub threshold: f32,
    /// Title above the chart; empty for none.
    pub title: &'a str,
    /// The selected token: the arrows from and to it are drawn thicker in the accent colour,
    /// the others faded, and its labels bold in the accent colour on both sides. Out-of-range
    /// indices are ignored.
    pub pinned: Option<usize>,
}

/// How much of its opacity an edge that does not touch the pinned token keeps.
const FADED: f64 = 0.35;

/// Stroke width in pixels and opacity of an edge of weight `weight`, clamped to `0..=1`.
pub fn edge_look(weight: f32) -> (u32, f64) {
    let w = if weight.is_nan() {
        0.0
    } else {
        weight.clamp(0.0, 1.0)
    };
    ((1.0 + 5.0 * w).round() as u32, f64::from(0.15 + 0.85 * w))
}

/// The `y` of item `index` of `count` spread evenly over `top..top + height`.
fn slot_y(index: usize, count: usize, top: i32, height: i32) -> i32 {
    top + ((2 * index + 1) as f64 * f64::from(height) / (2 * count.max(1)) as f64) as i32
}

/// The cubic Bézier from `from` to `to` that leaves and arrives horizontally, as a polyline.
fn curve(from: (i32, i32), to: (i32, i32)) -> Vec<(i32, i32)> {
    let (x0, y0) = (f64::from(from.0), f64::from(from.1));
    let (x3, y3) = (f64::from(to.0), f64::from(to.1));
    let (x1, x2) = (x0 + (x3 - x0) / 2.0, x3 - (x3 - x0) / 2.0);
    (0..=CURVE_SAMPLES)
        .map(|i| {
            let t = i as f64 / CURVE_SAMPLES as f64;
            let s = 1.0 - t;
            let (a, b, c, d) = (s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t);
            let x = a * x0 + b * x1 + c * x2 + d * x3;
            let y = a * y0 + b * y0 + c * y3 + d * y3;
            (x.round() as i32, y.round() as i32)
        })
        .collect()
}

/// Draws query→key arrows for `data.edges` with a legend of weights.
pub fn draw_flow<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &FlowData,
    style: &Style,
) -> Result<(), ChartError> {
    clear(area, style)?;
    let top = draw_title(area, data.title, style)?;
    let num_queries = data
        .edges
        .iter()
        .map(|e| e.query + 1)
        .fold(data.query_labels.len(), usize::max);
    let num_keys = data
        .edges
        .iter()
        .map(|e| e.key + 1)
        .fold(data.key_labels.len(), usize::max);
    if num_queries == 0 || num_keys == 0 {
        draw_message(area, "no tokens", style)?;
        return Ok(());
    }
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = style.label_font();
    let caption_font = style.caption_font();
    let line_height = text_size(area, "Ag", &font)?.1;

    // Column headers, then the token columns, then the legend along the bottom.
    let query_texts: Vec<String> = (0..num_queries)
        .map(|q| label(data.query_labels, q))
        .collect();
    let key_texts: Vec<String> = (0..num_keys).map(|k| label(data.key_labels, k)).collect();
    let query_width = max_text_width(area, query_texts.iter().cloned(), &font)?.min(width / 4);
    let key_width = max_text_width(area, key_texts.iter().cloned(), &font)?.min(width / 4);
    let (start_x, end_x) = (4 + query_width + 8, width - 4 - key_width - 8);
    area.draw_text(
        "query",
        &anchored(&caption_font, HPos::Right, VPos::Top),
        (start_x - 8, top),
    )?;
    area.draw_text(
        "key",
        &anchored(&caption_font, HPos::Left, VPos::Top),
        (end_x + 8, top),
    )?;
    let body_top = top + line_height + 6;
    let legend_height = line_height + 12;
    let body_height = (height - body_top - legend_height).max(0);

    // A pinned index that is neither a query nor a key draws like none.
    let pinned = data.pinned.filter(|&p| p < num_queries.max(num_keys));
    let query_font = anchored(&font, HPos::Right, VPos::Center);
    let pinned_query_font = pinned_label_font(style, &query_font);
    let query_pitch = f64::from(body_height) / num_queries as f64;
    let query_step = label_step(query_pitch, line_height + 2);
    for q in labelled_indices(num_queries, query_step, pinned) {
        let font = if Some(q) == pinned {
            &pinned_query_font
        } else {
            &query_font
        };
        area.draw_text(
            &query_texts[q],
            font,
            (start_x - 8, slot_y(q, num_queries, body_top, body_height)),
        )?;
    }
    let key_font = anchored(&font, HPos::Left, VPos::Center);
    let pinned_key_font = pinned_label_font(style, &key_font);
    let key_pitch = f64::from(body_height) / num_keys as f64;
    let key_step = label_step(key_pitch, line_height + 2);
    for k in labelled_indices(num_keys, key_step, pinned) {
        let font = if Some(k) == pinned {
            &pinned_key_font
        } else {
            &key_font
        };
        area.draw_text(
            &key_texts[k],
            font,
            (end_x + 8, slot_y(k, num_keys, body_top, body_height)),
        )?;
    }

    if data.edges.is_empty() {
        let centre = anchored(&caption_font, HPos::Center, VPos::Center);
        area.draw_text(
            "no weights ≥ threshold",
            &centre,
            (width / 2, body_top + body_height / 2),
        )?;
    }
    // With a pinned token, its edges draw last, on top of the faded rest.
    let touches = |edge: &FlowEdge| pinned.is_some_and(|p| edge.query == p || edge.key == p);
    let ordered = data
        .edges
        .iter()
        .filter(|e| !touches(e))
        .chain(data.edges.iter().filter(|e| touches(e)));
    for edge in ordered {
        let (stroke, alpha) = edge_look(edge.weight);
        let (stroke, colour): (u32, RGBAColor) = match pinned {
            None => (stroke, style.accent.mix(alpha)),
            Some(_) if touches(edge) => (stroke + 2, style.accent.mix(alpha.max(0.6))),
            Some(_) => (stroke, style.muted.mix(alpha * FADED)),
        };
        let head_length = 4 + 2 * stroke as i32;
        let head_half = 2 + stroke as i32;
        let from = (
            start_x,
            slot_y(edge.query, num_queries, body_top, body_height),
        );
        let tip = (end_x, slot_y(edge.key, num_keys, body_top, body_height));
        let base = (tip.0 - head_length, tip.1);
        area.draw(&PathElement::new(
            curve(from, base),
            colour.stroke_width(stroke),
        ))?;
        let head = vec![
            tip,
            (base.0, tip.1 - head_half),
            (base.0, tip.1 + head_half),
        ];
        area.draw(&Polygon::new(head, colour.filled()))?;
    }

    // Legend: a swatch per weight, drawn as a bar as thick and opaque as that edge would be.
    let legend_y = height - legend_height / 2;
    let legend_font = anchored(&caption_font, HPos::Left, VPos::Center);
    let mut x = 8;
    area.draw_text("weight", &legend_font, (x, legend_y))?;
    x += text_size(area, "weight", &legend_font)?.0 + 10;
    for weight in LEGEND_WEIGHTS {
        let (stroke, alpha) = edge_look(weight);
        let half = stroke as i32 / 2;
        let swatch = [
            (x, legend_y - half),
            (x + 24, legend_y - half + stroke as i32 - 1),
        ];
        area.draw(&Rectangle::new(
            swatch,
            ShapeStyle::from(style.accent.mix(alpha)).filled(),
        ))?;
        let text = format!("{weight:.2}");
        area.draw_text(&text, &legend_font, (x + 28, legend_y))?;
        x += 28 + text_size(area, &text, &legend_font)?.0 + 12;
    }
    let threshold = format!("threshold {:.2}", data.threshold);
    area.draw_text(&threshold, &legend_font, (x + 8, legend_y))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::svg_text_count;
    use plotters::prelude::IntoDrawingArea;
    use plotters::style::RGBColor;
    use plotters_svg::SVGBackend;

    fn svg(edges: &[FlowEdge], labels: &[String]) -> String {
        svg_pinned(edges, labels, None)
    }

    fn svg_pinned(edges: &[FlowEdge], labels: &[String], pinned: Option<usize>) -> String {
        let data = FlowData {
            edges,
            query_labels: labels,
            key_labels: labels,
            threshold: 0.1,
            title: "layer 1 · head 2",
            pinned,
        };
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (400, 300)).into_drawing_area();
            draw_flow(&area, &data, &Style::light()).unwrap();
        }
        out
    }

    #[test]
    fn one_arrow_per_edge_with_labels_and_legend() {
        let labels: Vec<String> = ["the", "cat", "sat"].map(String::from).to_vec();
        let edge = |query, key, weight| FlowEdge { query, key, weight };
        let edges = [edge(0, 1, 0.2), edge(2, 0, 0.5), edge(1, 1, 0.9)];
        let out = svg(&edges, &labels);
        assert_eq!(out.matches("<polyline").count(), 3);
        assert_eq!(out.matches("<polygon").count(), 3);
        // Each label is listed once as a query and once as a key.
        for text in ["the", "cat", "sat"] {
            assert_eq!(svg_text_count(&out, text), 2, "{text}");
        }
        for text in ["layer 1 · head 2", "0.25", "0.50", "1.00", "threshold 0.10"] {
            assert!(svg_text_count(&out, text) > 0, "missing {text}");
        }
        // Width 1 + 5 · 0.9 = 5.5 rounds to 6; the strongest edge draws last.
        let last = out.rfind("<polyline").unwrap();
        assert!(out[last..].contains("stroke-width=\"6\""));
    }

    #[test]
    fn no_edges_and_no_tokens() {
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        let out = svg(&[], &labels);
        assert!(svg_text_count(&out, "no weights ≥ threshold") > 0);
        assert_eq!(out.matches("<polyline").count(), 0);
        assert!(svg_text_count(&svg(&[], &[]), "no tokens") > 0);
    }

    #[test]
    fn edge_look_grows_with_weight() {
        // Width 1 + 5w and opacity 0.15 + 0.85w, clamped.
        let (width, alpha) = edge_look(0.0);
        assert!(width == 1 && (alpha - 0.15).abs() < 1e-6);
        let (width, alpha) = edge_look(1.0);
        assert!(width == 6 && (alpha - 1.0).abs() < 1e-6);
        assert_eq!(edge_look(0.5).0, 4);
        assert_eq!(edge_look(3.0), edge_look(1.0));
        assert_eq!(edge_look(f32::NAN), edge_look(0.0));
    }

    #[test]
    fn curve_runs_between_its_ends() {
        let points = curve((10, 20), (110, 80));
        assert_eq!(points.len(), CURVE_SAMPLES + 1);
        assert_eq!(points.first(), Some(&(10, 20)));
        assert_eq!(points.last(), Some(&(110, 80)));
        // Halfway the curve passes through the midpoint: x = 60, y = 50.
        assert_eq!(points[CURVE_SAMPLES / 2], (60, 50));
    }

    fn hex(RGBColor(r, g, b): RGBColor) -> String {
        format!("#{r:02X}{g:02X}{b:02X}")
    }

    /// The opening tags of the SVG elements named `name`, in drawing order.
    fn tags<'s>(svg: &'s str, name: &str) -> Vec<&'s str> {
        svg.match_indices(&format!("<{name} "))
            .map(|(start, _)| &svg[start..start + svg[start..].find('>').unwrap()])
            .collect()
    }

    /// The opening tags of the SVG `<text>` elements that hold exactly `text`.
    fn text_tags<'s>(svg: &'s str, text: &str) -> Vec<&'s str> {
        svg.match_indices(&format!(">\n{text}\n</text>"))
            .map(|(end, _)| &svg[svg[..end].rfind("<text").unwrap()..end])
            .collect()
    }

    fn three_edges() -> (Vec<String>, [FlowEdge; 3]) {
        let labels: Vec<String> = ["the", "cat", "sat"].map(String::from).to_vec();
        let edge = |query, key, weight| FlowEdge { query, key, weight };
        (labels, [edge(0, 1, 0.2), edge(2, 0, 0.5), edge(1, 1, 0.9)])
    }

    #[test]
    fn pinned_edges_are_accent_and_thicker_others_faded() {
        let style = Style::light();
        let accent = format!("stroke=\"{}\"", hex(style.accent));
        let (labels, edges) = three_edges();
        let out = svg_pinned(&edges, &labels, Some(0));
        let lines = tags(&out, "polyline");
        assert_eq!(lines.len(), 3);
        // The edge 1 → 1 does not touch token 0: faded, drawn first, not in the accent.
        assert!(!lines[0].contains(&accent), "{}", lines[0]);
        assert!(lines[0].contains(&format!("stroke=\"{}\"", hex(style.muted))));
        assert!(lines[0].contains("stroke-width=\"6\""));
        let (_, alpha) = edge_look(0.9);
        let opacity = |tag: &str| -> f64 {
            let rest = &tag[tag.find("opacity=\"").unwrap() + 9..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        assert!(opacity(lines[0]) < alpha * 0.5);
        // 0 → 1 (weight 0.2, width 2) and 2 → 0 (weight 0.5, width 4): accent, 2 px thicker.
        for (line, width) in lines[1..].iter().zip([4, 6]) {
            assert!(line.contains(&accent), "{line}");
            assert!(
                line.contains(&format!("stroke-width=\"{width}\"")),
                "{line}"
            );
            assert!(opacity(line) >= 0.6);
        }
        // Arrow heads follow their edges.
        let fill = format!("fill=\"{}\"", hex(style.accent));
        let heads = tags(&out, "polygon");
        assert_eq!(heads.iter().filter(|t| t.contains(&fill)).count(), 2);
        assert!(!heads[0].contains(&fill));
    }

    #[test]
    fn pinned_labels_are_marked_on_both_sides() {
        let (labels, edges) = three_edges();
        let accent = format!("fill=\"{}\"", hex(Style::light().accent));
        let out = svg_pinned(&edges, &labels, Some(2));
        let marked = |tag: &&str| tag.contains(&accent) && tag.contains("font-weight=\"bold\"");
        let sat = text_tags(&out, "sat");
        assert_eq!(sat.len(), 2);
        assert!(sat.iter().all(marked), "{sat:?}");
        // One on the left (anchored at its end), one on the right (at its start).
        assert!(sat.iter().any(|t| t.contains("text-anchor=\"end\"")));
        assert!(sat.iter().any(|t| t.contains("text-anchor=\"start\"")));
        for text in ["the", "cat"] {
            let tags = text_tags(&out, text);
            assert_eq!(tags.len(), 2);
            assert!(!tags.iter().any(marked), "{tags:?}");
        }
    }

    #[test]
    fn unpinned_or_out_of_range_draws_as_before() {
        let (labels, edges) = three_edges();
        let out = svg(&edges, &labels);
        let accent = format!("stroke=\"{}\"", hex(Style::light().accent));
        assert!(tags(&out, "polyline").iter().all(|t| t.contains(&accent)));
        assert!(!out.contains("font-weight=\"bold\">\nthe"));
        for pinned in [3, 10, usize::MAX] {
            assert_eq!(svg_pinned(&edges, &labels, Some(pinned)), out, "{pinned}");
        }
        // A pinned token without edges fades every edge.
        let lone = svg_pinned(&edges[..1], &labels, Some(2));
        assert!(!tags(&lone, "polyline")[0].contains(&accent));
    }
}
