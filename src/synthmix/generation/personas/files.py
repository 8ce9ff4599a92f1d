"""Persona pool files: JSONL, one persona with its provenance a line, and a report beside it."""

from __future__ import annotations

import json
from pathlib import Path

from synthmix.core.errors import ConfigError, DataError
from synthmix.core.files import sidecar
from synthmix.generation.personas.pool import Persona, PersonaPool


def save_pool(pool: PersonaPool, path: str | Path) -> Path:
    """The pool as JSONL (one persona with its provenance a line) and a `.report.json`
    beside it; written to a temporary name first, so a kill never leaves half a pool."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    lines = [json.dumps(p.to_dict(), ensure_ascii=False) for p in pool.personas]
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
    report = sidecar(path)
    report.write_text(
        json.dumps(pool.summary(), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    return report


def load_pool(path: str | Path) -> list[Persona]:
    """Personas from a pool file; a missing file, a bad line or an empty pool is one
    clear error naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: persona pool not found (build one with `synthmix personas`)")
    personas = []
    fields = set(Persona.__dataclass_fields__)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError:
                raise DataError(str(path), "not valid JSON", row=number) from None
            if not isinstance(raw, dict) or not str(raw.get("persona") or "").strip():
                raise DataError(str(path), "expected an object with a 'persona' text", number)
            values = {k: v for k, v in raw.items() if k in fields}
            values.setdefault("source", "given")
            personas.append(Persona(**values))
    if not personas:
        raise ConfigError(f"{path}: the persona pool is empty")
    return personas


def load_personas(path: str | Path) -> list[str]:
    """Just the persona texts of a pool file, in file order."""
    return [p.persona for p in load_pool(path)]
