//! A link's queue of frames for its writer task: bounded in frames, with
//! `try_send` for the driver (which never waits) and `recv` for the writer.
//!
//! A tokio `mpsc::channel` would do, but it allocates its first block of
//! 32 slots (about 800 bytes for `Vec<u8>` frames) when it is made, and a
//! server holds one queue per client, almost always empty (its writer
//! takes each frame as it comes). This queue holds nothing until
//! a frame waits, and gives its memory back when it is drained again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why [`QueueSender::try_send`] refused a frame (it is handed back).
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The queue holds its capacity of frames.
    Full(Vec<u8>),
    /// The writer has ended (after a write error, or cut).
    Closed(Vec<u8>),
}

/// A queue of at most `capacity` frames: the driver's end and the
/// writer's end.
pub fn write_queue(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        ready: Notify::new(),
        capacity,
    });
    (
        QueueSender {
            shared: Arc::clone(&shared),
        },
        QueueReceiver { shared },
    )
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a frame arrives or the sender goes; a signal given
    /// while the writer is not waiting is kept for its next wait.
    ready: Notify,
    capacity: usize,
}

struct State {
    frames: VecDeque<Vec<u8>>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// Frames a drained queue may keep room for; more is given back.
const KEEP: usize = 8;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a queue of whole frames.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The driver's end. Dropping it closes the queue: the writer writes what
/// is queued, then `recv` says so.
pub struct QueueSender {
    shared: Arc<Shared>,
}

impl QueueSender {
    /// Queues a frame without waiting.
    pub fn try_send(&self, frame: Vec<u8>) -> Result<(), TrySendError> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(TrySendError::Closed(frame));
        }
        if state.frames.len() >= self.shared.capacity {
            return Err(TrySendError::Full(frame));
        }
        state.frames.push_back(frame);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl QueueSender {
    /// A handle that can drop what the queue holds, kept after this end
    /// is dropped (a link closing gracefully).
    pub fn discarder(&self) -> Discarder {
        Discarder {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Drops a queue's frames at once, for a link that is cut. Aborting the
/// writer task would drop them too, but only when the runtime next gets
/// to that task: on a server short of CPU that is later, while the
/// memory budget has already stopped counting them and lets other links
/// queue as much again.
pub struct Discarder {
    shared: Arc<Shared>,
}

impl Discarder {
    /// Drops every queued frame now; later sends fail with `Closed`.
    pub fn discard(&self) {
        let frames = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.frames)
        };
        drop(frames);
    }
}

impl Drop for QueueSender {
    fn drop(&mut self) {
        self.shared.lock().sender_gone = true;
        self.shared.ready.notify_one();
    }
}

/// The writer's end. Dropping it makes later sends fail with `Closed`.
pub struct QueueReceiver {
    shared: Arc<Shared>,
}

impl QueueReceiver {
    /// The next frame; `None` once the sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(frame) = take(&mut state) {
                    return Some(frame);
                }
                if state.sender_gone {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        take(&mut self.shared.lock())
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().frames.is_empty()
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.frames = VecDeque::new();
    }
}

/// Takes the first frame; a queue drained after a burst gives its room
/// back.
fn take(state: &mut State) -> Option<Vec<u8>> {
    let frame = state.frames.pop_front()?;
    if state.frames.is_empty() && state.frames.capacity() > KEEP {
        state.frames = VecDeque::new();
    }
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_then_the_end_once_the_sender_is_gone() {
        let (tx, mut rx) = write_queue(4);
        tx.try_send(b"one".to_vec()).unwrap();
        tx.try_send(b"two".to_vec()).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await.as_deref(), Some(&b"one"[..]));
        assert_eq!(rx.try_recv().as_deref(), Some(&b"two"[..]));
        assert!(rx.is_empty());
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_queue_and_a_gone_writer_refuse_and_hand_the_frame_back() {
        let (tx, rx) = write_queue(1);
        tx.try_send(vec![1]).unwrap();
        assert_eq!(tx.try_send(vec![2]), Err(TrySendError::Full(vec![2])));
        drop(rx);
        assert_eq!(tx.try_send(vec![3]), Err(TrySendError::Closed(vec![3])));
    }

    #[tokio::test]
    async fn a_discarded_queue_holds_nothing_and_refuses_more_even_after_its_sender_went() {
        let (tx, rx) = write_queue(4);
        let discarder = tx.discarder();
        tx.try_send(vec![1; 1000]).unwrap();
        discarder.discard();
        assert!(rx.is_empty());
        assert_eq!(tx.try_send(vec![2]), Err(TrySendError::Closed(vec![2])));
        // A link closing gracefully: its sender is gone, what it queued
        // is still there until discarded.
        let (tx, mut rx) = write_queue(4);
        let discarder = tx.discarder();
        tx.try_send(vec![3; 1000]).unwrap();
        drop(tx);
        discarder.discard();
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_writer_waiting_is_woken_by_a_frame_sent_from_another_task() {
        let (tx, mut rx) = write_queue(4);
        let writer = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(b"late".to_vec()).unwrap();
        assert_eq!(writer.await.unwrap().as_deref(), Some(&b"late"[..]));
    }
}
