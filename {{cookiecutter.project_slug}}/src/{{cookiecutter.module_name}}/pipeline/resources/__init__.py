"""The machine's cores and memory, shared among the running tasks."""
