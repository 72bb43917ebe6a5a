"""gdrun: a command-line experiment runner for gradient descent."""

__version__ = "0.1.0"
