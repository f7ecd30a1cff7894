def on_moto() -> None:
    """The environment of a benchmark whose handlers run in-process on moto: a region,
    moto's well-known key (nothing real can be reached with it), quiet Powertools."""
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
