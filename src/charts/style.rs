//! Colours and fonts shared by every chart, in a light and a dark theme.

use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontDesc, FontFamily, FontStyle, RGBColor, TextStyle};

/// Colours and fonts of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Whether this is the dark theme.
    pub dark: bool,
    /// CSS font family of all text, e.g. `sans-serif`.
    pub font_family: &'static str,
    /// Base font size in pixels; titles are a little larger, tick labels a little smaller.
    pub font_size: u32,
    /// Fill behind the whole chart.
    pub background: RGBColor,
    /// Text and strong lines.
    pub foreground: RGBColor,
    /// Secondary text such as axis captions.
    pub muted: RGBColor,
    /// Frames and faint guide lines.
    pub grid: RGBColor,
    /// Colour of flow arrows.
    pub accent: RGBColor,
    /// Marks what a detector flagged: vanishing or exploding gradients, sparse activations.
    pub alarm: RGBColor,
}

impl Style {
    /// Dark text on a white page.
    pub fn light() -> Self {
        Self {
            dark: false,
            font_family: "sans-serif",
            font_size: 12,
            background: RGBColor(255, 255, 255),
            foreground: RGBColor(33, 37, 41),
            muted: RGBColor(108, 117, 125),
            grid: RGBColor(206, 212, 218),
            accent: RGBColor(37, 99, 235),
            alarm: RGBColor(220, 38, 38),
        }
    }

    /// Light text on a near-black page.
    pub fn dark() -> Self {
        Self {
            dark: true,
            font_family: "sans-serif",
            font_size: 12,
            background: RGBColor(24, 26, 31),
            foreground: RGBColor(230, 232, 235),
            muted: RGBColor(156, 163, 175),
            grid: RGBColor(64, 68, 76),
            accent: RGBColor(251, 146, 60),
            alarm: RGBColor(239, 68, 68),
        }
    }

    /// A text style of this family at `size` pixels in `color`, anchored at its top left.
    pub fn text_style(&self, size: u32, color: RGBColor, bold: bool) -> TextStyle<'static> {
        let font_style = if bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        TextStyle {
            font: FontDesc::new(
                FontFamily::from(self.font_family),
                f64::from(size),
                font_style,
            ),
            color: color.to_backend_color(),
            pos: Pos::new(HPos::Left, VPos::Top),
        }
    }

    /// Chart titles: bold, two pixels above the base size.
    pub fn title_font(&self) -> TextStyle<'static> {
        self.text_style(self.font_size + 2, self.foreground, true)
    }

    /// Token and tick labels: one pixel below the base size.
    pub fn label_font(&self) -> TextStyle<'static> {
        self.text_style(
            self.font_size.saturating_sub(1).max(8),
            self.foreground,
            false,
        )
    }

    /// Axis captions and legends: like labels, in the muted colour.
    pub fn caption_font(&self) -> TextStyle<'static> {
        self.text_style(self.font_size.saturating_sub(1).max(8), self.muted, false)
    }
}

impl Default for Style {
    fn default() -> Self {
        Self::light()
    }
}
