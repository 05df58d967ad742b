//! How `serve` shares `database.max_connections` out between the background pool and the pools
//! of the HTTP workers (see `Store::for_http_worker`), and how many HTTP workers it runs.

use crate::config::DatabaseSettings;

/// The pools `serve` opens on PostgreSQL, and its HTTP worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// The pool of the sync engine, the scheduler and start-up (a run uses one at a time).
    pub background: u32,
    pub http_workers: u32,
    /// The pool of each HTTP worker thread (see `Store::for_http_worker`).
    pub per_http_worker: u32,
}

impl ConnectionBudget {
    /// A quarter of the connections (at least one) for the background; one HTTP worker per
    /// CPU, but no more than half the remaining connections, so that each worker has two to
    /// itself; the rest shared evenly by the workers. 10 connections on 2 CPUs: 2 + 2 × 4; on
    /// 64 CPUs: 2 + 4 × 2. A replica never opens more than `max_connections` (at least 2).
    pub fn new(database: &DatabaseSettings, cpus: u32) -> ConnectionBudget {
        let max_connections = database.max_connections;
        let background = (max_connections / 4).max(1);
        let rest = max_connections.saturating_sub(background).max(1);
        let http_workers = cpus.clamp(1, (rest / 2).max(1));
        ConnectionBudget { background, http_workers, per_http_worker: rest / http_workers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_budget_shares_max_connections_out() {
        let budget = |max, cpus| {
            ConnectionBudget::new(
                &DatabaseSettings { max_connections: max, ..Default::default() },
                cpus,
            )
        };
        let b = |background, http_workers, per_http_worker| ConnectionBudget {
            background,
            http_workers,
            per_http_worker,
        };
        assert_eq!(budget(10, 2), b(2, 2, 4));
        assert_eq!(budget(10, 1), b(2, 1, 8));
        assert_eq!(budget(20, 4), b(5, 4, 3));
        // Many CPUs: no more workers than can have two connections each.
        assert_eq!(budget(10, 64), b(2, 4, 2));
        assert_eq!(budget(3, 8), b(1, 1, 2));
        // Never a pool of none, nor no worker.
        assert_eq!(budget(1, 2), b(1, 1, 1));
        assert_eq!(budget(10, 0), b(2, 1, 8));
        for max in 2..200 {
            for cpus in 1..70 {
                let x = budget(max, cpus);
                assert!(x.background + x.http_workers * x.per_http_worker <= max, "{max} {cpus}");
            }
        }
    }
}
