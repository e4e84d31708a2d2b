//! SVG plots (plotters' SVG backend: no font or system library involved). Every plot has
//! a title naming what it shows and a legend naming each series, so each reads at a glance.
//!
//! | file | shows |
//! |---|---|
//! | `fanout.svg` | droplets touched per endpoint add/delete, percentile curve, built vs full mesh (log) |
//! | `table_rows.svg`, `table_bytes.svg` | rows and KiB per droplet, percentile over droplets, built vs full mesh (log) |
//! | `convergence.svg` | CDF of ms until programmed / until Ready |
//! | `load.svg` | first packets per bouncer and divider droplet, busiest first |
//! | `recovery.svg` | in-flight deltas, droplets behind, droplets down over simulated time |
//! | `placement.svg` | roles per droplet (max and mean), built vs random, steady -> failure -> return |

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::stats::{Counts, quantile_sorted};

mod charts;

pub(super) use charts::draw_all;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(90, 90, 90),
];

/// One line of a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

struct Chart<'a> {
    file: &'a str,
    title: String,
    x: &'a str,
    y: &'a str,
    series: Vec<Series>,
    log_x: bool,
    log_y: bool,
    legend: Legend,
}

/// Where a chart's legend goes on the right side (away from its lines).
#[derive(Clone, Copy)]
enum Legend {
    Upper,
    Middle,
    Lower,
}

impl Legend {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Self::Upper => SeriesLabelPosition::UpperRight,
            Self::Middle => SeriesLabelPosition::MiddleRight,
            Self::Lower => SeriesLabelPosition::LowerRight,
        }
    }
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn extent(series: &[Series], f: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let mut it = series.iter().flat_map(|s| s.points.iter().map(&f));
    let first = it.next().unwrap_or(0.0);
    it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn draw<X, Y>(path: &Path, c: &Chart, xr: X, yr: Y, floor: (f64, f64)) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(xr, yr)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(c.x)
        .y_desc(c.y)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, s) in c.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(x, y)| (x.max(floor.0), y.max(floor.1)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(c.legend.position())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}

/// Axis range: linear from the data, or logarithmic from `floor` (values below are drawn
/// at `floor`).
fn axis(lo: f64, hi: f64, log: bool, floor: f64) -> Range<f64> {
    if log {
        floor..(hi * 2.0).max(floor * 20.0)
    } else {
        let top = if hi > lo { hi * 1.05 } else { lo + 1.0 };
        lo.min(0.0)..top
    }
}

fn render(dir: &Path, c: Chart) -> Result<PathBuf> {
    let path = dir.join(c.file);
    let (x0, x1) = extent(&c.series, |p| p.0);
    let (y0, y1) = extent(&c.series, |p| p.1);
    // Log axes start at the smallest positive value's decade (or 0.5 for counts).
    let positive = |f: fn(&(f64, f64)) -> f64| {
        let m = c
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(f))
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if m.is_finite() {
            10f64.powf(m.log10().floor()).min(0.5)
        } else {
            0.5
        }
    };
    let fx = if c.log_x { positive(|p| p.0) } else { f64::MIN };
    let fy = if c.log_y { positive(|p| p.1) } else { f64::MIN };
    let xr = axis(x0, x1, c.log_x, fx);
    let yr = axis(y0, y1, c.log_y, fy);
    match (c.log_x, c.log_y) {
        (false, false) => draw(&path, &c, xr, yr, (fx, fy))?,
        (false, true) => draw(&path, &c, xr, yr.log_scale(), (fx, fy))?,
        (true, false) => draw(&path, &c, xr.log_scale(), yr, (fx, fy))?,
        (true, true) => draw(&path, &c, xr.log_scale(), yr.log_scale(), (fx, fy))?,
    }
    Ok(path)
}

/// Percentile curve (x: 0..=100) of a histogram.
fn pct_counts(name: &str, c: &Counts) -> Series {
    Series {
        name: format!("{name} (mean {:.1}, {} events)", c.dist().mean, c.len()),
        points: (0..=100)
            .map(|p| (f64::from(p), c.quantile(f64::from(p.max(1)) / 100.0) as f64))
            .collect(),
    }
}

/// Percentile curve of per-droplet values.
fn pct_values(name: &str, v: impl Iterator<Item = f64>) -> Series {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    Series {
        name: name.to_owned(),
        points: (0..=100)
            .map(|p| {
                (
                    f64::from(p),
                    quantile_sorted(&v, f64::from(p.max(1)) / 100.0),
                )
            })
            .collect(),
    }
}

/// Empirical CDF of samples.
fn cdf(name: &str, sorted: &[f64]) -> Series {
    let n = sorted.len().max(1) as f64;
    let step = (sorted.len() / 400).max(1);
    let mut points: Vec<(f64, f64)> = sorted
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == sorted.len())
        .map(|(i, x)| (*x, (i + 1) as f64 / n))
        .collect();
    if points.is_empty() {
        points.push((0.0, 0.0));
    }
    Series {
        name: format!(
            "{name} (p50 {:.1} ms, p99 {:.1} ms)",
            quantile_sorted(sorted, 0.5),
            quantile_sorted(sorted, 0.99)
        ),
        points,
    }
}
