//! The growth plot: p99 latency against model count, one line per list scenario, one panel
//! per backend, log scales. Text is drawn with the DejaVu Sans font of the system.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::Row;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> anyhow::Result<()> {
    let bytes = std::fs::read(FONT).with_context(|| {
        format!("the plot needs {FONT} (Debian: apt-get install fonts-dejavu-core)")
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))
}

/// Writes the PNG.
pub fn p99_growth(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let mut backends: Vec<&str> = rows.iter().map(|r| r.backend.as_str()).collect();
    backends.dedup();
    let root =
        BitMapBackend::new(path, (1400, 560 * backends.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((backends.len().max(1), 1));
    let scenarios: Vec<&str> = {
        let mut s: Vec<&str> = rows
            .iter()
            .filter(|r| r.scenario != "healthz")
            .map(|r| r.scenario.as_str())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let max_models = rows.iter().map(|r| r.models).max().unwrap_or(1000) as f64;
    let min_models = rows.iter().map(|r| r.models).min().unwrap_or(1000).max(1) as f64;
    let max_p99 = rows.iter().map(|r| r.p99_ms).fold(1.0, f64::max);
    for (panel, backend) in panels.iter().zip(&backends) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("p99 latency by model count: {backend}, 32 connections"),
                ("sans-serif", 26),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (min_models * 0.8..max_models * 1.25).log_scale(),
                (0.05f64..max_p99 * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("models in the project")
            .y_desc("p99 ms")
            .x_label_formatter(&|v| format!("{:.0}", v))
            .y_label_formatter(&|v| format!("{v}"))
            .label_style(("sans-serif", 16))
            .draw()?;
        for (i, scenario) in scenarios.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.backend == *backend && r.scenario == *scenario)
                .map(|r| (r.models as f64, r.p99_ms.max(0.05)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?
                .label(*scenario)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
