//! The running console: one loop that merges terminal input, a one-second tick and the feed
//! into events, lets `App::update` decide, carries out its commands, and draws only when
//! something changed.

use std::time::Duration;

use chrono::{Local, Offset, Utc};
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::api::Client;
use crate::app::{App, Command};
use crate::event::Event;
use crate::feed::Feed;
use crate::settings::Settings;
use crate::terminal::Session;
use crate::view::Console;

const TICK: Duration = Duration::from_secs(1);

/// Runs the console until the operator quits.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let client = Client::new(&settings.api, settings.token.clone())?;
    let access = Access::from_token(settings.token.as_deref());
    tracing::info!(api = %settings.api, role = access.label(), "console starting");
    let mut app = App::new(client.base(), access, settings.refresh, Utc::now());
    app.tz = Local::now().offset().fix();

    let (tx, mut feed_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let _stop_feed = cancel.clone().drop_guard();
    let feed = Feed::spawn(client, settings.refresh, tx, cancel);

    let mut session = Session::enter()?;
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut redraw = true;
    loop {
        if redraw {
            session.terminal.draw(|f| f.render_widget(Console(&app), f.area()))?;
            redraw = false;
        }
        let event = tokio::select! {
            Some(input) = input.next() => match input? {
                TermEvent::Key(key) => Event::Key(key),
                TermEvent::Resize(w, h) => Event::Resize(w, h),
                _ => continue,
            },
            _ = tick.tick() => Event::Tick(Utc::now()),
            Some(event) = feed_rx.recv() => event,
        };
        let effects = app.update(event);
        redraw |= effects.redraw;
        for command in effects.commands {
            match command {
                Command::Quit => {
                    tracing::info!("console quitting");
                    return Ok(());
                }
                Command::Refresh => feed.refresh(),
                Command::Focus(focus) => feed.focus(focus),
                Command::Ideas(focus) => feed.ideas(focus),
                Command::Moderate { id, action, reason } => feed.moderate(id, action, reason),
                Command::Rollouts(focus) => feed.rollouts(focus),
                Command::Steer { id, action, reason } => feed.steer(id, action, reason),
            }
        }
    }
}
