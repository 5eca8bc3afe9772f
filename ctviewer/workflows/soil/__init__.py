"""Soil micro-CT: cubes from DICOM stacks, density objects, pore statistics, the slice network and its explanations."""
