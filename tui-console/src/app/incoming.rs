//! What arrives from the control plane: answers to the feed's requests and live events, folded
//! into the state.

use super::*;

impl App {
    pub(super) fn on_api(&mut self, event: ApiEvent) -> Effects {
        match event {
            ApiEvent::Benches(Ok(benches)) => {
                self.fleet.replace(benches);
                self.loaded_at = Some(self.now);
                self.fleet_error = None;
                self.table.settle(&self.fleet);
                self.alerts.observe(&self.fleet, self.low_battery_pct(), self.now, None);
            }
            ApiEvent::Benches(Err(error)) => {
                self.fleet_error = Some(match self.fleet_error.take() {
                    Some(f) => Failure {
                        error,
                        first: f.first,
                        attempts: f.attempts + 1,
                    },
                    None => Failure {
                        error,
                        first: self.now,
                        attempts: 1,
                    },
                });
            }
            ApiEvent::Summary(Ok(s)) => self.summary = Some(s),
            // The fleet error says what is wrong; an old summary is still worth showing.
            ApiEvent::Summary(Err(_)) => return Effects::none(),
            ApiEvent::Readiness(r) => {
                if self.health.as_ref() == Some(&r) {
                    return Effects::none();
                }
                self.health = Some(r);
            }
            ApiEvent::Detail { id, result } => {
                let Some(pane) = self.bench.as_mut().filter(|p| p.id == id) else {
                    return Effects::none();
                };
                match result {
                    Ok(d) => {
                        pane.detail = Some(d);
                        pane.detail_error = None;
                    }
                    Err(e) => pane.detail_error = Some(e),
                }
            }
            ApiEvent::Telemetry { id, window, result } => {
                let Some(pane) = self.bench.as_mut().filter(|p| p.id == id && p.window == window) else {
                    return Effects::none();
                };
                match result {
                    Ok(s) => {
                        pane.series = Some(s);
                        pane.series_error = None;
                    }
                    Err(e) => pane.series_error = Some(e),
                }
            }
            ApiEvent::Feature { feature, result } => {
                let a = match result {
                    Ok(true) => Availability::Present,
                    Ok(false) => Availability::Missing,
                    Err(e) => Availability::Failed(e),
                };
                match feature {
                    Feature::Rollouts => self.rollouts = a,
                    Feature::Ideas => self.ideas = a,
                }
            }
            ApiEvent::IdeaQueue(result) => return self.on_ideas(true, result),
            ApiEvent::Ideas(result) => return self.on_ideas(false, result),
            ApiEvent::IdeaDetail { id, result } => return self.on_idea_detail(&id, result),
            ApiEvent::Moderated { id, action, result } => return self.on_moderated(&id, action, result),
            ApiEvent::OtaBenches(Ok(statuses)) => {
                self.fleet.replace_config(statuses);
                self.alerts.observe(&self.fleet, self.low_battery_pct(), self.now, None);
            }
            // An older control plane without OTA routes: no configuration state, no drift.
            ApiEvent::OtaBenches(Err(ApiError::NotFound { .. })) => {
                if self.fleet.config.is_empty() {
                    return Effects::none();
                }
                self.fleet.config.clear();
                self.alerts.observe(&self.fleet, self.low_battery_pct(), self.now, None);
            }
            // Like the summary: the fleet error says what is wrong; old states still help.
            ApiEvent::OtaBenches(Err(_)) => return Effects::none(),
            ApiEvent::Rollouts(result) => return self.on_rollouts(result),
            ApiEvent::RolloutDetail { id, result } => return self.on_rollout_detail(&id, result),
            ApiEvent::Steered { id, action, result } => return self.on_steered(&id, action, result),
            ApiEvent::Stream(s) => return self.on_stream(s),
        }
        Effects::redraw()
    }

    pub(super) fn on_stream(&mut self, event: StreamEvent) -> Effects {
        match event {
            StreamEvent::Connected => self.stream = StreamState::Live { since: self.now },
            StreamEvent::Down(error) => {
                if let StreamState::Down { error: e, .. } = &mut self.stream {
                    *e = error;
                } else {
                    self.stream = StreamState::Down { error, since: self.now };
                }
            }
            StreamEvent::BenchState(e) => {
                if !self.fleet.apply_state(&e) {
                    return Effects::none();
                }
                if let Some(d) = self
                    .bench
                    .as_mut()
                    .filter(|p| p.id == e.bench_id)
                    .and_then(|p| p.detail.as_mut())
                {
                    d.recent_status.insert(
                        0,
                        StatusChange {
                            at: e.at,
                            state: e.state,
                            cause: e.cause.clone(),
                            fw: None,
                            config_version: None,
                            until: e.until,
                        },
                    );
                }
                self.table.settle(&self.fleet);
                self.alerts
                    .observe(&self.fleet, self.low_battery_pct(), self.now, Some(&e.cause));
            }
            StreamEvent::Telemetry(e) => {
                if !self.fleet.apply_sample(&e) {
                    return Effects::none();
                }
                self.table.settle(&self.fleet);
                self.alerts.observe(&self.fleet, self.low_battery_pct(), self.now, None);
            }
            StreamEvent::IdeaChanged { .. } => {
                if self.view != View::Ideas || self.ideas != Availability::Present {
                    return Effects::none();
                }
                return Effects {
                    redraw: false,
                    commands: vec![Command::Ideas(Some(self.ideas_focus()))],
                };
            }
            StreamEvent::RolloutChanged(summary) => return self.on_rollout_changed(summary),
            StreamEvent::BenchConfig(status) => {
                self.fleet.config.insert(status.bench_id.to_string(), status);
                self.alerts.observe(&self.fleet, self.low_battery_pct(), self.now, None);
                if self.view == View::Rollouts && self.rollouts == Availability::Present {
                    return Effects::with(Command::Rollouts(Some(self.rollouts_focus())));
                }
            }
            StreamEvent::Lagged(skipped) => {
                self.notice(format!("event stream skipped {skipped} events; refetching"));
                return Effects::with(Command::Refresh);
            }
        }
        Effects::redraw()
    }
}
