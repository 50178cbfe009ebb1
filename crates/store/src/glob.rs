//! Glob-style matching as Redis's KEYS, SCAN MATCH, PSUBSCRIBE and CONFIG GET understand it:
//! `*`, `?`, `[abc]`, `[^abc]`, `[a-z]`, and `\` to escape. Every token other than `*` consumes
//! exactly one byte, so the greedy algorithm that backtracks only to the last `*` is exact and
//! runs in O(pattern × subject) time: no pattern can make it exponential.

#[derive(Debug)]
enum Token {
    Star,
    Any,
    Byte(u8),
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug)]
enum ClassItem {
    Byte(u8),
    Range(u8, u8),
}

fn fold(byte: u8, fold_case: bool) -> u8 {
    if fold_case {
        byte.to_ascii_lowercase()
    } else {
        byte
    }
}

fn tokenize(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut index = 0;
    while index < pattern.len() {
        match pattern[index] {
            b'*' => {
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
            }
            b'?' => tokens.push(Token::Any),
            b'\\' if index + 1 < pattern.len() => {
                index += 1;
                tokens.push(Token::Byte(pattern[index]));
            }
            b'[' => {
                index += 1;
                let negated = pattern.get(index) == Some(&b'^');
                if negated {
                    index += 1;
                }
                let mut items = Vec::new();
                while index < pattern.len() && pattern[index] != b']' {
                    if pattern[index] == b'\\' && index + 1 < pattern.len() {
                        index += 1;
                        items.push(ClassItem::Byte(pattern[index]));
                    } else if index + 2 < pattern.len() && pattern[index + 1] == b'-' {
                        let (low, high) = (pattern[index], pattern[index + 2]);
                        items.push(ClassItem::Range(low.min(high), low.max(high)));
                        index += 2;
                    } else {
                        items.push(ClassItem::Byte(pattern[index]));
                    }
                    index += 1;
                }
                tokens.push(Token::Class { negated, items });
            }
            byte => tokens.push(Token::Byte(byte)),
        }
        index += 1;
    }
    tokens
}

fn token_matches(token: &Token, byte: u8, fold_case: bool) -> bool {
    match token {
        Token::Star => true,
        Token::Any => true,
        Token::Byte(expected) => fold(*expected, fold_case) == fold(byte, fold_case),
        Token::Class { negated, items } => {
            let byte = fold(byte, fold_case);
            let found = items.iter().any(|item| match *item {
                ClassItem::Byte(expected) => fold(expected, fold_case) == byte,
                ClassItem::Range(low, high) => {
                    let (low, high) = (fold(low, fold_case), fold(high, fold_case));
                    (low.min(high)..=low.max(high)).contains(&byte)
                }
            });
            found != *negated
        }
    }
}

/// Redis refuses to match through more than this many `*` (its recursion limit): a pattern
/// with more stars that are not its last token matches nothing.
pub const STARS_MAX: usize = 1000;

/// A compiled pattern, for matching many subjects.
pub struct Pattern {
    tokens: Vec<Token>,
    fold_case: bool,
    match_all: bool,
    matches_nothing: bool,
}

impl Pattern {
    pub fn new(pattern: &[u8], fold_case: bool) -> Self {
        let tokens = tokenize(pattern);
        let match_all = matches!(tokens.as_slice(), [Token::Star]);
        let inner_stars = tokens
            .iter()
            .enumerate()
            .filter(|(index, token)| matches!(token, Token::Star) && index + 1 < tokens.len())
            .count();
        Pattern {
            tokens,
            fold_case,
            match_all,
            matches_nothing: inner_stars > STARS_MAX,
        }
    }

    /// Whether the pattern is `*` (matches everything).
    pub fn matches_everything(&self) -> bool {
        self.match_all
    }

    pub fn matches(&self, subject: &[u8]) -> bool {
        if self.match_all {
            return true;
        }
        if self.matches_nothing {
            return false;
        }
        let tokens = &self.tokens;
        let (mut token_index, mut subject_index) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            if token_index < tokens.len() {
                if let Token::Star = tokens[token_index] {
                    backtrack = Some((token_index, subject_index));
                    token_index += 1;
                    continue;
                }
                if subject_index < subject.len()
                    && token_matches(&tokens[token_index], subject[subject_index], self.fold_case)
                {
                    token_index += 1;
                    subject_index += 1;
                    continue;
                }
            } else if subject_index == subject.len() {
                return true;
            }
            match backtrack {
                Some((star, start)) if start < subject.len() => {
                    backtrack = Some((star, start + 1));
                    token_index = star + 1;
                    subject_index = start + 1;
                }
                _ => return false,
            }
        }
    }
}

/// Whether `subject` matches `pattern`.
pub fn glob_match(pattern: &[u8], subject: &[u8], fold_case: bool) -> bool {
    Pattern::new(pattern, fold_case).matches(subject)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_semantics() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"*", b"", true),
            (b"*", b"anything", true),
            (b"h?llo", b"hello", true),
            (b"h?llo", b"hllo", false),
            (b"h*llo", b"heeeello", true),
            (b"h[ae]llo", b"hallo", true),
            (b"h[ae]llo", b"hillo", false),
            (b"h[^e]llo", b"hallo", true),
            (b"h[^e]llo", b"hello", false),
            (b"h[a-b]llo", b"hbllo", true),
            (b"h[b-a]llo", b"hallo", true),
            (b"h\\*llo", b"h*llo", true),
            (b"h\\*llo", b"hello", false),
            (b"a*b*c", b"axxbyyc", true),
            (b"a*b*c", b"axxbyy", false),
            (b"*a", b"ba", true),
            (b"key:*", b"key:1", true),
            (b"[", b"x", false),
        ];
        for &(pattern, subject, expected) in cases {
            assert_eq!(
                glob_match(pattern, subject, false),
                expected,
                "{:?} ~ {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(subject)
            );
        }
        assert!(glob_match(b"HELLO", b"hello", true));
    }

    #[test]
    fn more_stars_than_redis_recurses_through_match_nothing() {
        let subject = vec![b'a'; 5000];
        assert!(!glob_match(&b"*?".repeat(1001), &subject, false));
        assert!(glob_match(&b"*?".repeat(1000), &subject, false));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let subject = vec![b'a'; 10_000];
        let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!glob_match(pattern, &subject, false));
    }
}
