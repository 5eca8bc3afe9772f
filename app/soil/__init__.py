"""The soil dock's analysis panels: pore statistics and network explanations."""
