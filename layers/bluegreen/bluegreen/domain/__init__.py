"""The domain: types, named errors, ports, execution names and event types. No I/O."""
