"""The business of PyTorch-workflow: entities, the run state machine, services and ports. Pure Python."""
