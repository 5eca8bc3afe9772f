"""ctviewer core: data model, readers and writers, imaging, models and workflows.

Nothing in this package imports Qt, pyqtgraph or VTK's Qt widget, so every workflow
runs headless (CLI, tests, scripts). The GUI lives in the separate ``app`` package.
"""

__version__ = "0.1.0"
