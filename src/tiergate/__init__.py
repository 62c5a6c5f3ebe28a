"""tiergate: keeps AI agents and people on their defined business processes."""

__version__ = "0.1.0"
