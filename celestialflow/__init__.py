"""celestialflow: a graph workflow engine."""
