"""eks-bluegreen: blue/green + canary releases of one application on Amazon EKS.

Layering: ``functions/*/app.py`` handlers are thin; the domain modules of this
package take their ports (``bluegreen.ports``) as arguments; adapters wrap boto3
and the Kubernetes client. Only ``bluegreen.config`` reads the environment.
"""
