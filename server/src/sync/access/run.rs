//! One run's access state and tally: the record as it stands, what the run did and what
//! failed, and what it learned from AWS on the way. The jobs are `impl AccessRun` blocks in
//! the sibling modules: [`super::record`] (what is written to the access record),
//! [`super::permission_sets`], [`super::existing`] (what AWS holds already),
//! [`super::account_ops`] (asynchronous account assignments), [`super::application`], and
//! [`super::apply`] (the order of it all).

use crate::store::{AccessState, AssignmentRecord, PrincipalType, Store};
use crate::sync::organization::OrgTree;
use crate::sync::plan::Skipped;
use crate::sync::target::{AwsError, SsoAdmin};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// AWS allows at most 10 outstanding account-assignment operations per instance.
pub const MAX_IN_FLIGHT: usize = 10;

/// How long one asynchronous operation may stay IN_PROGRESS before the run stops waiting (the
/// next run looks it up by its request id).
pub(super) const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);

/// Wait before the next status poll of an operation polled `polls` times: every second for
/// the first five seconds (AWS usually finishes within them, and a slot of the in-flight window
/// is freed as soon as it is seen done), then 2, 3 and at most 5 s apart.
pub(super) fn poll_after(polls: u32) -> Duration {
    match polls {
        0..=4 => Duration::from_secs(1),
        5 => Duration::from_secs(2),
        6 => Duration::from_secs(3),
        _ => Duration::from_secs(5),
    }
}

/// The access part of one sync run.
pub struct AccessRun<'a> {
    pub(super) store: &'a dyn Store,
    pub(super) sso: &'a dyn SsoAdmin,
    pub(super) run_id: Uuid,
    pub(super) dry_run: bool,
    pub(super) stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Changes done, by report key.
    pub done: BTreeMap<String, u64>,
    pub failures: Vec<Skipped>,
    /// The record as it now stands.
    pub state: AccessState,
    /// Permission set name → ARN (None: declared and not created yet). Names absent are not in
    /// AWS.
    pub permission_sets: HashMap<String, Option<String>>,
    /// Permission sets this run created (nothing can be assigned with them yet).
    pub(super) created_sets: HashSet<String>,
    /// AWS ids of the principals this run created (nothing can be assigned to them yet); set
    /// by the engine once the principal changes are in.
    pub created_principals: HashSet<String>,
    /// Operations an earlier run left IN_PROGRESS in AWS: they occupy the in-flight window
    /// until AWS finishes them.
    pub(super) open: Vec<AssignmentRecord>,
    /// Operations given up on (IN_PROGRESS past [`GIVE_UP_AFTER`]): still outstanding in AWS,
    /// so their slots stay taken for the rest of the run.
    pub(super) stuck: usize,
    /// Principals whose assignment create failed in this run: their deletes wait, so that a
    /// principal moved from one rule to another is never left without access.
    pub(super) create_failed: HashSet<String>,
    /// Who holds what in AWS, as read by this run before it changed anything: by (target,
    /// permission set ARN).
    pub(super) listings: HashMap<(String, String), HashSet<(PrincipalType, String)>>,
    /// The organisation the rules' targets resolve against (None: no rule targets it, or it
    /// could not be read: those rules are then unresolved).
    pub organization: Option<Arc<OrgTree>>,
    /// The organisation's management account, where known (its assignments are flagged).
    pub management_account: Option<String>,
}

impl<'a> AccessRun<'a> {
    pub async fn load(
        store: &'a dyn Store,
        sso: &'a dyn SsoAdmin,
        run_id: Uuid,
        dry_run: bool,
        stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ) -> anyhow::Result<AccessRun<'a>> {
        Ok(AccessRun {
            store,
            sso,
            run_id,
            dry_run,
            stop,
            done: BTreeMap::new(),
            failures: Vec::new(),
            state: store.access_state().await?,
            permission_sets: HashMap::new(),
            created_sets: HashSet::new(),
            created_principals: HashSet::new(),
            open: Vec::new(),
            stuck: 0,
            create_failed: HashSet::new(),
            listings: HashMap::new(),
            organization: None,
            management_account: None,
        })
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire))
    }

    pub(super) fn count(&mut self, key: &str) {
        *self.done.entry(key.to_owned()).or_default() += 1;
    }

    pub(super) fn fail(&mut self, what: String, message: String) {
        tracing::warn!(%what, %message, "sync: access change failed");
        self.failures.retain(|f| f.principal != what);
        self.failures.push(Skipped { principal: what, message });
    }

    /// Per-item AWS errors are recorded and the run goes on; the rest end it.
    pub(super) fn absorb(&mut self, what: String, e: AwsError) -> anyhow::Result<()> {
        if e.is_fatal() {
            return Err(e.into());
        }
        self.fail(what, e.to_string());
        Ok(())
    }

    /// A per-item failure, where AccessDenied is one too: AWS refuses some assignments alone
    /// (one to the management account, made from a delegated administrator).
    pub(super) fn absorb_item(&mut self, what: String, e: AwsError) -> anyhow::Result<()> {
        match e {
            AwsError::AccessDenied { operation, message } => {
                let message = format!(
                    "{operation}: access denied: {message} (an assignment to the management \
                     account must be made from the management account)"
                );
                self.fail(what, message);
                Ok(())
            }
            other => self.absorb(what, other),
        }
    }
}
