"""``bluegreen``: the operator command line of eks-bluegreen.

Talks to the services API, either a real API Gateway stage (SigV4-signed with
the standard AWS credential chain) or the local stack started by ``make local``.
"""

__version__ = "0.1.0"
