//! Where the MQTT broker is: `mqtt://host:port`, `tcp://host:port`, `host:port` or `host`.

use std::fmt;
use std::str::FromStr;

/// A plain-TCP MQTT broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
}

/// The port MQTT brokers listen on without TLS.
pub const DEFAULT_PORT: u16 = 1883;

impl Broker {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

/// Why a broker URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker {url:?}: {reason}")]
pub struct InvalidBroker {
    pub url: String,
    pub reason: String,
}

impl FromStr for Broker {
    type Err = InvalidBroker;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| InvalidBroker {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = match url.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => rest,
            Some(("mqtts" | "ssl" | "ws" | "wss", _)) => {
                return Err(invalid("only plain TCP (mqtt://) is supported"));
            }
            Some(_) => return Err(invalid("expected mqtt://host:port")),
            None => url,
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in IPv6 address"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(invalid("missing or malformed host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| invalid("port must be 1-65535"))?,
            None => DEFAULT_PORT,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let b = |s: &str| s.parse::<Broker>();
        assert_eq!(b("mqtt://127.0.0.1:1883").unwrap(), Broker::new("127.0.0.1", 1883));
        assert_eq!(
            b("tcp://broker.local:11883/").unwrap(),
            Broker::new("broker.local", 11883)
        );
        assert_eq!(b("localhost").unwrap(), Broker::new("localhost", 1883));
        assert_eq!(b("[::1]:1884").unwrap(), Broker::new("::1", 1884));
        assert_eq!(b("[::1]:1884").unwrap().to_string(), "mqtt://[::1]:1884");
        assert!(b("mqtts://x:8883").unwrap_err().reason.contains("plain TCP"));
        assert!(b("http://x").is_err());
        assert!(b("mqtt://:1883").is_err());
        assert!(b("mqtt://x:0").is_err());
        assert!(b("mqtt://x:70000").is_err());
    }
}
