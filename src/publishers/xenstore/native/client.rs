//! One xenstore connection on the event loop: batches of requests,
//! pipelined and matched to their replies by request id, and the watch
//! events that arrive on the same connection.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::transport::{self, Channel, Places};
use super::wire::{
    parse_reply, type_name, Decoder, Errno, Message, Reply, Request, TxId, XS_ERROR, XS_UNWATCH,
    XS_WATCH,
};

/// One request's outcome: the reply, or the error xenstored answered (or
/// the client answered for it, without sending the request).
pub type Answer = Result<Reply, Errno>;

/// A watch fired: the path that changed (relative when the watch was) and
/// the watch's token, whatever it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed, or the watch's path when it was registered.
    pub path: String,
    /// The token given with the watch.
    pub token: String,
}

/// The connection is unusable: drop the [`Client`] and connect again. Says
/// what happened, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost(String);

impl Lost {
    /// A loss another backend reports (libxenstore, a test's store).
    pub fn new(what: impl fmt::Display) -> Lost {
        Lost(what.to_string())
    }
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Lost {}

/// Watch events kept for [`Client::next_event`] at most: more means
/// nobody takes them, and the connection is dropped (a new one
/// registers its watches again, which fire again).
const EVENTS_MAX: usize = 1024;

/// A request of the batch in flight.
struct Slot {
    kind: u32,
    answer: Option<Answer>,
}

/// A connection to xenstore.
///
/// After any `Err(Lost)` the client is unusable: every later call returns
/// `Err(Lost)` again. So does a [`Client::batch`] future dropped before it
/// finished (its replies would be mistaken for the next batch's). The
/// client logs nothing above debug: its caller says what the loss means.
pub struct Client {
    conn: AsyncFd<Channel>,
    /// Where `conn` goes, for messages.
    place: PathBuf,
    decoder: Decoder,
    /// The encoded requests, reused.
    out: Vec<u8>,
    events: VecDeque<WatchEvent>,
    /// The batch in flight; its first request's id.
    slots: Vec<Slot>,
    first_id: u32,
    /// Requests of the batch still without an answer.
    waiting: usize,
    next_id: u32,
    /// Transactions started on this connection and not ended: only these
    /// are ended (Linux before 4.11 crashes on the end of a transaction
    /// its xenbus device does not know).
    open_tx: Vec<TxId>,
    /// Why the client is unusable, once it is.
    broken: Option<Lost>,
}

impl Client {
    /// Connect to the first of `places` that works.
    pub async fn connect(places: &Places) -> Result<Client, Lost> {
        let (channel, place) = places
            .open()
            .await
            .map_err(|e| Lost(format!("cannot connect to xenstore: {e}")))?;
        let conn = transport::register(channel).map_err(|e| {
            Lost(format!(
                "xenstore at {}: cannot wait on it here: {e}",
                place.display()
            ))
        })?;
        Ok(Client::new(conn, place))
    }

    fn new(conn: AsyncFd<Channel>, place: PathBuf) -> Client {
        Client {
            conn,
            place,
            decoder: Decoder::default(),
            out: Vec::new(),
            events: VecDeque::new(),
            slots: Vec::new(),
            first_id: 1,
            waiting: 0,
            next_id: 1,
            open_tx: Vec::new(),
            broken: None,
        }
    }

    /// Send every request, then wait for every reply; the answers come in
    /// request order.
    ///
    /// Requests are pipelined on a socket: all are written (in one write)
    /// before any reply is awaited. The xenbus device takes one message per
    /// write and cannot have more than one in flight (see `exchange`): there
    /// each request waits for the previous answer. Replies are matched by
    /// request id, in any order. A request over the protocol's limits (a
    /// payload over 4096 bytes, 4080 on the device; an invalid or too long
    /// path) is answered here (`E2BIG`, `EINVAL`) and never sent, as is
    /// the end of a transaction not open on this connection (`ENOENT`).
    /// Watch events that arrive meanwhile are kept for
    /// [`Client::next_event`].
    ///
    /// Without every reply by `deadline`: `Err(Lost)`. Dropping the
    /// future before it finishes makes the client unusable.
    pub async fn batch(
        &mut self,
        reqs: &[Request<'_>],
        deadline: Instant,
    ) -> Result<Vec<Answer>, Lost> {
        self.usable()?;
        self.broken = Some(self.lost("a batch of requests was cancelled before its replies came"));
        let outcome = match tokio::time::timeout_at(deadline, self.exchange(reqs)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "no reply within the deadline ({} of {} requests unanswered)",
                self.waiting,
                reqs.len()
            )),
        };
        let answers = outcome.and_then(|()| {
            let answers: Option<Vec<Answer>> = self.slots.drain(..).map(|s| s.answer).collect();
            answers.ok_or_else(|| "a request without an answer".to_string())
        });
        match answers {
            Ok(answers) => {
                self.broken = None;
                Ok(answers)
            }
            Err(what) => Err(self.fail(what)),
        }
    }

    /// The next watch event, queued ones first.
    ///
    /// Cancel-safe: dropped at any point, it loses nothing (what was read
    /// stays in the client).
    pub async fn next_event(&mut self) -> Result<WatchEvent, Lost> {
        loop {
            self.usable()?;
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            if let Err(what) = self.receive().await {
                return Err(self.fail(what));
            }
        }
    }

    fn usable(&self) -> Result<(), Lost> {
        match &self.broken {
            Some(lost) => Err(lost.clone()),
            None => Ok(()),
        }
    }

    fn lost(&self, what: impl fmt::Display) -> Lost {
        Lost(format!("xenstore at {}: {what}", self.place.display()))
    }

    /// The client is unusable from now on.
    fn fail(&mut self, what: impl fmt::Display) -> Lost {
        let lost = self.lost(what);
        self.broken = Some(lost.clone());
        lost
    }

    /// Send the batch and receive every reply.
    async fn exchange(&mut self, reqs: &[Request<'_>]) -> Result<(), String> {
        let n = u32::try_from(reqs.len()).map_err(|_| "a batch too large".to_string())?;
        // Ids are never 0 and consecutive within a batch.
        if u32::MAX - self.next_id <= n {
            self.next_id = 1;
        }
        self.first_id = self.next_id;
        self.next_id += n;
        self.slots.clear();
        self.waiting = 0;
        self.out.clear();
        let device = self.conn.get_ref().is_device();
        let payload_max = self.conn.get_ref().payload_max();
        for (i, req) in reqs.iter().enumerate() {
            let req_id = self.first_id + i as u32;
            let mut answer = None;
            if let Request::TransactionEnd { tx, .. } = *req {
                // Once its end is sent, the transaction is over, whatever
                // the answer.
                match self.open_tx.iter().position(|&t| t == tx) {
                    Some(i) => {
                        self.open_tx.swap_remove(i);
                    }
                    None => answer = Some(Err(Errno::ENOENT)),
                }
            }
            if answer.is_none() {
                answer = req
                    .encode(req_id, payload_max, &mut self.out)
                    .err()
                    .map(Err);
            }
            if answer.is_none() && device {
                answer = self.send().await?.map(Err);
                self.out.clear();
            }
            self.waiting += usize::from(answer.is_none());
            self.slots.push(Slot {
                kind: req.kind(),
                answer,
            });
            // The Linux xenbus device queues a request with its payload
            // still in the file's one message buffer, which the next
            // write() overwrites before the kernel has sent it: one
            // request at a time there (seen in a real guest: pipelined
            // writes reached xenstored with each other's paths). Before
            // Linux 4.11 the write itself blocks until the answer.
            while device && self.waiting > 0 {
                self.receive().await?;
            }
        }
        if !device {
            // A socket takes the whole batch in one write (its errors are
            // never a request's answer).
            self.send().await?;
        }
        while self.waiting > 0 {
            self.receive().await?;
        }
        Ok(())
    }

    /// Write all of `out`. `Ok(Some(errno))`: the device refused the
    /// request (a write error is its answer there); `Err`: the connection
    /// is gone.
    async fn send(&mut self) -> Result<Option<Errno>, String> {
        let mut at = 0;
        while at < self.out.len() {
            match self.conn.get_ref().write(&self.out[at..]) {
                Ok(0) => return Err("xenstore takes no more bytes".into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.conn.get_ref().is_device() {
                        // Its writes never wait; nor does it say when it
                        // would take one.
                        return Err("the xenbus device takes no request (EAGAIN)".into());
                    }
                    // The socket's buffer is full (a batch of hundreds of
                    // requests): wait a little for room. Not registered for
                    // writability (see transport::register). Replies are
                    // read once all is written: the batches here are of
                    // small requests or small replies, which never fill
                    // both directions' buffers.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(e) => match device_refusal(&e) {
                    Some(errno) if at == 0 && self.conn.get_ref().is_device() => {
                        return Ok(Some(errno))
                    }
                    _ => return Err(format!("sending a request: {e}")),
                },
            }
        }
        Ok(None)
    }

    /// Read what arrived (at least one byte) and act on every complete
    /// message. Cancel-safe: the only wait is for readability.
    async fn receive(&mut self) -> Result<(), String> {
        loop {
            let mut ready = self
                .conn
                .readable()
                .await
                .map_err(|e| format!("waiting for replies: {e}"))?;
            let space = self.decoder.space();
            let room = space.len();
            if room == 0 {
                // Cannot be: a message always fits once complete ones are taken.
                return Err("a message longer than the buffer".into());
            }
            match ready.try_io(|c| c.get_ref().read(space)) {
                Ok(Ok(0)) if self.decoder.buffered() > 0 => {
                    return Err("the connection closed in the middle of a message".into())
                }
                Ok(Ok(0)) => return Err("xenstore closed the connection".into()),
                Ok(Ok(n)) => {
                    if n < room && !self.conn.get_ref().is_device() {
                        // On a stream socket a short read took all there
                        // was: say so now, rather than find out with a read
                        // that fails with EAGAIN at the next wait.
                        ready.clear_ready();
                    }
                    self.decoder.filled(n);
                    return self.dispatch();
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(format!("reading replies: {e}")),
                // Nothing after all: readiness was cleared, wait again.
                Err(_would_block) => {}
            }
        }
    }

    /// Take every complete message: events are queued, replies answer
    /// their requests.
    fn dispatch(&mut self) -> Result<(), String> {
        let device = self.conn.get_ref().is_device();
        while let Some(msg) = self.decoder.message().map_err(|e| e.to_string())? {
            let (kind, req_id, payload) = match msg {
                Message::Event { path, token } => {
                    if self.events.len() >= EVENTS_MAX {
                        return Err(format!("over {EVENTS_MAX} watch events not taken"));
                    }
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    self.events.push_back(WatchEvent {
                        path: text(path),
                        token: text(token),
                    });
                    continue;
                }
                Message::Reply {
                    kind,
                    req_id,
                    payload,
                } => (kind, req_id, payload),
            };
            let at = req_id.wrapping_sub(self.first_id) as usize;
            let waiting = |s: &Slot| s.answer.is_none();
            let slot = match self.slots.get(at) {
                Some(s) if waiting(s) => Some(at),
                // Linux before 4.11 answers a watch or unwatch itself,
                // with request id 0: the oldest such request waiting.
                _ if device && req_id == 0 && matches!(kind, XS_WATCH | XS_UNWATCH) => {
                    self.slots.iter().position(|s| waiting(s) && s.kind == kind)
                }
                _ => None,
            };
            let Some(slot) = slot.and_then(|i| self.slots.get_mut(i)) else {
                return Err(format!(
                    "a reply ({}) to request {req_id}, which is not waiting for one",
                    type_name(kind)
                ));
            };
            let answer = match kind {
                XS_ERROR => Err(Errno::from_name(payload)),
                _ if kind == slot.kind => Ok(parse_reply(kind, payload)
                    .map_err(|what| format!("a malformed reply ({}): {what}", type_name(kind)))?),
                _ => {
                    return Err(format!(
                        "a reply of the wrong type ({}) to request {req_id} ({})",
                        type_name(kind),
                        type_name(slot.kind)
                    ))
                }
            };
            if let Ok(Reply::Transaction(tx)) = answer {
                self.open_tx.push(tx);
            }
            slot.answer = Some(answer);
            self.waiting -= 1;
        }
        Ok(())
    }
}

/// Whether the error of a `write` to the xenbus device is xenstore's
/// answer to that request (Linux's driver returns a refused watch so)
/// rather than a broken device: an error xenstore has a name for.
pub(super) fn device_refusal(e: &io::Error) -> Option<Errno> {
    let errno = Errno(e.raw_os_error()?);
    errno.name().map(|_| errno)
}

#[cfg(test)]
impl Client {
    /// A client on a channel made by a test.
    pub(super) fn on(channel: Channel) -> Client {
        let conn = transport::register(channel).expect("a channel the reactor takes");
        Client::new(conn, PathBuf::from("test"))
    }

    /// The id of the next request.
    pub(super) fn set_next_id(&mut self, id: u32) {
        self.next_id = id;
    }

    /// Bytes read of a message not complete yet.
    pub(super) fn buffered(&self) -> usize {
        self.decoder.buffered()
    }
}
