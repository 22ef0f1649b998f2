"""handnet's version; the package metadata reads it here and ``handnet --version`` prints it."""

__version__ = "0.6.0"
