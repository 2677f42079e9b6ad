//! The change-log entry format: one line per change, `T ` (insert) or `D ` (delete)
//! followed by the relationship's text form. Text keeps the log readable with any tool and
//! independent of the key layout.

use crate::error::StorageError;
use crate::tuple::Tuple;
use crate::write::{Change, Operation};

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
