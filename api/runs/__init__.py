"""Runs: starting, cancelling, reading and following them."""
