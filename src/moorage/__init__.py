"""Moorage: a container platform with managed named volumes for stateful services."""

__version__ = "0.1.0"
