//! Citizens' ideas from the kiosk: drafted by the model (at most as often as the fleet's
//! [`IdeaPace`] allows), sent on `ideas`, re-sent with the same id until `ideas/ack` answers,
//! and then shown (`received`, `duplicate`), sent again later (`rate_limited`) or given up
//! (`invalid`, or no answer after a few attempts).

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Connection, MAX_OUTSTANDING_IDEAS, Outstanding, Session};
use crate::ideas::{self, AckOutcome, IdeaPace};

/// How long to wait when the MQTT client's request queue is full.
const BUSY_RETRY: Duration = Duration::from_millis(200);

impl Session {
    pub(super) fn draft_ideas(&mut self) {
        let n = self.model.take_ideas();
        let now = Instant::now();
        for _ in 0..n {
            match self.cfg.ideas {
                IdeaPace::Off => return,
                IdeaPace::Modelled => {}
                IdeaPace::AtMostEvery(gap) => {
                    if self.last_idea_at.is_some_and(|last| now < last + gap) {
                        debug!(bench.id = %self.id, "idea not written: the fleet's idea pace is reached");
                        continue;
                    }
                }
            }
            self.last_idea_at = Some(now);
            let ts = self.wall_now();
            let idea = ideas::draft(&mut self.rng, ts);
            if self.ideas.len() >= MAX_OUTSTANDING_IDEAS
                && let Some(oldest) = self
                    .ideas
                    .iter()
                    .min_by_key(|(_, o)| o.idea.ts)
                    .map(|(id, _)| id.clone())
            {
                warn!(bench.id = %self.id, idea.id = %oldest, "too many unanswered ideas; giving up the oldest");
                self.ideas.remove(&oldest);
                self.stats.ideas_given_up += 1;
            }
            self.ideas.insert(
                idea.idea_id.clone(),
                Outstanding {
                    idea,
                    attempts: 0,
                    limited: 0,
                    next_at: Some(now),
                },
            );
        }
    }

    pub(super) fn send_due_ideas(&mut self, now: Instant) {
        if !matches!(self.conn, Connection::Up(_)) {
            return;
        }
        let due: Vec<String> = self
            .ideas
            .iter()
            .filter(|(_, o)| o.next_at.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(o) = self.ideas.get(&id) else {
                continue;
            };
            if o.attempts > 0 && ideas::retry_after(self.cfg.idea_retry, o.attempts).is_none() {
                warn!(bench.id = %self.id, idea.id = %id, attempts = o.attempts, "no answer to idea; giving up");
                self.ideas.remove(&id);
                self.stats.ideas_given_up += 1;
                continue;
            }
            let payload = o.idea.to_json();
            let topic = self.topics.ideas.clone();
            if !self.publish_other(&topic, payload, false) {
                // The client's queue is full: try the rest shortly rather than spin.
                let later = now + BUSY_RETRY;
                for o in self.ideas.values_mut().filter(|o| o.next_at.is_some_and(|t| t <= now)) {
                    o.next_at = Some(later);
                }
                break;
            }
            self.stats.ideas_sent += 1;
            if let Some(o) = self.ideas.get_mut(&id) {
                o.attempts += 1;
                if o.attempts > 1 {
                    info!(bench.id = %self.id, idea.id = %id, attempt = o.attempts, "idea not answered; sending again");
                }
                o.next_at =
                    Some(now + ideas::retry_after(self.cfg.idea_retry, o.attempts).unwrap_or(self.cfg.idea_retry));
            }
        }
    }

    pub(super) fn on_idea_ack(&mut self, payload: &[u8]) {
        let Some((id, ack)) = ideas::read_ack(payload) else {
            warn!(bench.id = %self.id, "unreadable idea ack ignored");
            return;
        };
        let Some(o) = self.ideas.get_mut(&id) else {
            debug!(bench.id = %self.id, idea.id = %id, status = ?ack.status, "answer to an idea no longer waiting");
            return;
        };
        match ideas::outcome(&ack, self.cfg.idea_retry, o.limited) {
            AckOutcome::Done {
                tracking_code,
                duplicate,
            } => {
                self.ideas.remove(&id);
                self.stats.ideas_acked += 1;
                let code = tracking_code.as_deref().unwrap_or("-");
                info!(bench.id = %self.id, idea.id = %id, idea.code = code, duplicate, "idea stored; the kiosk shows its code");
            }
            AckOutcome::RetryIn(wait) => {
                o.limited += 1;
                // The server answered: the next send starts a fresh round of attempts.
                o.attempts = 0;
                o.next_at = Some(Instant::now() + wait);
                self.stats.ideas_rate_limited += 1;
                info!(bench.id = %self.id, idea.id = %id, retry_in_s = wait.as_secs(), times = o.limited, "idea rate limited; sending again later");
            }
            AckOutcome::GiveUp { reason } => {
                self.ideas.remove(&id);
                self.stats.ideas_given_up += 1;
                warn!(bench.id = %self.id, idea.id = %id, reason, "idea refused as invalid; giving up");
            }
        }
    }
}
