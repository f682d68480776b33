"""Executors: the RunContext SDK, the child runner, the run supervisor and the local executor pool.

Importing this package does not import torch; only the child runner and the built-in workflows do.
"""

from ptw.executors.sdk import RunContext

__all__ = ["RunContext"]
