"""``python -m sekisho.errors.docs > docs/errors.md``: the error list, made from the catalogue."""

from __future__ import annotations

from sekisho.errors.catalogue import CATALOGUE


def render() -> str:
    lines = [
        "# Error codes",
        "",
        "Generated from `src/sekisho/errors/catalogue.py` by `python -m sekisho.errors.docs`;",
        "a test fails when this file and the catalogue disagree. Codes are stable; texts may",
        "improve. *Public* errors may be shown before login and never reveal whether an",
        "account exists.",
        "",
        "| code | HTTP | public | message (ja) | message (en) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for code in sorted(CATALOGUE):
        spec = CATALOGUE[code]
        lines.append(f"| `{code}` | {spec.status} | {'yes' if spec.public else 'no'} | "
                     f"{spec.message['ja']} | {spec.message['en']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
