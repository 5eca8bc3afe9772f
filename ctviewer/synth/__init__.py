"""Deterministic synthetic data: a parameterised torso CT with labels and level truth, a soil micro-CT
cube with its truth, a thin-section photo with its true classes, test phantoms, and the built-in demos.

Heavy modules load on first use, so ``import ctviewer.synth`` stays cheap.
"""

from __future__ import annotations

__all__ = ["SoilCube", "SoilParams", "SynthTorso", "ThinSection", "TorsoParams", "VertebraLevel", "demo_paths",
           "demo_soil_paths", "demo_thin_section_dir", "gradient_volume", "make_soil_cube", "make_thin_section",
           "make_torso", "orientation_stamp"]


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
    if name in ("SoilCube", "SoilParams", "make_soil_cube"):
        from ctviewer.synth import soil
        return getattr(soil, name)
    if name in ("ThinSection", "make_thin_section"):
        from ctviewer.synth import thin_section
        return getattr(thin_section, name)
    if name in ("demo_paths", "demo_soil_paths", "demo_thin_section_dir"):
        from ctviewer.synth import demo
        return getattr(demo, name)
    raise AttributeError(f"module 'ctviewer.synth' has no attribute {name!r}")
