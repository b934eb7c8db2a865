"""Scanner analysis: boundaries, parameters, isolation, security."""
