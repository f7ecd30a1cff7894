"""The application's namespace through the official Kubernetes client, by job.

``requests`` (one request: timeout, error mapping, budgets), ``canary_env`` (the
ConfigMap), ``workloads`` (the colours' Deployments and pods), ``hooks`` (hook Jobs),
``client`` (how the ``ApiClient`` is built: explicit URL, kubeconfig or EKS), and
``cluster``, the façade that composes them with the stack's router into the
``Cluster`` port.
"""
