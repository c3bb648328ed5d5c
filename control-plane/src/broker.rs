//! TEMP STUB
use protocol::{BenchId, Fleet, Topic};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
pub const QUIET_TARGETS: &str = "rumqttd=warn";
pub struct BrokerSettings {
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub queue_capacity: usize,
}
pub struct Authenticator;
impl Authenticator {
    pub fn new(_f: Arc<Fleet>, _s: protocol::token::Secret) -> Self {
        Self
    }
}
#[derive(Debug, Clone, Copy)]
pub enum DenyReason {
    X,
}
impl DenyReason {
    pub fn label(self) -> &'static str {
        "x"
    }
}
pub enum BrokerEvent {
    Connected { bench: BenchId, conn: u64 },
    Disconnected { bench: BenchId, conn: u64 },
    Denied { client_id: String, reason: DenyReason },
    AclViolation { bench: BenchId, topic: String },
}
pub struct Inbound {
    pub topic: Topic,
    pub payload: bytes::Bytes,
    pub received_at: chrono::DateTime<chrono::Utc>,
}
pub struct Broker {
    pub local_addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<BrokerEvent>,
    pub inbound: mpsc::Receiver<Inbound>,
    pub handle: BrokerHandle,
}
#[derive(Clone)]
pub struct BrokerHandle;
impl BrokerHandle {
    pub fn is_listening(&self) -> bool {
        true
    }
    pub fn connections(&self) -> usize {
        0
    }
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct BrokerError;
pub async fn start(_s: BrokerSettings, _a: Authenticator, _c: CancellationToken) -> Result<Broker, BrokerError> {
    Err(BrokerError)
}
