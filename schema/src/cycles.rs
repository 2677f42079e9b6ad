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
/// component's first member in source order, components ordered by that member.
/// Linear in the size of the graph and iterative, so deep graphs cannot overflow the stack.
pub(crate) fn find_cycles(edges: &[Vec<(MemberId, Range<usize>)>]) -> Vec<Cycle> {
    let forward: Vec<Vec<usize>> = edges
        .iter()
        .map(|outs| {
            outs.iter()
                .map(|(to, _)| to.0 as usize)
                .filter(|&to| to < edges.len())
                .collect()
        })
        .collect();
    let mut components = strongly_connected_components(&forward);
    components.retain(|c| match c.as_slice() {
        [single] => forward
            .get(*single)
            .is_some_and(|outs| outs.contains(single)),
        _ => true,
    });
    let mut firsts: Vec<(usize, Vec<bool>)> = components
        .into_iter()
        .filter_map(|c| {
            let first = c.iter().copied().min()?;
            let mut inside = vec![false; forward.len()];
            for node in c {
                if let Some(flag) = inside.get_mut(node) {
                    *flag = true;
                }
            }
            Some((first, inside))
        })
        .collect();
    firsts.sort_by_key(|(first, _)| *first);
    let mut cycles = Vec::new();
    for (start, inside) in firsts {
        if let Some(path) = shortest_cycle(&forward, &inside, start) {
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

/// Tarjan's algorithm with an explicit stack.
fn strongly_connected_components(graph: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = graph.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    // (node, position of the next edge to look at)
    let mut work: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index.get(root) != Some(&UNVISITED) {
            continue;
        }
        work.push((root, 0));
        while let Some(&(node, edge)) = work.last() {
            if edge == 0 && index.get(node) == Some(&UNVISITED) {
                set(&mut index, node, next_index);
                set(&mut low, node, next_index);
                next_index += 1;
                stack.push(node);
                set(&mut on_stack, node, true);
            }
            let outs = graph.get(node).map_or(&[][..], |v| v.as_slice());
            if let Some(&next) = outs.get(edge) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index.get(next) == Some(&UNVISITED) {
                    work.push((next, 0));
                } else if on_stack.get(next) == Some(&true) {
                    let lowest = get(&low, node).min(get(&index, next));
                    set(&mut low, node, lowest);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                let lowest = get(&low, parent).min(get(&low, node));
                set(&mut low, parent, lowest);
            }
            if get(&low, node) == get(&index, node) {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    set(&mut on_stack, member, false);
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

fn get(values: &[usize], at: usize) -> usize {
    values.get(at).copied().unwrap_or(0)
}

fn set<T>(values: &mut [T], at: usize, value: T) {
    if let Some(slot) = values.get_mut(at) {
        *slot = value;
    }
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
