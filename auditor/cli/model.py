"""`auditor model ...`: train, evaluate, explore and export the age model."""

import click


@click.group("model")
def model_group() -> None:
    """Train, evaluate, explore and export the age model."""
