//! The publish cache: a publish key or a sid mapped to the file's representation, with its blob
//! already opened (a local file's descriptor, or an S3 blob with its length and local copy), so a
//! hot file costs neither a metadata query nor an `open` per request.
//!
//! Each HTTP thread keeps its own entries (the server runs a thread per core): a shared map
//! behind a lock, and reference counts on shared header values, made the cores fight over the
//! same cache lines on every request. What the threads share is one generation counter. Every
//! file change the service layer raises, here or on another node, bumps it (the cache is a
//! [`Subscriber`]); a thread compares it before every lookup and drops all its entries when it
//! moved, so an unpublished or deleted file stops being served at once. While the node may be
//! missing other nodes' changes, lookups read through. A thread also checks
//! it whenever its event loop goes idle ([`sweep_this_thread`]), so a deleted blob's handle does
//! not outlive the change on a thread that receives no more requests.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::serve::Representation;
use crate::domain::events::{FileChange, Subscriber};
use crate::metrics::{Cache, Metrics};

/// Most entries over all threads, each thread holding its share. Each entry may hold an open file
/// descriptor, so this stays well under the usual 1024-descriptor limit.
pub const ENTRIES: usize = 256;
/// Each thread's share never falls below this (many threads: the total may exceed [`ENTRIES`]).
pub const MIN_ENTRIES_PER_THREAD: usize = 2;
/// A cached lookup is trusted this long: a bound on staleness should a change ever not be heard
/// (changes themselves invalidate at once, on every node).
pub const TTL: Duration = Duration::from_secs(10);

/// How a request names its file.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// A publish key (`/f/{key}`).
    Published(&'a str),
    /// A file sid (`/download/{sid}`).
    Sid(&'a str),
}

/// The server's handle on the cache (in `AppState`): the generation every thread compares with.
#[derive(Debug)]
pub struct PublishCache {
    generation: Arc<AtomicU64>,
    /// Set while the node may be missing other nodes' changes: every lookup reads through.
    bypass: AtomicBool,
    per_thread: usize,
    metrics: Arc<Metrics>,
}

impl Default for PublishCache {
    fn default() -> Self {
        PublishCache::new(1, Arc::default())
    }
}

/// A lookup that missed: the generation it saw, to be given back to [`PublishCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Miss(u64);

impl PublishCache {
    /// A cache shared out over `threads` HTTP threads, counting its hits and misses.
    pub fn new(threads: usize, metrics: Arc<Metrics>) -> Self {
        PublishCache {
            generation: Arc::default(),
            bypass: AtomicBool::new(false),
            per_thread: (ENTRIES / threads.max(1)).max(MIN_ENTRIES_PER_THREAD),
            metrics,
        }
    }

    /// Forgets every cached lookup, on every thread. Everything is dropped rather than one
    /// file's entries: a change of `publish` or `file_access_name` can affect keys that name other
    /// files, and changes are rare next to reads.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached representation, or the generation seen by this miss.
    pub fn get(&self, lookup: Lookup<'_>) -> Result<Arc<Representation>, Miss> {
        let found = self.lookup(lookup);
        self.metrics.cache_lookup(Cache::Publish, found.is_ok());
        found
    }

    fn lookup(&self, lookup: Lookup<'_>) -> Result<Arc<Representation>, Miss> {
        let generation = self.generation.load(Ordering::Acquire);
        if self.bypass.load(Ordering::Relaxed) {
            return Err(Miss(generation));
        }
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            local.follow(&self.generation, generation);
            match local.map(lookup).get(key(lookup)) {
                Some(e) if e.at.elapsed() < TTL => Ok(Arc::clone(&e.repr)),
                _ => Err(Miss(generation)),
            }
        })
    }

    /// Stores what a missed lookup found, unless an invalidation happened since the miss (the
    /// answer may predate the change).
    pub fn insert(&self, lookup: Lookup<'_>, repr: &Arc<Representation>, miss: Miss) {
        let evicted = LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let generation = self.generation.load(Ordering::Acquire);
            local.follow(&self.generation, generation);
            if generation != miss.0 || self.bypass.load(Ordering::Relaxed) {
                return None;
            }
            // Full: start over rather than track recency; the hot set refills in a few requests.
            let evicted =
                (local.published.len() + local.sids.len() >= self.per_thread).then(|| local.take());
            local.map(lookup).insert(
                key(lookup).to_string(),
                Entry {
                    repr: Arc::clone(repr),
                    at: Instant::now(),
                },
            );
            evicted
        });
        // Open handles close here, outside the thread's borrow.
        drop(evicted);
    }
}

/// Every change may change what a key names (an access name moving from one file to another),
/// so any change drops every lookup; changes are rare next to reads.
impl Subscriber for PublishCache {
    fn file_changed(&self, _change: &FileChange) {
        self.invalidate();
    }

    fn out_of_touch(&self, lost: bool) {
        self.bypass.store(lost, Ordering::Release);
        self.invalidate();
    }
}

/// Drops this thread's entries if an invalidation happened since it last looked, and those past
/// [`TTL`] (at most once per TTL), so no handle outlives its use (call when the thread's event
/// loop goes idle).
pub fn sweep_this_thread() {
    let stale = LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let moved = local
            .counter
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire) != local.generation);
        if moved {
            return local.take();
        }
        let now = Instant::now();
        if local.swept.is_some_and(|t| now.duration_since(t) < TTL) {
            return Maps::default();
        }
        local.swept = Some(now);
        let local = &mut *local;
        let mut expired = Maps::default();
        for (from, to) in [
            (&mut local.published, &mut expired.0),
            (&mut local.sids, &mut expired.1),
        ] {
            let keys: Vec<String> = from
                .iter()
                .filter(|(_, e)| now.duration_since(e.at) >= TTL)
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(e) = from.remove(&k) {
                    to.insert(k, e);
                }
            }
        }
        expired
    });
    // Handles close here, outside the thread's borrow.
    drop(stale);
}

fn key<'a>(lookup: Lookup<'a>) -> &'a str {
    match lookup {
        Lookup::Published(k) | Lookup::Sid(k) => k,
    }
}

struct Entry {
    repr: Arc<Representation>,
    at: Instant,
}

type Maps = (HashMap<String, Entry>, HashMap<String, Entry>);

/// One thread's entries, valid for one server's counter at one generation.
#[derive(Default)]
struct Local {
    counter: Option<Arc<AtomicU64>>,
    generation: u64,
    /// When expired entries were last dropped.
    swept: Option<Instant>,
    published: HashMap<String, Entry>,
    sids: HashMap<String, Entry>,
}

impl Local {
    /// Makes the entries those of `counter` at `generation`, dropping them if either changed.
    fn follow(&mut self, counter: &Arc<AtomicU64>, generation: u64) {
        let same_server = self
            .counter
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, counter));
        if !same_server {
            self.counter = Some(Arc::clone(counter));
            self.take();
        } else if self.generation != generation {
            self.take();
        }
        self.generation = generation;
    }

    fn map(&mut self, lookup: Lookup<'_>) -> &mut HashMap<String, Entry> {
        match lookup {
            Lookup::Published(_) => &mut self.published,
            Lookup::Sid(_) => &mut self.sids,
        }
    }

    fn take(&mut self) -> Maps {
        (
            std::mem::take(&mut self.published),
            std::mem::take(&mut self.sids),
        )
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::http::serve::Source;

    fn repr(name: &str) -> Arc<Representation> {
        Arc::new(Representation::new(
            Source::Memory(bytes::Bytes::from_static(b"x")),
            1,
            format!("\"{name}\""),
            Timestamp::now(),
            "audio/wav",
            name,
        ))
    }

    #[test]
    fn a_hit_after_an_insert_and_nothing_after_an_invalidation() {
        let cache = PublishCache::default();
        let miss = cache.get(Lookup::Published("k")).expect_err("empty");
        cache.insert(Lookup::Published("k"), &repr("a"), miss);
        assert!(cache.get(Lookup::Published("k")).is_ok());
        assert!(cache.get(Lookup::Sid("k")).is_err(), "separate kinds");
        cache.invalidate();
        assert!(cache.get(Lookup::Published("k")).is_err());
    }

    #[test]
    fn out_of_touch_every_lookup_reads_through_until_back() {
        let cache = PublishCache::default();
        let miss = cache.get(Lookup::Published("k")).expect_err("empty");
        cache.insert(Lookup::Published("k"), &repr("a"), miss);
        cache.out_of_touch(true);
        assert!(cache.get(Lookup::Published("k")).is_err(), "dropped");
        let miss = cache
            .get(Lookup::Published("k"))
            .expect_err("reads through");
        cache.insert(Lookup::Published("k"), &repr("a"), miss);
        assert!(
            cache.get(Lookup::Published("k")).is_err(),
            "nothing kept meanwhile"
        );
        cache.out_of_touch(false);
        let miss = cache.get(Lookup::Published("k")).expect_err("empty again");
        cache.insert(Lookup::Published("k"), &repr("a"), miss);
        assert!(
            cache.get(Lookup::Published("k")).is_ok(),
            "cached again once back"
        );
        cache.file_changed(&FileChange::Deleted {
            file_sid: "s".into(),
            blob_key: "b".into(),
        });
        assert!(
            cache.get(Lookup::Published("k")).is_err(),
            "a change drops it"
        );
    }

    #[test]
    fn an_answer_older_than_an_invalidation_is_not_stored() {
        let cache = PublishCache::default();
        let miss = cache.get(Lookup::Sid("s")).expect_err("empty");
        cache.invalidate();
        cache.insert(Lookup::Sid("s"), &repr("a"), miss);
        assert!(cache.get(Lookup::Sid("s")).is_err());
    }

    #[test]
    fn two_servers_on_one_thread_do_not_share_entries() {
        let (one, two) = (PublishCache::default(), PublishCache::default());
        let miss = one.get(Lookup::Published("k")).expect_err("empty");
        one.insert(Lookup::Published("k"), &repr("a"), miss);
        assert!(two.get(Lookup::Published("k")).is_err());
    }

    #[test]
    fn threads_share_the_entries_out() {
        assert_eq!(PublishCache::new(2, Arc::default()).per_thread, ENTRIES / 2);
        assert_eq!(
            PublishCache::new(1000, Arc::default()).per_thread,
            MIN_ENTRIES_PER_THREAD
        );
        let cache = PublishCache::new(ENTRIES / 2, Arc::default());
        let reprs: Vec<_> = (0..3).map(|i| repr(&i.to_string())).collect();
        for (i, r) in reprs.iter().enumerate() {
            let key = i.to_string();
            let miss = cache.get(Lookup::Sid(&key)).expect_err("empty");
            cache.insert(Lookup::Sid(&key), r, miss);
        }
        let held = reprs.iter().filter(|r| Arc::strong_count(r) > 1).count();
        assert!(held <= 2, "{held} entries held past the share");
    }

    #[test]
    fn the_idle_sweep_drops_entries_of_an_older_generation() {
        let cache = PublishCache::default();
        let miss = cache.get(Lookup::Published("k")).expect_err("empty");
        let r = repr("a");
        cache.insert(Lookup::Published("k"), &r, miss);
        assert_eq!(Arc::strong_count(&r), 2);
        cache.invalidate();
        sweep_this_thread();
        assert_eq!(Arc::strong_count(&r), 1, "the thread's entry is gone");
    }
}
