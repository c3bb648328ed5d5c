//! Idea text as routing sees it: folded to lowercase ASCII Latin ([`protocol::text::fold`], the
//! fold the console's search uses too) for keyword matching and duplicate fingerprints, and with e-mail
//! addresses and phone numbers redacted for readers who may not see them.

use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

pub use protocol::text::fold;

/// The duplicate-detection fingerprint: SHA-256 (hex) of the folded text, so the same idea
/// typed in another case, spacing, punctuation or script has the same one.
pub fn fingerprint(text: &str) -> String {
    let digest = Sha256::digest(fold(text).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `keyword` (any script, any case) occurs in `folded_text` at a word start, so
/// `park` matches `parku` and `parkovi` but not `sparkle`.
pub fn has_keyword(folded_text: &str, keyword: &str) -> bool {
    let keyword = fold(keyword);
    if keyword.is_empty() {
        return false;
    }
    folded_text
        .match_indices(&keyword)
        .any(|(i, _)| i == 0 || folded_text.as_bytes()[i - 1] == b' ')
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+").expect("valid pattern")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"\+?\(?\d[\d\s/().-]{5,}\d").expect("valid pattern")
});

/// Digits a run needs to count as a phone number (years and house numbers have fewer).
const PHONE_DIGITS: usize = 8;

/// `text` with e-mail addresses replaced by `[e-mail]` and phone numbers (8 digits or more) by
/// `[phone]`.
pub fn redact(text: &str) -> String {
    let text = EMAIL.replace_all(text, "[e-mail]");
    PHONE
        .replace_all(&text, |c: &regex::Captures<'_>| {
            let run = &c[0];
            if run.chars().filter(char::is_ascii_digit).count() >= PHONE_DIGITS {
                "[phone]".to_owned()
            } else {
                run.to_owned()
            }
        })
        .into_owned()
}

/// Whether the text contains something [`redact`] would hide.
pub fn has_personal_data(text: &str) -> bool {
    redact(text) != text
}

/// The three-letter tracking-code prefix of a municipality: `Mostar` → `MOS`, `Žepče` → `ZEP`.
pub fn code_prefix(municipality: &str) -> String {
    let letters: String = fold(municipality)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(3)
        .collect();
    if letters.is_empty() {
        "IDE".to_owned()
    } else {
        letters.to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_joins_scripts_cases_and_spacing() {
        assert_eq!(fold("Потребна је боља расвјета!"), "potrebna je bolja rasvjeta");
        assert_eq!(fold("  Potrebna   JE bolja\trasvjeta."), "potrebna je bolja rasvjeta");
        assert_eq!(fold("Љубав, њива, џеп, ђак, ћуприја"), "ljubav njiva dzep djak cuprija");
        assert_eq!(fold("Žepče, Zavidovići, Đurđevdan"), "zepce zavidovici djurdjevdan");
        assert_eq!(fold("..."), "");
    }

    #[test]
    fn fingerprints_ignore_case_spacing_and_script() {
        let a = fingerprint("Потребна је боља расвјета на путу до школе.");
        assert_eq!(a, fingerprint("potrebna je  bolja RASVJETA na putu do škole"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint("Potrebna je bolja rasvjeta na putu do vrtića"));
    }

    #[test]
    fn keywords_match_at_word_starts_in_any_script() {
        let text = fold("Више клупа и хлада у градском парку");
        assert!(has_keyword(&text, "park"));
        assert!(has_keyword(&text, "PARKU"));
        assert!(has_keyword(&text, "klupa"));
        assert!(has_keyword(&text, "клуп"));
        assert!(has_keyword(&text, "gradskom parku"));
        assert!(!has_keyword(&text, "ark"));
        assert!(!has_keyword(&text, "rasvjeta"));
        assert!(!has_keyword(&text, " "));
    }

    #[test]
    fn personal_data_is_redacted() {
        assert_eq!(
            redact("Javite se na amra.h@mail.ba ili +387 61 123 456, hvala"),
            "Javite se na [e-mail] ili [phone], hvala"
        );
        assert_eq!(redact("zovite 061/123-456"), "zovite [phone]");
        assert_eq!(redact("U 2026. godini, 12 klupa"), "U 2026. godini, 12 klupa");
        assert!(has_personal_data("pišite na đ.š@primjer.ba"));
        assert!(!has_personal_data("Više klupa u parku"));
    }

    #[test]
    fn tracking_code_prefixes() {
        assert_eq!(code_prefix("Mostar"), "MOS");
        assert_eq!(code_prefix("Žepče"), "ZEP");
        assert_eq!(code_prefix("Novi Grad"), "NOV");
        assert_eq!(code_prefix("Бања Лука"), "BAN");
        assert_eq!(code_prefix("—"), "IDE");
    }
}
