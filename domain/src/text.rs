//! Which characters free text from a client may hold. The rule behind `customerId` and the
//! cancel `reason` (DESIGN §2): no control characters (general category Cc: NUL, ESC, DEL,
//! newlines, C1), no line or paragraph separators (Zl, Zp: line breaks to a log or a console
//! as much as `\n` is), and no invisible format characters (Cf). Cf holds the bidirectional
//! overrides and isolates (U+202A..U+202E, U+2066..U+2069) that reorder what a console or a
//! log viewer shows ("Trojan Source"), and zero-width characters (U+200B, U+2060, U+FEFF) that
//! make two different ids look the same. An order service has no use for any of them.
//!
//! The one exception is free prose: the zero-width non-joiner and joiner (U+200C, U+200D) are
//! part of ordinary spelling in Persian and several Indic scripts and of emoji sequences; they
//! reorder nothing, so a `reason` may hold them. Identifiers never may.
//!
//! No crate in the build knows Unicode general categories (`char::is_control` is Cc only), so
//! Cf is the explicit table below, from Unicode 15.1 (`DerivedGeneralCategory.txt`). A code
//! point a later Unicode version makes Cf is accepted until the table is updated.

/// Unicode general category Cf (Format), Unicode 15.1, as inclusive ranges in order.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark (bidi)
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound / piastre mark above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, ZWNJ, ZWJ, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidi embeddings and overrides
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206F}'),   // bidi isolates, deprecated format characters
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (BOM)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol beam and phrase controls
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
];

/// Whether `c` is in general category Cf.
pub fn is_format(c: char) -> bool {
    FORMAT_CHARACTERS
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Where the text is going: an identifier admits no format character, prose admits the
/// joiners (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Identifier,
    Prose,
}

/// `Ok` if every character of `raw` may appear in text of this kind; otherwise the message
/// for the field error, naming the first refused code point so a client can find it.
pub fn check(raw: &str, kind: TextKind) -> Result<(), String> {
    let Some((index, refused)) = raw.chars().enumerate().find(|&(_, c)| is_refused(c, kind)) else {
        return Ok(());
    };
    let what = if refused.is_control() || matches!(refused, '\u{2028}' | '\u{2029}') {
        "control characters or line breaks"
    } else {
        "invisible formatting characters"
    };
    Err(format!(
        "must not contain {what} (U+{:04X} at character {index})",
        u32::from(refused)
    ))
}

fn is_refused(c: char, kind: TextKind) -> bool {
    let joiner = matches!(c, '\u{200C}' | '\u{200D}');
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || (is_format(c) && !(joiner && kind == TextKind::Prose))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_table_is_sorted_and_disjoint_so_binary_search_finds_every_range() {
        for pair in FORMAT_CHARACTERS.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
        for &(first, last) in FORMAT_CHARACTERS {
            assert!(is_format(first) && is_format(last), "{first:?}..{last:?}");
        }
    }

    #[test]
    fn format_characters_are_the_invisible_ones_not_letters_or_spaces() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{2066}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            assert!(is_format(c), "U+{:04X}", u32::from(c));
        }
        for c in [
            'a',
            ' ',
            'é',
            '\u{00A0}',
            '\u{2065}',
            '\u{202F}',
            '😀',
            '\u{10FFFF}',
        ] {
            assert!(!is_format(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_message_names_the_first_refused_code_point() {
        assert_eq!(
            check("ab\u{202E}c\u{0}", TextKind::Identifier),
            Err("must not contain invisible formatting characters (U+202E at character 2)".into())
        );
        assert_eq!(
            check("é\u{1B}", TextKind::Prose),
            Err(
                "must not contain control characters or line breaks (U+001B at character 1)".into()
            )
        );
        assert!(check("line\u{2028}break", TextKind::Prose).is_err());
    }

    #[test]
    fn joiners_are_prose_only() {
        // Persian "I want": the ZWNJ is part of the spelling.
        let persian = "می\u{200C}خواهم";
        assert!(check(persian, TextKind::Prose).is_ok());
        assert!(check("👩\u{200D}💻", TextKind::Prose).is_ok());
        assert!(check(persian, TextKind::Identifier).is_err());
        assert!(check("a\u{200B}b", TextKind::Prose).is_err());
    }

    /// A control or format character anywhere.
    fn refused_char() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>().prop_filter("Cc", |c| c.is_control()),
            (0..FORMAT_CHARACTERS.len()).prop_flat_map(|i| {
                let (first, last) = FORMAT_CHARACTERS[i];
                (u32::from(first)..=u32::from(last))
                    .prop_map(|c| char::from_u32(c).expect("the table holds scalar values"))
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_text_with_a_control_or_format_character_is_refused(
            before in ".{0,20}", refused in refused_char(), after in ".{0,20}",
        ) {
            let raw = format!("{before}{refused}{after}");
            prop_assert!(check(&raw, TextKind::Identifier).is_err(), "{raw:?}");
            // As prose, only a joiner may pass, and only among otherwise acceptable text.
            let joiner = matches!(refused, '\u{200C}' | '\u{200D}');
            let rest_ok = check(&format!("{before}{after}"), TextKind::Prose).is_ok();
            prop_assert_eq!(check(&raw, TextKind::Prose).is_ok(), joiner && rest_ok);
        }

        #[test]
        fn letters_digits_punctuation_and_spaces_are_accepted(raw in "[\\p{L}\\p{N}\\p{P}\\p{S} ]{0,40}") {
            prop_assert!(check(&raw, TextKind::Identifier).is_ok(), "{raw:?}");
        }
    }
}
