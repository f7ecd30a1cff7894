"""The detail types of the deployment events the flow publishes (``ports.Notifier``)."""

SUCCEEDED = "Deployment Succeeded"
ROLLED_BACK = "Deployment Rolled Back"
FAILED = "Deployment Failed"
INTERRUPTED = "Deployment Interrupted"
"""Stopped by no judgement of the digest (a step that died, a lost lock): put back where
it was applied, the digest unjudged."""
