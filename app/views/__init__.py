"""Views: pyqtgraph slice views, the linked multi-planar layout, and the VTK 3D panel."""
