//! Helpers shared by the crate's unit tests.

use tokio::task::JoinHandle;

/// How many times the calling task gets the thread back while `task` runs. On a
/// current-thread runtime that counts how often `task` yields: a long job that never yields
/// gives 0 or 1.
pub(crate) async fn turns_while_running<T>(task: &JoinHandle<T>) -> usize {
    let mut turns = 0;
    while !task.is_finished() {
        tokio::task::yield_now().await;
        turns += 1;
    }
    turns
}
