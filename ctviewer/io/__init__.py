"""Readers and writers, one module per format; :mod:`ctviewer.io.registry` picks among them."""

from ctviewer.io.registry import Loadable, examine, read_volume

__all__ = ["Loadable", "examine", "read_volume"]
