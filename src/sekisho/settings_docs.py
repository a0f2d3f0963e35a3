"""``python -m sekisho.settings_docs > docs/configuration.md``: every setting, from the code."""

from __future__ import annotations

from sekisho.settings import Settings

_INTRO = """# Configuration

Every setting is an environment variable with the prefix `SEKISHO_`, or a key of the TOML
file named by `SEKISHO_CONFIG` (same names, lower case, without the prefix). Lists take
JSON (`SEKISHO_TRUSTED_PROXIES='["10.0.0.0/8"]'`). Generated from `src/sekisho/settings.py`
by `python -m sekisho.settings_docs`; a test fails when the two disagree.

| variable | default | meaning and reason |
| --- | --- | --- |
"""


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if name == "hash_concurrency":
        return "CPU count"
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"  # type: ignore[call-arg]
    return "unset" if field.default is None else f"`{field.default}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        meaning = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `SEKISHO_{name.upper()}` | {_default(name)} | {meaning} |")
    return _INTRO + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
