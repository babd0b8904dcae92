//! Who is connected to a receiving socket, and which actors went away.

/// The senders connected to a receiving socket (`crate::transport::Pull`,
/// `crate::transport::InferenceServer`). A connection is tied to the
/// actor id of the first message that came over it, so when an actor dies
/// (`kill -9`, node failure) or its connection is cut (a message over the
/// maximum size makes NNG close it), the socket logs which actor went away and
/// counts it.
#[derive(Default)]
pub struct Connections {
    state: std::sync::Mutex<ConnectionState>,
}

#[derive(Default)]
struct ConnectionState {
    open: usize,
    closed: u64,
    actors: std::collections::HashMap<nng::Pipe, u32>,
    gone: std::collections::BTreeMap<u32, u64>,
}

impl Connections {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.lock().unwrap().open
    }

    /// Connections closed so far, of any sender.
    pub fn closed(&self) -> u64 {
        self.state.lock().unwrap().closed
    }

    /// Per actor id: how many of its connections closed so far.
    pub fn gone(&self) -> std::collections::BTreeMap<u32, u64> {
        self.state.lock().unwrap().gone.clone()
    }

    pub(crate) fn event(&self, pipe: nng::Pipe, event: nng::PipeEvent) {
        let mut s = self.state.lock().unwrap();
        match event {
            nng::PipeEvent::AddPost => s.open += 1,
            nng::PipeEvent::RemovePost => {
                s.open = s.open.saturating_sub(1);
                s.closed += 1;
                let open = s.open;
                match s.actors.remove(&pipe) {
                    Some(actor) => {
                        let n = {
                            let n = s.gone.entry(actor).or_default();
                            *n += 1;
                            *n
                        };
                        tracing::warn!(
                            "actor {actor} disconnected (gone {n} time(s); {open} connection(s) open)"
                        );
                    }
                    None => tracing::info!(
                        "a connection closed before it carried a valid message ({open} open)"
                    ),
                }
            }
            _ => {}
        }
    }

    /// The first valid message on a connection names its actor: logged, as
    /// the counterpart of "disconnected", so a restarted learner shows which
    /// actors found it again.
    pub(crate) fn seen(&self, pipe: nng::Pipe, actor: u32) {
        let mut s = self.state.lock().unwrap();
        if let std::collections::hash_map::Entry::Vacant(entry) = s.actors.entry(pipe) {
            entry.insert(actor);
            tracing::info!("actor {actor} connected ({} connection(s) open)", s.open);
        }
    }
}
