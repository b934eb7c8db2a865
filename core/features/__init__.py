"""Features: one Numba kernel for live and replay, and the feature specification."""
