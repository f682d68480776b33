"""The ``ptw`` commands, one module per noun; ``ptw.cli`` assembles them into one typer app."""
