//! Intake: a kiosk's idea from payload to acknowledgement — validation, the repeat check by
//! `idea_id`, bounds, the per-bench rate limit, then held (blocklist), duplicate or routed, in
//! one write; and the retry queue while the store refuses writes.

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, Utc};
use protocol::idea::{AckStatus, IdeaAck, IdeaSubmission};
use protocol::{BenchId, IdeaState};
use tracing::{debug, info, warn};

use super::{IdeaEvent, IdeaRecord, MAX_RETRY, Notes, Routing, State, Submission, lifecycle, text, view};
use crate::metrics::StatusLabel;
use crate::persistence::StoreError;

impl Routing {
    pub(super) fn keep_for_retry(&self, retry: &mut VecDeque<Submission>, s: Submission) {
        if retry.len() >= MAX_RETRY {
            self.shared.metrics.payload_dropped(
                s.bench.as_str(),
                "idea",
                crate::metrics::DROP_QUEUE_FULL,
                &"the idea retry queue is full (the kiosk sends it again without an ack)",
            );
        } else {
            retry.push_back(s);
        }
    }

    pub(super) async fn take(&self, s: &Submission) -> Result<(), StoreError> {
        if let Some(ack) = self.submit(&s.bench, &s.payload, s.received_at).await?
            && let Err(e) = self.shared.acks.send_ack(&s.bench, &ack)
        {
            warn!(bench.id = %s.bench, error = %e, "idea ack not sent; the kiosk will send the idea again");
        }
        Ok(())
    }

    /// Takes one idea from a kiosk: validates it, answers a repeated `idea_id` with its code,
    /// applies the rate limit, then stores it held (blocklist), as a duplicate, or routed. Returns
    /// the ack to send, `None` when the payload is unusable even for an ack. A store error
    /// means nothing was stored: try again.
    pub async fn submit(
        &self,
        bench: &BenchId,
        payload: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Option<IdeaAck>, StoreError> {
        let idea = match IdeaSubmission::decode(payload) {
            Ok(idea) => idea,
            Err(rejection) => {
                let reason = rejection.reason.label();
                self.shared
                    .metrics
                    .payload_dropped(bench.as_str(), "idea", reason, &rejection.detail);
                return Ok(view::idea_id_of(payload).map(|id| self.refused(id, AckStatus::Invalid, rejection.detail)));
            }
        };
        let id = idea.idea_id.to_ascii_lowercase();
        let settings = &self.shared.settings;
        let mut state = self.shared.state.lock().await;
        if let Some(existing) = self.shared.store.idea(&id).await? {
            if existing.bench_id != bench.as_str() {
                return Ok(Some(self.refused(
                    id,
                    AckStatus::Invalid,
                    "idea_id already used by another bench".into(),
                )));
            }
            debug!(bench.id = %bench, idea.id = %id, "idea sent again; same answer");
            return Ok(Some(accepted(&existing)));
        }
        let chars = idea.text.trim().chars().count();
        if chars < settings.text_min_chars || chars > settings.text_max_chars {
            let detail = format!(
                "text must have {}-{} characters, not {chars}",
                settings.text_min_chars, settings.text_max_chars
            );
            return Ok(Some(self.refused(id, AckStatus::Invalid, detail)));
        }
        let now = self.now();
        if let Err(wait) = state.bench_limits.take(bench.as_str()) {
            info!(bench.id = %bench, retry_after.seconds = wait.as_secs(), "idea refused: bench over its rate limit");
            let detail = format!("too many ideas from this bench; send again in {} s", wait.as_secs());
            let mut ack = self.refused(id, AckStatus::RateLimited, detail);
            ack.retry_after_s = Some(wait.as_secs());
            return Ok(Some(ack));
        }
        let stored = self.store_new(&mut state, bench, id, idea, received_at, now).await;
        if stored.is_err() {
            state.bench_limits.refund(bench.as_str());
        }
        let (record, changes) = stored?;
        drop(state);
        self.announce(&record, &changes).await;
        let ack = accepted(&record);
        self.count_ack(ack.status);
        info!(bench.id = %bench, idea.code = %record.tracking_code, idea.state = %record.state, "idea received");
        Ok(Some(ack))
    }

    async fn store_new(
        &self,
        state: &mut State,
        bench: &BenchId,
        id: String,
        idea: IdeaSubmission,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(IdeaRecord, Vec<IdeaEvent>), StoreError> {
        let store = &self.shared.store;
        let municipality = self
            .shared
            .fleet
            .get(bench.as_str())
            .map_or_else(String::new, |b| b.municipality.clone());
        let prefix = format!("{}-{}", text::code_prefix(&municipality), received_at.year());
        let number = store.next_tracking_number(&prefix).await?;
        let consent = idea.contact.as_ref().is_some_and(|c| c.consent);
        let mut record = IdeaRecord {
            tracking_code: format!("{prefix}-{number:04}"),
            bench_id: bench.to_string(),
            municipality,
            submitted_at: idea.ts,
            received_at,
            fingerprint: text::fingerprint(&idea.text),
            text: idea.text,
            category: idea.category,
            lang: idea.lang,
            contact: idea.contact.filter(|c| c.consent),
            consent,
            duplicate_of: None,
            state: IdeaState::Received,
            org_id: None,
            offered_to: Vec::new(),
            excluded: Vec::new(),
            attempts: 0,
            rule: None,
            rule_version: None,
            confirm_within_s: None,
            act_within_s: None,
            deadline: None,
            flag: None,
            updated_at: now,
            confirmed_at: None,
            completed_at: None,
            id,
        };
        let actor = format!("bench:{bench}");
        let mut events = vec![lifecycle::event(
            &record,
            now,
            &actor,
            "received",
            None,
            None,
            &Notes::default(),
        )];
        let folded = text::fold(&record.text);
        let blocked = self
            .shared
            .settings
            .blocklist
            .iter()
            .find(|w| text::has_keyword(&folded, w));
        let mut needs_routing = false;
        if let Some(word) = blocked {
            record.state = IdeaState::Held;
            record.flag = Some(format!("blocklisted: {word}"));
            events.push(lifecycle::event(
                &record,
                now,
                "system",
                "held",
                Some(IdeaState::Received),
                None,
                &Notes::default(),
            ));
        } else if let Some(original) = store.idea_by_fingerprint(&record.fingerprint).await? {
            record.state = IdeaState::Duplicate;
            record.duplicate_of = Some(original.id.clone());
            let notes = Notes {
                public: Some(format!(
                    "The same idea was already submitted as {}.",
                    original.tracking_code
                )),
                ..Notes::default()
            };
            events.push(lifecycle::event(
                &record,
                now,
                "system",
                "duplicate",
                Some(IdeaState::Received),
                None,
                &notes,
            ));
        } else {
            needs_routing = true;
        }
        let events = self
            .settle(state, &mut record, events, needs_routing, now, "system")
            .await?;
        Ok((record, events))
    }

    fn refused(&self, idea_id: String, status: AckStatus, reason: String) -> IdeaAck {
        self.count_ack(status);
        IdeaAck {
            v: protocol::PAYLOAD_VERSION,
            idea_id,
            tracking_code: None,
            status,
            reason: Some(reason),
            retry_after_s: None,
        }
    }

    fn count_ack(&self, status: AckStatus) {
        let status = match status {
            AckStatus::Received => "received",
            AckStatus::Duplicate => "duplicate",
            AckStatus::RateLimited => "rate_limited",
            AckStatus::Invalid => "invalid",
        };
        self.shared
            .metrics
            .ideas_submitted
            .get_or_create(&StatusLabel { status })
            .inc();
    }
}

/// The ack for an accepted (stored) idea.
fn accepted(idea: &IdeaRecord) -> IdeaAck {
    IdeaAck {
        v: protocol::PAYLOAD_VERSION,
        idea_id: idea.id.clone(),
        tracking_code: Some(idea.tracking_code.clone()),
        status: if idea.state == IdeaState::Duplicate {
            AckStatus::Duplicate
        } else {
            AckStatus::Received
        },
        reason: None,
        retry_after_s: None,
    }
}
