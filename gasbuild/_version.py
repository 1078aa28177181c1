"""gasbuild's version, in a module of its own so that the cache can put it in every key without
importing the package's public face."""

__version__ = "0.1.0"
