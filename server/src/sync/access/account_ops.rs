//! Account assignment operations: asynchronous in AWS, at most [`MAX_IN_FLIGHT`] outstanding
//! (those an earlier run left IN_PROGRESS and those given up on included), each polled until
//! AWS says it succeeded or failed; and the settling of operations a dead process left open.

use super::record::Op;
use super::run::{AccessRun, GIVE_UP_AFTER, MAX_IN_FLIGHT, poll_after};
use crate::store::{AssignmentKind, AssignmentRecord, AssignmentState};
use crate::sync::target::{AccountAssignment, AwsError, Change, OpState, OpStatus};
use std::collections::VecDeque;
use std::time::Instant;

impl AccessRun<'_> {
    /// Assignment operations a dead process left `creating` / `deleting`: settled by their
    /// request id, or by looking at what AWS holds.
    pub async fn settle_in_flight(&mut self) -> anyhow::Result<()> {
        let open: Vec<AssignmentRecord> = self
            .state
            .assignments
            .iter()
            .filter(|r| matches!(r.state, AssignmentState::Creating | AssignmentState::Deleting))
            .cloned()
            .collect();
        for r in open {
            let deleting = r.state == AssignmentState::Deleting;
            let status = match (&r.request_id, r.key.kind) {
                (Some(id), AssignmentKind::Account) => {
                    match self.sso.account_assignment_status(id, deleting).await {
                        Ok(s) => Some(s.state),
                        Err(AwsError::NotFound { .. }) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => None,
            };
            let exists = match status {
                Some(OpState::InProgress) => {
                    self.open.push(r);
                    continue;
                }
                Some(OpState::Succeeded) => !deleting,
                Some(OpState::Failed(_)) => deleting,
                None => {
                    let k = &r.key;
                    let holders = self.holders(k.kind, &k.target, &k.permission_set_arn).await?;
                    holders.contains(&(k.principal_type, k.principal_id.clone()))
                }
            };
            self.settled(r, exists).await?;
        }
        Ok(())
    }

    /// Account assignment creates and deletes, at most [`MAX_IN_FLIGHT`] outstanding — those
    /// an earlier run left IN_PROGRESS and those given up on included — each polled until AWS
    /// says it succeeded or failed.
    pub(super) async fn run_account_operations(&mut self, ops: Vec<Op>) -> anyhow::Result<()> {
        let mut queue: VecDeque<Op> = ops.into();
        let now = Instant::now();
        let mut flight: Vec<Flight> = std::mem::take(&mut self.open)
            .into_iter()
            .map(|r| Flight {
                request_id: r.request_id.clone().unwrap_or_default(),
                op: Op::Settle(r),
                started: now,
                next_poll: now,
                polls: 0,
            })
            .collect();
        while !queue.is_empty() || !flight.is_empty() {
            if self.stopped() {
                return Err(crate::sync::error::SyncError::Stopped.into());
            }
            if flight.is_empty() && self.stuck >= MAX_IN_FLIGHT {
                // AWS still works on a full window of operations given up on: the rest waits.
                for op in queue.drain(..) {
                    self.fail(op.label(), "not sent: AWS has 10 assignment operations outstanding for over 15 minutes; the next run sends it".into());
                }
                break;
            }
            while flight.len() + self.stuck < MAX_IN_FLIGHT {
                let Some(op) = queue.pop_front() else { break };
                if let Some(f) = self.submit(op).await? {
                    flight.push(f);
                }
            }
            let Some(next) = (0..flight.len()).min_by_key(|i| flight[*i].next_poll) else {
                continue;
            };
            tokio::time::sleep_until(flight[next].next_poll.into()).await;
            let f = &flight[next];
            let status =
                match self.sso.account_assignment_status(&f.request_id, f.op.is_delete()).await {
                    Ok(s) => s,
                    Err(e) => {
                        // The row keeps its request id: the next run settles it.
                        let f = flight.swap_remove(next);
                        self.absorb_item(f.op.label(), e)?;
                        continue;
                    }
                };
            let f = &mut flight[next];
            if status.state == OpState::InProgress {
                f.polls += 1;
                f.next_poll = Instant::now() + poll_after(f.polls);
                if f.started.elapsed() > GIVE_UP_AFTER {
                    let f = flight.swap_remove(next);
                    // Still outstanding in AWS: its slot stays taken; the row keeps its
                    // request id and the next run settles it.
                    self.stuck += 1;
                    self.fail(
                        f.op.label(),
                        "still IN_PROGRESS after 15 minutes; the next run looks again".into(),
                    );
                }
                continue;
            }
            let f = flight.swap_remove(next);
            self.finish(f.op, status.state).await?;
        }
        Ok(())
    }

    /// Sends one operation; Some while AWS is still working on it.
    async fn submit(&mut self, op: Op) -> anyhow::Result<Option<Flight>> {
        let key = op.key().clone();
        let before = self.record_sending(&op).await?;
        let request = AccountAssignment {
            account: key.target.clone(),
            permission_set_arn: key.permission_set_arn.clone(),
            principal_type: key.principal_type,
            principal_id: key.principal_id.clone(),
        };
        let change = if op.is_delete() { Change::Remove } else { Change::Add };
        let status = match self.sso.account_assignment(&request, change).await {
            Ok(s) => s,
            // Deleting what is gone is done.
            Err(AwsError::NotFound { .. }) if op.is_delete() => {
                OpStatus { request_id: String::new(), state: OpState::Succeeded }
            }
            Err(e) => {
                self.not_done(&op, e).await?;
                return Ok(None);
            }
        };
        if status.state != OpState::InProgress {
            self.finish(op, status.state).await?;
            return Ok(None);
        }
        self.put_row(AssignmentRecord {
            key,
            state: before,
            request_id: Some(status.request_id.clone()),
        })
        .await?;
        let now = Instant::now();
        Ok(Some(Flight {
            op,
            request_id: status.request_id,
            started: now,
            next_poll: now + poll_after(0),
            polls: 0,
        }))
    }
}

struct Flight {
    op: Op,
    request_id: String,
    started: Instant,
    next_poll: Instant,
    polls: u32,
}
