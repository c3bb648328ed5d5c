//! A `text/event-stream` parser (the WHATWG Server-Sent Events format): bytes in, whole events
//! out. Chunks may split lines, and lines may split UTF-8 sequences; both are buffered.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub name: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    name: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        out.push(event);
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let name = self.name.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                name: name.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` matter for browsers' automatic reconnects; ours reconnects with
            // its own backoff and refetches state, so both are ignored.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunk_boundaries() {
        let mut p = SseParser::new();
        let text = "event: bench_state\ndata: {\"a\":1}\n\n: keep-alive\n\nevent:telemetry\r\ndata:x\r\ndata: y\r\n\r\ndata: plain\n\n";
        let mut events = Vec::new();
        // One byte at a time: every split point is exercised.
        for b in text.as_bytes() {
            events.extend(p.push(std::slice::from_ref(b)));
        }
        assert_eq!(
            events,
            vec![
                SseEvent {
                    name: "bench_state".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    name: "telemetry".into(),
                    data: "x\ny".into()
                },
                SseEvent {
                    name: "message".into(),
                    data: "plain".into()
                },
            ]
        );
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let mut p = SseParser::new();
        let bytes = "data: Žepče\n\n".as_bytes();
        let (a, b) = bytes.split_at(7); // inside `Ž`
        assert!(p.push(a).is_empty());
        assert_eq!(p.push(b)[0].data, "Žepče");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut p = SseParser::new();
        assert!(p.push(b"event: lagged\n\n").is_empty());
        // The name does not leak into the next event.
        assert_eq!(p.push(b"data: 1\n\n")[0].name, "message");
    }
}
