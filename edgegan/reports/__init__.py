"""Rendering of tables and sample grids."""
