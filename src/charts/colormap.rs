//! Colour maps: viridis-like for `0..=1` and blue–white–red for `-1..=1`.

use plotters::style::RGBColor;

/// Colour of NaN cells: a mid grey that stands apart from both maps.
pub const NAN_COLOR: RGBColor = RGBColor(128, 128, 128);

/// Viridis at `0, 1/8, …, 1`, as R's `viridisLite::viridis(9)` lists it.
const SEQUENTIAL: [RGBColor; 9] = [
    RGBColor(68, 1, 84),
    RGBColor(71, 45, 123),
    RGBColor(59, 82, 139),
    RGBColor(44, 114, 142),
    RGBColor(33, 144, 140),
    RGBColor(39, 173, 129),
    RGBColor(93, 200, 99),
    RGBColor(170, 220, 50),
    RGBColor(253, 231, 37),
];

/// Every other colour of ColorBrewer's 9-class `RdBu`, placed at `-1, -0.5, 0, 0.5, 1`: blue
/// for negative, red for positive.
const DIVERGING: [RGBColor; 5] = [
    RGBColor(33, 102, 172),
    RGBColor(146, 197, 222),
    RGBColor(247, 247, 247),
    RGBColor(244, 165, 130),
    RGBColor(178, 24, 43),
];

/// The sequential colour of `t`, clamped to `0..=1`; NaN gives [`NAN_COLOR`].
pub fn sequential(t: f32) -> RGBColor {
    if t.is_nan() {
        return NAN_COLOR;
    }
    interpolate(&SEQUENTIAL, t.clamp(0.0, 1.0))
}

/// The diverging colour of `v`, clamped to `-1..=1` (white at 0); NaN gives [`NAN_COLOR`].
pub fn diverging(v: f32) -> RGBColor {
    if v.is_nan() {
        return NAN_COLOR;
    }
    interpolate(&DIVERGING, (v.clamp(-1.0, 1.0) + 1.0) / 2.0)
}

/// A colour readable on top of `background`: near-black on light colours, white on dark ones.
pub fn contrasting_text(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    // Rec. 601 luma, good enough to pick between two text colours.
    let luma = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
    if luma > 140.0 {
        RGBColor(20, 20, 20)
    } else {
        RGBColor(255, 255, 255)
    }
}

/// Linear interpolation between evenly spaced `anchors` at `t` in `0..=1`.
fn interpolate(anchors: &[RGBColor], t: f32) -> RGBColor {
    let last = anchors.len().saturating_sub(1);
    let position = t * last as f32;
    let index = (position.floor() as usize).min(last.saturating_sub(1));
    let frac = position - index as f32;
    let (Some(&RGBColor(r0, g0, b0)), Some(&RGBColor(r1, g1, b1))) =
        (anchors.get(index), anchors.get(index + 1))
    else {
        return anchors.first().copied().unwrap_or(NAN_COLOR);
    };
    let mix = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * frac).round() as u8;
    RGBColor(mix(r0, r1), mix(g0, g1), mix(b0, b1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ends_clamping_and_midpoints() {
        assert_eq!(sequential(0.0), RGBColor(68, 1, 84));
        assert_eq!(sequential(1.0), RGBColor(253, 231, 37));
        assert_eq!(sequential(-3.0), sequential(0.0));
        assert_eq!(sequential(7.0), sequential(1.0));
        assert_eq!(sequential(0.5), RGBColor(33, 144, 140));
        // Halfway between anchors 0 and 1: (68+71)/2 = 69.5 → 70, (1+45)/2 = 23,
        // (84+123)/2 = 103.5 → 104.
        assert_eq!(sequential(1.0 / 16.0), RGBColor(70, 23, 104));
        assert_eq!(sequential(f32::NAN), NAN_COLOR);
    }

    #[test]
    fn diverging_ends_centre_and_nan() {
        assert_eq!(diverging(-1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging(0.0), RGBColor(247, 247, 247));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(-9.0), diverging(-1.0));
        assert_eq!(diverging(f32::NAN), NAN_COLOR);
    }

    #[test]
    fn text_contrasts_with_background() {
        assert_eq!(contrasting_text(sequential(0.0)), RGBColor(255, 255, 255));
        assert_eq!(contrasting_text(diverging(0.0)), RGBColor(20, 20, 20));
    }
}
