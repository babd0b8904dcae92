//! NNG sockets that speak the wire protocol.
//!
//! Six roles, one per socket kind (docs/architecture.md, Sockets and messages):
//! [`Pull`] (learner: trajectories; recorder: episodes), [`Push`] (actor),
//! [`ParamsServer`] (learner, REP), [`ParamsClient`] (actor, REQ), and for
//! central inference [`InferenceServer`] (learner, raw REP) and
//! [`InferenceClient`] (actor, REQ).
//! Every receiving socket sets a maximum message size, dialers redial by
//! themselves when the peer goes away and comes back, and nothing binds beyond
//! loopback unless the caller says so ([`check_bind_address`]).
//!
//! On tcp every message is tagged with the run's key ([`crate::auth`]) and
//! every received one is checked before it is decoded; on ipc, which binds
//! only in a private directory, the operating system keeps others out and
//! messages carry no tag ([`crate::auth::Guard`]). Each socket takes its
//! guard from its address ([`Credentials::for_address`]).
//!
//! A receive returns `Ok(Err(ProtocolError))` for a message that arrived but
//! was refused (no valid tag, wrong run, bad bytes): the caller counts it and
//! goes on. An `Err(TransportError)` means the socket itself failed.

use std::time::Duration;

use nng::options::{Options, ReconnectMaxTime, ReconnectMinTime, RecvMaxSize, RecvTimeout};
use nng::{Message, Protocol, Socket};

use crate::auth::{Credentials, Guard, TAG_BYTES};
use crate::protocol::{encode_into, Body, ProtocolError};

/// Default maximum size of one received message: a paper-sized unroll
/// (T = 50, 210x160x3 frames) is about 5 MB, so 64 MB leaves room for T = 500.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot {action} {address}: {source}")]
    Socket {
        action: &'static str,
        address: String,
        #[source]
        source: nng::Error,
    },
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("address {0:?} is not loopback: binding there exposes the run to the network; pass --allow-remote to do it on purpose")]
    NotLoopback(String),
    #[error("address {0:?} is neither ipc://<path> nor tcp://<host>:<port>")]
    BadAddress(String),
    #[error("the ipc socket's directory is not private: {0}")]
    NotPrivate(#[from] crate::private::NotPrivate),
    #[error("timed out")]
    TimedOut,
    #[error("socket closed")]
    Closed,
}

type Result<T> = std::result::Result<T, TransportError>;

/// Refuses a bind address that would listen beyond this host unless
/// `allow_remote`. `ipc://` is always local.
pub fn check_bind_address(address: &str, allow_remote: bool) -> Result<()> {
    if address.starts_with("ipc://") || address.starts_with("inproc://") {
        return Ok(());
    }
    let Some(hostport) = address.strip_prefix("tcp://") else {
        return Err(TransportError::BadAddress(address.into()));
    };
    let host = match hostport.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => return Err(TransportError::BadAddress(address.into())),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
    if loopback || allow_remote {
        Ok(())
    } else {
        Err(TransportError::NotLoopback(address.into()))
    }
}

fn socket_error(action: &'static str, address: &str) -> impl FnOnce(nng::Error) -> TransportError {
    let address = address.to_owned();
    move |source| TransportError::Socket { action, address, source }
}

fn listen(
    protocol: Protocol,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
    allow_remote: bool,
) -> Result<(Socket, Credentials)> {
    let socket = Socket::new(protocol).map_err(socket_error("create socket for", address))?;
    listen_on(socket, address, creds, max_bytes, allow_remote, |_| Ok(()))
}

/// Binds `socket` at `address` after `configure` (pipe notifications must be
/// set before the first peer connects); returns it with `creds` guarded for
/// the address ([`Credentials::for_address`], which refuses an ipc directory
/// others may enter before anything is bound there).
fn listen_on(
    socket: Socket,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
    allow_remote: bool,
    configure: impl FnOnce(&Socket) -> std::result::Result<(), nng::Error>,
) -> Result<(Socket, Credentials)> {
    check_bind_address(address, allow_remote)?;
    let creds = creds.for_address(address)?;
    if let Some(path) = address.strip_prefix("ipc://") {
        // A socket file left by a killed process blocks the bind; nobody owns it.
        let _ = std::fs::remove_file(path);
    }
    socket.set_opt::<RecvMaxSize>(max_bytes).map_err(socket_error("configure", address))?;
    configure(&socket).map_err(socket_error("configure", address))?;
    socket.listen(address).map_err(socket_error("bind", address))?;
    Ok((socket, creds))
}

/// Dials `address`; returns the socket with `creds` guarded for the address
/// ([`Credentials::for_address`]), as [`listen_on`] does for a listener.
fn dial(
    protocol: Protocol,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
) -> Result<(Socket, Credentials)> {
    let creds = creds.for_address(address)?;
    let socket = Socket::new(protocol).map_err(socket_error("create socket for", address))?;
    socket.set_opt::<RecvMaxSize>(max_bytes).map_err(socket_error("configure", address))?;
    socket
        .set_opt::<ReconnectMinTime>(Some(Duration::from_millis(50)))
        .map_err(socket_error("configure", address))?;
    socket
        .set_opt::<ReconnectMaxTime>(Some(Duration::from_secs(2)))
        .map_err(socket_error("configure", address))?;
    // Asynchronous dial: succeeds before the peer exists and redials forever.
    socket.dial_async(address).map_err(socket_error("dial", address))?;
    Ok((socket, creds))
}

fn encode_message(creds: &Credentials, body: &Body, capacity: usize) -> Result<Message> {
    let mut message = Message::with_capacity(capacity + TAG_BYTES);
    encode_into(&mut message, creds.run(), body)?;
    if creds.guard() == Guard::Tag {
        let tag = creds.key().tag(&message);
        message.push_back(&tag);
    }
    Ok(message)
}

/// `body` encoded and tagged, as bytes: for a message sent many times.
pub fn seal(creds: &Credentials, body: &Body) -> std::result::Result<Vec<u8>, ProtocolError> {
    Ok(creds.seal(crate::protocol::encode(creds.run(), body)?))
}

/// Checks the tag, then decodes: bytes without this run's tag are never
/// parsed.
pub fn open(sealed: &[u8], creds: &Credentials) -> std::result::Result<Body, ProtocolError> {
    let message = creds.open(sealed).ok_or(ProtocolError::Unauthenticated)?;
    crate::protocol::decode(message, creds.run())
}

/// Capacity for the encoded message. It must cover the whole message: NNG
/// grows a full message by exactly what each write needs, so every small
/// write after the capacity is exceeded copies the whole body again.
fn capacity_hint(body: &Body) -> usize {
    body.bulk_bytes() + 64 * 1024
}

/// The error for a failed send or receive: a timeout and a closed socket are
/// their own variants, so callers can wait or stop; anything else names the
/// operation.
fn failure(action: &'static str, source: nng::Error) -> TransportError {
    match source {
        nng::Error::TimedOut => TransportError::TimedOut,
        nng::Error::Closed => TransportError::Closed,
        source => TransportError::Socket { action, address: "socket".into(), source },
    }
}

fn receive(
    socket: &Socket,
    creds: &Credentials,
    timeout: Option<Duration>,
) -> Result<Option<std::result::Result<Body, ProtocolError>>> {
    socket.set_opt::<RecvTimeout>(timeout).map_err(socket_error("configure", "socket"))?;
    match socket.recv() {
        Ok(message) => Ok(Some(open(&message, creds))),
        Err(nng::Error::TimedOut) => Ok(None),
        Err(source) => Err(failure("receive on", source)),
    }
}

/// The senders connected to a [`Pull`] socket. A connection is tied to the
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

    fn event(&self, pipe: nng::Pipe, event: nng::PipeEvent) {
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
    fn seen(&self, pipe: nng::Pipe, actor: u32) {
        let mut s = self.state.lock().unwrap();
        if let std::collections::hash_map::Entry::Vacant(entry) = s.actors.entry(pipe) {
            entry.insert(actor);
            tracing::info!("actor {actor} connected ({} connection(s) open)", s.open);
        }
    }
}

/// The actor a message came from, where the body names one.
fn sender(body: &Body) -> Option<u32> {
    match body {
        Body::Trajectory(t) => Some(t.actor_id),
        Body::EpisodeChunk(c) => Some(c.uid.actor),
        Body::ParamsRequest(r) => Some(r.actor_id),
        Body::Observations(o) => Some(o.actor_id),
        Body::Params(_) | Body::UpToDate(_) | Body::Actions(_) | Body::Restart(_) => None,
    }
}

/// The receiving end of a PUSH -> PULL pipeline (learner, recorder).
pub struct Pull {
    socket: Socket,
    creds: Credentials,
    connections: std::sync::Arc<Connections>,
}

impl Pull {
    pub fn bind(
        address: &str,
        creds: &Credentials,
        max_bytes: usize,
        allow_remote: bool,
    ) -> Result<Self> {
        let (socket, creds) =
            listen(Protocol::Pull0, address, creds, max_bytes + TAG_BYTES, allow_remote)?;
        let connections = std::sync::Arc::new(Connections::default());
        let c = connections.clone();
        socket
            .pipe_notify(move |pipe, event| c.event(pipe, event))
            .map_err(socket_error("configure", address))?;
        Ok(Pull { socket, creds, connections })
    }

    /// Who is connected, and which actors went away.
    pub fn connections(&self) -> std::sync::Arc<Connections> {
        self.connections.clone()
    }

    /// Waits up to `timeout` (forever if None) for one message.
    pub fn recv(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<std::result::Result<Body, ProtocolError>>> {
        self.socket.set_opt::<RecvTimeout>(timeout).map_err(socket_error("configure", "socket"))?;
        match self.socket.recv() {
            Ok(mut message) => {
                let body = open(&message, &self.creds);
                if let (Ok(body), Some(pipe)) = (&body, message.pipe()) {
                    if let Some(actor) = sender(body) {
                        self.connections.seen(pipe, actor);
                    }
                }
                Ok(Some(body))
            }
            Err(nng::Error::TimedOut) => Ok(None),
            Err(source) => Err(failure("receive on", source)),
        }
    }

    /// Raw bytes of the next message, for benchmarks that measure decoding apart.
    pub fn recv_raw(&self, timeout: Option<Duration>) -> Result<Option<Message>> {
        self.socket.set_opt::<RecvTimeout>(timeout).map_err(socket_error("configure", "socket"))?;
        match self.socket.recv() {
            Ok(message) => Ok(Some(message)),
            Err(nng::Error::TimedOut) => Ok(None),
            Err(source) => Err(failure("receive on", source)),
        }
    }
}

/// The sending end of a PUSH -> PULL pipeline (actor).
pub struct Push {
    socket: Socket,
    creds: Credentials,
}

impl Push {
    pub fn dial(address: &str, creds: &Credentials) -> Result<Self> {
        let (socket, creds) = dial(Protocol::Push0, address, creds, 1 << 20)?;
        Ok(Push { socket, creds })
    }

    /// Sends, waiting while the receiver's queue is full: a slow learner slows
    /// its actors instead of letting messages pile up without bound. Gives up
    /// after `timeout` with [`TransportError::TimedOut`].
    pub fn send(&self, body: &Body, timeout: Option<Duration>) -> Result<()> {
        self.socket
            .set_opt::<nng::options::SendTimeout>(timeout)
            .map_err(socket_error("configure", "socket"))?;
        let message = encode_message(&self.creds, body, capacity_hint(body))?;
        self.socket.send(message).map_err(|(_, source)| failure("send on", source))
    }

    /// Sends without waiting; `Ok(false)` when no peer can take it now (the
    /// message is dropped). For streams that must never stall acting.
    pub fn try_send(&self, body: &Body) -> Result<bool> {
        let message = encode_message(&self.creds, body, capacity_hint(body))?;
        match self.socket.try_send(message) {
            Ok(()) => Ok(true),
            Err((_, nng::Error::TryAgain)) => Ok(false),
            Err((_, source)) => Err(failure("send on", source)),
        }
    }
}

/// The learner's REP socket that answers [`crate::protocol::ParamsRequest`]s.
pub struct ParamsServer {
    socket: Socket,
    creds: Credentials,
}

impl ParamsServer {
    pub fn bind(address: &str, creds: &Credentials, allow_remote: bool) -> Result<Self> {
        let (socket, creds) = listen(Protocol::Rep0, address, creds, 1 << 16, allow_remote)?;
        Ok(ParamsServer { socket, creds })
    }

    /// Waits for the next request. A refused message still needs a reply
    /// before the next receive: call [`ParamsServer::reply`] with whatever
    /// answer fits (the REP socket enforces strict alternation).
    pub fn recv(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<std::result::Result<Body, ProtocolError>>> {
        receive(&self.socket, &self.creds, timeout)
    }

    /// Answers the request received last. `encoded` (from [`ParamsServer::encode`],
    /// tagged) lets the caller serialize a large `Params` once per version and
    /// answer many actors with it.
    pub fn reply_encoded(&self, encoded: &[u8]) -> Result<()> {
        self.socket.send(Message::from(encoded)).map_err(|(_, source)| TransportError::Socket {
            action: "reply on",
            address: "socket".into(),
            source,
        })
    }

    pub fn reply(&self, body: &Body) -> Result<()> {
        self.reply_encoded(&self.encode(body)?)
    }

    pub fn encode(&self, body: &Body) -> Result<Vec<u8>> {
        Ok(seal(&self.creds, body)?)
    }
}

/// The actor's REQ socket for parameters.
pub struct ParamsClient {
    socket: Socket,
    creds: Credentials,
}

impl ParamsClient {
    pub fn dial(address: &str, creds: &Credentials, max_bytes: usize) -> Result<Self> {
        let (socket, creds) = dial(Protocol::Req0, address, creds, max_bytes + TAG_BYTES)?;
        // Re-send a request that got no answer (learner restarted meanwhile).
        socket
            .set_opt::<nng::options::protocol::reqrep::ResendTime>(Some(Duration::from_secs(5)))
            .map_err(socket_error("configure", address))?;
        Ok(ParamsClient { socket, creds })
    }

    /// Sends `body` and waits up to `timeout` for the answer.
    pub fn request(
        &self,
        body: &Body,
        timeout: Duration,
    ) -> Result<std::result::Result<Body, ProtocolError>> {
        self.socket
            .set_opt::<nng::options::SendTimeout>(Some(timeout))
            .map_err(socket_error("configure", "socket"))?;
        let message = encode_message(&self.creds, body, 256)?;
        self.socket.send(message).map_err(|(_, source)| failure("send on", source))?;
        receive(&self.socket, &self.creds, Some(timeout))?.ok_or(TransportError::TimedOut)
    }
}

/// Where an answer to one [`InferenceServer`] request goes: the request's
/// NNG header (connection and request id), copied onto the reply.
pub struct ReplyTo(Vec<u8>);

/// The learner's socket for central inference: a raw REP socket, so that many
/// actors' requests can be held at once, batched, and answered in any order.
pub struct InferenceServer {
    socket: Socket,
    creds: Credentials,
    connections: std::sync::Arc<Connections>,
}

impl InferenceServer {
    pub fn bind(
        address: &str,
        creds: &Credentials,
        max_bytes: usize,
        allow_remote: bool,
    ) -> Result<Self> {
        let raw = nng::RawSocket::new(Protocol::Rep0)
            .map_err(socket_error("create socket for", address))?;
        let connections = std::sync::Arc::new(Connections::default());
        let c = connections.clone();
        let max_bytes = max_bytes + TAG_BYTES;
        let (socket, creds) =
            listen_on(raw.socket, address, creds, max_bytes, allow_remote, move |socket| {
                socket.set_opt::<nng::options::SendTimeout>(Some(Duration::from_secs(1)))?;
                socket.pipe_notify(move |pipe, event| c.event(pipe, event))
            })?;
        Ok(InferenceServer { socket, creds, connections })
    }

    /// Who is connected, and which actors went away.
    pub fn connections(&self) -> std::sync::Arc<Connections> {
        self.connections.clone()
    }

    /// Waits up to `timeout` for one request. A refused one comes with no
    /// [`ReplyTo`]: nothing that cannot be read is answered.
    #[allow(clippy::type_complexity)]
    pub fn recv(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<std::result::Result<(ReplyTo, Body), ProtocolError>>> {
        self.socket.set_opt::<RecvTimeout>(timeout).map_err(socket_error("configure", "socket"))?;
        match self.socket.recv() {
            Ok(mut message) => {
                let body = match open(&message, &self.creds) {
                    Ok(body) => body,
                    Err(e) => return Ok(Some(Err(e))),
                };
                if let (Some(actor), Some(pipe)) = (sender(&body), message.pipe()) {
                    self.connections.seen(pipe, actor);
                }
                Ok(Some(Ok((ReplyTo(message.as_header().as_slice().to_vec()), body))))
            }
            Err(nng::Error::TimedOut) => Ok(None),
            Err(source) => Err(failure("receive on", source)),
        }
    }

    /// Answers one request. Does not wait on the actor: a raw REP socket
    /// drops an answer whose connection has gone or is full.
    pub fn reply(&self, to: &ReplyTo, body: &Body) -> Result<()> {
        let mut message = encode_message(&self.creds, body, capacity_hint(body))?;
        message.as_mut_header().push_back(&to.0);
        match self.socket.send(message) {
            Ok(()) => Ok(()),
            Err((_, source)) => Err(failure("reply on", source)),
        }
    }
}

/// An actor's REQ socket for central inference, one per group of
/// environments: [`InferenceClient::send`] a step, do other work, then poll
/// [`InferenceClient::recv`] for the answer. The receive runs asynchronously
/// on an NNG context, so a poll that finds nothing leaves the request
/// waiting (a timed-out receive on a plain REQ socket would abandon it).
pub struct InferenceClient {
    _socket: Socket,
    ctx: nng::Context,
    aio: nng::Aio,
    results: std::sync::mpsc::Receiver<nng::AioResult>,
    creds: Credentials,
}

impl InferenceClient {
    pub fn dial(address: &str, creds: &Credentials, max_bytes: usize) -> Result<Self> {
        let (socket, creds) = dial(Protocol::Req0, address, creds, max_bytes + TAG_BYTES)?;
        // Never re-send on our own: a step answered twice would advance the
        // learner's copy of the environment twice. A lost answer is a timeout,
        // and the actor starts the group over.
        socket
            .set_opt::<nng::options::protocol::reqrep::ResendTime>(None)
            .map_err(socket_error("configure", address))?;
        let ctx = nng::Context::new(&socket).map_err(socket_error("open a context on", address))?;
        let (tx, results) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let aio = nng::Aio::new(move |_, result| {
            let _ = tx.lock().map(|tx| tx.send(result));
        })
        .map_err(socket_error("set up", address))?;
        Ok(InferenceClient { _socket: socket, ctx, aio, results, creds })
    }

    /// Sends a request, waiting up to `timeout` for a learner to take it,
    /// and starts receiving its answer. A request still waiting for its
    /// answer is abandoned.
    pub fn send(&self, body: &Body, timeout: Duration) -> Result<()> {
        self.aio.cancel();
        self.aio.wait();
        while self.results.try_recv().is_ok() {}
        let message = encode_message(&self.creds, body, capacity_hint(body))?;
        self.ctx.send(&self.aio, message).map_err(|(_, source)| failure("send on", source))?;
        match self.results.recv_timeout(timeout) {
            Ok(nng::AioResult::Send(Ok(()))) => {}
            Ok(nng::AioResult::Send(Err((_, source)))) => return Err(failure("send on", source)),
            Ok(_) => return Err(failure("send on", nng::Error::IncorrectState)),
            Err(_) => {
                self.aio.cancel();
                return Err(TransportError::TimedOut);
            }
        }
        self.ctx.recv(&self.aio).map_err(|source| failure("receive on", source))
    }

    /// Waits up to `timeout` for the answer to the last request; a timeout
    /// leaves it waiting.
    pub fn recv(&self, timeout: Duration) -> Result<std::result::Result<Body, ProtocolError>> {
        match self.results.recv_timeout(timeout) {
            Ok(nng::AioResult::Recv(Ok(message))) => Ok(open(&message, &self.creds)),
            Ok(nng::AioResult::Recv(Err(source))) => Err(failure("receive on", source)),
            Ok(_) => Err(failure("receive on", nng::Error::IncorrectState)),
            Err(_) => Err(TransportError::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::UpToDate;

    /// A message altered on the way (one byte flipped between the sender's
    /// tag and the receiver) is refused unread; the same message intact is
    /// taken, and so is the next one: the connection stays usable.
    #[test]
    fn a_byte_flipped_in_flight_is_dropped() {
        // On tcp, where messages are tagged.
        let address = loopback();
        let creds = Credentials::ephemeral("run").for_address(&address).unwrap();
        let pull = Pull::bind(&address, &creds, 1 << 20, false).unwrap();
        let wire = Socket::new(Protocol::Push0).unwrap();
        wire.dial(&address).unwrap();
        let sealed = seal(&creds, &Body::UpToDate(UpToDate { version: 7 })).unwrap();
        let timeout = Some(Duration::from_secs(10));
        for i in [0, sealed.len() / 2, sealed.len() - TAG_BYTES - 1, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[i] ^= 0x10;
            wire.send(Message::from(&altered[..])).unwrap();
            let got = pull.recv(timeout).unwrap().expect("a message");
            assert!(matches!(got, Err(ProtocolError::Unauthenticated)), "byte {i}: {got:?}");
        }
        wire.send(Message::from(&sealed[..])).unwrap();
        let got = pull.recv(timeout).unwrap().expect("a message");
        assert!(matches!(got, Ok(Body::UpToDate(UpToDate { version: 7 }))), "{got:?}");
        // Another run's key, with our run id: refused as well.
        let forged = seal(&Credentials::ephemeral("run"), &Body::UpToDate(UpToDate { version: 8 }));
        wire.send(Message::from(&forged.unwrap()[..])).unwrap();
        let got = pull.recv(timeout).unwrap().expect("a message");
        assert!(matches!(got, Err(ProtocolError::Unauthenticated)), "{got:?}");
    }

    /// Two clients' requests are held at once and answered in the reverse
    /// order; each client gets its own answer. Bytes without the run's tag
    /// are refused without an answer, and the socket goes on.
    #[test]
    fn inference_requests_are_answered_in_any_order() {
        use crate::protocol::Restart;
        let address = loopback();
        let creds = Credentials::ephemeral("run");
        let server = InferenceServer::bind(&address, &creds, 1 << 20, false).unwrap();
        let clients: Vec<_> =
            (0..2).map(|_| InferenceClient::dial(&address, &creds, 1 << 20).unwrap()).collect();
        let timeout = Duration::from_secs(10);
        for (i, c) in clients.iter().enumerate() {
            c.send(&Body::UpToDate(UpToDate { version: i as u64 }), timeout).unwrap();
        }
        let mut held = Vec::new();
        while held.len() < 2 {
            let (to, body) = server.recv(Some(timeout)).unwrap().expect("a request").unwrap();
            let Body::UpToDate(UpToDate { version }) = body else { panic!("{}", body.kind()) };
            held.push((to, version));
        }
        for (to, version) in held.iter().rev() {
            let answer = Restart { stream: *version, reason: format!("for {version}") };
            server.reply(to, &Body::Restart(answer)).unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            match c.recv(timeout).unwrap().unwrap() {
                Body::Restart(r) => assert_eq!(r.stream, i as u64),
                other => panic!("{}", other.kind()),
            }
        }
        let raw = Socket::new(Protocol::Req0).unwrap();
        raw.dial(&address).unwrap();
        raw.send(Message::from(&b"not a message"[..])).unwrap();
        let got = server.recv(Some(timeout)).unwrap().expect("a message");
        assert!(matches!(got, Err(ProtocolError::Unauthenticated)));
        clients[0].send(&Body::UpToDate(UpToDate { version: 5 }), timeout).unwrap();
        let (to, _) = server.recv(Some(timeout)).unwrap().unwrap().unwrap();
        server.reply(&to, &Body::UpToDate(UpToDate { version: 6 })).unwrap();
        assert!(matches!(
            clients[0].recv(timeout).unwrap(),
            Ok(Body::UpToDate(UpToDate { version: 6 }))
        ));
    }

    /// A loopback tcp address nobody listens on now.
    fn loopback() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("tcp://127.0.0.1:{port}")
    }

    /// What a sender puts on the wire for one body, read by a raw socket.
    fn on_the_wire(address: &str, creds: &Credentials, body: &Body) -> Vec<u8> {
        let raw = Socket::new(Protocol::Pull0).unwrap();
        raw.listen(address).unwrap();
        let push = Push::dial(address, creds).unwrap();
        push.send(body, Some(Duration::from_secs(10))).unwrap();
        raw.set_opt::<RecvTimeout>(Some(Duration::from_secs(10))).unwrap();
        raw.recv().unwrap().as_slice().to_vec()
    }

    /// ipc in a private directory carries the bare encoding (the operating
    /// system keeps others out); tcp carries it with the run's tag. An ipc
    /// socket in a directory others may enter is refused on both ends.
    #[test]
    fn messages_are_tagged_on_tcp_only() {
        use std::os::unix::fs::PermissionsExt;
        let creds = Credentials::ephemeral("run");
        let body = Body::UpToDate(UpToDate { version: 3 });
        let bare = crate::protocol::encode("run", &body).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::private::private_dir(dir.path()).unwrap();
        let ipc = format!("ipc://{}/pull", dir.path().display());
        assert_eq!(on_the_wire(&ipc, &creds, &body), bare);
        let tagged = on_the_wire(&loopback(), &creds, &body);
        assert_eq!(tagged.len(), bare.len() + TAG_BYTES);
        assert_eq!(creds.open(&tagged), Some(&bare[..]));

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        let refused = |e: TransportError| e.to_string().contains("chmod 700");
        assert!(Push::dial(&ipc, &creds).err().is_some_and(refused));
        assert!(Pull::bind(&ipc, &creds, 1 << 20, false).err().is_some_and(refused));
    }

    #[test]
    fn bind_addresses_stay_on_loopback_unless_allowed() {
        assert!(check_bind_address("ipc:///tmp/x", false).is_ok());
        assert!(check_bind_address("tcp://127.0.0.1:5555", false).is_ok());
        assert!(check_bind_address("tcp://localhost:5555", false).is_ok());
        assert!(check_bind_address("tcp://[::1]:5555", false).is_ok());
        assert!(matches!(
            check_bind_address("tcp://0.0.0.0:5555", false),
            Err(TransportError::NotLoopback(_))
        ));
        assert!(matches!(
            check_bind_address("tcp://10.1.2.3:5555", false),
            Err(TransportError::NotLoopback(_))
        ));
        assert!(check_bind_address("tcp://0.0.0.0:5555", true).is_ok());
        assert!(matches!(check_bind_address("udp://x", true), Err(TransportError::BadAddress(_))));
        assert!(matches!(
            check_bind_address("tcp://host", true),
            Err(TransportError::BadAddress(_))
        ));
    }
}
