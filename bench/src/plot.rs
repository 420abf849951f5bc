//! Charts of a report, as SVG and PNG (plotters): the latency percentile curves of every
//! series on one log-scaled chart (the x axis in "nines": 90%, 99%, 99.9%, ...), the
//! end-to-end curves likewise, and throughput per second over the run.
//!
//! Text is drawn with a TrueType font read from the system (DejaVu Sans, which
//! `scripts/setup` installs, or `CORELOG_BENCH_FONT`); without one the charts are skipped
//! with a warning and the rest of the report is still written.

use crate::driver::Series;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
];

/// Registers a font for plotters once; false when no font could be found.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let from_env = std::env::var("CORELOG_BENCH_FONT").ok();
        let candidates = from_env.iter().map(String::as_str).chain(FONT_PATHS);
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Latency percentile points of a histogram: (nines, milliseconds).
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(4)
        .map(|step| {
            let q = step.quantile_iterated_to().min(0.999_999);
            (
                -(1.0 - q).log10(),
                step.value_iterated_to().max(1) as f64 / 1000.0,
            )
        })
        .filter(|(x, _)| *x <= 5.0)
        .collect()
}

fn nines_label(x: &f64) -> String {
    match x.round() as i32 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => "99.999%".into(),
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn latency_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let points = curves.iter().flat_map(|(_, c)| c.iter());
    let max = points.clone().map(|p| p.1).fold(1.0f64, f64::max) * 1.5;
    let min = points
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .clamp(0.001, 1.0)
        / 1.5;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..4.5f64, (min..max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&nines_label)
        .draw()?;
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn throughput_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Series],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let seconds = series
        .iter()
        .map(|s| s.windows.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max = series
        .iter()
        .flat_map(|s| s.windows.iter().map(|(_, b)| *b as f64 / 1e6))
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption("acknowledged throughput per second", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the series started (warm-up included)")
        .y_desc("MB/s")
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).stroke_width(2);
        let points = s
            .windows
            .iter()
            .enumerate()
            .map(|(t, (_, bytes))| (t as f64 + 0.5, *bytes as f64 / 1e6));
        chart
            .draw_series(LineSeries::new(points, color))?
            .label(s.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Every chart of a report; returns the files written.
pub fn write_charts(dir: &Path, series: &[Series]) -> Result<Vec<String>, String> {
    if !font_ready() {
        return Err(format!(
            "no TrueType font found (looked at {FONT_PATHS:?} and CORELOG_BENCH_FONT): \
             charts skipped; install fonts-dejavu-core"
        ));
    }
    let size = (1100, 650);
    let produce: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|s| !s.produce_us.is_empty())
        .map(|s| (s.label(), curve(&s.produce_us)))
        .collect();
    let e2e: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter_map(|s| {
            s.e2e_us
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| (s.label(), curve(h)))
        })
        .collect();
    let failed = |e: Box<dyn std::error::Error>| format!("drawing a chart failed: {e}");
    let mut written = Vec::new();
    macro_rules! chart {
        ($name:expr, $draw:expr) => {{
            let svg = dir.join(format!("{}.svg", $name));
            $draw(&SVGBackend::new(&svg, size).into_drawing_area()).map_err(failed)?;
            let png = dir.join(format!("{}.png", $name));
            $draw(&BitMapBackend::new(&png, size).into_drawing_area()).map_err(failed)?;
            written.push(format!("{}.svg", $name));
            written.push(format!("{}.png", $name));
        }};
    }
    chart!("latency", |root| latency_chart(
        root,
        "produce acknowledgement latency by percentile",
        &produce
    ));
    if !e2e.is_empty() {
        chart!("e2e-latency", |root| latency_chart(
            root,
            "end-to-end latency (produce to consume) by percentile",
            &e2e
        ));
    }
    chart!("throughput", |root| throughput_chart(root, series));
    Ok(written)
}
