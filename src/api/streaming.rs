//! Server streams fed from blocking store reads: a blocking task reads in
//! chunks and sends into a bounded channel, so a slow client applies
//! backpressure to the reader and never to the writer.

use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::Status;

/// The stream type of every streaming RPC.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Events sent ahead of a slow client.
pub const STREAM_BUFFER: usize = 256;

/// A stream and the sender a blocking producer writes into.
pub fn channel<T: Send + 'static>() -> (mpsc::Sender<Result<T, Status>>, ResponseStream<T>) {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    (tx, Box::pin(ReceiverStream::new(rx)))
}
