"""Deterministic synthetic data: a parameterised torso CT with labels and level truth, test phantoms,
and the built-in demo study.

Heavy modules load on first use, so ``import ctviewer.synth`` stays cheap.
"""

from __future__ import annotations

__all__ = ["SynthTorso", "TorsoParams", "VertebraLevel", "demo_paths", "gradient_volume", "make_torso",
           "orientation_stamp"]


def __getattr__(name: str):
    if name in ("SynthTorso", "VertebraLevel", "make_torso"):
        from ctviewer.synth import torso
        return getattr(torso, name)
    if name == "TorsoParams":
        from ctviewer.synth.params import TorsoParams
        return TorsoParams
    if name in ("orientation_stamp", "gradient_volume"):
        from ctviewer.synth import phantoms
        return getattr(phantoms, name)
    if name == "demo_paths":
        from ctviewer.synth.demo import demo_paths
        return demo_paths
    raise AttributeError(f"module 'ctviewer.synth' has no attribute {name!r}")
