//! Cycle detection over the member dependency graph.

use std::collections::VecDeque;
use std::ops::Range;

use crate::compiled::MemberId;

/// One cycle: its nodes, the first repeated at the end, and the span of the reference
/// from the first node to the second.
pub(crate) struct Cycle {
    pub nodes: Vec<MemberId>,
    pub span: Range<usize>,
}

/// One cycle per strongly connected component that has one (a component of several
/// members, or one member referring to itself): the shortest cycle through the
/// component's first member in source order. Iterative, so deep graphs cannot overflow
/// the stack; quadratic in the number of members, which is fine for schemas.
pub(crate) fn find_cycles(edges: &[Vec<(MemberId, Range<usize>)>]) -> Vec<Cycle> {
    let n = edges.len();
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, outs) in edges.iter().enumerate() {
        for (to, _) in outs {
            if let Some(list) = reverse.get_mut(to.0 as usize) {
                list.push(from);
            }
        }
    }
    let forward: Vec<Vec<usize>> = edges
        .iter()
        .map(|outs| outs.iter().map(|(to, _)| to.0 as usize).collect())
        .collect();
    let mut done = vec![false; n];
    let mut cycles = Vec::new();
    for start in 0..n {
        if done.get(start).copied().unwrap_or(true) {
            continue;
        }
        let ahead = reachable(&forward, start);
        let behind = reachable(&reverse, start);
        let component: Vec<bool> = (0..n)
            .map(|i| ahead.get(i) == Some(&true) && behind.get(i) == Some(&true))
            .collect();
        for (i, &inside) in component.iter().enumerate() {
            if inside {
                if let Some(d) = done.get_mut(i) {
                    *d = true;
                }
            }
        }
        if let Some(path) = shortest_cycle(&forward, &component, start) {
            let second = path.get(1).copied().unwrap_or(start);
            let span = edges
                .get(start)
                .and_then(|outs| outs.iter().find(|(to, _)| to.0 as usize == second))
                .map_or(0..0, |(_, span)| span.clone());
            cycles.push(Cycle {
                nodes: path.into_iter().map(|i| MemberId(i as u32)).collect(),
                span,
            });
        }
    }
    cycles
}

/// Nodes reachable from `start` by one or more edges, plus `start` itself.
fn reachable(graph: &[Vec<usize>], start: usize) -> Vec<bool> {
    let mut seen = vec![false; graph.len()];
    let mut stack = vec![start];
    if let Some(s) = seen.get_mut(start) {
        *s = true;
    }
    while let Some(node) = stack.pop() {
        for &next in graph.get(node).map_or(&[][..], |v| v.as_slice()) {
            if let Some(s) = seen.get_mut(next) {
                if !*s {
                    *s = true;
                    stack.push(next);
                }
            }
        }
    }
    seen
}

/// The shortest path `start -> ... -> start` inside `component`, if any.
fn shortest_cycle(graph: &[Vec<usize>], component: &[bool], start: usize) -> Option<Vec<usize>> {
    let n = graph.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut queue = VecDeque::from([start]);
    let mut visited = vec![false; n];
    while let Some(node) = queue.pop_front() {
        for &next in graph.get(node).map_or(&[][..], |v| v.as_slice()) {
            if next == start {
                let mut path = vec![start];
                let mut at = node;
                while at != start {
                    path.push(at);
                    at = parent.get(at).copied().flatten()?;
                }
                path.push(start);
                path.reverse();
                return Some(path);
            }
            if component.get(next) == Some(&true) && visited.get(next) == Some(&false) {
                if let Some(v) = visited.get_mut(next) {
                    *v = true;
                }
                if let Some(p) = parent.get_mut(next) {
                    *p = Some(node);
                }
                queue.push_back(next);
            }
        }
    }
    None
}
