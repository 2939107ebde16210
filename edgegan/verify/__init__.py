"""Run every artifact on the host with the bundle's inputs and score it against float torch."""
from .host import FidelityThresholds, fidelity, measure_latencies, run_artifact

__all__ = ["FidelityThresholds", "fidelity", "measure_latencies", "run_artifact"]
