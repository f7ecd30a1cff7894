"""The steps of the deploy flow, one function per Task of ``statemachine/deploy.asl.json``.

The state machine owns the control flow: waits, loops, retries, catches and
the Map over hooks. Each step does one short piece of work against its ports
(``ports``) and returns plain JSON for the next state. Steps are idempotent so
that a Retry after a throttled or dropped call repeats nothing harmful: the lock
is re-entrant for its holder, records are keyed by the deployment id (= the
execution name), and cluster writes are no-ops when the cluster already says so.
``bluegreen.logic.steps.run_step`` dispatches a Task's payload to its step.

``begin``
    validate the input, claim the record, take the lock, apply the image.
``rollout``
    poll the colour's rollout; fail fast on pods that cannot work.
``hooks``
    run each hook's Job from the colour's pod template.
``finish``
    judge health after the bake; record the verdict.
``rollback``
    the Catch paths: roll back, conclude, or abort.

State carried between steps (all JSON):

``deployment``
    ``{"id", "arn", "action", "service", "colour", "digest", "image",
    "fromDigest", "fromImage", "trigger", "actor", "reason"}``.
``rollout``
    ``{"image", "complete", "message", "waitSeconds", "waited", "polls"}``:
    the loop state of a Wait + Choice rollout loop.
``error``
    what a Catch put there: ``{"Error", "Cause"}``.

A step raises a named ``BlueGreenError`` to send the flow down a Catch; the
error's class name is the Task's Error and its message the Cause.
"""
