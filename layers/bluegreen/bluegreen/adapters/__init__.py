"""The ports over Kubernetes, DynamoDB, Step Functions, EventBridge and the probes."""
