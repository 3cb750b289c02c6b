"""The compose target: what makes a merged document a compose file bottlegen will run,
between the shared stages' merge and emit (bottlegen.stages), numbered here:

1. check     the compose-spec schema, the rules compose enforces at load time, warnings
2. policy    the sandbox's rules, by roles, judged as the engine will act
3. relocate  host paths written relative to the file's folder, as compose reads them
"""

ORDER = ("check", "policy", "relocate")
