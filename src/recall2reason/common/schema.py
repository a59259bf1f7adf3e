"""Readable config errors: every schema violation reported with its dotted key path.

Snakemake's ``validate`` stops at the first error and prints the schema path; users want
``train.lr: -1 is less than or equal to the minimum of 0`` for every bad key at once.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def config_errors(config: dict, schema_path: str | Path) -> list[str]:
    """All violations of ``schema_path`` (YAML JSON-schema with relative $refs) in ``config``."""
    schema_path = Path(schema_path).resolve()
    schema = _load(schema_path)
    schema["$id"] = schema_path.as_uri()

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(_load(Path(uri.removeprefix("file://"))))

    validator = Draft202012Validator(schema, registry=Registry(retrieve=retrieve))
    errors = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        errors.append(f"{key}: {err.message}")
    return errors
