//! The schema's type and member names behind one small hash table, for the check path.
//!
//! [`CompiledSchema::type_by_name`] and [`CompiledSchema::member_by_name`] search their
//! lists string by string; on a random check that was about 270 of 2,290 instructions.
//! Here every name hashes to a slot, so a look-up is one hash of the name's bytes (a word
//! at a time), one slot and one comparison. A schema has tens of names, so the table is
//! built with a seed chosen to give every name a slot of its own (a perfect hash) when one
//! is found among a few tries; otherwise slots are shared by linear probing, which answers
//! the same, one slot later.

use pemba_schema::{CompiledSchema, MemberId, TypeId};

/// One of the hash's constants (rustc-hash's `FxHasher` multiplier).
const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;
/// Seeds tried at each table size for one with no shared home slot.
const SEEDS_PER_SIZE: u64 = 32;
/// Table sizes tried, doubling from the smallest at most half full.
const SIZES_TRIED: u32 = 4;
/// Stands for "no owner": the entry is a type name.
const TYPE_OWNER: u32 = u32::MAX;

/// Type names to [`TypeId`]s and (type, member name) to [`MemberId`]s.
#[derive(Debug, Default)]
pub(crate) struct SchemaNames {
    /// A power of two long (or empty); a slot holds an entry's position + 1, or 0.
    slots: Vec<u32>,
    /// How far a hash shifts right to give a slot: 64 − log2 of the slot count.
    shift: u32,
    seed: u64,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    words: Words,
    /// The member's type, or [`TYPE_OWNER`] for a type name.
    owner: u32,
    id: u32,
    name: Box<str>,
}

/// A name as two words and its length; for names up to 16 bytes the three say the name
/// whole (the words overlap or repeat bytes, never leave one out), so those compare
/// without reading the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Words {
    first: u64,
    last: u64,
    len: usize,
}

/// The longest name [`Words`] holds whole.
const WHOLE_UP_TO: usize = 16;

fn words(name: &[u8]) -> Words {
    let word = |bytes: Option<&[u8; 8]>| bytes.map_or(0, |b| u64::from_le_bytes(*b));
    let half = |bytes: Option<&[u8; 4]>| bytes.map_or(0, |b| u64::from(u32::from_le_bytes(*b)));
    let byte = |at: usize| name.get(at).map_or(0, |b| u64::from(*b));
    let len = name.len();
    let (first, last) = if len >= 8 {
        (word(name.first_chunk()), word(name.last_chunk()))
    } else if len >= 4 {
        (half(name.first_chunk()) | half(name.last_chunk()) << 32, 0)
    } else if len > 0 {
        (byte(0) | byte(len / 2) << 8 | byte(len - 1) << 16, 0)
    } else {
        (0, 0)
    };
    Words { first, last, len }
}

/// Multiplies to 128 bits and folds the halves: every input bit reaches the top bits.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ (product >> 64) as u64
}

/// Compares names past [`WHOLE_UP_TO`] bytes, out of line: schemas rarely have them, and
/// the call would otherwise cost every look-up its register saves.
#[cold]
#[inline(never)]
fn same_long_name(a: &str, b: &str) -> bool {
    a == b
}

/// The hash of a name (as its [`Words`]) under `owner` and `seed`. Past 16 bytes the
/// middle of a name is not hashed, only compared.
fn hash(seed: u64, owner: u32, words: Words) -> u64 {
    let mixed = fold(
        words.first ^ seed ^ 0x243f_6a88_85a3_08d3,
        words.last ^ MULTIPLIER,
    );
    fold(
        mixed ^ (u64::from(owner) << 32 | words.len as u64),
        0x9e37_79b9_7f4a_7c15,
    )
}

impl SchemaNames {
    /// The table of `schema`'s names.
    pub(crate) fn new(schema: &CompiledSchema) -> Self {
        let types = schema
            .definitions
            .iter()
            .enumerate()
            .map(|(ty, definition)| (TYPE_OWNER, ty as u32, &*definition.name));
        let members = schema
            .members
            .iter()
            .enumerate()
            .map(|(member, m)| (m.owner.0, member as u32, &*m.name));
        let names: Vec<(u32, u32, &str)> = types.chain(members).collect();
        if names.is_empty() {
            return SchemaNames::default();
        }
        let smallest = (names.len() * 2).next_power_of_two().max(4);
        let mut chosen = None;
        'sizes: for doubling in 0..SIZES_TRIED {
            let len = smallest << doubling;
            let shift = 64 - len.trailing_zeros();
            for seed in 0..SEEDS_PER_SIZE {
                let mut taken = vec![false; len];
                let distinct = names.iter().all(|(owner, _, name)| {
                    let home = (hash(seed, *owner, words(name.as_bytes())) >> shift) as usize;
                    taken
                        .get_mut(home)
                        .is_some_and(|slot| !std::mem::replace(slot, true))
                });
                if distinct {
                    chosen = Some((len, seed));
                    break 'sizes;
                }
            }
        }
        // No seed gave every name its own slot (say, a name given twice): probe instead.
        let (len, seed) = chosen.unwrap_or((smallest, 0));
        let mut table = SchemaNames {
            slots: vec![0; len],
            shift: 64 - len.trailing_zeros(),
            seed,
            entries: Vec::with_capacity(names.len()),
        };
        for (owner, id, name) in names {
            table.insert(owner, id, name);
        }
        table
    }

    fn insert(&mut self, owner: u32, id: u32, name: &str) {
        let words = words(name.as_bytes());
        let hash = hash(self.seed, owner, words);
        let Ok(position) = u32::try_from(self.entries.len() + 1) else {
            return;
        };
        let mask = self.slots.len() - 1;
        let mut at = (hash >> self.shift) as usize;
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(at) {
                Some(empty @ 0) => {
                    *empty = position;
                    self.entries.push(Entry {
                        words,
                        owner,
                        id,
                        name: name.into(),
                    });
                    return;
                }
                Some(_) => at = (at + 1) & mask,
                None => return,
            }
        }
    }

    #[inline]
    fn find(&self, owner: u32, name: &str) -> Option<u32> {
        let words = words(name.as_bytes());
        let hash = hash(self.seed, owner, words);
        let mask = self.slots.len().wrapping_sub(1);
        // An empty table has no slot 0, so its first probe already ends the search.
        let mut at = (hash >> self.shift) as usize;
        for _ in 0..self.slots.len() {
            let position = *self.slots.get(at)?;
            // An empty slot (0) wraps to no entry at all.
            let entry = self.entries.get((position as usize).wrapping_sub(1))?;
            if entry.owner == owner
                && entry.words == words
                && (words.len <= WHOLE_UP_TO || same_long_name(&entry.name, name))
            {
                return Some(entry.id);
            }
            at = (at + 1) & mask;
        }
        None
    }

    /// The type named `name`, as [`CompiledSchema::type_by_name`].
    pub(crate) fn type_id(&self, name: &str) -> Option<TypeId> {
        self.find(TYPE_OWNER, name).map(TypeId)
    }

    /// The member `name` of type `ty`, as [`CompiledSchema::member_by_name`].
    pub(crate) fn member(&self, ty: TypeId, name: &str) -> Option<MemberId> {
        self.find(ty.0, name).map(MemberId)
    }

    /// Whether every name has a slot of its own.
    #[cfg(test)]
    pub(crate) fn is_perfect(&self) -> bool {
        let mut taken = vec![false; self.slots.len()];
        self.entries.iter().all(|entry| {
            taken
                .get_mut((hash(self.seed, entry.owner, entry.words) >> self.shift) as usize)
                .is_some_and(|slot| !std::mem::replace(slot, true))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::reference_model::generate;

    #[test]
    fn schema_names_find_every_name_and_only_those() {
        for seed in 0..64 {
            let schema = pemba_schema::compile(&generate(seed).schema).unwrap();
            let names = SchemaNames::new(&schema);
            for (ty, definition) in schema.definitions.iter().enumerate() {
                let ty = TypeId(ty as u32);
                assert_eq!(names.type_id(&definition.name), Some(ty));
                for member in &definition.members {
                    let name = &schema.member(*member).name;
                    assert_eq!(names.member(ty, name), Some(*member));
                    assert_eq!(names.type_id(name), schema.type_by_name(name));
                }
                for absent in ["", "rel_9", "perm_", "rel_00", "doc", "user"] {
                    assert_eq!(
                        names.member(ty, absent),
                        schema.member_by_name(ty, absent),
                        "{absent}"
                    );
                }
            }
            for absent in [
                "",
                "users",
                "use",
                "team/doc",
                "a_rather_longer_name_than_any",
            ] {
                assert_eq!(names.type_id(absent), None, "{absent}");
            }
            assert!(names.is_perfect(), "{}", generate(seed).schema);
        }
        let names = SchemaNames::new(&CompiledSchema::default());
        assert_eq!(names.type_id("user"), None);
    }

    #[test]
    fn words_say_short_names_whole() {
        // Every name of up to four letters over a small alphabet, and longer ones that
        // differ in one byte, give words of their own up to `WHOLE_UP_TO` bytes.
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .filter(|n| n.len() == names.last().map_or(0, Vec::len))
                .flat_map(|n| b"ab_".iter().map(move |c| [&n[..], &[*c]].concat()))
                .collect();
            names.extend(longer);
        }
        for len in 5..=WHOLE_UP_TO {
            for at in 0..len {
                let mut name = vec![b'a'; len];
                name[at] = b'b';
                names.push(name);
            }
            names.push(vec![b'a'; len]);
        }
        let mut seen = std::collections::HashMap::new();
        for name in &names {
            if let Some(other) = seen.insert(format!("{:?}", words(name)), name) {
                assert_eq!(other, name, "two names, one set of words");
            }
        }
    }

    #[test]
    fn schema_names_probe_past_a_name_with_the_same_home() {
        // Two names whose hashes start at the same one of eight slots: the second must be
        // found one slot on, and a name absent from a full table must end the probe.
        let home = |name: &str| (hash(0, TYPE_OWNER, words(name.as_bytes())) >> 61) as usize;
        let candidates: Vec<String> = (0..64).map(|i| format!("type_{i}")).collect();
        let (first, second) = candidates
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                let b = candidates[i + 1..].iter().find(|b| home(b) == home(a))?;
                Some((a.clone(), b.clone()))
            })
            .unwrap();
        let mut names = SchemaNames {
            slots: vec![0; 8],
            shift: 61,
            seed: 0,
            entries: Vec::new(),
        };
        names.insert(TYPE_OWNER, 0, &first);
        names.insert(TYPE_OWNER, 1, &second);
        assert_eq!(names.type_id(&first), Some(TypeId(0)));
        assert_eq!(names.type_id(&second), Some(TypeId(1)));
        assert_eq!(names.member(TypeId(0), &first), None);
        for (id, name) in candidates
            .iter()
            .filter(|c| **c != first && **c != second)
            .take(6)
            .enumerate()
        {
            names.insert(TYPE_OWNER, id as u32 + 2, name);
        }
        assert!(names.slots.iter().all(|slot| *slot != 0));
        assert_eq!(names.type_id("absent"), None);
        assert_eq!(names.type_id(&second), Some(TypeId(1)));
    }
}
