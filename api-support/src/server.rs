//! One HTTP/1 server foundation, for `serve` and both sandboxes: the accept loop, the cap on
//! connections open at once, the limits on a request's head, and stopping on a signal. What a
//! request gets is the caller's `handle`.
//!
//! Hyper alone, not a framework: `serve` has one route and the sandboxes route on their own
//! tables; what they need of a server beyond hyper's HTTP/1 builder (caps, time-outs, a clean
//! stop) is these few lines, and the sandboxes must break connections mid-body, which a
//! framework's response types hide.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// A response body: any stream of bytes that may fail with an I/O error.
pub type Body = BoxBody<bytes::Bytes, std::io::Error>;

/// What the server allows a client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; a connection beyond them is closed at once (none: no cap).
    pub max_connections: Option<usize>,
    /// How long a request's head may take to arrive (none: no limit).
    pub head_timeout: Option<Duration>,
    /// The largest request head read, in bytes (none: hyper's default); a larger one is
    /// answered 431.
    pub max_head_bytes: Option<usize>,
}

/// Serves `listener` with `handle` (an error closes the connection without an answer) until `stop` turns true (or forever without one): each
/// connection on its own task, within `limits`; `refused` is called for each connection closed
/// because the cap was reached. Returns once it stops accepting (connections being answered
/// go on).
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    mut stop: Option<watch::Receiver<bool>>,
    refused: impl Fn() + Send + Sync + 'static,
    handle: H,
) where
    H: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<http::Response<Body>, std::io::Error>> + Send + 'static,
{
    let slots = limits.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    loop {
        let accepted = match stop.as_mut() {
            Some(stop) => tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => return,
            },
            None => listener.accept().await,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Beyond the cap, the connection is closed at once: it costs nothing to keep.
        let slot = match &slots {
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    refused();
                    drop(stream);
                    continue;
                }
            },
            None => None,
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| handle.clone()(req));
            let mut builder = http1::Builder::new();
            // Without a limit, no timer: hyper's own default head time-out needs one, and it
            // would close idle connections of clients that wait (on a paused test clock, at
            // once).
            if let Some(t) = limits.head_timeout {
                builder.timer(TokioTimer::new()).header_read_timeout(t);
            }
            if let Some(n) = limits.max_head_bytes {
                builder.max_header_size(n);
            }
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[tokio::test]
    async fn a_connection_beyond_the_cap_is_closed_at_once_and_a_stop_ends_the_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            max_connections: Some(1),
            head_timeout: Some(Duration::from_secs(5)),
            max_head_bytes: Some(1024),
        };
        let counted = refused.clone();
        let serving = tokio::spawn(serve(
            listener,
            limits,
            Some(stopped),
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
            },
            |_req| async {
                let body = Full::new(bytes::Bytes::from_static(b"ok"))
                    .map_err(|never| match never {})
                    .boxed();
                Ok(http::Response::new(body))
            },
        ));
        let mut first = TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 64];
        let n = first.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
        // The first connection is still open: the second is over the cap.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(
            second.read(&mut byte).await.unwrap_or(0),
            0,
            "closed at once"
        );
        assert_eq!(refused.load(Ordering::SeqCst), 1);
        // A head over the limit is answered 431.
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut big = TcpStream::connect(addr).await.unwrap();
        let head = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(4096));
        let _ = big.write_all(head.as_bytes()).await;
        let n = big.read(&mut answer).await.unwrap_or(0);
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 431"));
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the accepting ends on stop")
            .unwrap();
    }
}
