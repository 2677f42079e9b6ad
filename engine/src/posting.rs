//! Posting lists: the ids one object relates to, stored inline while there are one or two,
//! as a sorted array up to [`FEW_MAX`] and as a roaring bitmap beyond, in dense per-object
//! vectors.
//!
//! Most objects of an authorization model relate to one or two others (a connection has
//! one owner and one workspace, a user is in a few groups). Keeping those inline saves a
//! heap allocation and a pointer chase per lookup, which is where check latency and
//! memory per relationship go at millions of relationships. A handful of ids in a roaring
//! bitmap costs about a hundred bytes (a box, a container vector, an array per 65,536-id
//! range) and three pointer chases; as one thin sorted array it costs 16 bytes of header
//! plus 4 per id and one chase.

use roaring::RoaringBitmap;
use thin_vec::ThinVec;

/// The most ids a [`Posting::Few`] holds; past it, a roaring bitmap (2 bytes per id in an
/// array container, plus its fixed overhead) is the smaller and faster form.
pub(crate) const FEW_MAX: usize = 32;

/// A set of `u32` ids.
///
/// INVARIANT: `Two(a, b)` has `a < b`; `Few` holds 3 to [`FEW_MAX`] ids in ascending
/// order; `Many` holds more than [`FEW_MAX`] ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Posting {
    #[default]
    Empty,
    One(u32),
    Two(u32, u32),
    /// A thin pointer (one word), so a `Posting` stays 16 bytes.
    Few(ThinVec<u32>),
    Many(Box<RoaringBitmap>),
}

static EMPTY: Posting = Posting::Empty;

impl Posting {
    pub(crate) fn contains(&self, id: u32) -> bool {
        match self {
            Posting::Empty => false,
            Posting::One(a) => *a == id,
            Posting::Two(a, b) => *a == id || *b == id,
            Posting::Few(ids) => ids.binary_search(&id).is_ok(),
            Posting::Many(bitmap) => bitmap.contains(id),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Posting::Empty => 0,
            Posting::One(_) => 1,
            Posting::Two(..) => 2,
            Posting::Few(ids) => ids.len() as u64,
            Posting::Many(bitmap) => bitmap.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Posting::Empty)
    }

    /// Whether the ids are held in the posting itself, so reading them follows no pointer.
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self, Posting::Empty | Posting::One(_) | Posting::Two(..))
    }

    /// Adds `id`; false if it was present.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        match self {
            Posting::Empty => *self = Posting::One(id),
            Posting::One(a) => {
                let a = *a;
                if a == id {
                    return false;
                }
                *self = Posting::Two(a.min(id), a.max(id));
            }
            Posting::Two(a, b) => {
                if *a == id || *b == id {
                    return false;
                }
                let mut ids = ThinVec::with_capacity(3);
                ids.extend([*a, *b, id]);
                ids.sort_unstable();
                *self = Posting::Few(ids);
            }
            Posting::Few(ids) => {
                let Err(at) = ids.binary_search(&id) else {
                    return false;
                };
                if ids.len() < FEW_MAX {
                    ids.insert(at, id);
                } else {
                    let mut bitmap: RoaringBitmap = ids.iter().copied().collect();
                    bitmap.insert(id);
                    *self = Posting::Many(Box::new(bitmap));
                }
            }
            Posting::Many(bitmap) => return bitmap.insert(id),
        }
        true
    }

    /// Removes `id`; false if it was absent.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        match self {
            Posting::Empty => false,
            Posting::One(a) => {
                if *a != id {
                    return false;
                }
                *self = Posting::Empty;
                true
            }
            Posting::Two(a, b) => {
                let keep = if *a == id {
                    *b
                } else if *b == id {
                    *a
                } else {
                    return false;
                };
                *self = Posting::One(keep);
                true
            }
            Posting::Few(ids) => {
                let Ok(at) = ids.binary_search(&id) else {
                    return false;
                };
                ids.remove(at);
                if let [a, b] = ids.as_slice() {
                    *self = Posting::Two(*a, *b);
                }
                true
            }
            Posting::Many(bitmap) => {
                if !bitmap.remove(id) {
                    return false;
                }
                if bitmap.len() == FEW_MAX as u64 {
                    *self = Posting::Few(bitmap.iter().collect());
                }
                true
            }
        }
    }

    pub(crate) fn iter(&self) -> PostingIter<'_> {
        match self {
            Posting::Empty => PostingIter::Inline([0, 0], 0, 0),
            Posting::One(a) => PostingIter::Inline([*a, 0], 0, 1),
            Posting::Two(a, b) => PostingIter::Inline([*a, *b], 0, 2),
            Posting::Few(ids) => PostingIter::Slice(ids.iter()),
            Posting::Many(bitmap) => PostingIter::Bitmap(bitmap.iter()),
        }
    }

    pub(crate) fn min(&self) -> Option<u32> {
        self.iter().next()
    }

    /// Heap bytes held outside the posting itself (for a bitmap, approximate: its
    /// serialized size).
    fn heap_bytes(&self) -> usize {
        match self {
            Posting::Few(ids) => 2 * std::mem::size_of::<usize>() + 4 * ids.capacity(),
            Posting::Many(bitmap) => {
                std::mem::size_of::<RoaringBitmap>() + bitmap.serialized_size()
            }
            _ => 0,
        }
    }

    /// Drops a sorted array's spare capacity.
    fn shrink_to_fit(&mut self) {
        if let Posting::Few(ids) = self {
            ids.shrink_to_fit();
        }
    }

    /// `out |= self`.
    pub(crate) fn union_into(&self, out: &mut RoaringBitmap) {
        match self {
            Posting::Many(bitmap) => *out |= &**bitmap,
            small => small.iter().for_each(|id| {
                out.insert(id);
            }),
        }
    }

    /// Whether the two sets share an id.
    pub(crate) fn intersects_bitmap(&self, other: &RoaringBitmap) -> bool {
        match self {
            Posting::Many(bitmap) => !bitmap.is_disjoint(other),
            small => small.iter().any(|id| other.contains(id)),
        }
    }

    /// Whether the two sets share an id.
    pub(crate) fn intersects(&self, other: &Posting) -> bool {
        match (self, other) {
            (Posting::Many(a), Posting::Many(b)) => !a.is_disjoint(b),
            (Posting::Many(_), small) => small.iter().any(|id| self.contains(id)),
            (small, _) => small.iter().any(|id| other.contains(id)),
        }
    }
}

/// Iterates a [`Posting`] in ascending order.
pub(crate) enum PostingIter<'a> {
    Inline([u32; 2], usize, usize),
    Slice(std::slice::Iter<'a, u32>),
    Bitmap(roaring::bitmap::Iter<'a>),
}

impl Iterator for PostingIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            PostingIter::Inline(ids, next, end) => {
                if *next >= *end {
                    return None;
                }
                let id = ids.get(*next).copied();
                *next += 1;
                id
            }
            PostingIter::Slice(iter) => iter.next().copied(),
            PostingIter::Bitmap(iter) => iter.next(),
        }
    }
}

/// One [`Posting`] per object index, dense: objects are interned densely from zero.
#[derive(Clone, Debug, Default)]
pub(crate) struct Postings {
    lists: Vec<Posting>,
}

impl Postings {
    pub(crate) fn get(&self, object: u32) -> &Posting {
        self.lists.get(object as usize).unwrap_or(&EMPTY)
    }

    pub(crate) fn insert(&mut self, object: u32, id: u32) -> bool {
        let object = object as usize;
        if object >= self.lists.len() {
            self.lists.resize(object + 1, Posting::Empty);
        }
        self.lists
            .get_mut(object)
            .is_some_and(|list| list.insert(id))
    }

    pub(crate) fn remove(&mut self, object: u32, id: u32) -> bool {
        self.lists
            .get_mut(object as usize)
            .is_some_and(|list| list.remove(id))
    }

    /// Heap bytes held, for the memory report.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.lists.capacity() * std::mem::size_of::<Posting>()
            + self.lists.iter().map(Posting::heap_bytes).sum::<usize>()
    }

    /// Drops spare capacity once the index is built: the vector grew by doubling.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.lists.iter_mut().for_each(Posting::shrink_to_fit);
        self.lists.shrink_to_fit();
    }
}

/// Several columns of [`Posting`]s per object, one row per object, row after row.
///
/// The relations of one resource type live side by side here, so the forward postings a
/// check of one resource reads (its owner, grantees, workspace, ...) share one or two
/// cache lines instead of sitting in one vector per relation, a cache miss each on a
/// store of millions of relationships.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rows {
    width: usize,
    cells: Vec<Posting>,
    /// Per column, how many objects have a non-empty posting there.
    non_empty: Vec<usize>,
}

impl Rows {
    pub(crate) fn new(width: usize) -> Self {
        Rows {
            width,
            cells: Vec::new(),
            non_empty: vec![0; width],
        }
    }

    fn at(&self, object: u32, column: usize) -> Option<usize> {
        if column >= self.width {
            return None;
        }
        (object as usize)
            .checked_mul(self.width)
            .and_then(|row| row.checked_add(column))
    }

    pub(crate) fn get(&self, object: u32, column: usize) -> &Posting {
        self.at(object, column)
            .and_then(|at| self.cells.get(at))
            .unwrap_or(&EMPTY)
    }

    pub(crate) fn insert(&mut self, object: u32, column: usize, id: u32) -> bool {
        let Some(at) = self.at(object, column) else {
            return false;
        };
        if at >= self.cells.len() {
            // Whole rows, so a row never straddles the end of the vector.
            self.cells
                .resize((object as usize + 1) * self.width, Posting::Empty);
        }
        let Some(list) = self.cells.get_mut(at) else {
            return false;
        };
        let was_empty = list.is_empty();
        let inserted = list.insert(id);
        if was_empty && inserted {
            if let Some(count) = self.non_empty.get_mut(column) {
                *count += 1;
            }
        }
        inserted
    }

    pub(crate) fn remove(&mut self, object: u32, column: usize, id: u32) -> bool {
        let Some(list) = self
            .at(object, column)
            .and_then(|at| self.cells.get_mut(at))
        else {
            return false;
        };
        let removed = list.remove(id);
        if removed && list.is_empty() {
            if let Some(count) = self.non_empty.get_mut(column) {
                *count = count.saturating_sub(1);
            }
        }
        removed
    }

    /// The first object with a non-empty posting in `column`, and that posting.
    pub(crate) fn first(&self, column: usize) -> Option<(u32, &Posting)> {
        if self.non_empty.get(column).copied().unwrap_or(0) == 0 {
            return None;
        }
        self.cells
            .iter()
            .skip(column)
            .step_by(self.width.max(1))
            .enumerate()
            .find(|(_, p)| !p.is_empty())
            .map(|(i, p)| (i as u32, p))
    }

    /// Heap bytes held, for the memory report.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Posting>()
            + self.cells.iter().map(Posting::heap_bytes).sum::<usize>()
    }

    /// Drops spare capacity once the index is built: the vector grew by doubling.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.cells.iter_mut().for_each(Posting::shrink_to_fit);
        self.cells.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn posting_behaves_like_a_set() {
        let mut posting = Posting::Empty;
        let mut model = BTreeSet::new();
        let ops = [5u32, 3, 5, 9, 1, 3, 3, 7, 9, 5, 1, 7, 2, 2, 8];
        for (i, id) in ops.iter().enumerate() {
            if i % 3 == 2 {
                assert_eq!(posting.remove(*id), model.remove(id));
            } else {
                assert_eq!(posting.insert(*id), model.insert(*id));
            }
            assert_eq!(
                posting.iter().collect::<Vec<_>>(),
                model.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(posting.len(), model.len() as u64);
            let bitmap: RoaringBitmap = [1u32, 2, 3].into_iter().collect();
            assert_eq!(
                posting.intersects_bitmap(&bitmap),
                model.iter().any(|x| *x <= 3)
            );
        }
        assert_eq!(std::mem::size_of::<Posting>(), 16);
    }

    #[test]
    fn posting_changes_form_across_the_thresholds() {
        let mut posting = Posting::Empty;
        let mut model = BTreeSet::new();
        // Up past FEW_MAX (into a bitmap), down below two, and up again, in a scattered
        // order that spans several roaring containers.
        let ids: Vec<u32> = (0..(FEW_MAX as u32 + 8))
            .map(|i| (i * 40_503) % 300_007)
            .collect();
        for id in ids.iter().chain(ids.iter()) {
            assert_eq!(posting.insert(*id), model.insert(*id));
        }
        assert!(matches!(posting, Posting::Many(_)));
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(posting.remove(*id), model.remove(id));
            assert!(!posting.remove(*id));
            let form_ok = match model.len() {
                0 => matches!(posting, Posting::Empty),
                1 => matches!(posting, Posting::One(_)),
                2 => matches!(posting, Posting::Two(..)),
                n if n <= FEW_MAX => matches!(posting, Posting::Few(_)),
                _ => matches!(posting, Posting::Many(_)),
            };
            assert!(form_ok, "after {} removals: {posting:?}", i + 1);
            assert_eq!(
                posting.iter().collect::<Vec<_>>(),
                model.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(posting.len(), model.len() as u64);
            for probe in ids.iter().take(5) {
                assert_eq!(posting.contains(*probe), model.contains(probe));
            }
        }
    }

    #[test]
    fn rows_keep_columns_apart() {
        let mut rows = Rows::new(3);
        let mut model: BTreeSet<(u32, usize, u32)> = BTreeSet::new();
        let ops = [
            (4u32, 2usize, 7u32),
            (0, 0, 1),
            (4, 2, 8),
            (4, 1, 7),
            (9, 0, 3),
            (4, 2, 9),
        ];
        for (object, column, id) in ops {
            assert_eq!(
                rows.insert(object, column, id),
                model.insert((object, column, id))
            );
        }
        assert!(
            !rows.insert(4, 3, 1),
            "a column past the width holds nothing"
        );
        assert!(rows.remove(4, 2, 8));
        model.remove(&(4, 2, 8));
        for object in 0..12 {
            for column in 0..4 {
                let want: Vec<u32> = model
                    .iter()
                    .filter(|(o, c, _)| *o == object && *c == column)
                    .map(|(_, _, id)| *id)
                    .collect();
                assert_eq!(rows.get(object, column).iter().collect::<Vec<_>>(), want);
            }
        }
        assert_eq!(rows.first(2).map(|(o, p)| (o, p.len())), Some((4, 2)));
        assert_eq!(rows.first(0).map(|(o, _)| o), Some(0));
        assert!(rows.remove(0, 0, 1));
        assert_eq!(rows.first(0).map(|(o, _)| o), Some(9));
        assert!(rows.remove(9, 0, 3));
        assert_eq!(rows.first(0), None);
    }
}
