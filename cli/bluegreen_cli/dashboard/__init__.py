"""``bluegreen dashboard``: the release seen and driven from a browser, on loopback.

A page served on 127.0.0.1 by the operator's own command line: both colours,
the running deployment as a live timeline of the flow's phases, the ledger's
images with their verdicts, the deployments, and the actions (switch, deploy,
roll back, promote) behind confirmations; above them the fleet, the registry's
applications each at a glance, one of which the page shows and drives through
its ``/apps/{app}/...`` routes (kept in the URL as ``?app=``). Every call the
page makes goes to the configured API through the CLI's own client, signed with SigV4 like every
other command, so the API's IAM authorisation and its audit stay as they are.
The page's files ship in this package: nothing is fetched from anywhere else.

``command`` is the subcommand, ``server`` the HTTP server, ``forwarding`` what
the page may call, ``page`` the page itself and its plain-text fallback.
"""
