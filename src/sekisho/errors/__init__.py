"""The one error catalogue, the one exception type, and the one place they become responses."""

from sekisho.errors.catalogue import CATALOGUE, ErrorSpec, SekishoError

__all__ = ["CATALOGUE", "ErrorSpec", "SekishoError"]
