"""Training functions for executor tests: each exercises one way a run can behave."""
