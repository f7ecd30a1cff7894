"""eks-bluegreen: blue/green + canary releases of one application on Amazon EKS.

The folders are the layers, from the inside out:

``domain/``
    what a release is: the types (``models``, ``traffic``), the named errors, the
    ports the logic is handed (``ports``), execution names and event types. No I/O.
``logic/``
    what the product does, over the ports: the deploy flow's steps, the
    services API's operations, the history, ECR pushes, health. Never imports
    boto3 or the Kubernetes client.
``adapters/``
    the ports over the outside world: Kubernetes (``kube/``: the request layer,
    the canaryEnv store, the Deployments, hook Jobs and the cluster façade;
    ``eks_auth``; and ``routers/``, one module per traffic router behind one
    interface: Services' selectors, an Ingress, an HTTPRoute), DynamoDB
    (``ledger``), Step Functions, EventBridge, the health probes.

``config`` (settings, the only reader of the environment) and ``observability``
(the shared logger, tracer and metrics) serve every layer. The handlers in
``functions/*/app.py`` are thin: parse, call one logic function with its
adapters, map the result or error.
"""
