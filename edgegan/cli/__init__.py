"""Command-line interface: one module per verb, imported lazily."""
