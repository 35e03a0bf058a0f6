//! Charts drawn on the server as SVG: no script, readable by screen readers
//! through their title, description and the data table beside each.

use maud::{html, Markup};

/// Colours that stay distinct for colour-blind readers (Okabe and Ito).
pub const PALETTE: [&str; 9] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D1F", "#000000",
    "#999999",
];

/// One series of a stacked bar chart.
pub struct Series {
    /// Its name in the legend.
    pub label: String,
    /// Its colour.
    pub colour: &'static str,
    /// One value per column.
    pub values: Vec<u64>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 10.0;

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= max {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Gridlines above zero for an axis up to `max` (a [`nice_max`] value), so
/// that each step is a whole number: 5 for 1, 10, 50, 100 (steps 2, 10,
/// 20), 4 for 20, 200 (steps 5, 50), and one per unit below 3.
fn ticks(max: f64) -> u32 {
    if max < 3.0 {
        return max.max(1.0) as u32;
    }
    let lead = max / 10f64.powf(max.log10().floor());
    if (lead - 2.0).abs() < 1e-9 {
        4
    } else {
        5
    }
}

/// Label every how many columns, so `YYYY-MM` labels (about 48 units
/// wide at font size 11) do not overlap.
fn label_every(columns: usize, step: f64) -> usize {
    let need = (52.0 / step.max(1.0)).ceil() as usize;
    need.max(1).min(columns.max(1))
}

fn fmt(x: f64) -> String {
    format!("{x:.1}")
}

/// The non-zero segments of column `i`: series, value, sum below it.
fn stack(series: &[Series], i: usize) -> Vec<(&Series, u64, u64)> {
    let mut below = 0;
    let mut out = Vec::new();
    for s in series {
        let v = s.values.get(i).copied().unwrap_or(0);
        if v > 0 {
            out.push((s, v, below));
            below += v;
        }
    }
    out
}

/// A stacked bar chart: one column per label, one stacked segment per series.
pub fn stacked_bars(id: &str, title: &str, columns: &[String], series: &[Series]) -> Markup {
    let totals: Vec<u64> = (0..columns.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0) as f64);
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = columns.len().max(1) as f64;
    let step = plot_w / n;
    let bar = (step * 0.7).max(1.0);
    let every = label_every(columns.len(), step);
    let lines = ticks(max);
    html! {
        figure.chart {
            div.plot {
                svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby=(format!("{id}-t")) {
                    title id=(format!("{id}-t")) { (title) }
                    @for t in 0..=lines {
                        @let v = max * f64::from(t) / f64::from(lines);
                        @let y = TOP + plot_h - plot_h * f64::from(t) / f64::from(lines);
                        line x1=(LEFT) x2=(W - 10.0) y1=(fmt(y)) y2=(fmt(y)) stroke="#ccc" stroke-width="1" {}
                        text x=(LEFT - 4.0) y=(fmt(y + 4.0)) text-anchor="end" font-size="11" fill="#333" { (format!("{v}")) }
                    }
                    @for (i, col) in columns.iter().enumerate() {
                        @let x = LEFT + step * i as f64 + (step - bar) / 2.0;
                        @for (s, v, below) in stack(series, i) {
                            @let y0 = TOP + plot_h - plot_h * (below + v) as f64 / max;
                            @let h = plot_h * v as f64 / max;
                            rect x=(fmt(x)) y=(fmt(y0)) width=(fmt(bar)) height=(fmt(h)) fill=(s.colour) {
                                title { (col) ": " (s.label) " " (v) }
                            }
                        }
                        @if i % every == 0 {
                            text x=(fmt(x + bar / 2.0)) y=(fmt(H - BOTTOM + 14.0)) text-anchor="middle" font-size="11" fill="#333" { (col) }
                        }
                    }
                }
            }
            figcaption {
                (title)
                ul.legend {
                    @for s in series {
                        li { span.swatch style=(format!("background:{}", s.colour)) aria-hidden="true" {} (s.label) }
                    }
                }
            }
            details {
                summary { "Data table" }
                table {
                    thead { tr { th scope="col" { "Month" } @for s in series { th scope="col" { (s.label) } } } }
                    tbody {
                        @for (i, col) in columns.iter().enumerate() {
                            tr { th scope="row" { (col) } @for s in series { td { (s.values.get(i).copied().unwrap_or(0)) } } }
                        }
                    }
                }
            }
        }
    }
}

/// A bar chart of percentages (0 to 100) per column; `None` draws no bar.
pub fn percent_bars(
    id: &str,
    title: &str,
    columns: &[String],
    values: &[Option<(u64, u64)>],
) -> Markup {
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = columns.len().max(1) as f64;
    let step = plot_w / n;
    let bar = (step * 0.7).max(1.0);
    let every = label_every(columns.len(), step);
    html! {
        figure.chart {
            div.plot {
                svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby=(format!("{id}-t")) {
                    title id=(format!("{id}-t")) { (title) }
                    @for t in 0..=4 {
                        @let y = TOP + plot_h - plot_h * f64::from(t) / 4.0;
                        line x1=(LEFT) x2=(W - 10.0) y1=(fmt(y)) y2=(fmt(y)) stroke="#ccc" stroke-width="1" {}
                        text x=(LEFT - 4.0) y=(fmt(y + 4.0)) text-anchor="end" font-size="11" fill="#333" { (t * 25) "%" }
                    }
                    @for (i, col) in columns.iter().enumerate() {
                        @let x = LEFT + step * i as f64 + (step - bar) / 2.0;
                        @if let Some(Some((part, whole))) = values.get(i) {
                            @if *whole > 0 {
                                @let share = *part as f64 / *whole as f64;
                                rect x=(fmt(x)) y=(fmt(TOP + plot_h - plot_h * share)) width=(fmt(bar)) height=(fmt(plot_h * share)) fill=(PALETTE[1]) {
                                    title { (col) ": " (part) " of " (whole) " (" (format!("{:.0}", share * 100.0)) "%)" }
                                }
                            }
                        }
                        @if i % every == 0 {
                            text x=(fmt(x + bar / 2.0)) y=(fmt(H - BOTTOM + 14.0)) text-anchor="middle" font-size="11" fill="#333" { (col) }
                        }
                    }
                }
            }
            figcaption { (title) }
            details {
                summary { "Data table" }
                table {
                    thead { tr { th scope="col" { "Month" } th scope="col" { "Emergency" } th scope="col" { "All requests" } th scope="col" { "Share" } } }
                    tbody {
                        @for (i, col) in columns.iter().enumerate() {
                            @if let Some(Some((part, whole))) = values.get(i) {
                                tr { th scope="row" { (col) } td { (part) } td { (whole) }
                                     td { @if *whole > 0 { (format!("{:.0}%", *part as f64 * 100.0 / *whole as f64)) } @else { "–" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one per row (label, value); labels link to `href`.
pub fn horizontal_bars(id: &str, title: &str, rows: &[(String, u64, String)]) -> Markup {
    let row_h = 22.0;
    let label_w = 200.0;
    let h = TOP + row_h * rows.len().max(1) as f64 + 10.0;
    let max = nice_max(rows.iter().map(|r| r.1).max().unwrap_or(0) as f64);
    let plot_w = W - label_w - 50.0;
    html! {
        figure.chart {
            div.plot {
                svg viewBox=(format!("0 0 {W} {}", fmt(h))) role="img" aria-labelledby=(format!("{id}-t")) {
                    title id=(format!("{id}-t")) { (title) }
                    @for (i, (label, v, href)) in rows.iter().enumerate() {
                        @let y = TOP + row_h * i as f64;
                        a href=(href) {
                            text x=(label_w - 6.0) y=(fmt(y + 15.0)) text-anchor="end" font-size="12" fill="#0b4f8a" { (label) }
                        }
                        rect x=(label_w) y=(fmt(y + 3.0)) width=(fmt(plot_w * *v as f64 / max)) height="16" fill=(PALETTE[0]) {
                            title { (label) ": " (v) }
                        }
                        text x=(fmt(label_w + plot_w * *v as f64 / max + 4.0)) y=(fmt(y + 15.0)) font-size="12" fill="#333" { (v) }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}
