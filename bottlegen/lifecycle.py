"""Running a bottle: up, logs, ps, down."""


def add_commands(add) -> None:
    pass
