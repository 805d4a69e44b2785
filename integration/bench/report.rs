//! Medians, ratios, the markdown tables and the raw JSON.

use serde_json::{json, Value};

use crate::scenarios::Row;
use crate::spawn::Sample;

/// The q-quantile (0..=1) of unsorted values, linear between neighbours.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

fn ms(s: &Sample) -> f64 {
    s.wall.as_secs_f64() * 1e3
}

fn cpu_ms(s: &Sample) -> f64 {
    s.cpu.as_secs_f64() * 1e3
}

fn rss_mib(s: &Sample) -> f64 {
    s.maxrss_kib as f64 / 1024.0
}

fn median_of(samples: &[Sample], f: fn(&Sample) -> f64) -> Option<f64> {
    quantile(&samples.iter().map(f).collect::<Vec<_>>(), 0.5)
}

fn find<'a>(row: &'a Row, name: &str) -> Option<&'a [Sample]> {
    row.samples
        .iter()
        .find(|(n, s)| n == name && !s.is_empty())
        .map(|(_, s)| s.as_slice())
}

/// Wall-time median in the row's unit (ms, or s for a batch).
fn wall(row: &Row, name: &str) -> Option<f64> {
    let m = median_of(find(row, name)?, ms)?;
    Some(if row.batch { m / 1e3 } else { m })
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// "median ±half-IQR".
fn cell(row: &Row, name: &str) -> String {
    let Some(s) = find(row, name) else {
        return "—".into();
    };
    let scale = if row.batch { 1e-3 } else { 1.0 };
    let v: Vec<f64> = s.iter().map(|x| ms(x) * scale).collect();
    let (Some(m), Some(a), Some(b)) = (quantile(&v, 0.5), quantile(&v, 0.25), quantile(&v, 0.75))
    else {
        return "—".into();
    };
    if v.len() < 3 {
        fmt(m)
    } else {
        format!("{} ±{}", fmt(m), fmt((b - a) / 2.0))
    }
}

fn ratio(row: &Row, a: &str, b: &str) -> Option<f64> {
    Some(wall(row, a)? / wall(row, b)?)
}

/// "0.85 (ro 0.70)": harun's ratio to `peer`, then the read-only-binary harun's.
fn ratios(row: &Row, peer: &str) -> String {
    match (ratio(row, "harun", peer), ratio(row, "harun-ro", peer)) {
        (Some(a), Some(b)) => format!("{a:.2} (ro {b:.2})"),
        (Some(a), None) => format!("{a:.2}"),
        _ => "—".into(),
    }
}

/// Every contender in the rows, in order of appearance, with its column title.
fn columns(rows: &[Row]) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = Vec::new();
    for (name, _) in rows.iter().flat_map(|r| &r.samples) {
        if !cols.iter().any(|(n, _)| n == name) {
            let title = match name.as_str() {
                "harun-ro" => "harun, ro binary".to_string(),
                other => other.to_string(),
            };
            cols.push((name.clone(), title));
        }
    }
    cols
}

/// The wall-time table: medians, ratios.
pub fn wall_table(rows: &[Row]) -> String {
    let cols = columns(rows);
    let mut t = String::from("| wall time (median ±½IQR) |");
    for (_, title) in &cols {
        t += &format!(" {title} |");
    }
    t += " harun/crun | harun/runc | harun/floor |\n|---|";
    t += &"---:|".repeat(cols.len() + 3);
    t.push('\n');
    for row in rows {
        let unit = if row.batch { "s" } else { "ms" };
        t += &format!("| {}, {unit} |", row.label);
        for (name, _) in &cols {
            t += &format!(" {} |", cell(row, name));
        }
        for peer in ["crun", "runc", "floor"] {
            t += &format!(" {} |", ratios(row, peer));
        }
        t.push('\n');
    }
    t
}

/// Peak RSS and CPU time per command (medians), and binary sizes.
pub fn resource_table(rows: &[Row], sizes: &[(String, String)]) -> String {
    let cols = columns(rows);
    let mut t = String::from("| per command (median) |");
    for (_, title) in &cols {
        t += &format!(" {title} |");
    }
    t += "\n|---|";
    t += &"---:|".repeat(cols.len());
    t.push('\n');
    for row in rows.iter().filter(|r| !r.batch) {
        for (what, f) in [
            ("peak RSS, MiB", rss_mib as fn(&Sample) -> f64),
            ("CPU (user+sys), ms", cpu_ms),
        ] {
            t += &format!("| {}: {what} |", row.label);
            for (name, _) in &cols {
                let v = find(row, name).and_then(|s| median_of(s, f));
                t += &format!(" {} |", v.map(fmt).unwrap_or_else(|| "—".into()));
            }
            t.push('\n');
        }
    }
    t += "| binary size |";
    for (name, _) in &cols {
        let s = sizes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str());
        t += &format!(" {} |", s.unwrap_or("—"));
    }
    t.push('\n');
    t
}

/// Every sample, for later analysis.
pub fn json(rows: &[Row], meta: Value) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let per: serde_json::Map<String, Value> = r
                .samples
                .iter()
                .map(|(n, s)| {
                    let v = json!({
                        "median_wall_ms": median_of(s, ms),
                        "wall_ms": s.iter().map(ms).collect::<Vec<_>>(),
                        "cpu_ms": s.iter().map(cpu_ms).collect::<Vec<_>>(),
                        "maxrss_kib": s.iter().map(|x| x.maxrss_kib).collect::<Vec<_>>(),
                    });
                    (n.clone(), v)
                })
                .collect();
            json!({ "label": r.label, "batch": r.batch, "contenders": per })
        })
        .collect();
    json!({ "meta": meta, "rows": rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0], 0.5), Some(3.0));
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0, 5.0], 0.25), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0], 1.0), Some(2.0));
    }

    #[test]
    fn ratio_uses_medians_and_skips_missing() {
        use std::time::Duration;
        let s = |v: &[u64]| {
            v.iter()
                .map(|&m| Sample {
                    wall: Duration::from_millis(m),
                    cpu: Duration::ZERO,
                    maxrss_kib: 0,
                })
                .collect::<Vec<_>>()
        };
        let row = Row {
            label: "run".into(),
            batch: false,
            samples: vec![
                ("harun".into(), s(&[10, 12, 11])),
                ("crun".into(), s(&[20, 22, 21])),
                ("runc".into(), Vec::new()),
            ],
        };
        assert_eq!(ratios(&row, "crun"), "0.52");
        assert_eq!(ratios(&row, "runc"), "—");
        assert_eq!(cell(&row, "harun"), "11.0 ±0.50");
        assert_eq!(cell(&row, "floor"), "—");
    }
}
