//! Schedule triggers: each node looks for due ticks every second; a tick is taken by moving
//! the trigger's `next_run_at` from the tick to the next one with a compare-and-set, in the
//! same transaction that starts the execution, so with several nodes on one database each
//! tick starts exactly one execution. Ticks missed while no node ran follow the workflow's
//! `missed` policy ([`super::cron::plan`]).

use super::cron::{CronSchedule, plan};
use super::definition::Trigger;
use crate::ids::ExecutionId;
use crate::state::AppState;
use crate::store::{NewExecution, StoreError, WORKFLOW_QUEUE};
use std::sync::Arc;

/// Most due schedules handled per look.
const BATCH: usize = 500;

/// Start the executions of every schedule due at `now_ms` (the clock is a parameter so tests
/// can inject it). Returns how many executions this call started.
pub async fn fire_due(state: &Arc<AppState>, now_ms: i64) -> Result<usize, StoreError> {
    let mut started = 0;
    for (trigger, enabled, version) in state.db.due_schedules(now_ms, BATCH).await? {
        let Some(due) = trigger.next_run_at else {
            continue;
        };
        let definition = state
            .workflows
            .definition(&state.db, &trigger.workflow_id, version)
            .await?;
        let Some(Trigger::Schedule { cron, timezone, missed }) = definition.as_ref().map(|d| d.trigger.clone()) else {
            // The workflow changed away from a schedule meanwhile: park the row.
            state.db.fire_schedule(&trigger.id, due, None, None).await?;
            continue;
        };
        let Ok(schedule) = CronSchedule::parse(&cron, &timezone) else {
            state.db.fire_schedule(&trigger.id, due, None, None).await?;
            continue;
        };
        let firing = plan(&schedule, due, now_ms, missed);
        let id = ExecutionId::generate().to_string();
        let input = serde_json::json!({ "scheduled_at": firing.tick_ms, "fired_at": now_ms }).to_string();
        let execution = NewExecution {
            id: &id,
            workspace_id: &trigger.workspace_id,
            workflow_id: &trigger.workflow_id,
            version,
            trigger_kind: "schedule",
            input: &input,
        };
        let start = (enabled != 0 && firing.tick_ms.is_some()).then_some(&execution);
        if state.db.fire_schedule(&trigger.id, due, firing.next_ms, start).await? && start.is_some() {
            started += 1;
        }
    }
    if started > 0 {
        state.queue.wake(WORKFLOW_QUEUE);
    }
    Ok(started)
}
