"""sekisho: the checkpoint that lets the right traveller through."""

__version__ = "0.1.0"
