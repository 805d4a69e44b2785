//! The memory floor: the smallest `linux.resources.memory.limit` (cgroup v2 `memory.max`)
//! under which `harun run` of busybox `true` still succeeds, found by bisection. It is what
//! the container's init costs the container (the kernel objects and pages it touches between
//! the clone and the exec of `true`), and the number an edge device budgets for. Anchors:
//! crun starts under 512 KiB, runc needs about 10 MB.
//!
//! Needs the memory controller: a `vm_` test (see tests/cgroups_support), run by
//! `integration/vm/cargo-test memory_floor` and `integration/aarch64/test`. The floor is
//! printed (`--show-output`). `HARUN_FLOOR_BIN=PATH` measures another harun build (e.g. the
//! static release binary) instead of the test build.

mod cgroups_support;

use cgroups_support::require;
use harun_integration::{Bundle, Harun, Out};

const KIB: u64 = 1024;
const PAGE: u64 = 4 * KIB;
/// Where the bisection starts: this must be plenty.
const CEILING: u64 = 64 * 1024 * KIB;
/// The test fails above this: an init that needs more has grown something to look at.
const MAX_FLOOR: u64 = 2 * 1024 * KIB;
/// Runs at the floor that must all succeed (the charge varies a little from run to run).
const CONFIRM: usize = 3;

fn harun() -> Harun {
    match std::env::var_os("HARUN_FLOOR_BIN") {
        Some(bin) => Harun::new(bin),
        None => harun_integration::harun!(),
    }
}

struct Probe<'a> {
    h: &'a Harun,
    b: Bundle,
    n: usize,
}

impl Probe<'_> {
    /// `harun run` of `true` under `limit` bytes.
    fn run(&mut self, limit: u64) -> Out {
        self.n += 1;
        self.b.set("/linux/resources/memory/limit", limit);
        self.h.run(&self.h.id(&format!("floor{}", self.n)), &self.b)
    }

    fn fits(&mut self, limit: u64) -> bool {
        self.run(limit).code == 0
    }
}

#[test]
fn vm_memory_floor_of_run_true() {
    if !require(&["memory"]) {
        return;
    }
    let h = harun();
    let mut b = h.bundle();
    b.args(&["true"]);
    let mut p = Probe { h: &h, b, n: 0 };
    p.run(CEILING).ok();
    // Far too little must fail, and fail cleanly (checked by assert_clean at the end).
    let starved = p.run(PAGE);
    assert_ne!(
        starved.code, 0,
        "a container ran in one page of memory?\n{starved}"
    );

    // Invariant: `lo` fails, `hi` fits; both are page multiples.
    let (mut lo, mut hi) = (PAGE, CEILING);
    while hi - lo > PAGE {
        let mid = (lo + hi) / 2 / PAGE * PAGE;
        if p.fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // A floor that fails now and then is not the floor: step up until it holds CONFIRM times.
    while !(0..CONFIRM).all(|_| p.fits(hi)) {
        hi += PAGE;
        assert!(hi <= CEILING, "no stable floor under {} KiB", CEILING / KIB);
    }
    // How sharp the edge is: runs one page below the floor (some may pass).
    let below: Vec<Out> = (0..CONFIRM).map(|_| p.run(hi - PAGE)).collect();
    let failures: Vec<String> = below
        .iter()
        .filter(|o| o.code != 0)
        .map(|o| format!("exit {} {}", o.code, o.stderr.trim()))
        .collect();
    println!(
        "memory floor of `harun run` (busybox true, {}): {} KiB (memory.max = {hi}); \
         one page less: {} of {CONFIRM} runs failed {failures:?}",
        h.bin().display(),
        hi / KIB,
        failures.len()
    );
    assert!(
        hi <= MAX_FLOOR,
        "`harun run` of `true` needs {} KiB, more than {} KiB",
        hi / KIB,
        MAX_FLOOR / KIB
    );
    h.assert_clean();
}
