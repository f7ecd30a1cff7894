"""The detail types of the deployment events the flow publishes (``ports.Notifier``)."""

SUCCEEDED = "Deployment Succeeded"
ROLLED_BACK = "Deployment Rolled Back"
FAILED = "Deployment Failed"
