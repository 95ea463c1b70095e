"""The refusals of the workflow engine::

    GatewayError
    ├── NotFound
    │   └── RunNotFound          no workflow run has this id
    └── Conflict
        └── RunStateConflict     the run's status does not allow the action (retry of a
                                 run that is not parked or failed, cancel of a succeeded
                                 run): read the run again and decide

    └── UnknownWorkflow          no workflow of this name is registered with the engine (a
                                 route removed from the routes file, whose dead letter is
                                 retried): a deployment's doing, not the user's

A step's own failure is not raised to the caller: it is recorded on the step and its run
(``error``, ``error_code``) and decides whether the run waits, parks or fails.
"""

from __future__ import annotations

from connectors.errors import GatewayError
from gateway.errors import Conflict, NotFound


class RunNotFound(NotFound):
    code = "WORKFLOW_RUN_NOT_FOUND"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"There is no workflow run {run_id!r}.")


class RunStateConflict(Conflict):
    code = "WORKFLOW_RUN_STATE"

    def __init__(self, run_id: str, status: str, action: str) -> None:
        super().__init__(f"Workflow run {run_id!r} is {status}: it cannot be {action}.")


class UnknownWorkflow(GatewayError):
    code = "UNKNOWN_WORKFLOW"

    def __init__(self, name: str) -> None:
        super().__init__(f"No workflow named {name!r} is registered.")
