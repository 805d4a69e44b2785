//! Start order between services (`run.harun.after`): a service starts once every service it
//! names is ready, and stops before them. Pure: a graph of names in, an order or the first
//! cycle out.
//!
//! "Ready" is the supervisor's business (running; healthy with a health check; `READY=1`
//! with the notify protocol); here only the order. It gates the first start of a service
//! (at supervisor start, `harun ctl start`, `reload`), not the restarts that follow: a
//! dependency that restarts later does not stop or hold back what started after it, as
//! systemd's `After=` without `Requires=`.

use std::collections::{BTreeMap, BTreeSet};

/// The `after` graph: each service's name and the services it names.
pub fn graph<'a>(
    services: impl Iterator<Item = (&'a String, &'a Vec<String>)>,
) -> BTreeMap<String, Vec<String>> {
    // Inserts, not `collect()`, which would compile a sort (harun_runtime::sort says why not).
    let mut graph = BTreeMap::new();
    for (name, after) in services {
        graph.insert(name.clone(), after.clone());
    }
    graph
}

/// Services in an order where each comes after everything it names; ties by name.
///
/// Errors: a name that is not a service ("service `web`: run.harun.after names `db`, which
/// is not a service"), a service naming itself or a cycle ("services `a` -> `b` -> `a`
/// wait for each other").
pub fn start_order(after: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    for (name, deps) in after {
        for d in deps {
            if !after.contains_key(d) {
                return Err(format!(
                    "service `{name}`: run.harun.after names `{d}`, which is not a service"
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(after) {
        let path: Vec<String> = cycle.iter().map(|n| format!("`{n}`")).collect();
        return Err(format!(
            "services {} wait for each other (run.harun.after)",
            path.join(" -> ")
        ));
    }
    // Kahn's algorithm, smallest name first among the ready ones: a stable order.
    // Filled by inserts, not `collect()`: collecting into a BTreeMap sorts with std's sort,
    // whose code is large for each element type (harun_runtime::sort says more).
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ready: BTreeSet<&str> = BTreeSet::new();
    for (name, deps) in after {
        let distinct = (0..deps.len())
            .filter(|&i| !deps[..i].contains(&deps[i]))
            .count();
        waiting.insert(name, distinct);
        if distinct == 0 {
            ready.insert(name);
        }
    }
    let mut order = Vec::with_capacity(after.len());
    while let Some(name) = ready.pop_first() {
        waiting.remove(name);
        order.push(name.to_string());
        for (other, deps) in after {
            let names_it = deps.iter().any(|d| d == name);
            if let (true, Some(n)) = (names_it, waiting.get_mut(other.as_str())) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(other.as_str());
                }
            }
        }
    }
    Ok(order)
}

/// Services that name `name` in their `after` list.
pub fn dependents<'a>(after: &'a BTreeMap<String, Vec<String>>, name: &str) -> Vec<&'a str> {
    after
        .iter()
        .filter(|(_, deps)| deps.iter().any(|d| d == name))
        .map(|(n, _)| n.as_str())
        .collect()
}

/// The first cycle found (depth first, services by name), as a path that ends where it
/// started: `[a, b, a]`.
fn find_cycle(after: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        after: &'a BTreeMap<String, Vec<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(name, Mark::OnPath);
        path.push(name);
        for d in after.get(name).into_iter().flatten() {
            match marks.get(d.as_str()).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let from = path.iter().position(|p| *p == d).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, after, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for name in after.keys() {
        marks.insert(name, Mark::New);
    }
    for name in after.keys() {
        if marks[name.as_str()] == Mark::New {
            let mut path = Vec::new();
            if let Some(c) = visit(name, after, &mut marks, &mut path) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (service, the services it starts after)
    type Edges<'a> = &'a [(&'a str, &'a [&'a str])];

    fn graph(edges: Edges<'_>) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, deps)| (n.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_dependencies_first_and_ties_by_name() {
        let cases: &[(Edges<'_>, &[&str])] = &[
            (&[], &[]),
            (&[("a", &[])], &["a"]),
            (&[("b", &[]), ("a", &[])], &["a", "b"]),
            (&[("a", &["b"]), ("b", &[])], &["b", "a"]),
            (
                &[
                    ("app", &["db", "cache"]),
                    ("db", &[]),
                    ("cache", &["db"]),
                    ("x", &[]),
                ],
                &["db", "cache", "app", "x"],
            ),
            // A name listed twice counts once.
            (&[("a", &["b", "b"]), ("b", &[])], &["b", "a"]),
        ];
        for (edges, want) in cases {
            let got = start_order(&graph(edges)).unwrap();
            assert_eq!(got, *want, "{edges:?}");
        }
    }

    #[test]
    fn refuses_unknown_names_and_cycles() {
        let cases: &[(Edges<'_>, &str)] = &[
            (
                &[("web", &["db"])],
                "service `web`: run.harun.after names `db`, which is not a service",
            ),
            (
                &[("a", &["a"])],
                "services `a` -> `a` wait for each other (run.harun.after)",
            ),
            (
                &[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])],
                "services `a` -> `b` -> `c` -> `a` wait for each other (run.harun.after)",
            ),
            (
                &[("x", &["b"]), ("a", &[]), ("b", &["c"]), ("c", &["b"])],
                "services `b` -> `c` -> `b` wait for each other (run.harun.after)",
            ),
        ];
        for (edges, want) in cases {
            assert_eq!(start_order(&graph(edges)).unwrap_err(), *want);
        }
    }

    #[test]
    fn dependents_name_their_dependency() {
        let g = graph(&[("app", &["db"]), ("cache", &["db"]), ("db", &[])]);
        assert_eq!(dependents(&g, "db"), ["app", "cache"]);
        assert!(dependents(&g, "app").is_empty());
    }
}
