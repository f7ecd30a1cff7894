"""The traffic routers, one per stack (``Settings.traffic_router``), behind ``Router``.

``selector`` (``SelectorRouter``) re-points the canary and production Services, as
the original system did. ``alb`` (``IngressRouter``) and ``gateway``
(``HttpRouteRouter``) leave every Service alone and move traffic by rewriting the
weights of one object, an Ingress of the AWS Load Balancer Controller or a Gateway
API HTTPRoute; what those two share is ``WeightedRouter``. Every move, whatever the
router, follows one sequence (``moves.GuardedMove``).

Each router is built from ``RouterParts`` (the request layer, the canaryEnv store,
the Deployments, the names) and reaches the cluster through nothing else;
``registry`` builds the one the settings name.
"""
