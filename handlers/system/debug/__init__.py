"""On-demand profiling (runtime.observability.profiling): off unless configured."""
