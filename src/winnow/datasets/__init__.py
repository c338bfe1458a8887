"""Real data shipped with winnow, for the demo and examples."""
