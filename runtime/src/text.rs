//! Registry text made safe for a terminal: skill names, descriptions and
//! error texts come from strangers, and a control character in them (ESC
//! above all) would let any skill author clear the screen, retitle the
//! window or forge output lines. Every human-readable output passes its
//! registry-supplied text through here; JSON output keeps the exact values,
//! which JSON escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every C0 and C1 control character (and DEL) written as a
/// visible escape (`\e`, `\r`, `\n`, `\u{9b}`), so that it prints as text on
/// one line.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// As [`printable`], but line feeds and tabs stay: for text shown on its own
/// lines, such as a skill's whole description.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// At most `max` characters of `s`, ending in `…` when it was cut.
pub fn truncated(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((end, _)) => {
            let cut = s[..end]
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(end, |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..cut]))
        }
    }
}

fn is_control(c: char) -> bool {
    c.is_control() // C0, DEL and C1: U+0000..=U+001F, U+007F..=U+009F
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let keep = |c: char| keep_lines && (c == '\n' || c == '\t');
    if !s.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_control(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_print_as_text() {
        assert_eq!(
            printable("x\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "x\\e[2J\\e]0;pwned\\a"
        );
        assert_eq!(printable("a\r\u{1b}[Kforged"), "a\\r\\e[Kforged");
        // C1 controls: CSI (U+009B) starts a sequence on many terminals.
        assert_eq!(printable("\u{9b}31m\u{7f}"), "\\u{9b}31m\\u{7f}");
        assert_eq!(printable("two\nlines\ttab"), "two\\nlines\\ttab");
        assert_eq!(printable_lines("two\nlines\ttab\r"), "two\nlines\ttab\\r");
    }

    #[test]
    fn plain_text_is_borrowed_untouched() {
        let s = "Ünïcødé, emoji 🦀, quotes \"and\" back\\slashes";
        assert!(matches!(printable(s), Cow::Borrowed(t) if t == s));
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncated("abcdef", 10), "abcdef");
        assert_eq!(truncated("abcdef", 4), "abc…");
        assert_eq!(truncated("ééééé", 3), "éé…");
        assert_eq!(truncated("", 0), "");
    }

    proptest::proptest! {
        /// Whatever the input, the output has no control character at all.
        #[test]
        fn nothing_but_printable_text_remains(s in ".*") {
            proptest::prop_assert!(!printable(&s).chars().any(is_control));
            proptest::prop_assert!(
                !printable_lines(&s).chars().any(|c| is_control(c) && c != '\n' && c != '\t')
            );
        }
    }
}
