//! The one receive loop of the learner's sockets (trajectories, params,
//! central inference): wait up to 100 ms for a message, hand it over, and on
//! a socket error other than a timeout log at most one line per 10 s and
//! try again 10 ms later, so a failing socket neither floods the log nor
//! spins a core. The loop ends when `stop` is set, the socket closes, or the
//! handler says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wire::transport::TransportError;

/// What the handler wants next.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The receiving side is gone (its queue closed): stop receiving.
    Stop,
}

/// How long one wait for a message lasts before `stop` is checked again.
const WAIT: Duration = Duration::from_millis(100);

/// Receives with `recv(wait)` until `stop`, a closed socket, or `handle`
/// returning [`Flow::Stop`]. `socket` names the socket in the error lines.
pub fn receive_loop<M>(
    socket: &str,
    stop: &AtomicBool,
    mut recv: impl FnMut(Duration) -> Result<Option<M>, TransportError>,
    mut handle: impl FnMut(M) -> Flow,
) {
    let mut last_error_log: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match recv(WAIT) {
            Ok(None) => {}
            Ok(Some(message)) => {
                if handle(message) == Flow::Stop {
                    break;
                }
            }
            Err(TransportError::Closed) => break,
            Err(e) => {
                if last_error_log.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    tracing::error!("{socket} socket: {e}");
                    last_error_log = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages reach the handler in order; timeouts and errors are waited
    /// through; a closed socket or the handler's Stop ends the loop.
    #[test]
    fn hands_over_messages_and_ends_on_close_or_stop() {
        let stop = AtomicBool::new(false);
        let mut script = vec![
            Ok(Some(1)),
            Ok(None),
            Err(TransportError::TimedOut),
            Ok(Some(2)),
            Err(TransportError::Closed),
            Ok(Some(3)),
        ]
        .into_iter();
        let mut got = Vec::new();
        receive_loop(
            "test",
            &stop,
            |_| script.next().unwrap(),
            |m| {
                got.push(m);
                Flow::Continue
            },
        );
        assert_eq!(got, [1, 2], "ends at the close");
        let mut got = Vec::new();
        receive_loop(
            "test",
            &stop,
            |_| Ok(Some(7)),
            |m| {
                got.push(m);
                if got.len() == 3 {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        );
        assert_eq!(got, [7, 7, 7]);
        stop.store(true, Ordering::Relaxed);
        receive_loop(
            "test",
            &stop,
            |_| -> Result<Option<u8>, _> { panic!("stopped") },
            |_| Flow::Continue,
        );
    }
}
