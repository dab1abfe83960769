//! A fair share under load: how many operations of one kind (uploads, conversions) each customer
//! has in progress, so one customer cannot take every slot. Past its limit a customer is told to
//! come back (429 with `Retry-After`) at once, instead of queueing in front of the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Operations in progress per customer.
#[derive(Debug, Default)]
pub struct PerCustomer {
    running: Mutex<HashMap<String, usize>>,
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
