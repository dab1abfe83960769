//! The event sink of file changes: every subscriber of this node hears a change the moment the
//! service layer raises it, and changes made on other nodes arrive through the metadata store's
//! channel ([`Cluster::file_changes`]), so "a deleted file stops being served" has one home
//! whatever the number of nodes. A node that loses that channel tells its subscribers it is out
//! of touch (they serve nothing cached) until it is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::events::{FileChange, Subscriber};
use crate::store::cluster::Cluster;

/// How long a node waits before listening again after losing the channel.
const RECONNECT: Duration = Duration::from_millis(250);

/// Where changes are raised and who hears them.
pub struct Events {
    subscribers: Vec<Arc<dyn Subscriber>>,
    out_of_touch: AtomicBool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.subscribers.len())
            .field("out_of_touch", &self.out_of_touch)
            .finish()
    }
}

impl Events {
    /// A sink delivering to `subscribers`.
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Events {
            subscribers,
            out_of_touch: AtomicBool::new(false),
        }
    }

    /// A committed change made by this node: heard here at once (other nodes hear it from the
    /// metadata store's channel).
    pub fn raise(&self, change: FileChange) {
        for s in &self.subscribers {
            s.file_changed(&change);
        }
    }

    /// Tells subscribers whether changes may be missed.
    pub fn set_out_of_touch(&self, lost: bool) {
        if self.out_of_touch.swap(lost, Ordering::AcqRel) != lost || lost {
            for s in &self.subscribers {
                s.out_of_touch(lost);
            }
        }
    }

    /// Whether this node may be missing changes now.
    pub fn is_out_of_touch(&self) -> bool {
        self.out_of_touch.load(Ordering::Acquire)
    }
}

/// Follows the cluster's changes until the process ends: out of touch until the channel is
/// open, then every change delivered here, and out of touch again whenever it breaks.
pub async fn follow(cluster: Arc<dyn Cluster>, events: Arc<Events>) {
    events.set_out_of_touch(true);
    loop {
        match cluster.file_changes().await {
            Ok(mut feed) => {
                // Listening again: what was missed meanwhile is dropped by the transition.
                events.set_out_of_touch(false);
                tracing::info!("listening to other nodes' changes");
                while let Some(change) = feed.next().await {
                    match change {
                        Ok(c) => events.raise(c),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the channel of other nodes' changes; serving uncached until it is back");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen to other nodes' changes"),
        }
        events.set_out_of_touch(true);
        tokio::time::sleep(RECONNECT).await;
    }
}
