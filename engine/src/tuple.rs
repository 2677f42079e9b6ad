//! Relationships ("tuples") and their text form: `type:id#relation@subject`.

use std::fmt;

use crate::store::RawTuple;

/// The longest object id accepted, as in SpiceDB.
pub const MAX_OBJECT_ID_LEN: usize = 1024;

/// An object: `type:id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Object type (`document`, `tenant/doc`).
    pub object_type: String,
    /// Object id (`readme`).
    pub object_id: String,
}

/// A subject: `type:id`, `type:id#relation` (a userset) or `type:*` (a wildcard).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectRef {
    /// The subject object; its id is `*` for a wildcard.
    pub object: ObjectRef,
    /// The subject relation of a userset; `None` for a plain object or a wildcard.
    pub relation: Option<String>,
}

/// A relationship `resource#relation@subject`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    /// The resource the relationship is on.
    pub resource: ObjectRef,
    /// The relation (never a permission).
    pub relation: String,
    /// Who or what is related.
    pub subject: SubjectRef,
}

/// Why a piece of relationship text or an id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The text does not have the expected shape.
    #[error("expected `{expected}` but found `{found}`")]
    Shape {
        /// The form that was expected.
        expected: &'static str,
        /// The text that was found.
        found: String,
    },
    /// An object type name breaks the naming rules.
    #[error("invalid object type `{0}`: expected lowercase letters, digits and `_`, 3 to 64 characters, starting with a letter, optionally with `prefix/` parts")]
    ObjectType(String),
    /// A relation or permission name breaks the naming rules.
    #[error("invalid relation `{0}`: expected lowercase letters, digits and `_`, 3 to 64 characters, starting with a letter")]
    Relation(String),
    /// An object id breaks the id rules.
    #[error(
        "invalid object id `{0}`: expected 1 to 1024 characters of letters, digits and `/_|-=+`"
    )]
    ObjectId(String),
}

/// Whether `id` is a valid object id (not a wildcard).
pub fn is_valid_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_OBJECT_ID_LEN
        && id
            .bytes()
            .all(|b| ID_BYTES.get(usize::from(b)).copied().unwrap_or(false))
}

/// The bytes an object id may hold, as a table: one load per byte on the check path, which
/// validates every id it is given.
#[expect(
    clippy::indexing_slicing,
    reason = "b < 256 in a const block: an index out of range would fail the build, not a request"
)]
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] =
            byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'|' | b'-' | b'=' | b'+');
        b += 1;
    }
    table
};

/// Checks an object given as parts: the type name, and the id (`*` allowed only with
/// `allow_wildcard`).
pub fn validate_object(
    object_type: &str,
    object_id: &str,
    allow_wildcard: bool,
) -> Result<(), SyntaxError> {
    if !pemba_schema::is_valid_type_name(object_type) {
        return Err(SyntaxError::ObjectType(object_type.to_string()));
    }
    if !(is_valid_object_id(object_id) || allow_wildcard && object_id == "*") {
        return Err(SyntaxError::ObjectId(object_id.to_string()));
    }
    Ok(())
}

impl ObjectRef {
    /// An object from its parts, unchecked.
    pub fn new(object_type: impl Into<String>, object_id: impl Into<String>) -> Self {
        ObjectRef {
            object_type: object_type.into(),
            object_id: object_id.into(),
        }
    }

    /// Parses `type:id`, checking both parts.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let Some((object_type, object_id)) = text.split_once(':') else {
            return Err(SyntaxError::Shape {
                expected: "type:id",
                found: text.to_string(),
            });
        };
        let object = ObjectRef::new(object_type, object_id);
        object.validate(false)?;
        Ok(object)
    }

    /// Checks the type name and the id (`*` allowed only with `allow_wildcard`).
    pub fn validate(&self, allow_wildcard: bool) -> Result<(), SyntaxError> {
        validate_object(&self.object_type, &self.object_id, allow_wildcard)
    }
}

impl SubjectRef {
    /// A plain object subject.
    pub fn object(object_type: impl Into<String>, object_id: impl Into<String>) -> Self {
        SubjectRef {
            object: ObjectRef::new(object_type, object_id),
            relation: None,
        }
    }

    /// Whether this is `type:*`.
    pub fn is_wildcard(&self) -> bool {
        self.object.object_id == "*"
    }

    /// Parses `type:id`, `type:id#relation`, `type:id#...` (no relation) or `type:*`.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let (object_text, relation) = match text.split_once('#') {
            Some((object, "...")) => (object, None),
            Some((object, relation)) => (object, Some(relation.to_string())),
            None => (text, None),
        };
        let Some((object_type, object_id)) = object_text.split_once(':') else {
            return Err(SyntaxError::Shape {
                expected: "type:id[#relation]",
                found: text.to_string(),
            });
        };
        let subject = SubjectRef {
            object: ObjectRef::new(object_type, object_id),
            relation,
        };
        subject.validate()?;
        Ok(subject)
    }

    /// Checks names and ids; a wildcard cannot carry a relation.
    pub fn validate(&self) -> Result<(), SyntaxError> {
        self.object.validate(self.relation.is_none())?;
        if let Some(relation) = &self.relation {
            if !pemba_schema::is_valid_member_name(relation) {
                return Err(SyntaxError::Relation(relation.clone()));
            }
        }
        Ok(())
    }
}

impl Tuple {
    /// A relationship from its parts, unchecked.
    pub fn new(resource: ObjectRef, relation: impl Into<String>, subject: SubjectRef) -> Self {
        Tuple {
            resource,
            relation: relation.into(),
            subject,
        }
    }

    /// Parses `type:id#relation@subject` and checks every name and id.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let shape = || SyntaxError::Shape {
            expected: "type:id#relation@subject_type:subject_id[#relation]",
            found: text.to_string(),
        };
        let (resource_part, subject_part) = text.split_once('@').ok_or_else(shape)?;
        let (object_part, relation) = resource_part.split_once('#').ok_or_else(shape)?;
        let resource = ObjectRef::parse(object_part)?;
        if !pemba_schema::is_valid_member_name(relation) {
            return Err(SyntaxError::Relation(relation.to_string()));
        }
        let subject = SubjectRef::parse(subject_part)?;
        Ok(Tuple::new(resource, relation, subject))
    }

    /// Checks every name and id of a relationship built from parts.
    pub fn validate(&self) -> Result<(), SyntaxError> {
        self.resource.validate(false)?;
        if !pemba_schema::is_valid_member_name(&self.relation) {
            return Err(SyntaxError::Relation(self.relation.clone()));
        }
        self.subject.validate()
    }
}

impl<'a> RawTuple<'a> {
    /// Parses `type:id#relation@subject` as [`Tuple::parse`] does, borrowing the fields
    /// from `text` instead of allocating them; the same text is refused with the same error.
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let raw = Self::split(text).ok_or_else(|| refusal(text))?;
        validate_object(raw.resource_type, raw.resource_id, false)?;
        if !pemba_schema::is_valid_member_name(raw.relation) {
            return Err(SyntaxError::Relation(raw.relation.to_string()));
        }
        let plain = raw.subject_relation.is_empty();
        validate_object(raw.subject_type, raw.subject_id, plain)?;
        if !plain && !pemba_schema::is_valid_member_name(raw.subject_relation) {
            return Err(SyntaxError::Relation(raw.subject_relation.to_string()));
        }
        Ok(raw)
    }

    /// The fields of `text` if it has the shape of a relationship (nothing checked yet).
    fn split(text: &'a str) -> Option<Self> {
        let (resource_part, subject_part) = text.split_once('@')?;
        let (object_part, relation) = resource_part.split_once('#')?;
        let (resource_type, resource_id) = object_part.split_once(':')?;
        let (subject_object, subject_relation) = match subject_part.split_once('#') {
            Some((object, "...")) => (object, ""),
            // `type:id#` names an empty relation, which `Tuple::parse` refuses.
            Some((_, "")) => return None,
            Some((object, relation)) => (object, relation),
            None => (subject_part, ""),
        };
        let (subject_type, subject_id) = subject_object.split_once(':')?;
        Some(RawTuple {
            resource_type,
            resource_id,
            relation,
            subject_type,
            subject_id,
            subject_relation,
        })
    }
}

/// Why [`Tuple::parse`] refuses `text` (the one place its messages are written).
fn refusal(text: &str) -> SyntaxError {
    match Tuple::parse(text) {
        Err(error) => error,
        Ok(_) => SyntaxError::Shape {
            expected: "type:id#relation@subject_type:subject_id[#relation]",
            found: text.to_string(),
        },
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.relation {
            Some(relation) => write!(f, "{}#{}", self.object, relation),
            None => write!(f, "{}", self.object),
        }
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.resource, self.relation, self.subject)
    }
}

/// Parses the import/export text format: one relationship a line, `//` comments and blank
/// lines ignored. Returns the relationships, or every bad line as `(line_number, error)`.
pub fn parse_tuples(text: &str) -> Result<Vec<Tuple>, Vec<(usize, SyntaxError)>> {
    let mut tuples = Vec::new();
    let mut errors = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        match Tuple::parse(line) {
            Ok(tuple) => tuples.push(tuple),
            Err(error) => errors.push((line_index + 1, error)),
        }
    }
    if errors.is_empty() {
        Ok(tuples)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_allow_exactly_the_bytes_of_spicedbs_rule() {
        // `[a-zA-Z0-9/_|\-=+]`, byte by byte, alone and inside an otherwise valid id.
        for b in 0..=255u8 {
            let allowed = b.is_ascii_alphanumeric() || b"/_|-=+".contains(&b);
            let id = [b'a', b, b'z'];
            let text = String::from_utf8_lossy(&id).into_owned();
            assert_eq!(is_valid_object_id(&text), allowed, "byte {b:#04x}");
        }
        assert!(!is_valid_object_id(""));
        assert!(!is_valid_object_id("*"));
        assert!(is_valid_object_id(&"a".repeat(MAX_OBJECT_ID_LEN)));
        assert!(!is_valid_object_id(&"a".repeat(MAX_OBJECT_ID_LEN + 1)));
        assert!(!is_valid_object_id("caf\u{e9}"));
    }

    #[test]
    fn parses_and_prints_every_subject_form() {
        for (text, printed) in [
            ("group:eng#member@user:alice", "group:eng#member@user:alice"),
            (
                "doc:d1#viewer@group:eng#member",
                "doc:d1#viewer@group:eng#member",
            ),
            ("doc:d1#viewer@user:*", "doc:d1#viewer@user:*"),
            ("doc:d1#viewer@user:tom#...", "doc:d1#viewer@user:tom"),
            (
                "tenant/doc:a=b+c/d#viewer@org/user:x|y",
                "tenant/doc:a=b+c/d#viewer@org/user:x|y",
            ),
        ] {
            assert_eq!(Tuple::parse(text).unwrap().to_string(), printed);
        }
    }

    #[test]
    fn borrowed_parsing_accepts_and_refuses_what_owned_parsing_does() {
        for text in [
            "doc:readme#viewer@user:alice",
            "doc:readme#viewer@group:eng#member",
            "doc:readme#viewer@group:eng#...",
            "doc:readme#viewer@user:*",
            "doc:readme#viewer@user:*#...",
            "doc:readme#viewer@user:*#member",
            "doc:readme#viewer@group:eng#",
            "doc:readme#viewer@group:eng##member",
            "doc:readme#viewer@group:eng#member#x",
            "doc:readme#viewer@user",
            "doc:readme@user:alice",
            "doc#viewer@user:alice",
            "doc:read me#viewer@user:alice",
            "Doc:readme#viewer@user:alice",
            "doc:readme#Viewer@user:alice",
            "doc:readme#viewer@user:al:ice",
            "doc:*#viewer@user:alice",
            "doc:readme#viewer@user:alice@x",
            "",
        ] {
            match (Tuple::parse(text), RawTuple::parse(text)) {
                (Ok(owned), Ok(raw)) => assert_eq!(raw.to_tuple(), owned, "{text}"),
                (Err(owned), Err(raw)) => assert_eq!(raw, owned, "{text}"),
                (owned, raw) => panic!("{text}: owned {owned:?}, borrowed {raw:?}"),
            }
        }
    }

    #[test]
    fn refuses_malformed_text() {
        for text in [
            "",
            "group:eng#member",
            "group:eng@user:alice",
            "group#member@user:alice",
            "Group:eng#member@user:alice",
            "group:e ng#member@user:alice",
            "group:*#member@user:alice",
            "group:eng#member@user:*#member",
            "group:eng#member@user:",
            "group:eng#m@user:alice",
        ] {
            assert!(Tuple::parse(text).is_err(), "{text} should be refused");
        }
        let long = format!("doc:{}#viewer@user:a", "x".repeat(1025));
        assert!(Tuple::parse(&long).is_err());
        let ok = format!("doc:{}#viewer@user:a", "x".repeat(1024));
        assert!(Tuple::parse(&ok).is_ok());
    }

    #[test]
    fn text_format_reports_lines() {
        let errors = parse_tuples("// c\n\ndoc:a#viewer@user:b\nbad\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 4);
    }
}
