//! Group names and descriptions: what a valid one is, the forms names are compared in
//! (equal, and confusable), and the order groups are listed in.
//!
//! Unicode's tables come from crates, never from here: normalization
//! (`unicode-normalization`), full case folding (`caseless`), grapheme clusters
//! (`unicode-segmentation`), general categories (`unicode-properties`) and confusable
//! skeletons (`unicode-security`, UTS #39).

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_segmentation::UnicodeSegmentation;

use super::error::Invalid;

/// The longest group name, in user-perceived characters (grapheme clusters) after
/// trimming (SPEC 6.2).
pub const MAX_NAME_CHARS: usize = 50;

/// The most bytes (UTF-8) a group name may take after trimming.
pub const MAX_NAME_BYTES: usize = 200;

/// The most code points one user-perceived character of a name may carry, so a letter
/// under dozens of combining marks does not pass as one character.
pub const MAX_CODE_POINTS_PER_CHAR: usize = 8;

/// The longest group description, in Unicode characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A group name checked: required; no control characters and no invisible format
/// characters (Unicode category Cf: zero-width characters, byte-order marks, bidi
/// controls); 1 to [`MAX_NAME_CHARS`] user-perceived characters and at most
/// [`MAX_NAME_BYTES`] bytes after trimming. Returns it trimmed.
pub fn valid_name(name: Option<&str>) -> Result<String, Invalid> {
    let name = name.map(str::trim).unwrap_or_default();
    for c in name.chars() {
        match c.general_category() {
            GeneralCategory::Control => return Err(Invalid::NameControl),
            GeneralCategory::Format => {
                return Err(Invalid::NameInvisible {
                    code_point: u32::from(c),
                })
            }
            _ => {}
        }
    }
    if name.is_empty() || fold(name).trim().is_empty() {
        return Err(Invalid::NameRequired);
    }
    let mut chars = 0;
    for grapheme in name.graphemes(true) {
        chars += 1;
        if grapheme.chars().count() > MAX_CODE_POINTS_PER_CHAR {
            return Err(Invalid::NameOverloaded);
        }
    }
    if chars > MAX_NAME_CHARS {
        return Err(Invalid::NameTooLong {
            name: name.to_string(),
            chars,
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Invalid::NameTooManyBytes { bytes: name.len() });
    }
    Ok(name.to_string())
}

/// A description checked (at most [`MAX_DESCRIPTION_CHARS`] characters; no NUL or
/// control characters but newline and tab), trimmed.
pub fn valid_description(description: Option<&str>) -> Result<String, Invalid> {
    let description = description.map(str::trim).unwrap_or_default();
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Invalid::DescriptionControl);
    }
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::DescriptionTooLong { chars });
    }
    Ok(description.to_string())
}

/// The form names are compared in: trimmed, NFKC, full case folding, NFKC again (folding
/// can denormalize). `Straße` and `STRASSE`, a composed and a decomposed `Café`, `ﬁ` and
/// `fi` fold alike. Two names with one folded form cannot coexist in a workspace.
pub fn fold(name: &str) -> String {
    let normalized: String = name.trim().nfkc().collect();
    caseless::default_case_fold_str(&normalized)
        .nfkc()
        .collect()
}

/// The confusable skeleton of a name (UTS #39, over its folded form): equal for names a
/// reader could take for each other, such as `Engineering` with a Latin or a Cyrillic `E`.
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(&fold(name)).collect()
}

/// Sorts by name ignoring case, then by name and id, so equal-looking names keep a stable
/// order.
pub(crate) fn sort_by_name<T>(items: &mut [T], key: impl Fn(&T) -> (&str, &str)) {
    items.sort_by(|a, b| {
        let (a_name, a_id) = key(a);
        let (b_name, b_id) = key(b);
        (a_name.to_lowercase(), a_name, a_id).cmp(&(b_name.to_lowercase(), b_name, b_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_12_names_that_are_the_same_fold_alike() {
        for (a, b) in [
            ("Engineering", "engineering"),
            ("Café", "Cafe\u{301}"),
            ("Straße", "STRASSE"),
            ("ﬁnance", "finance"),
            ("  Eng  ", "eng"),
        ] {
            assert_eq!(fold(a), fold(b), "{a:?} vs {b:?}");
        }
        assert_ne!(fold("Engineering"), fold("Engineers"));
    }

    #[test]
    fn issue_12_confusable_names_share_a_skeleton() {
        let cyrillic = "\u{415}ngineering";
        assert_ne!(fold(cyrillic), fold("Engineering"));
        assert_eq!(skeleton(cyrillic), skeleton("Engineering"));
        assert_ne!(skeleton("Sales"), skeleton("Engineering"));
    }

    #[test]
    fn issue_12_invisible_control_and_overloaded_names_are_refused() {
        for (name, expected) in [
            (
                "Engi\u{200B}neering",
                Invalid::NameInvisible { code_point: 0x200B },
            ),
            (
                "\u{FEFF}Engineering",
                Invalid::NameInvisible { code_point: 0xFEFF },
            ),
            (
                "Engineering\u{200D}",
                Invalid::NameInvisible { code_point: 0x200D },
            ),
            (
                "\u{202E}gnireenignE",
                Invalid::NameInvisible { code_point: 0x202E },
            ),
            ("\u{200B}", Invalid::NameInvisible { code_point: 0x200B }),
            ("Eng\u{0}", Invalid::NameControl),
            ("Eng\nineering", Invalid::NameControl),
            ("   ", Invalid::NameRequired),
            (
                &format!("Z{}", "\u{301}".repeat(49)),
                Invalid::NameOverloaded,
            ),
            (
                &"x".repeat(51),
                Invalid::NameTooLong {
                    name: "x".repeat(51),
                    chars: 51,
                },
            ),
        ] {
            assert_eq!(valid_name(Some(name)), Err(expected), "{name:?}");
        }
    }

    #[test]
    fn issue_12_length_counts_what_a_reader_sees() {
        let decomposed = "e\u{301}".repeat(26);
        assert_eq!(
            valid_name(Some(&decomposed)).as_deref(),
            Ok(decomposed.as_str())
        );
        assert!(valid_name(Some(&"x".repeat(50))).is_ok());
        assert!(valid_name(Some(&"日".repeat(50))).is_ok());
        assert!(
            valid_name(Some(&"\u{1F600}".repeat(50))).is_ok(),
            "200 bytes is the cap"
        );
        assert!(matches!(
            valid_name(Some(&"\u{1F600}\u{FE0F}".repeat(50))),
            Err(Invalid::NameTooManyBytes { bytes: 350 })
        ));
    }

    #[test]
    fn issue_12_descriptions_refuse_control_characters_but_newline_and_tab() {
        assert!(valid_description(Some("line one\n\tline two")).is_ok());
        for bad in ["nul\u{0}here", "bell\u{7}", "esc\u{1b}[31m"] {
            assert_eq!(
                valid_description(Some(bad)),
                Err(Invalid::DescriptionControl),
                "{bad:?}"
            );
        }
    }
}
