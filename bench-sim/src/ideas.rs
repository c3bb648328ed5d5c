//! Citizens' ideas typed at a bench's kiosk (`benches/{id}/ideas`), and what a kiosk does with
//! the server's answer on `ideas/ack`: show the tracking code, send again later, or give up.
//! Without an answer it re-sends the same `idea_id` with a doubling wait.

use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::idea::{AckStatus, Contact, IdeaAck, IdeaSubmission};
use rand::Rng;
use uuid::Uuid;

/// Whether simulated citizens leave ideas at the kiosks, and how often at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdeaPace {
    /// No ideas; the bench does not subscribe to `ideas/ack` either.
    #[default]
    Off,
    /// As the model drafts them: about 15 % of kiosk sessions, sped up with the fleet's `speed`.
    Modelled,
    /// As modelled, but at least this long apart (real time) per bench; ideas drafted sooner are
    /// not written. At speed 60 a busy bench drafts one every two minutes or so.
    AtMostEvery(Duration),
}

impl IdeaPace {
    pub fn is_on(self) -> bool {
        self != Self::Off
    }
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

/// Example contacts; `example.org` and the 555 block so nothing reaches a real person.
const EMAILS: &[&str] = &["amra.h@example.org", "ivan.k@example.org", "milica.p@example.org"];
const PHONES: &[&str] = &["+387 61 555 014", "+387 65 555 207", "063/555-319"];

/// A new idea drawn from the corpus, with an id from `rng` (so runs are reproducible).
///
/// One in five carries a contact with consent; one in ten has a phone number or an e-mail
/// address inside the text (half of those with consent, half without, so the server's
/// redaction shows).
pub fn draft(rng: &mut impl Rng, ts: DateTime<Utc>) -> IdeaSubmission {
    let (lang, category, text) = CORPUS[rng.random_range(0..CORPUS.len())];
    let idea_id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let (email, phone) = (
        EMAILS[rng.random_range(0..EMAILS.len())],
        PHONES[rng.random_range(0..PHONES.len())],
    );
    // 0-3: a contact; 3-4: personal data in the text (3 with a contact, 4 without).
    let roll = rng.random_range(0..20u32);
    let contact = (roll < 4).then(|| Contact {
        email: (roll % 2 == 0).then(|| email.to_owned()),
        phone: (roll % 2 == 1).then(|| phone.to_owned()),
        consent: true,
    });
    let text = match roll {
        3 => format!("{text} {phone}"),
        4 => format!("{text} {email}"),
        _ => text.to_owned(),
    };
    IdeaSubmission {
        v: protocol::PAYLOAD_VERSION,
        idea_id: idea_id.to_string(),
        ts,
        text,
        category: category.to_owned(),
        lang: lang.to_owned(),
        contact,
    }
}

/// An `ideas/ack` payload, and the id of the idea it answers in the form [`draft`] writes
/// (lowercase, hyphenated).
pub fn read_ack(payload: &[u8]) -> Option<(String, IdeaAck)> {
    let ack = IdeaAck::decode(payload).ok()?;
    let id = Uuid::parse_str(&ack.idea_id).ok()?;
    Some((id.to_string(), ack))
}

/// What the kiosk does with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Stored: show the citizen the code and forget the idea.
    Done {
        tracking_code: Option<String>,
        duplicate: bool,
    },
    /// Not stored yet: send the same idea again after this long.
    RetryIn(Duration),
    /// Refused for good: re-sending will not help.
    GiveUp { reason: String },
}

/// The longest wait before sending a rate-limited idea again.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// What to do with `ack`, for an idea that has been refused as rate limited `limited` times
/// before. A rate-limited idea waits as long as the server says (`retry_after_s`, or older
/// servers' reason text `send again in 118 s`) or, without a hint, `first` doubling with each
/// refusal, at most [`MAX_RATE_LIMIT_WAIT`].
pub fn outcome(ack: &IdeaAck, first: Duration, limited: u32) -> AckOutcome {
    match ack.status {
        AckStatus::Received | AckStatus::Duplicate => AckOutcome::Done {
            tracking_code: ack.tracking_code.clone(),
            duplicate: ack.status == AckStatus::Duplicate,
        },
        AckStatus::RateLimited => {
            let backoff = first.saturating_mul(2u32.saturating_pow(limited.min(16)));
            let wait = ack
                .retry_after_s
                .map(Duration::from_secs)
                .or_else(|| ack.reason.as_deref().and_then(hinted_wait))
                .unwrap_or(backoff);
            AckOutcome::RetryIn(wait.min(MAX_RATE_LIMIT_WAIT).max(first))
        }
        AckStatus::Invalid => AckOutcome::GiveUp {
            reason: ack.reason.clone().unwrap_or_else(|| "no reason given".to_owned()),
        },
    }
}

/// The wait a reason such as `too many ideas from this bench; send again in 118 s` asks for.
pub fn hinted_wait(reason: &str) -> Option<Duration> {
    let (_, after) = reason.rsplit_once(" in ")?;
    let secs = after.strip_suffix(" s").or_else(|| after.strip_suffix('s'))?.trim();
    secs.parse::<u64>().ok().map(Duration::from_secs)
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

    const TS: &str = "2026-11-26T10:00:00Z";

    fn drafts(seed: u64, n: usize) -> Vec<IdeaSubmission> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| draft(&mut rng, TS.parse().unwrap())).collect()
    }

    #[test]
    fn drafts_are_reproducible_valid_and_cover_scripts() {
        let xs = drafts(1, 400);
        assert_eq!(xs, drafts(1, 400));
        assert_ne!(xs, drafts(2, 400));
        for x in &xs {
            x.validate().unwrap_or_else(|e| panic!("{x:?}: {}", e.detail));
            IdeaSubmission::decode(&x.to_json()).unwrap();
        }
        assert!(xs.iter().any(|i| i.lang == "sr-Cyrl" && i.text.contains('ј')));
        assert!(xs.iter().any(|i| i.lang == "bs" && i.text.contains('ž')));
        assert!(xs.iter().any(|i| i.lang == "en"));
        let id = Uuid::parse_str(&xs[0].idea_id).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(xs[0].idea_id, id.to_string(), "lowercase hyphenated");
        assert_ne!(xs[0].idea_id, xs[1].idea_id);
    }

    #[test]
    fn about_one_in_five_has_a_contact_and_one_in_ten_personal_data_in_the_text() {
        let xs = drafts(3, 2000);
        let with_contact: Vec<_> = xs.iter().filter_map(|x| x.contact.as_ref()).collect();
        assert!((320..480).contains(&with_contact.len()), "{}", with_contact.len());
        assert!(
            with_contact
                .iter()
                .all(|c| c.consent && (c.email.is_some() != c.phone.is_some()))
        );
        let in_text: Vec<_> = xs
            .iter()
            .filter(|x| x.text.contains("@example.org") || x.text.contains("555"))
            .collect();
        assert!((140..260).contains(&in_text.len()), "{}", in_text.len());
        let consented = in_text.iter().filter(|x| x.contact.is_some()).count();
        assert!(
            consented > 0 && consented < in_text.len(),
            "{consented} of {}",
            in_text.len()
        );
    }

    #[test]
    fn wire_format_matches_the_protocol() {
        let x = drafts(4, 1).remove(0);
        let json: serde_json::Value = serde_json::from_slice(&x.to_json()).unwrap();
        for key in ["v", "idea_id", "ts", "text", "category", "lang"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert_eq!(json["v"], 1);
        assert_eq!(json["ts"], TS);
    }

    fn ack(status: AckStatus, code: Option<&str>, reason: Option<&str>) -> IdeaAck {
        IdeaAck {
            v: 1,
            idea_id: "5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10".into(),
            tracking_code: code.map(Into::into),
            status,
            reason: reason.map(Into::into),
            retry_after_s: None,
        }
    }

    #[test]
    fn acks_are_read_with_their_idea_id() {
        let a = ack(AckStatus::Received, Some("MOS-2026-0042"), None);
        let (id, read) = read_ack(&a.to_json()).unwrap();
        assert_eq!(id, a.idea_id);
        assert_eq!(read, a);
        let upper = String::from_utf8(a.to_json()).unwrap().replace("5f0c6f0e", "5F0C6F0E");
        assert_eq!(read_ack(upper.as_bytes()).unwrap().0, id);
        assert_eq!(read_ack(br#"{"v":1,"idea_id":"42","status":"received"}"#), None);
        assert_eq!(
            read_ack(br#"{"v":1,"idea_id":"5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10"}"#),
            None
        );
        assert_eq!(read_ack(b"{}"), None);
    }

    #[test]
    fn each_status_has_its_outcome() {
        let first = Duration::from_secs(10);
        assert_eq!(
            outcome(&ack(AckStatus::Received, Some("MOS-2026-0042"), None), first, 0),
            AckOutcome::Done {
                tracking_code: Some("MOS-2026-0042".into()),
                duplicate: false
            }
        );
        assert_eq!(
            outcome(&ack(AckStatus::Duplicate, Some("MOS-2026-0043"), None), first, 0),
            AckOutcome::Done {
                tracking_code: Some("MOS-2026-0043".into()),
                duplicate: true
            }
        );
        let limited = |reason, n| outcome(&ack(AckStatus::RateLimited, None, reason), first, n);
        let hint = Some("too many ideas from this bench; send again in 118 s");
        assert_eq!(limited(hint, 0), AckOutcome::RetryIn(Duration::from_secs(118)));
        assert_eq!(limited(hint, 5), AckOutcome::RetryIn(Duration::from_secs(118)));
        assert_eq!(limited(None, 0), AckOutcome::RetryIn(Duration::from_secs(10)));
        assert_eq!(limited(None, 2), AckOutcome::RetryIn(Duration::from_secs(40)));
        assert_eq!(limited(None, 30), AckOutcome::RetryIn(MAX_RATE_LIMIT_WAIT));
        // The field wins over the text.
        let mut with_field = ack(AckStatus::RateLimited, None, hint);
        with_field.retry_after_s = Some(300);
        assert_eq!(
            outcome(&with_field, first, 0),
            AckOutcome::RetryIn(Duration::from_secs(300))
        );
        assert_eq!(
            limited(Some("send again in 0 s"), 0),
            AckOutcome::RetryIn(first),
            "never sooner than the first retry"
        );
        assert_eq!(
            outcome(
                &ack(
                    AckStatus::Invalid,
                    None,
                    Some("text must have 10-2000 characters, not 4")
                ),
                first,
                0
            ),
            AckOutcome::GiveUp {
                reason: "text must have 10-2000 characters, not 4".into()
            }
        );
    }

    #[test]
    fn hints_are_read_from_the_reason() {
        assert_eq!(hinted_wait("send again in 118 s"), Some(Duration::from_secs(118)));
        assert_eq!(hinted_wait("send again in 7s"), Some(Duration::from_secs(7)));
        assert_eq!(hinted_wait("slow down"), None);
        assert_eq!(hinted_wait("send again in a while"), None);
    }

    #[test]
    fn retries_back_off_then_stop() {
        assert_eq!(retry_after(FIRST_RETRY, 1), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(FIRST_RETRY, 2), Some(Duration::from_secs(20)));
        assert_eq!(retry_after(FIRST_RETRY, 5), Some(Duration::from_secs(160)));
        assert_eq!(retry_after(FIRST_RETRY, 6), None);
    }
}
