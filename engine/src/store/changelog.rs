//! The change-log entry format: one line per change, `T ` (insert) or `D ` (delete)
//! followed by the relationship's text form. Text keeps the log readable with any tool and
//! independent of the key layout.
//!
//! A batch of a bulk import is logged in a compact form instead (`encode_imported`): a
//! marker byte that no text entry starts with, then the batch's resource keys in key
//! order, each as the length of the prefix it shares with the key before it and the rest
//! (front coding). Sorted keys share most of their bytes, so the entry is a fraction of
//! the text and costs no formatting; it decodes to the same touches a text entry holds.

use crate::error::StorageError;
use crate::store::keys::raw_from_resource_key;
use crate::tuple::Tuple;
use crate::write::{Change, Operation};

/// First byte of a compact import entry; a text entry starts with `T`, `D` or is empty.
const IMPORTED: u8 = 1;

/// The compact log entry of an imported batch: touches of `keys` (resource keys, in
/// ascending order).
pub(crate) fn encode_imported<'k>(
    keys: impl Iterator<Item = &'k [u8]>,
    size_hint: usize,
) -> Vec<u8> {
    let mut entry = Vec::with_capacity(size_hint);
    entry.push(IMPORTED);
    let mut previous: &[u8] = &[];
    for key in keys {
        let shared = previous.iter().zip(key).take_while(|(a, b)| a == b).count();
        let rest = key.get(shared..).unwrap_or_default();
        push_varint(&mut entry, shared);
        push_varint(&mut entry, rest.len());
        entry.extend_from_slice(rest);
        previous = key;
    }
    entry
}

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint at the front of `bytes`, advancing it.
fn take_varint(bytes: &mut &[u8]) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn decode_imported(mut bytes: &[u8]) -> Result<Vec<Change>, StorageError> {
    let corrupt = || StorageError::corrupt("malformed change log entry: bad imported batch");
    let mut changes = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    while !bytes.is_empty() {
        let shared = take_varint(&mut bytes).ok_or_else(corrupt)?;
        let len = take_varint(&mut bytes).ok_or_else(corrupt)?;
        if shared > key.len() || len > bytes.len() {
            return Err(corrupt());
        }
        let (rest, after) = bytes.split_at(len);
        bytes = after;
        key.truncate(shared);
        key.extend_from_slice(rest);
        changes.push(Change {
            operation: Operation::Touch,
            tuple: raw_from_resource_key(&key)?.to_tuple(),
        });
    }
    Ok(changes)
}

/// The log entry of `changes`.
pub(crate) fn encode_changes(changes: &[Change]) -> Vec<u8> {
    // Written field by field: formatting through `Display` costs an allocation per change,
    // which showed in import profiles.
    let mut text = String::with_capacity(changes.len() * 64);
    for change in changes {
        let t = &change.tuple;
        text.push_str(match change.operation {
            Operation::Delete => "D ",
            _ => "T ",
        });
        for part in [
            &t.resource.object_type,
            ":",
            &t.resource.object_id,
            "#",
            &t.relation,
            "@",
            &t.subject.object.object_type,
            ":",
            &t.subject.object.object_id,
        ] {
            text.push_str(part);
        }
        if let Some(relation) = &t.subject.relation {
            text.push('#');
            text.push_str(relation);
        }
        text.push('\n');
    }
    text.into_bytes()
}

/// The changes of a log entry; anything else is a damaged store.
pub(crate) fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, StorageError> {
    if let Some((&IMPORTED, keys)) = bytes.split_first() {
        return decode_imported(keys);
    }
    let corrupt = |what: &str| StorageError::corrupt(format!("malformed change log entry: {what}"));
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not utf-8"))?;
    text.lines()
        .map(|line| {
            let (op, tuple) = line.split_once(' ').ok_or_else(|| corrupt(line))?;
            let operation = match op {
                "T" => Operation::Touch,
                "D" => Operation::Delete,
                _ => return Err(corrupt(line)),
            };
            let tuple = Tuple::parse(tuple).map_err(|_| corrupt(line))?;
            Ok(Change { operation, tuple })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::resource_key;

    #[test]
    fn an_imported_batch_decodes_to_its_touches_in_key_order() {
        let tuples: Vec<Tuple> = [
            "connection:ws1/c1#grantee@group:g1#member",
            "connection:ws1/c1#grantee@user:u1",
            "connection:ws1/c2#owner@user:u1",
            "workspace:ws1#admin@user:u2",
            "workspace:ws1#viewer@user:*",
        ]
        .iter()
        .map(|t| Tuple::parse(t).unwrap())
        .collect();
        let keys: Vec<Vec<u8>> = tuples.iter().map(resource_key).collect();
        let entry = encode_imported(keys.iter().map(Vec::as_slice), 0);
        let text_len = encode_changes(
            &tuples
                .iter()
                .map(|t| Change {
                    operation: Operation::Touch,
                    tuple: t.clone(),
                })
                .collect::<Vec<_>>(),
        )
        .len();
        assert!(entry.len() < text_len, "{} >= {text_len}", entry.len());
        let decoded = decode_changes(&entry).unwrap();
        assert_eq!(decoded.len(), tuples.len());
        for (change, tuple) in decoded.iter().zip(&tuples) {
            assert_eq!(change.operation, Operation::Touch);
            assert_eq!(&change.tuple, tuple);
        }
    }

    #[test]
    fn a_damaged_imported_batch_is_corrupt_not_a_panic() {
        let key = resource_key(&Tuple::parse("workspace:ws1#admin@user:u2").unwrap());
        let entry = encode_imported(std::iter::once(key.as_slice()), 0);
        // Just the marker is an empty batch; any other cut leaves a key incomplete.
        for cut in 2..entry.len() {
            assert!(decode_changes(&entry[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            decode_changes(&[IMPORTED, 5, 0]).is_err(),
            "shares more than it has"
        );
        assert!(decode_changes(&[
            IMPORTED, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        ])
        .is_err());
    }
}
