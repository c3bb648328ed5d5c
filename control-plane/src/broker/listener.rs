//! Runs rumqttd's router and MQTT listener on the broker's own thread and tokio runtime.
//!
//! `rumqttd::Broker::start` blocks forever and cannot be stopped, so the pieces are assembled
//! here: `Router::spawn` (its own thread), one local link for the control plane, and a
//! `Server<Gate>` driven by our runtime until the shutdown token fires. Dropping the runtime
//! then ends every connection task, so each live bench gets its `Disconnected` event.
//!
//! rumqttd's `Server::start` binds the socket itself and does not say which port it got, so for
//! port 0 a free port is picked first (retrying if someone takes it in between). Its first poll
//! either fails to bind or parks in `accept`, which tells bind success apart without a probe.
//!
//! Self-healing: rumqttd's per-listener will map can be left holding a dead entry when a
//! handshake ends early, and the next CONNECT with that client id then panics while holding the
//! map's lock, poisoning it for every later connection. The gate notices early ends and asks for
//! a restart: the listener socket is re-created with a fresh map while established connections
//! carry on.
//!
//! The router thread itself cannot be stopped (it holds a sender to its own channel, so its
//! receive loop never ends); a stopped broker leaves it parked, holding its memory.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use rumqttd::local::LinkBuilder;
use rumqttd::{LinkType, Router, Server};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::gate::{Gate, GateShared};
use super::link::{self, Inbound, LINK_CLIENT_ID, Outbound};
use super::{BrokerError, BrokerSettings, Stats};

/// Port-0 picks retried when another process takes the port between pick and bind.
const BIND_ATTEMPTS: u32 = 5;

/// Shortest time between two listener restarts.
const RESTART_INTERVAL: Duration = Duration::from_secs(1);
/// Longest shutdown waits for the link to take the last accepted messages from the router.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Everything the broker thread needs.
pub(crate) struct Plan {
    pub settings: BrokerSettings,
    pub shared: Arc<GateShared>,
    pub inbound: mpsc::Sender<Inbound>,
    pub outbound: mpsc::Receiver<Outbound>,
    pub shutdown: CancellationToken,
    pub stopped: CancellationToken,
    pub ready: oneshot::Sender<Result<SocketAddr, BrokerError>>,
}

/// The body of the broker thread.
pub(crate) fn run(plan: Plan) {
    let Plan {
        settings,
        shared,
        inbound,
        outbound,
        shutdown,
        stopped,
        ready,
    } = plan;
    let stats = shared.stats.clone();
    let heal = shared.heal.clone();
    let listen = settings.listen;
    let router = Router::new(0, settings.router_config(shared.auth.fleet().len()));
    let router_tx = router.spawn();

    let attach = || -> Result<_, BrokerError> {
        let (mut tx, rx, _ack) = LinkBuilder::new(LINK_CLIENT_ID, router_tx.clone())
            .build()
            .map_err(|e| BrokerError::Link(e.to_string()))?;
        link::subscribe(&mut tx)?;
        Ok((tx, rx))
    };
    let (link_tx, link_rx) = match attach() {
        Ok(link) => link,
        Err(e) => {
            let _ = ready.send(Err(e));
            stopped.cancel();
            return;
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.worker_threads)
        .thread_name("mqtt-conn")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(BrokerError::Io(e)));
            stopped.cancel();
            return;
        }
    };

    let template = Gate::template(shared);
    let make_server = move |addr: SocketAddr| -> Running {
        let mut server = Server::new(settings.server_settings(addr), router_tx.clone(), template.clone());
        Box::pin(async move { server.start(LinkType::Remote).await.map_err(into_io) })
    };

    runtime.block_on(async {
        tokio::spawn(link::consume(link_rx, inbound, stats.clone()));
        tokio::spawn(link::publish(link_tx, outbound));
        serve(listen, &make_server, &stats, &heal, &shutdown, ready).await;
        stats.stopping.store(true, Ordering::Release);
        drain(&stats).await;
    });
    stats.listening.store(false, Ordering::Release);
    // Dropping the runtime drops every connection task; their gates report `Disconnected`.
    runtime.shutdown_timeout(Duration::from_secs(2));
    // The template holds the event sender; consumers see the end of the stream once it goes.
    drop(make_server);
    stopped.cancel();
    info!("MQTT broker stopped");
}

/// Waits (at most [`DRAIN_TIMEOUT`]) until the link has taken from the router every message the
/// gate let through: those were, or are about to be, acknowledged to benches, and dropping the
/// runtime with them still in the router's log would lose them.
async fn drain(stats: &Stats) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    loop {
        let accepted = stats.accepted_inbound.load(Ordering::Acquire);
        let forwarded = stats.forwarded_inbound.load(Ordering::Acquire);
        if forwarded >= accepted {
            debug!(
                messages = accepted,
                "every accepted bench message reached the control plane"
            );
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(
                missing = accepted - forwarded,
                "stopping with bench messages still in the broker; benches that keep them send them again"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A running `Server::start` future.
type Running = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// rumqttd's server error type is not exported; keep the I/O kind (bind failures) and the text.
fn into_io<E: std::error::Error>(e: E) -> io::Error {
    let kind = e
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map_or(io::ErrorKind::Other, io::Error::kind);
    io::Error::new(kind, e.to_string())
}

/// Binds, serves until shutdown and restarts the listener on request.
async fn serve(
    listen: SocketAddr,
    make_server: &impl Fn(SocketAddr) -> Running,
    stats: &Stats,
    heal: &Notify,
    shutdown: &CancellationToken,
    ready: oneshot::Sender<Result<SocketAddr, BrokerError>>,
) {
    let (addr, mut server) = match first_bind(listen, make_server).await {
        Ok(bound) => bound,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    info!(mqtt.listen = %addr, "MQTT listener ready");
    stats.listening.store(true, Ordering::Release);
    let _ = ready.send(Ok(addr));

    let mut last_restart = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = &mut server => {
                stats.listening.store(false, Ordering::Release);
                error!(error = ?result, "MQTT listener stopped unexpectedly, restarting");
            }
            () = heal.notified() => {
                let wait = RESTART_INTERVAL.saturating_sub(last_restart.elapsed());
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                stats.listening.store(false, Ordering::Release);
                warn!(mqtt.listen = %addr, "restarting the MQTT listener");
            }
        }
        // Drops the old listener socket; established connections keep running.
        drop(server);
        stats.restarts.fetch_add(1, Ordering::Relaxed);
        loop {
            last_restart = tokio::time::Instant::now();
            match try_bind(addr, make_server).await {
                Ok(next) => {
                    server = next;
                    stats.listening.store(true, Ordering::Release);
                    info!(mqtt.listen = %addr, "MQTT listener ready");
                    break;
                }
                Err(e) => {
                    error!(error = %e, "cannot re-bind the MQTT listener, retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RESTART_INTERVAL) => {}
                    }
                }
            }
        }
    }
}

async fn first_bind(
    listen: SocketAddr,
    make_server: &impl Fn(SocketAddr) -> Running,
) -> Result<(SocketAddr, Running), BrokerError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let addr = resolve(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?;
        match try_bind(addr, make_server).await {
            Ok(server) => return Ok((addr, server)),
            Err(BrokerError::Bind { source, .. })
                if listen.port() == 0 && source.kind() == io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
}

/// Port 0 becomes a port that was free a moment ago.
fn resolve(listen: SocketAddr) -> io::Result<SocketAddr> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    std::net::TcpListener::bind(listen)?.local_addr()
}

/// Starts a `Server` on `addr` and polls it once: an immediate error is a failed bind,
/// otherwise it is parked in `accept` on a bound socket.
async fn try_bind(addr: SocketAddr, make_server: &impl Fn(SocketAddr) -> Running) -> Result<Running, BrokerError> {
    let mut running = make_server(addr);
    match std::future::poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await {
        Poll::Pending => Ok(running),
        Poll::Ready(Err(source)) => Err(BrokerError::Bind { addr, source }),
        Poll::Ready(Ok(())) => Err(BrokerError::Bind {
            addr,
            source: io::Error::other("listener ended at once"),
        }),
    }
}
