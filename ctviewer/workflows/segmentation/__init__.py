"""Liver and spine segmentation: reading training cases (:mod:`.cases`), preparing them for a network
(:mod:`.prepare`), inference and metrics, the training tasks and headless ``ctviewer segment``."""
