"""Performance tuning: measuring a workflow's training step under torch.compile, AMP, layouts and sizes.

The built-in workflow ``ptw-tuner`` (entrypoint ``ptw.executors.tuning.tuner:tune``) runs in a normal executor
child; ``variants`` plans what to try, ``measure`` times one variant, ``tuner`` ties them into a summary.
"""
