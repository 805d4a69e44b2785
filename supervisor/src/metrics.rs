//! `harun ctl metrics`: Prometheus text format (version 0.0.4) for every container of the
//! supervisor, and the supervisor's own size.
//!
//! Per container, labelled `service` and `container`: `harun_container_up`,
//! `harun_container_restarts_total`, `harun_container_health` (one line per status, the
//! current one 1; only with a health check), and from the container's cgroup
//! `harun_container_cpu_seconds_total` (cpu.stat `usage_usec`, there in every cgroup v2)
//! and `harun_container_memory_bytes` (memory.current, only where the memory controller is
//! enabled). A value the cgroup cannot give is left out, and a comment says whose and why,
//! so a scraper sees a gap rather than a wrong zero.

use std::fmt::Write;

use harun_runtime::state::StateRoot;

use crate::health;

/// One container's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub service: String,
    pub container: String,
    pub up: bool,
    pub restarts: u32,
    /// `None` without a health check.
    pub health: Option<health::Status>,
    /// cpu.stat `usage_usec`, shown in seconds.
    pub cpu_usec: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// The supervisor process's own numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Own {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

/// Reads CPU and memory from the cgroup of container `id` into `s`; a cgroup that is gone
/// (the container is not running) gives nothing.
pub fn read_cgroup(root: &StateRoot, id: &str, s: &mut Sample) {
    let Ok(state) = root.read(id) else { return };
    let Some(record) = &state.cgroup else { return };
    let Ok(Some(cg)) = record.open() else { return };
    if let Ok(Some(cpu)) = cg.keyed("cpu.stat") {
        s.cpu_usec = cpu.get("usage_usec").copied();
    }
    if let Ok(Some(mem)) = cg.read_opt("memory.current") {
        s.memory_bytes = mem.trim().parse().ok();
    }
}

/// VmRSS and the number of open fds of this process.
pub fn own() -> Own {
    let resident_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count().saturating_sub(1) as u64); // the read_dir's own fd
    Own {
        resident_bytes,
        open_fds,
    }
}

/// Microseconds as seconds, as Rust prints the f64 `us / 1e6` ("1.5", "0.000001", "3"),
/// with integers only: f64 formatting would add ~15 KB of code and tables to the binary.
fn seconds(us: u64) -> String {
    let frac = format!("{:06}", us % 1_000_000);
    let frac = frac.trim_end_matches('0');
    match frac {
        "" => (us / 1_000_000).to_string(),
        _ => format!("{}.{frac}", us / 1_000_000),
    }
}

/// The exposition text.
pub fn render(samples: &[Sample], own: Own) -> String {
    let mut out = String::new();
    let labels = |s: &Sample| {
        format!(
            "service=\"{}\",container=\"{}\"",
            escape(&s.service),
            escape(&s.container)
        )
    };
    header(
        &mut out,
        "harun_container_up",
        "gauge",
        "1 while the container's process runs.",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "harun_container_up{{{}}} {}",
            labels(s),
            u8::from(s.up)
        );
    }
    header(
        &mut out,
        "harun_container_restarts_total",
        "counter",
        "Restarts by the supervisor since the container was first started (or manually started).",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "harun_container_restarts_total{{{}}} {}",
            labels(s),
            s.restarts
        );
    }
    header(
        &mut out,
        "harun_container_health",
        "gauge",
        "Health check status, one line per status, the current one 1 (containers with a check).",
    );
    for s in samples {
        let Some(current) = s.health else { continue };
        for status in [
            health::Status::Starting,
            health::Status::Healthy,
            health::Status::Unhealthy,
        ] {
            let _ = writeln!(
                out,
                "harun_container_health{{{},status=\"{}\"}} {}",
                labels(s),
                status,
                u8::from(status == current)
            );
        }
    }
    header(
        &mut out,
        "harun_container_cpu_seconds_total",
        "counter",
        "CPU time of the container's cgroup (cpu.stat usage_usec).",
    );
    for s in samples.iter() {
        if let Some(us) = s.cpu_usec {
            let _ = writeln!(
                out,
                "harun_container_cpu_seconds_total{{{}}} {}",
                labels(s),
                seconds(us)
            );
        }
    }
    omitted(
        &mut out,
        samples,
        |s| s.cpu_usec.is_none(),
        "no cgroup cpu.stat (not running)",
    );
    header(
        &mut out,
        "harun_container_memory_bytes",
        "gauge",
        "Memory of the container's cgroup (memory.current).",
    );
    for s in samples.iter() {
        if let Some(mem) = s.memory_bytes {
            let _ = writeln!(out, "harun_container_memory_bytes{{{}}} {mem}", labels(s));
        }
    }
    omitted(
        &mut out,
        samples,
        |s| s.up && s.memory_bytes.is_none(),
        "the memory controller is not enabled in its cgroup (no memory.current)",
    );
    header(
        &mut out,
        "harun_supervisor_resident_bytes",
        "gauge",
        "The supervisor's resident memory.",
    );
    if let Some(rss) = own.resident_bytes {
        let _ = writeln!(out, "harun_supervisor_resident_bytes {rss}");
    }
    header(
        &mut out,
        "harun_supervisor_open_fds",
        "gauge",
        "The supervisor's open file descriptors.",
    );
    if let Some(fds) = own.open_fds {
        let _ = writeln!(out, "harun_supervisor_open_fds {fds}");
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A comment naming the containers left out of the metric above, and why.
fn omitted(out: &mut String, samples: &[Sample], left_out: impl Fn(&Sample) -> bool, why: &str) {
    let names: Vec<&str> = samples
        .iter()
        .filter(|s| left_out(s))
        .map(|s| s.container.as_str())
        .collect();
    if !names.is_empty() {
        let _ = writeln!(out, "# omitted for {}: {why}", names.join(", "));
    }
}

/// A label value escaped as the format wants: `\\`, `\"`, `\n`.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_read_as_the_f64_would() {
        for us in [
            0,
            1,
            10,
            999_999,
            1_000_000,
            1_500_000,
            1_234_567,
            86_400_000_001,
        ] {
            assert_eq!(seconds(us), (us as f64 / 1e6).to_string(), "{us}");
        }
    }

    #[test]
    fn renders_each_metric_and_says_what_is_missing() {
        let samples = [
            Sample {
                service: "web".into(),
                container: "web-0".into(),
                up: true,
                restarts: 2,
                health: Some(health::Status::Healthy),
                cpu_usec: Some(1_500_000),
                memory_bytes: None,
            },
            Sample {
                service: "db".into(),
                container: "db".into(),
                up: false,
                restarts: 0,
                health: None,
                cpu_usec: None,
                memory_bytes: None,
            },
        ];
        let text = render(
            &samples,
            Own {
                resident_bytes: Some(1_500_000),
                open_fds: Some(12),
            },
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("# HELP")).collect();
        let want = [
            "# TYPE harun_container_up gauge",
            "harun_container_up{service=\"web\",container=\"web-0\"} 1",
            "harun_container_up{service=\"db\",container=\"db\"} 0",
            "# TYPE harun_container_restarts_total counter",
            "harun_container_restarts_total{service=\"web\",container=\"web-0\"} 2",
            "harun_container_restarts_total{service=\"db\",container=\"db\"} 0",
            "# TYPE harun_container_health gauge",
            "harun_container_health{service=\"web\",container=\"web-0\",status=\"starting\"} 0",
            "harun_container_health{service=\"web\",container=\"web-0\",status=\"healthy\"} 1",
            "harun_container_health{service=\"web\",container=\"web-0\",status=\"unhealthy\"} 0",
            "# TYPE harun_container_cpu_seconds_total counter",
            "harun_container_cpu_seconds_total{service=\"web\",container=\"web-0\"} 1.5",
            "# omitted for db: no cgroup cpu.stat (not running)",
            "# TYPE harun_container_memory_bytes gauge",
            "# omitted for web-0: the memory controller is not enabled in its cgroup (no memory.current)",
            "# TYPE harun_supervisor_resident_bytes gauge",
            "harun_supervisor_resident_bytes 1500000",
            "# TYPE harun_supervisor_open_fds gauge",
            "harun_supervisor_open_fds 12",
        ];
        assert_eq!(lines, want, "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn own_numbers_are_read() {
        let own = own();
        assert!(own.resident_bytes.unwrap() > 0);
        assert!(own.open_fds.unwrap() >= 3);
    }
}
