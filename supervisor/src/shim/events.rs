//! Publishing task events to containerd, in the order they are queued.
//!
//! One thread takes events off a queue and forwards each over ttrpc to containerd's events
//! service (`TTRPC_ADDRESS`). The order of the queue is the order containerd sees: the
//! service queues TaskStart before it lets an exit through, and an init's TaskExit after its
//! execs' (service.rs). While containerd is away (restarting) an event is retried, as the
//! Go shim does, five times with a growing pause, then dropped with a line in the log; the
//! connection is made again for each retry.

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::context;
use containerd_shim_protos::{Client, EventsClient};

const ATTEMPTS: u32 = 5;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// An event for containerd: its topic and message.
pub struct Event {
    pub topic: &'static str,
    pub message: Box<dyn MessageDyn>,
}

/// The queue's sending end.
pub struct Publisher {
    tx: Mutex<Option<Sender<Event>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    /// Start the publishing thread for containerd's ttrpc socket `address`, namespace `ns`.
    pub fn spawn(
        address: String,
        ns: String,
    ) -> std::io::Result<(Publisher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("events".into())
            .stack_size(128 * 1024)
            .spawn(move || forward_all(&address, &ns, rx))?;
        Ok((
            Publisher {
                tx: Mutex::new(Some(tx)),
            },
            handle,
        ))
    }

    pub fn send(&self, topic: &'static str, message: impl MessageDyn) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(Event {
                topic,
                message: Box::new(message),
            });
        }
    }

    /// No more events: the thread ends once the queue is empty.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn forward_all(address: &str, ns: &str, rx: Receiver<Event>) {
    let mut client: Option<EventsClient> = None;
    for event in rx {
        let req = match request(ns, &event) {
            Ok(r) => r,
            Err(e) => {
                super::log(&format!("harun shim: encode event {}: {e}", event.topic));
                continue;
            }
        };
        for attempt in 1..=ATTEMPTS {
            if client.is_none() {
                client = connect(address).ok();
            }
            let sent = match &client {
                Some(c) => c
                    .forward(context::with_duration(FORWARD_TIMEOUT), &req)
                    .map_err(|e| e.to_string()),
                None => Err(format!("cannot connect to `{address}`")),
            };
            match sent {
                Ok(_) => break,
                Err(e) if attempt == ATTEMPTS => {
                    super::log(&format!("harun shim: event {} dropped: {e}", event.topic));
                }
                Err(_) => {
                    client = None;
                    std::thread::sleep(Duration::from_secs(attempt.into()));
                }
            }
        }
    }
}

fn connect(address: &str) -> std::io::Result<EventsClient> {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let stream = UnixStream::connect(path)?;
    let client = Client::new(stream.into_raw_fd()).map_err(std::io::Error::other)?;
    Ok(EventsClient::new(client))
}

fn request(ns: &str, event: &Event) -> Result<ForwardRequest, String> {
    let mut env = Envelope::new();
    env.timestamp = Some(now()).into();
    env.namespace = ns.to_string();
    env.topic = event.topic.to_string();
    env.event = Some(to_any(&*event.message)?).into();
    let mut req = ForwardRequest::new();
    req.envelope = Some(env).into();
    Ok(req)
}

/// A message as an Any with the type URL containerd's typeurl registry knows it by (the
/// message's full protobuf name).
pub fn to_any(m: &dyn MessageDyn) -> Result<Any, String> {
    let mut any = Any::new();
    any.type_url = m.descriptor_dyn().full_name().to_string();
    any.value = m.write_to_bytes_dyn().map_err(|e| e.to_string())?;
    Ok(any)
}

pub fn now() -> Timestamp {
    timestamp(SystemTime::now())
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}
