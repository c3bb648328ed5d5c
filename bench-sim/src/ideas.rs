//! Citizens' ideas typed at a bench's kiosk (`benches/{id}/ideas`), and waiting for the
//! server's `ideas/ack`, retrying with the same `idea_id` until it comes.
//!
//! Provisional: the idea-routing issue owns the payload; the simulator only sends ideas when
//! asked to (`--ideas`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `{"v":1,"idea_id":"<uuid>","ts":"…","text":"…","category":"environment","lang":"bs"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idea {
    pub v: u32,
    /// Chosen by the bench; a retry carries the same id, so the server can de-duplicate.
    pub idea_id: Uuid,
    pub ts: DateTime<Utc>,
    pub text: String,
    pub category: String,
    /// BCP 47 tag: `bs`, `hr`, `sr-Latn`, `sr-Cyrl`, `en`.
    pub lang: String,
}

/// (lang, category, text).
const CORPUS: &[(&str, &str, &str)] = &[
    (
        "bs",
        "environment",
        "Trebamo više kanti za smeće i kontejnera za reciklažu u parku.",
    ),
    (
        "bs",
        "infrastructure",
        "Molimo postavite rasvjetu na pješačkoj stazi uz rijeku.",
    ),
    (
        "bs",
        "youth",
        "Predlažem besplatne radionice programiranja za mlade u domu kulture.",
    ),
    ("bs", "environment", "Organizujmo akciju sadnje drveća u našem naselju."),
    (
        "bs",
        "infrastructure",
        "Autobusna stanica kod škole nema nadstrešnicu, djeca čekaju na kiši.",
    ),
    ("hr", "youth", "Trebalo bi obnoviti dječje igralište pokraj škole."),
    ("hr", "culture", "Predlažem ljetno kino na otvorenom na glavnom trgu."),
    (
        "hr",
        "infrastructure",
        "Više biciklističkih staza i stalaka za bicikle, molim.",
    ),
    (
        "hr",
        "social",
        "Središte grada treba biti pristupačnije osobama s invaliditetom.",
    ),
    (
        "sr-Latn",
        "environment",
        "Potrebno je više klupa i hlada u gradskom parku.",
    ),
    (
        "sr-Latn",
        "culture",
        "Predlažem da se svakog mjeseca organizuje sajam domaćih proizvoda.",
    ),
    ("sr-Latn", "social", "Treba nam besplatan internet u domu zdravlja."),
    (
        "sr-Cyrl",
        "infrastructure",
        "Потребна је боља расвјета на путу до школе.",
    ),
    (
        "sr-Cyrl",
        "youth",
        "Предлажем више културних и спортских догађаја за младе.",
    ),
    (
        "sr-Cyrl",
        "environment",
        "Ријека треба чишћење, на обали има пуно пластике.",
    ),
    (
        "en",
        "environment",
        "Please add shade and a drinking fountain near the playground.",
    ),
    (
        "en",
        "culture",
        "A weekly farmers' market on the square would bring people together.",
    ),
    (
        "en",
        "infrastructure",
        "The USB ports on this bench should charge phones faster.",
    ),
    (
        "en",
        "tourism",
        "Put up a map with walking routes and local sights for visitors.",
    ),
];

impl Idea {
    /// A new idea drawn from the corpus, with an id from `rng` (so runs are reproducible).
    pub fn draft(rng: &mut impl Rng, ts: DateTime<Utc>) -> Self {
        let (lang, category, text) = CORPUS[rng.random_range(0..CORPUS.len())];
        Self {
            v: protocol::PAYLOAD_VERSION,
            idea_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            ts,
            text: text.to_owned(),
            category: category.to_owned(),
            lang: lang.to_owned(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The `idea_id` an `ideas/ack` payload acknowledges, whatever else it carries.
pub fn acked_idea_id(payload: &[u8]) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Ack {
        idea_id: Uuid,
    }
    serde_json::from_slice::<Ack>(payload).ok().map(|a| a.idea_id)
}

/// The default wait before the first retry; it doubles with each attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Attempts in all before an idea is given up.
pub const MAX_ATTEMPTS: u32 = 6;

/// The wait after attempt `attempt` (1-based) before the next one, or `None` to give up.
pub fn retry_after(first: Duration, attempt: u32) -> Option<Duration> {
    (attempt < MAX_ATTEMPTS).then(|| first.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn drafts_are_reproducible_and_cover_scripts() {
        let ts = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut a = StdRng::seed_from_u64(1);
        let mut b = StdRng::seed_from_u64(1);
        let xs: Vec<_> = (0..200).map(|_| Idea::draft(&mut a, ts)).collect();
        let ys: Vec<_> = (0..200).map(|_| Idea::draft(&mut b, ts)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|i| i.lang == "sr-Cyrl" && i.text.contains('ј')));
        assert!(xs.iter().any(|i| i.lang == "bs" && i.text.contains('ž')));
        assert!(xs.iter().any(|i| i.lang == "en"));
        assert_eq!(xs[0].idea_id.get_version_num(), 4);
        assert_ne!(xs[0].idea_id, xs[1].idea_id);
    }

    #[test]
    fn wire_format_and_ack() {
        let mut rng = StdRng::seed_from_u64(2);
        let idea = Idea::draft(&mut rng, "2026-11-26T10:00:00Z".parse().unwrap());
        let json: serde_json::Value = serde_json::from_slice(&idea.to_json()).unwrap();
        for key in ["v", "idea_id", "ts", "text", "category", "lang"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        let ack = format!(r#"{{"v":1,"idea_id":"{}","status":"received"}}"#, idea.idea_id);
        assert_eq!(acked_idea_id(ack.as_bytes()), Some(idea.idea_id));
        assert_eq!(acked_idea_id(b"{}"), None);
    }

    #[test]
    fn retries_back_off_then_stop() {
        assert_eq!(retry_after(FIRST_RETRY, 1), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(FIRST_RETRY, 2), Some(Duration::from_secs(20)));
        assert_eq!(retry_after(FIRST_RETRY, 5), Some(Duration::from_secs(160)));
        assert_eq!(retry_after(FIRST_RETRY, 6), None);
    }
}
