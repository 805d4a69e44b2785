//! Publishing task events to containerd, in the order they are queued.
//!
//! One thread takes events off a queue and forwards each over ttrpc to containerd's events
//! service (`TTRPC_ADDRESS`). The order of the queue is the order containerd sees: the
//! service queues TaskStart before it lets an exit through, and an init's TaskExit after its
//! execs' (service.rs). A failed forward is retried at once on a new connection (containerd
//! restarted since the last one), then, while containerd is away, four more times with a
//! growing pause (10 s in all, as the Go shim's 5 tries), then dropped with a line in the
//! log.

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{CodedOutputStream, MessageDyn};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::context;
use containerd_shim_protos::{Client, EventsClient};

const ATTEMPTS: u32 = 5;
/// How long the queue stays empty after an event before the shim counts as idle.
const IDLE: Duration = Duration::from_millis(300);
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// An event for containerd: its topic and message.
pub struct Event {
    pub topic: &'static str,
    pub message: Box<dyn MessageDyn>,
}

/// The queue's sending end. `None` in the queue: no event, only work done (a request
/// served), which also delays the idle moment.
pub struct Publisher {
    tx: Mutex<Option<Sender<Option<Event>>>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    /// Start the publishing thread for containerd's ttrpc socket `address`, namespace `ns`.
    /// `on_idle` runs when the queue has stayed empty for a moment after events: every
    /// lifecycle call ends in an event, so the shim has nothing in hand then.
    pub fn spawn(
        address: String,
        ns: String,
        on_idle: fn(),
    ) -> std::io::Result<(Publisher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name("events".into())
            .stack_size(128 * 1024)
            .spawn(move || forward_all(&address, &ns, &rx, on_idle))?;
        Ok((
            Publisher {
                tx: Mutex::new(Some(tx)),
            },
            handle,
        ))
    }

    pub fn send(&self, topic: &'static str, message: impl MessageDyn) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(Some(Event {
                topic,
                message: Box::new(message),
            }));
        }
    }

    /// The shim served a request: the idle moment (`on_idle`) is counted from now. Calls
    /// that publish nothing (State, Wait, Connect, Stats...) run code too.
    pub fn work_done(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(None);
        }
    }

    /// No more events: the thread ends once the queue is empty.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn forward_all(address: &str, ns: &str, rx: &Receiver<Option<Event>>, on_idle: fn()) {
    let mut client: Option<EventsClient> = None;
    let mut busy = false;
    loop {
        // Quiet: block until the next event (no timer wakes an idle shim).
        let next = if busy {
            rx.recv_timeout(IDLE)
        } else {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        let event = match next {
            Ok(Some(e)) => e,
            Ok(None) => {
                busy = true;
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {
                // ttrpc's sync client reads its connection in a thread that polls every
                // 10 ms as long as the connection lives: 100 wake-ups a second per idle
                // shim, each faulting code back in. Closed while quiet (the next event
                // connects again), and memory given back one quiet moment later, once the
                // client's threads have ended (their exit runs code too).
                if client.take().is_none() && std::mem::take(&mut busy) {
                    on_idle();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        busy = true;
        let req = match request(ns, &event) {
            Ok(r) => r,
            Err(e) => {
                super::log(&format!("harun shim: encode event {}: {e}", event.topic));
                continue;
            }
        };
        for attempt in 0..=ATTEMPTS {
            if client.is_none() {
                if attempt > 1 {
                    // containerd is away (restarting): 1, 2, 3, 4 s.
                    std::thread::sleep(Duration::from_secs(u64::from(attempt) - 1));
                }
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
                // A connection to a containerd that has restarted since: make a new one
                // at once (attempt 1), then wait for containerd to come back.
                Err(_) => client = None,
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
    env.event = Some(to_any(&*event.message, event_type(event.topic))?).into();
    let mut req = ForwardRequest::new();
    req.envelope = Some(env).into();
    Ok(req)
}

/// Type URLs as containerd's typeurl registry knows them: the messages' full protobuf names.
/// Written out rather than asked of protobuf's reflection, which builds the descriptors of
/// the message's whole .proto file (and its imports) on the heap of every shim.
pub const PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";
pub const METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// The type URL of the event published on `topic`.
fn event_type(topic: &str) -> &'static str {
    use containerd_shim_protos::topics::*;
    match topic {
        TASK_CREATE_EVENT_TOPIC => "containerd.events.TaskCreate",
        TASK_START_EVENT_TOPIC => "containerd.events.TaskStart",
        TASK_OOM_EVENT_TOPIC => "containerd.events.TaskOOM",
        TASK_EXIT_EVENT_TOPIC => "containerd.events.TaskExit",
        TASK_DELETE_EVENT_TOPIC => "containerd.events.TaskDelete",
        TASK_EXEC_ADDED_EVENT_TOPIC => "containerd.events.TaskExecAdded",
        TASK_EXEC_STARTED_EVENT_TOPIC => "containerd.events.TaskExecStarted",
        TASK_PAUSED_EVENT_TOPIC => "containerd.events.TaskPaused",
        TASK_RESUMED_EVENT_TOPIC => "containerd.events.TaskResumed",
        _ => "containerd.events.TaskCheckpointed",
    }
}

/// A message as an Any of type `type_url`. Encoded by hand rather than with protobuf's
/// `write_to_bytes_dyn`, which asks for the message's descriptor (for an error text it never
/// needs): building it parsed the whole events .proto onto the heap, ~0.5 MiB that every
/// shim then kept.
pub fn to_any(m: &dyn MessageDyn, type_url: &str) -> Result<Any, String> {
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    let size = usize::try_from(m.compute_size_dyn()).map_err(|e| e.to_string())?;
    let mut value = Vec::with_capacity(size);
    let mut os = CodedOutputStream::vec(&mut value);
    m.write_to_with_cached_sizes_dyn(&mut os)
        .and_then(|()| os.flush())
        .map_err(|e| e.to_string())?;
    drop(os);
    any.value = value;
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

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::events::task::*;
    use containerd_shim_protos::topics::*;

    #[test]
    fn written_type_urls_are_the_protobuf_names() {
        let events: [(&str, &dyn MessageDyn); 9] = [
            (TASK_CREATE_EVENT_TOPIC, &TaskCreate::new()),
            (TASK_START_EVENT_TOPIC, &TaskStart::new()),
            (TASK_OOM_EVENT_TOPIC, &TaskOOM::new()),
            (TASK_EXIT_EVENT_TOPIC, &TaskExit::new()),
            (TASK_DELETE_EVENT_TOPIC, &TaskDelete::new()),
            (TASK_EXEC_ADDED_EVENT_TOPIC, &TaskExecAdded::new()),
            (TASK_EXEC_STARTED_EVENT_TOPIC, &TaskExecStarted::new()),
            (TASK_PAUSED_EVENT_TOPIC, &TaskPaused::new()),
            (TASK_RESUMED_EVENT_TOPIC, &TaskResumed::new()),
        ];
        for (topic, m) in events {
            assert_eq!(event_type(topic), m.descriptor_dyn().full_name(), "{topic}");
        }
        use containerd_shim_protos::cgroups_v2::metrics::Metrics;
        use containerd_shim_protos::shim::oci::ProcessDetails;
        assert_eq!(
            PROCESS_DETAILS,
            ProcessDetails::new().descriptor_dyn().full_name()
        );
        assert_eq!(METRICS, Metrics::new().descriptor_dyn().full_name());
    }

    #[test]
    fn any_bytes_are_protobufs_own() {
        let mut exit = TaskExit::new();
        exit.container_id = "c1".into();
        exit.id = "e1".into();
        exit.pid = 42;
        exit.exit_status = 3;
        exit.exited_at = Some(now()).into();
        let any = to_any(&exit, "containerd.events.TaskExit").unwrap();
        assert_eq!(any.type_url, "containerd.events.TaskExit");
        assert_eq!(
            any.value,
            (&exit as &dyn MessageDyn).write_to_bytes_dyn().unwrap()
        );
        assert!(!any.value.is_empty());
        let empty = to_any(&TaskStart::new(), "containerd.events.TaskStart").unwrap();
        assert!(empty.value.is_empty());
    }
}
