"""planner: coverage planner for specialised parent-infant relationship teams in England."""

__version__ = "0.1.0"
