"""Offline clinical data factory: gold / silver / bronze data for clinical text classifiers."""

__version__ = "0.1.0"
