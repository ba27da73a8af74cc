//! Server streams fed from blocking store reads: a blocking task reads in
//! chunks and sends into a bounded channel, so a slow client applies
//! backpressure to the reader and never to the writer.
//!
//! Event streams send whole chunks through the channel ([`chunk_channel`])
//! and the response stream hands them out one message at a time: one channel
//! hand-off (and one wake-up) per chunk instead of per event, and tonic finds
//! many messages ready to encode into each write.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::Status;

/// The stream type of every streaming RPC.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Events sent ahead of a slow client.
pub const STREAM_BUFFER: usize = 256;

/// Chunks sent ahead of a slow client (each up to a read chunk of events).
pub const CHUNKS_AHEAD: usize = 4;

/// A stream and the sender a blocking producer writes into.
pub fn channel<T: Send + 'static>() -> (mpsc::Sender<Result<T, Status>>, ResponseStream<T>) {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    (tx, Box::pin(ReceiverStream::new(rx)))
}

/// A stream of messages and the sender a producer writes whole chunks into.
/// An empty chunk is allowed and sends nothing.
pub fn chunk_channel<T: Send + 'static>(
) -> (mpsc::Sender<Result<Vec<T>, Status>>, ResponseStream<T>) {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    (
        tx,
        Box::pin(Unchunk {
            rx,
            ready: VecDeque::new(),
        }),
    )
}

struct Unchunk<T> {
    rx: mpsc::Receiver<Result<Vec<T>, Status>>,
    ready: VecDeque<T>,
}

impl<T> Unpin for Unchunk<T> {}

impl<T> Stream for Unchunk<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(m)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.ready = chunk.into(),
                Poll::Ready(Some(Err(s))) => return Poll::Ready(Some(Err(s))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn chunks_come_out_as_single_messages_in_order_then_the_error() {
        let (tx, mut stream) = chunk_channel::<u32>();
        tokio::spawn(async move {
            tx.send(Ok(vec![1, 2, 3])).await.unwrap();
            tx.send(Ok(vec![])).await.unwrap();
            tx.send(Ok(vec![4])).await.unwrap();
            tx.send(Err(Status::internal("stop"))).await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(m) = stream.next().await {
            match m {
                Ok(v) => got.push(v),
                Err(s) => {
                    assert_eq!(s.message(), "stop");
                    break;
                }
            }
        }
        assert_eq!(got, [1, 2, 3, 4]);
    }
}
