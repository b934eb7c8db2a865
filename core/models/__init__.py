"""Model runtime: the ONNX ensemble, its bundles and the model registry."""
