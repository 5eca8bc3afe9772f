"""Views: pyqtgraph slice views, the linked multi-planar layout, and the VTK 3D panel."""

import pyqtgraph as pg

# Our arrays are [row, column]; pyqtgraph's default is column-major (STYLE.md). Told once here,
# because every view module imports this package before it draws anything.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
