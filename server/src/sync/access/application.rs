//! Application assignments (synchronous in AWS) and applications' assignment configuration.

use super::record::Op;
use super::run::AccessRun;
use crate::store::{AccessObject, AccessObjectKind};
use crate::sync::target::{ApplicationAssignment, Change};
use serde_json::json;

impl AccessRun<'_> {
    /// An application assignment: synchronous in AWS.
    pub(super) async fn application(&mut self, op: Op) -> anyhow::Result<()> {
        if self.stopped() {
            return Err(crate::sync::error::SyncError::Stopped.into());
        }
        let key = op.key().clone();
        self.record_sending(&op).await?;
        let assignment = ApplicationAssignment {
            application_arn: key.target,
            principal_type: key.principal_type,
            principal_id: key.principal_id,
        };
        let change = if op.is_delete() { Change::Remove } else { Change::Add };
        match self.sso.application_assignment(&assignment, change).await {
            Ok(()) => self.done_op(&op).await,
            Err(e) => self.not_done(&op, e).await,
        }
    }

    /// Sets each application's assignment configuration: (ARN, whether only assigned
    /// principals may use it).
    pub(super) async fn configure_applications(
        &mut self,
        required: &[(String, bool)],
    ) -> anyhow::Result<()> {
        for (arn, required) in required {
            match self.sso.set_assignment_required(arn, *required).await {
                Ok(()) => {
                    let object = AccessObject {
                        kind: AccessObjectKind::Application,
                        name: arn.clone(),
                        arn: arn.clone(),
                        managed: true,
                        pushed: json!({"assignment_required": required}),
                        needs_provision: false,
                    };
                    self.put_object(object).await?;
                    self.count("set_assignment_required");
                    self.audit(
                        "update",
                        "Application",
                        arn,
                        Some(arn),
                        json!({"assignment_required": required}),
                    )
                    .await?;
                }
                Err(e) => self.absorb_item(format!("application {arn}"), e)?,
            }
        }
        Ok(())
    }
}
