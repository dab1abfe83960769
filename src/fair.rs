//! A fair share under load: how many operations of one kind (uploads, conversions) each customer
//! has in progress, so one customer cannot take every slot. Past its limit a customer is told to
//! come back (429 with `Retry-After`), instead of queueing in front of the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Operations in progress per customer.
#[derive(Debug, Default)]
pub struct PerCustomer {
    running: Mutex<HashMap<String, usize>>,
    /// Woken whenever a slot is freed.
    freed: Notify,
}

/// One operation in progress; dropping it frees the customer's slot.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<PerCustomer>,
    customer: String,
}

impl PerCustomer {
    /// No operation in progress.
    pub fn new() -> Arc<Self> {
        Arc::new(PerCustomer::default())
    }

    /// A slot for `customer` if it has fewer than `limit` in progress.
    pub fn try_acquire(self: &Arc<Self>, customer: &str, limit: usize) -> Option<Slot> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let n = running.entry(customer.to_string()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: Arc::clone(self),
            customer: customer.to_string(),
        })
    }

    /// A slot for `customer`, waiting at most `wait` for one of its own to be freed: a
    /// cancelled conversion stops between blocks, and the retry that replaces it must not be
    /// refused for the slot it still holds. `None` past the wait.
    pub async fn acquire(
        self: &Arc<Self>,
        customer: &str,
        limit: usize,
        wait: Duration,
    ) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a slot freed in between is not missed.
            freed.as_mut().enable();
            if let Some(slot) = self.try_acquire(customer, limit) {
                return Some(slot);
            }
            tokio::time::timeout_at(deadline, freed).await.ok()?;
        }
    }

    /// Operations `customer` has in progress.
    pub fn running(&self, customer: &str) -> usize {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.get(customer).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self
            .owner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.customer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Customers come and go: the map holds only those with work in progress.
                running.remove(&self.customer);
            }
        }
        drop(running);
        self.owner.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_at_its_limit_leaves_room_for_others() {
        let p = PerCustomer::new();
        let a1 = p.try_acquire("a", 2);
        let a2 = p.try_acquire("a", 2);
        assert!(a1.is_some() && a2.is_some());
        assert!(p.try_acquire("a", 2).is_none(), "a is at its limit");
        assert!(p.try_acquire("b", 2).is_some(), "b is not held back by a");
        drop(a1);
        assert_eq!(p.running("a"), 1);
        assert!(
            p.try_acquire("a", 2).is_some(),
            "a freed slot is taken again"
        );
    }

    #[tokio::test]
    async fn a_waiter_takes_the_slot_freed_within_its_wait() {
        let p = PerCustomer::new();
        let held = p.try_acquire("a", 1);
        let waiter = {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.acquire("a", 1, Duration::from_secs(5)).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.expect("waiter").is_some());
        let _again = p.try_acquire("a", 1);
        assert!(p.acquire("a", 1, Duration::from_millis(20)).await.is_none());
    }

    #[test]
    fn the_map_forgets_customers_with_nothing_in_progress() {
        let p = PerCustomer::new();
        drop(p.try_acquire("a", 1));
        assert!(p
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }
}
