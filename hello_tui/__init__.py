"""hello-tui: Firefox Hello rebuilt for the terminal."""

__version__ = "0.1.0"
