"""The soil dock: the seed's soil micro-CT scripts as five tabs of one panel.

* Cube — cut a cube out of the open DICOM stack (slice range + crop box on the views), open it, save it;
* Objects 3D — split it into density objects and show any of them as surfaces in the 3D panel;
* Phases — pores and solid split on a live histogram, porosity with its uncertainty, profiles, REV
  (:class:`app.soil.phases_panel.PhasesPanel`);
* Pores — pore statistics (:class:`app.soil.pores_panel.PoresPanel`);
* Explain — the network's heatmaps and activations (:class:`app.soil.explain_panel.ExplainPanel`).

The dock only assembles: each tab is a panel in ``app/soil/`` that takes the window, and the window
tells the dock when the study changes (:meth:`set_study`), which passes it on.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QTabWidget

from app.soil.cube_builder import CubeBuilderPanel
from app.soil.explain_panel import ExplainPanel
from app.soil.objects_3d import ObjectsPanel
from app.soil.phases_panel import PhasesPanel
from app.soil.pores_panel import PoresPanel


class SoilDock(QDockWidget):
    def __init__(self, window):
        super().__init__("Soil", window)
        self.setObjectName("soil_dock")
        self.main = window
        self.tabs = QTabWidget()
        self.cube = CubeBuilderPanel(window)
        self.objects = ObjectsPanel(window)
        self.phases = PhasesPanel(window)
        self.pores = PoresPanel(window)
        self.explain = ExplainPanel(window)
        self.panels = [self.cube, self.objects, self.phases, self.pores, self.explain]
        for panel, title in zip(self.panels, ("Cube", "Objects 3D", "Phases", "Pores", "Explain")):
            self.tabs.addTab(panel, title)
        self.setWidget(self.tabs)
        # the crop box is drawn on the views only while the user sees the Cube tab
        self._seen = False   # Qt's word on whether the dock's tab is the one shown (isVisible() is not)
        self.visibilityChanged.connect(self._visibility_changed)
        self.tabs.currentChanged.connect(lambda _i: self._cube_tab_shown())

    def _visibility_changed(self, visible: bool) -> None:
        self._seen = visible
        self._cube_tab_shown()

    def _cube_tab_shown(self) -> None:
        self.cube.set_active(self._seen and self.tabs.currentWidget() is self.cube)

    def show_tab(self, _checked=False, title: str = "Cube") -> None:
        """Bring the dock to the front at one of its tabs (the File menu's entry)."""
        self.show()
        self.raise_()
        for n in range(self.tabs.count()):
            if self.tabs.tabText(n) == title:
                self.tabs.setCurrentIndex(n)

    def set_study(self, study) -> None:
        for panel in self.panels:
            if hasattr(panel, "set_study"):
                panel.set_study(study)

    def shutdown(self) -> None:
        for panel in self.panels:
            if hasattr(panel, "shutdown"):
                panel.shutdown()
