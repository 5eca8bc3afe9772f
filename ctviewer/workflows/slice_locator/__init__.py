"""The L3/T12 workflow: from CT scans to a reviewed CSV of slice picks.

- ``projections``: frontal and sagittal bone projections of a scan at 1 mm (the locator's input);
- ``locate``: run a locator on a scan (or a folder of scans) and decode its heatmaps into picks;
- ``picks``: the picks CSV the clinic keeps, written at once on every decision, with an audit trail;
- ``evaluate``: errors of predicted picks against reference picks (``ctviewer locate-eval``);
- ``drawing``: the projection with the level lines, and the error histogram, as PNG;
- ``task``: the locator training task for ``ctviewer train``.

Kept light: nothing is imported here, so ``import ctviewer.workflows.slice_locator.picks`` costs
no NumPy-heavy or Keras import.
"""
