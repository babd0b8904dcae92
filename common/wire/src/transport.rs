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
//! On tcp every message is sealed under the run's key ([`crate::seal`]:
//! encrypted, authenticated, taken once) and every received one is opened
//! before it is decoded; on ipc, which binds only in a private directory, the
//! operating system keeps others out and messages go as they are
//! ([`crate::auth::Guard`]). Each socket takes its guard from its address
//! ([`Credentials::for_address`]). A reply is sealed for the request it
//! answers; a request that cannot be opened is answered with a one-byte
//! refusal that says why ([`Refusal`]), so its sender asks again at once
//! instead of waiting out its timeout, or says what is wrong.
//!
//! A receive returns `Ok(Err(ProtocolError))` for a message that arrived but
//! was refused (not sealed with the run's key, replayed, wrong run, bad
//! bytes): the caller counts it and goes on. An `Err(TransportError)` means
//! the socket itself failed.

use std::time::Duration;

use nng::options::{Options, ReconnectMaxTime, ReconnectMinTime, RecvMaxSize, RecvTimeout};
use nng::{Message, Protocol, Socket};

use crate::auth::{Channel, Credentials};
pub use crate::connections::Connections;
use crate::error::Refusal;
use crate::protocol::{encode_into, Body, ProtocolError};
use crate::seal::{End, SealId, Service, OVERHEAD};

/// Default maximum size of one received message: a paper-sized unroll
/// (T = 50, 210x160x3 frames) is about 5 MB, so 64 MB leaves room for T = 500.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

pub use crate::error::TransportError;

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
    service: Service,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
    allow_remote: bool,
) -> Result<(Socket, Channel)> {
    let socket = Socket::new(protocol).map_err(socket_error("create socket for", address))?;
    listen_on(socket, service, address, creds, max_bytes, allow_remote, |_| Ok(()))
}

/// Binds `socket` at `address` after `configure` (pipe notifications must be
/// set before the first peer connects); returns it with its channel, `creds`
/// guarded for the address ([`Credentials::for_address`], which refuses an
/// ipc directory others may enter before anything is bound there).
fn listen_on(
    socket: Socket,
    service: Service,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
    allow_remote: bool,
    configure: impl FnOnce(&Socket) -> std::result::Result<(), nng::Error>,
) -> Result<(Socket, Channel)> {
    check_bind_address(address, allow_remote)?;
    let channel = creds.for_address(address, End::Listener, service)?;
    if let Some(path) = address.strip_prefix("ipc://") {
        // A socket file left by a killed process blocks the bind; nobody owns it.
        let _ = std::fs::remove_file(path);
    }
    socket.set_opt::<RecvMaxSize>(max_bytes).map_err(socket_error("configure", address))?;
    configure(&socket).map_err(socket_error("configure", address))?;
    socket.listen(address).map_err(socket_error("bind", address))?;
    Ok((socket, channel))
}

/// Dials `address`; returns the socket with its channel, `creds` guarded for
/// the address ([`Credentials::for_address`]), as [`listen_on`] does for a
/// listener.
fn dial(
    protocol: Protocol,
    service: Service,
    address: &str,
    creds: &Credentials,
    max_bytes: usize,
) -> Result<(Socket, Channel)> {
    let channel = creds.for_address(address, End::Dialer, service)?;
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
    Ok((socket, channel))
}

/// `body` encoded and sealed (a reply for the request `reply_to`), with the
/// message's id (`None` where the channel does not seal).
fn encode_message(
    channel: &Channel,
    body: &Body,
    capacity: usize,
    reply_to: Option<&SealId>,
) -> Result<(Message, Option<SealId>)> {
    let mut message = Message::with_capacity(capacity + channel.overhead());
    message.push_back(channel.header_room());
    encode_into(&mut message, channel.run(), body)?;
    let id = channel.seal_buffer(&mut message, reply_to);
    Ok((message, id))
}

/// `body` encoded and sealed, as bytes: for tests and benchmarks that put
/// messages on raw sockets.
pub fn seal(
    channel: &Channel,
    body: &Body,
) -> std::result::Result<(Vec<u8>, Option<SealId>), ProtocolError> {
    Ok(channel.seal(&crate::protocol::encode(channel.run(), body)?, None))
}

/// Opens `sealed` in place, then decodes: bytes not sealed for this run are
/// never parsed.
pub fn open(sealed: &mut [u8], channel: &Channel) -> std::result::Result<Body, ProtocolError> {
    opened(sealed, channel, None).map(|(body, _)| body)
}

/// [`open`], also returning the message's id (which a reply to it names). A
/// dialer passes the id of the request it waits on (`answering`).
fn opened(
    sealed: &mut [u8],
    channel: &Channel,
    answering: Option<&SealId>,
) -> std::result::Result<(Body, Option<SealId>), ProtocolError> {
    let (plain, id) = channel.open(sealed, answering)?;
    Ok((crate::protocol::decode(plain, channel.run())?, id))
}

/// The answer to a request refused with `why`: its one byte ([`Refusal`]).
fn refusal(why: &ProtocolError) -> Message {
    Message::from(&[Refusal::of(why) as u8][..])
}

/// A dialer's read of the answer to its request `answering`: a message of
/// at most one byte is the peer's refusal ([`ProtocolError::RefusedByPeer`];
/// no message of the protocol is that short, sealed or not).
fn open_answer(
    sealed: &mut [u8],
    channel: &Channel,
    answering: Option<&SealId>,
) -> std::result::Result<Body, ProtocolError> {
    if sealed.len() <= 1 {
        return Err(ProtocolError::RefusedByPeer(Refusal::from_byte(sealed.first().copied())));
    }
    opened(sealed, channel, answering).map(|(body, _)| body)
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

/// The next message on `socket`, waiting up to `timeout` (forever if None).
fn receive(socket: &Socket, timeout: Option<Duration>) -> Result<Option<Message>> {
    socket.set_opt::<RecvTimeout>(timeout).map_err(socket_error("configure", "socket"))?;
    match socket.recv() {
        Ok(message) => Ok(Some(message)),
        Err(nng::Error::TimedOut) => Ok(None),
        Err(source) => Err(failure("receive on", source)),
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
    channel: Channel,
    connections: std::sync::Arc<Connections>,
}

impl Pull {
    pub fn bind(
        address: &str,
        creds: &Credentials,
        max_bytes: usize,
        allow_remote: bool,
    ) -> Result<Self> {
        let (socket, channel) = listen(
            Protocol::Pull0,
            Service::Stream,
            address,
            creds,
            max_bytes + OVERHEAD,
            allow_remote,
        )?;
        let connections = std::sync::Arc::new(Connections::default());
        let c = connections.clone();
        socket
            .pipe_notify(move |pipe, event| c.event(pipe, event))
            .map_err(socket_error("configure", address))?;
        Ok(Pull { socket, channel, connections })
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
        let Some(mut message) = receive(&self.socket, timeout)? else { return Ok(None) };
        let body = open(&mut message, &self.channel);
        if let (Ok(body), Some(pipe)) = (&body, message.pipe()) {
            if let Some(actor) = sender(body) {
                self.connections.seen(pipe, actor);
            }
        }
        Ok(Some(body))
    }

    /// Raw bytes of the next message, for benchmarks that measure decoding apart.
    pub fn recv_raw(&self, timeout: Option<Duration>) -> Result<Option<Message>> {
        receive(&self.socket, timeout)
    }
}

/// The sending end of a PUSH -> PULL pipeline (actor).
pub struct Push {
    socket: Socket,
    channel: Channel,
}

impl Push {
    pub fn dial(address: &str, creds: &Credentials) -> Result<Self> {
        let (socket, channel) = dial(Protocol::Push0, Service::Stream, address, creds, 1 << 20)?;
        Ok(Push { socket, channel })
    }

    /// Sends, waiting while the receiver's queue is full: a slow learner slows
    /// its actors instead of letting messages pile up without bound. Gives up
    /// after `timeout` with [`TransportError::TimedOut`].
    pub fn send(&self, body: &Body, timeout: Option<Duration>) -> Result<()> {
        self.socket
            .set_opt::<nng::options::SendTimeout>(timeout)
            .map_err(socket_error("configure", "socket"))?;
        let (message, _) = encode_message(&self.channel, body, capacity_hint(body), None)?;
        self.socket.send(message).map_err(|(_, source)| failure("send on", source))
    }

    /// Sends without waiting; `Ok(false)` when no peer can take it now (the
    /// message is dropped). For streams that must never stall acting.
    pub fn try_send(&self, body: &Body) -> Result<bool> {
        let (message, _) = encode_message(&self.channel, body, capacity_hint(body), None)?;
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
    channel: Channel,
    /// The id of the request received last, which the answer is sealed for.
    asking: std::sync::Mutex<Option<SealId>>,
}

impl ParamsServer {
    pub fn bind(address: &str, creds: &Credentials, allow_remote: bool) -> Result<Self> {
        let (socket, channel) =
            listen(Protocol::Rep0, Service::Params, address, creds, 1 << 16, allow_remote)?;
        Ok(ParamsServer { socket, channel, asking: Default::default() })
    }

    /// Waits for the next request. Every request needs an answer before the
    /// next receive (the REP socket enforces strict alternation): a refused
    /// one gets [`ParamsServer::refuse`].
    pub fn recv(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<std::result::Result<Body, ProtocolError>>> {
        let Some(mut message) = receive(&self.socket, timeout)? else { return Ok(None) };
        let opened = opened(&mut message, &self.channel, None);
        *self.asking.lock().unwrap() = opened.as_ref().ok().and_then(|(_, id)| *id);
        Ok(Some(opened.map(|(body, _)| body)))
    }

    /// Answers the request received last with `encoded` (from
    /// [`ParamsServer::encode`]), sealed for that request: the caller encodes
    /// a large `Params` once per version and answers many actors with it.
    pub fn reply_encoded(&self, encoded: &[u8]) -> Result<()> {
        let mut message = Message::with_capacity(encoded.len() + self.channel.overhead());
        message.push_back(self.channel.header_room());
        message.push_back(encoded);
        let asking = self.asking.lock().unwrap().take();
        self.channel.seal_buffer(&mut message, asking.as_ref());
        self.send(message)
    }

    pub fn reply(&self, body: &Body) -> Result<()> {
        self.reply_encoded(&self.encode(body)?)
    }

    /// Answers the request received last, refused with `why` (it could not
    /// be opened, or was not a params request), with the one-byte refusal
    /// ([`Refusal`]), which holds nothing else: the asker, if it is of the
    /// run, asks again or says what is wrong.
    pub fn refuse(&self, why: &ProtocolError) -> Result<()> {
        self.asking.lock().unwrap().take();
        self.send(refusal(why))
    }

    /// `body`'s encoding, not yet sealed (each answer is sealed for its request).
    pub fn encode(&self, body: &Body) -> Result<Vec<u8>> {
        Ok(crate::protocol::encode(self.channel.run(), body)?)
    }

    fn send(&self, message: Message) -> Result<()> {
        self.socket.send(message).map_err(|(_, source)| TransportError::Socket {
            action: "reply on",
            address: "socket".into(),
            source,
        })
    }
}

/// The actor's REQ socket for parameters.
pub struct ParamsClient {
    socket: Socket,
    channel: Channel,
}

impl ParamsClient {
    pub fn dial(address: &str, creds: &Credentials, max_bytes: usize) -> Result<Self> {
        let (socket, channel) =
            dial(Protocol::Req0, Service::Params, address, creds, max_bytes + OVERHEAD)?;
        // Re-send a request that got no answer (the learner restarted
        // meanwhile). Without it, NNG ends the pending receive with an error
        // the moment the learner's connection closes. A learner takes a
        // sealed message once, so the copy is refused (`Stale` after a
        // restart, `Replayed` if the first one was taken), and the caller
        // asks again with a new request.
        socket
            .set_opt::<nng::options::protocol::reqrep::ResendTime>(Some(Duration::from_secs(5)))
            .map_err(socket_error("configure", address))?;
        Ok(ParamsClient { socket, channel })
    }

    /// Sends `body` and waits up to `timeout` for the answer. A learner that
    /// could not take the request answers with a refusal
    /// ([`ProtocolError::RefusedByPeer`]): ask again.
    pub fn request(
        &self,
        body: &Body,
        timeout: Duration,
    ) -> Result<std::result::Result<Body, ProtocolError>> {
        self.socket
            .set_opt::<nng::options::SendTimeout>(Some(timeout))
            .map_err(socket_error("configure", "socket"))?;
        let (message, asked) = encode_message(&self.channel, body, 256, None)?;
        self.socket.send(message).map_err(|(_, source)| failure("send on", source))?;
        let mut answer = receive(&self.socket, Some(timeout))?.ok_or(TransportError::TimedOut)?;
        Ok(open_answer(&mut answer, &self.channel, asked.as_ref()))
    }
}

/// Where an answer to one [`InferenceServer`] request goes: the request's
/// NNG header (connection and request id), copied onto the reply, and the
/// request's id, which the reply is sealed for.
pub struct ReplyTo {
    header: Vec<u8>,
    request: Option<SealId>,
}

/// The learner's socket for central inference: a raw REP socket, so that many
/// actors' requests can be held at once, batched, and answered in any order.
pub struct InferenceServer {
    socket: Socket,
    channel: Channel,
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
        let max_bytes = max_bytes + OVERHEAD;
        let (socket, channel) = listen_on(
            raw.socket,
            Service::Inference,
            address,
            creds,
            max_bytes,
            allow_remote,
            move |socket| {
                socket.set_opt::<nng::options::SendTimeout>(Some(Duration::from_secs(1)))?;
                socket.pipe_notify(move |pipe, event| c.event(pipe, event))
            },
        )?;
        Ok(InferenceServer { socket, channel, connections })
    }

    /// Who is connected, and which actors went away.
    pub fn connections(&self) -> std::sync::Arc<Connections> {
        self.connections.clone()
    }

    /// Waits up to `timeout` for one request. One that cannot be opened is
    /// answered here with the one-byte refusal ([`Refusal`]: its sender
    /// starts over at once) and comes back as its error, with no [`ReplyTo`].
    #[allow(clippy::type_complexity)]
    pub fn recv(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<std::result::Result<(ReplyTo, Body), ProtocolError>>> {
        let Some(mut message) = receive(&self.socket, timeout)? else { return Ok(None) };
        let header = message.as_header().as_slice().to_vec();
        let (body, request) = match opened(&mut message, &self.channel, None) {
            Ok(opened) => opened,
            Err(e) => {
                let mut answer = refusal(&e);
                answer.as_mut_header().push_back(&header);
                let _ = self.socket.send(answer);
                return Ok(Some(Err(e)));
            }
        };
        if let (Some(actor), Some(pipe)) = (sender(&body), message.pipe()) {
            self.connections.seen(pipe, actor);
        }
        Ok(Some(Ok((ReplyTo { header, request }, body))))
    }

    /// Answers one request. Does not wait on the actor: a raw REP socket
    /// drops an answer whose connection has gone or is full.
    pub fn reply(&self, to: &ReplyTo, body: &Body) -> Result<()> {
        let (mut message, _) =
            encode_message(&self.channel, body, capacity_hint(body), to.request.as_ref())?;
        message.as_mut_header().push_back(&to.header);
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
    channel: Channel,
    /// The id of the request waiting for its answer.
    asked: std::sync::Mutex<Option<SealId>>,
}

impl InferenceClient {
    pub fn dial(address: &str, creds: &Credentials, max_bytes: usize) -> Result<Self> {
        let (socket, channel) =
            dial(Protocol::Req0, Service::Inference, address, creds, max_bytes + OVERHEAD)?;
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
        let asked = Default::default();
        Ok(InferenceClient { _socket: socket, ctx, aio, results, channel, asked })
    }

    /// Sends a request, waiting up to `timeout` for a learner to take it,
    /// and starts receiving its answer. A request still waiting for its
    /// answer is abandoned.
    pub fn send(&self, body: &Body, timeout: Duration) -> Result<()> {
        self.aio.cancel();
        self.aio.wait();
        while self.results.try_recv().is_ok() {}
        let (message, id) = encode_message(&self.channel, body, capacity_hint(body), None)?;
        *self.asked.lock().unwrap() = id;
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
    /// leaves it waiting. The learner's refusal of the request is
    /// [`ProtocolError::RefusedByPeer`].
    pub fn recv(&self, timeout: Duration) -> Result<std::result::Result<Body, ProtocolError>> {
        match self.results.recv_timeout(timeout) {
            Ok(nng::AioResult::Recv(Ok(mut message))) => {
                let asked = *self.asked.lock().unwrap();
                Ok(open_answer(&mut message, &self.channel, asked.as_ref()))
            }
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
    use crate::seal::HEADER_BYTES;

    /// A message altered on the way (one byte flipped between the sender's
    /// seal and the receiver) is refused unread; the same message intact is
    /// taken once, a second copy is refused as a replay, and the connection
    /// stays usable.
    #[test]
    fn a_byte_flipped_in_flight_or_a_replay_is_dropped() {
        // On tcp, where messages are sealed.
        let address = loopback();
        let creds = Credentials::ephemeral("run");
        let pull = Pull::bind(&address, &creds, 1 << 20, false).unwrap();
        let wire = Socket::new(Protocol::Push0).unwrap();
        wire.dial(&address).unwrap();
        let actor = creds.for_address(&address, End::Dialer, Service::Stream).unwrap();
        let (sealed, _) = seal(&actor, &Body::UpToDate(UpToDate { version: 7 })).unwrap();
        let timeout = Some(Duration::from_secs(10));
        let receive = |bytes: &[u8]| {
            wire.send(Message::from(bytes)).unwrap();
            pull.recv(timeout).unwrap().expect("a message")
        };
        for i in [0, 20, HEADER_BYTES - 1, sealed.len() / 2, sealed.len() - 17, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[i] ^= 0x10;
            let got = receive(&altered);
            assert!(matches!(got, Err(ProtocolError::Unauthenticated)), "byte {i}: {got:?}");
        }
        let got = receive(&sealed);
        assert!(matches!(got, Ok(Body::UpToDate(UpToDate { version: 7 }))), "{got:?}");
        assert!(matches!(receive(&sealed), Err(ProtocolError::Replayed)));
        // Another run's key, with our run id: refused as well.
        let forger = Credentials::ephemeral("run")
            .for_address(&address, End::Dialer, Service::Stream)
            .unwrap();
        let (forged, _) = seal(&forger, &Body::UpToDate(UpToDate { version: 8 })).unwrap();
        assert!(matches!(receive(&forged), Err(ProtocolError::Unauthenticated)));
        let (next, _) = seal(&actor, &Body::UpToDate(UpToDate { version: 9 })).unwrap();
        assert!(matches!(receive(&next), Ok(Body::UpToDate(UpToDate { version: 9 }))));
    }

    /// A params request replayed byte for byte gets the refusal, not an
    /// answer; the answer to the real one opens only for that request.
    #[test]
    fn a_replayed_params_request_gets_the_refusal() {
        let address = loopback();
        let creds = Credentials::ephemeral("run");
        let server = ParamsServer::bind(&address, &creds, false).unwrap();
        let actor = creds.for_address(&address, End::Dialer, Service::Params).unwrap();
        let request = Body::UpToDate(UpToDate { version: 1 });
        let (sealed, asked) = seal(&actor, &request).unwrap();
        let (_, other) = seal(&actor, &request).unwrap();
        let raw = Socket::new(Protocol::Req0).unwrap();
        raw.dial(&address).unwrap();
        raw.set_opt::<RecvTimeout>(Some(Duration::from_secs(10))).unwrap();
        let timeout = Some(Duration::from_secs(10));
        for replay in [false, true] {
            raw.send(Message::from(&sealed[..])).unwrap();
            match server.recv(timeout).unwrap().expect("a request") {
                Ok(_) => {
                    assert!(!replay, "the replay was taken");
                    server.reply(&Body::UpToDate(UpToDate { version: 2 })).unwrap();
                    let mut answer = raw.recv().unwrap();
                    let mut copy = answer.as_slice().to_vec();
                    assert!(
                        open_answer(&mut copy, &actor, other.as_ref()).is_err(),
                        "another request's"
                    );
                    let got = open_answer(&mut answer, &actor, asked.as_ref());
                    assert!(matches!(got, Ok(Body::UpToDate(UpToDate { version: 2 }))), "{got:?}");
                }
                Err(e) => {
                    assert!(replay && e == ProtocolError::Replayed, "{e}");
                    server.refuse(&e).unwrap();
                    let mut answer = raw.recv().unwrap();
                    let got = open_answer(&mut answer, &actor, asked.as_ref());
                    assert_eq!(got.unwrap_err(), ProtocolError::RefusedByPeer(Refusal::Replayed));
                }
            }
        }
    }

    /// Two clients' requests are held at once and answered in the reverse
    /// order; each client gets its own answer. Bytes not sealed for the run
    /// get the refusal (an empty answer), and the socket goes on.
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
        raw.set_opt::<RecvTimeout>(Some(timeout)).unwrap();
        assert_eq!(raw.recv().unwrap().as_slice(), [Refusal::Unreadable as u8], "the refusal");
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
    /// system keeps others out); tcp carries it sealed, unreadable. An ipc
    /// socket in a directory others may enter is refused on both ends.
    #[test]
    fn messages_are_sealed_on_tcp_only() {
        use std::os::unix::fs::PermissionsExt;
        let creds = Credentials::ephemeral("run");
        let body = Body::UpToDate(UpToDate { version: 3 });
        let bare = crate::protocol::encode("run", &body).unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::private::private_dir(dir.path()).unwrap();
        let ipc = format!("ipc://{}/pull", dir.path().display());
        assert_eq!(on_the_wire(&ipc, &creds, &body), bare);
        let tcp = loopback();
        let mut sealed = on_the_wire(&tcp, &creds, &body);
        assert_eq!(sealed.len(), bare.len() + OVERHEAD);
        assert!(!sealed.windows(3).any(|w| w == b"run"), "the run id is not readable");
        let learner = creds.for_address(&tcp, End::Listener, Service::Stream).unwrap();
        assert_eq!(learner.open(&mut sealed, None).unwrap().0, &bare[..]);

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
