"""Which engine the SignalActor serves a model with, and what it says about it."""

import dataclasses
from pathlib import Path

import onnx
import pytest
from onnx import helper

from tapereader.actors.signal_actor import SignalActor, SignalActorConfig
from tapereader.core.features.spec import SPEC
from tapereader.core.models.compiled import COMPILED_PROVIDER
from tapereader.core.models.registry import Registry
from tapereader.core.models.runtime import EnsembleFailure

from .conftest import OANDA, VERSION


def _actor(registry: Path, engine: str) -> SignalActor:
    return SignalActor(
        SignalActorConfig(instrument_ids=[OANDA], registry=str(registry), engine=engine)
    )


def _bundle(registry: Path, unreadable: bool = False):
    bundle = Registry(registry).load(VERSION, feature_spec_hash=SPEC.hash)
    if not unreadable:
        return bundle
    # A node the compiled engine does not implement, harmless to ONNX Runtime (an output
    # nobody reads): what a bundle exported in an older graph layout looks like to it.
    model = onnx.load_from_string(bundle.graph)
    model.graph.node.append(helper.make_node("Relu", ["features"], ["stray"], name="stray"))
    return dataclasses.replace(bundle, graph=model.SerializeToString())


def test_auto_serves_with_the_compiled_engine_on_the_cpu(registry: Path) -> None:
    runtime = _actor(registry, "auto")._runtime(OANDA, _bundle(registry))
    assert runtime.serving_provider == COMPILED_PROVIDER
    assert max(runtime.parity.values()) <= 1e-5  # checked against ONNX Runtime at load


def test_onnxruntime_is_served_when_asked_for(registry: Path) -> None:
    runtime = _actor(registry, "onnxruntime")._runtime(OANDA, _bundle(registry))
    assert runtime.serving_provider == "CPUExecutionProvider" and not runtime.parity


def test_auto_falls_back_to_onnxruntime_only_for_a_graph_it_cannot_read(registry: Path) -> None:
    bundle = _bundle(registry, unreadable=True)
    runtime = _actor(registry, "auto")._runtime(OANDA, bundle)
    assert runtime.serving_provider == "CPUExecutionProvider"
    assert "cannot read the graph" in runtime.fallback and "Relu 'stray'" in runtime.fallback
    with pytest.raises(EnsembleFailure, match="Relu 'stray'"):
        _actor(registry, "compiled")._runtime(OANDA, bundle)  # asked for: no fallback


def test_an_unknown_engine_is_refused(registry: Path) -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        _actor(registry, "fast")._runtime(OANDA, _bundle(registry))
