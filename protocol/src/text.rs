//! Text as matching sees it: Bosnian, Croatian and Serbian in either script folded to
//! lowercase ASCII Latin words, so `Đurđevdan`, `ĐURĐEVDAN` and `Ђурђевдан` compare equal. The
//! control plane's idea routing (keywords, duplicate fingerprints, municipality names) and the
//! console's search use this one function.

/// Lowercase ASCII Latin words separated by single spaces: Serbian Cyrillic is transliterated
/// (`љ` → `lj`), Latin diacritics dropped (`č` → `c`, `đ` → `dj`), anything but letters and
/// digits becomes a word break.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        let mapped = latin(c);
        if mapped.is_empty() && !c.is_alphanumeric() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if mapped.is_empty() {
            // A letter of another script: kept as it is.
            out.push(c);
        } else {
            out.push_str(mapped);
        }
    }
    out
}

/// One lowercase character in folded form; empty for anything else.
fn latin(c: char) -> &'static str {
    const ASCII: [&str; 36] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l",
        "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
    ];
    match c {
        '0'..='9' => ASCII[c as usize - '0' as usize],
        'a'..='z' => ASCII[10 + c as usize - 'a' as usize],
        // Serbian Cyrillic (Vuk's alphabet), as the Latin script writes it, then folded.
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'ђ' => "dj",
        'е' => "e",
        'ж' => "z",
        'з' => "z",
        'и' => "i",
        'ј' => "j",
        'к' => "k",
        'л' => "l",
        'љ' => "lj",
        'м' => "m",
        'н' => "n",
        'њ' => "nj",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'ћ' => "c",
        'у' => "u",
        'ф' => "f",
        'х' => "h",
        'ц' => "c",
        'ч' => "c",
        'џ' => "dz",
        'ш' => "s",
        // Latin letters of the region's languages.
        'č' | 'ć' => "c",
        'đ' => "dj",
        'š' => "s",
        'ž' => "z",
        'á' | 'à' | 'â' | 'ä' => "a",
        'é' | 'è' | 'ê' | 'ë' => "e",
        'í' | 'ì' | 'î' | 'ï' => "i",
        'ó' | 'ò' | 'ô' | 'ö' => "o",
        'ú' | 'ù' | 'û' | 'ü' => "u",
        _ => "",
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
    fn every_letter_of_both_alphabets_folds_to_ascii() {
        // Gaj's Latin alphabet and Vuk's Cyrillic alphabet, letter for letter, both cases.
        let latin = "a b c č ć d dž đ e f g h i j k l lj m n nj o p r s š t u v z ž";
        let cyrillic = "а б ц ч ћ д џ ђ е ф г х и ј к л љ м н њ о п р с ш т у в з ж";
        let ascii = "a b c c c d dz dj e f g h i j k l lj m n nj o p r s s t u v z z";
        assert_eq!(fold(latin), ascii);
        assert_eq!(fold(&latin.to_uppercase()), ascii);
        assert_eq!(fold(cyrillic), ascii);
        assert_eq!(fold(&cyrillic.to_uppercase()), ascii);
        for (upper, folded) in [
            ("Đ", "dj"),
            ("Ђ", "dj"),
            ("Љ", "lj"),
            ("Њ", "nj"),
            ("Џ", "dz"),
            ("DŽ", "dz"),
            ("Ћ", "c"),
            ("Ч", "c"),
            ("Ж", "z"),
            ("Ш", "s"),
        ] {
            assert_eq!(fold(upper), folded, "{upper}");
        }
        assert!(fold("Ђурђевдан у Шапцу, Ćiro — 1.4.2").is_ascii());
    }

    #[test]
    fn ids_and_versions_stay_searchable() {
        assert_eq!(fold("mostar-01"), "mostar 01");
        assert_eq!(fold("FW 1.4.2"), "fw 1 4 2");
        // Other scripts are kept, lowercased.
        assert_eq!(fold("Αθήνα"), "αθήνα");
    }
}
