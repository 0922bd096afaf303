//! The agent's decision, free of IO: given what the control plane wants this node to run and
//! what the agent knows locally, what to do.

use lutece_api::{Assignment, TaskRef};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start the task: it was never started here.
    Start(Assignment),
    /// A task directory exists from before a restart: adopt its process or its outcome.
    Adopt(Assignment),
    /// The control plane believes it runs here, but there is no trace of it: report it lost.
    Lost(TaskRef),
    /// Cancelled before it started: report it cancelled without starting it.
    Skip(TaskRef),
    /// Stop a running task (cancelled, a sibling rank failed, or no longer wanted).
    Stop(TaskRef),
}

/// `running`: tasks the agent supervises now; `stopping`: those it already stops;
/// `on_disk`: tasks with a directory it does not supervise (found at start-up).
pub(crate) fn diff(
    desired: &[Assignment],
    running: &BTreeSet<TaskRef>,
    stopping: &BTreeSet<TaskRef>,
    on_disk: &BTreeSet<TaskRef>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for assignment in desired {
        let task = &assignment.task;
        if running.contains(task) {
            if assignment.cancel && !stopping.contains(task) {
                actions.push(Action::Stop(task.clone()));
            }
        } else if on_disk.contains(task) {
            actions.push(Action::Adopt(assignment.clone()));
        } else if assignment.cancel {
            actions.push(Action::Skip(task.clone()));
        } else if assignment.started {
            actions.push(Action::Lost(task.clone()));
        } else {
            actions.push(Action::Start(assignment.clone()));
        }
    }
    let wanted: BTreeSet<&TaskRef> = desired.iter().map(|a| &a.task).collect();
    for task in running
        .iter()
        .filter(|t| !wanted.contains(t) && !stopping.contains(*t))
    {
        actions.push(Action::Stop(task.clone()));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(job: &str) -> TaskRef {
        TaskRef {
            job_id: job.into(),
            rank: 0,
        }
    }

    fn assignment(job: &str, started: bool, cancel: bool) -> Assignment {
        Assignment {
            task: task(job),
            command: vec!["true".into()],
            env: Default::default(),
            started,
            cancel,
        }
    }

    fn set(jobs: &[&str]) -> BTreeSet<TaskRef> {
        jobs.iter().map(|j| task(j)).collect()
    }

    #[test]
    fn each_case() {
        let desired = [
            assignment("new", false, false),
            assignment("running", true, false),
            assignment("cancel-me", true, true),
            assignment("after-restart", true, false),
            assignment("vanished", true, false),
            assignment("cancel-before-start", false, true),
        ];
        let actions = diff(
            &desired,
            &set(&["running", "cancel-me", "unwanted"]),
            &set(&[]),
            &set(&["after-restart"]),
        );
        assert_eq!(
            actions,
            vec![
                Action::Start(desired[0].clone()),
                Action::Stop(task("cancel-me")),
                Action::Adopt(desired[3].clone()),
                Action::Lost(task("vanished")),
                Action::Skip(task("cancel-before-start")),
                Action::Stop(task("unwanted")),
            ]
        );
    }

    #[test]
    fn a_stop_is_not_repeated() {
        let desired = [assignment("cancel-me", true, true)];
        assert!(
            diff(
                &desired,
                &set(&["cancel-me"]),
                &set(&["cancel-me"]),
                &set(&[])
            )
            .is_empty()
        );
    }
}
