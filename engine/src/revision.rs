//! Revisions, their opaque tokens, and the consistency a read asks for.

use crate::error::TokenError;

/// The number of committed writes a state reflects; increases by one per write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub u64);

const TOKEN_PREFIX: &str = "pb1.";

impl Revision {
    /// The opaque token (`zedToken`) naming this revision.
    pub fn token(self) -> String {
        format!("{TOKEN_PREFIX}{}", self.0)
    }

    /// Reads a token made by [`Revision::token`].
    pub fn from_token(token: &str) -> Result<Revision, TokenError> {
        token
            .strip_prefix(TOKEN_PREFIX)
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .map(Revision)
            .ok_or_else(|| TokenError::Malformed {
                token: token.to_string(),
            })
    }
}

/// A value and the revision it was answered at: the shape of every engine answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    /// What was asked for.
    pub value: T,
    /// The revision the whole answer reflects.
    pub revision: Revision,
}

impl<T> Answer<T> {
    /// The same revision with `f` applied to the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            revision: self.revision,
        }
    }
}

/// How fresh the data answering a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Whatever the engine has; here always the newest committed revision.
    #[default]
    MinimizeLatency,
    /// At least the revision of the token.
    AtLeastAsFresh(Revision),
    /// The newest committed revision.
    FullyConsistent,
    /// Exactly this revision; only honoured when it is the newest.
    AtExactSnapshot(Revision),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        assert_eq!(
            Revision::from_token(&Revision(42).token()).unwrap(),
            Revision(42)
        );
        for bad in [
            "",
            "pb1.",
            "pb1.x",
            "42",
            "pb1.-1",
            "pb1.99999999999999999999999",
        ] {
            assert!(Revision::from_token(bad).is_err(), "{bad}");
        }
    }
}
