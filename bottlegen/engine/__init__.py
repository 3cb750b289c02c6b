"""The engine side: running a rendered bottle on a Docker engine.

- `docker`: the one place docker and compose are run; `preflight` before anything changes;
- `networks`: the bottle's networks, created by role and labelled, removed only when ours;
- `state`: the state directory, and the bottle read back from its compose file;
- `lifecycle`: up, logs, ps, down, returning what happened (the CLI prints it).

The render stages never import this package: `bottlegen render` starts no process.
"""
