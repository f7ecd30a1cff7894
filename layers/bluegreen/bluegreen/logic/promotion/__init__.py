"""The steps of a progressive promotion, the Tasks of ``deploy.asl.json``'s promotion states.

A promotion gives the canary colour a growing share of production, one step of the
strategy at a time, and judges it from CloudWatch between the steps:

``begin_promotion``
    claims the request's record (or records a console run), takes the lock, checks
    that the router is weighted, that canaryEnv and the router object agree with all
    of production on the production colour, and that the canary runs a pinned digest
    not judged failed; then returns the promotion's state.
``shift``
    sets the step's weights (canaryEnv, then the router object); at the end of the
    strategy swaps the roles: the canary colour becomes production at 100 %, the old
    production colour the canary, still running what it ran (the flip-back window).
``analyse``
    reads the canary's target group over the window since the last reading and
    judges it (``logic.analysis``): a failure past ``failureLimit`` backs out,
    inconclusive readings pause the step (past ``inconclusiveLimit`` a person is
    asked), a passed pause moves to the next step.
``open_gate`` / ``pass_gate``
    a manual pause: the flow waits on a Step Functions task token until a person
    resumes it (``POST /deployments/{id}/resume``) or aborts it.
``back_out``
    production back to 100 % on the old colour in one router write (canaryEnv
    after), the digest marked failed when its analysis failed, the record closed,
    the lock released; the execution then fails with the analysis in its Cause.

State carried between the states: ``promotion`` (see ``begin``). Every step
renews the lock's lease, so a long pause never lets another deployment in.

``plan`` holds what the services API checks before it starts a promotion (and
the flow again once it holds the lock); ``ports``, ``progress``, ``begin``,
``steps`` and ``back_out`` are the flow's side. ``bluegreen.logic.steps``
dispatches a Task's payload to its step.
"""
