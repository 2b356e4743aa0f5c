"""Build recipes: a declarative YAML description of one dataset build.

A recipe names the sources (format, version, root, splits), the taxonomy, the
dedup and decontamination settings, the split policy and the exports. Recipes
ship in ``detforge/builders/recipes/<name>.yaml``; a user's own file works the
same way. ``--set a.b=value`` overrides one key (values are YAML-typed, so
``dedup.phash_distance=4`` is an int and ``exports.hub.enabled=false`` a bool);
a list of sources is addressed by source name (``sources.lvis.root=/data/lvis``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from detforge.builders.dedup.config import DEFAULT_CONFIRM, DEFAULT_PRIORITY, DEFAULT_RADIUS
from detforge.errors import DetforgeError

ENGINES = ("process", "ray")
SPLIT_MODES = ("source", "hash")


class RecipeError(DetforgeError):
    """A recipe is missing, malformed, or names an unknown key or value."""


def _nested(cls: type) -> dict[str, Any]:
    return {"spec": cls}


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One source: which reader, which version, where its files are, which splits."""

    name: str
    format: str
    version: str | None = None
    root: str | None = None  # relative to --root; default: the source name
    images_root: str | None = None  # relative to --root; default: root
    splits: tuple[str, ...] = ("train", "val")


@dataclasses.dataclass(frozen=True)
class DedupSpec:
    exact: bool = True
    near: bool = True
    phash_distance: int = DEFAULT_RADIUS
    dhash_distance: int = DEFAULT_CONFIRM
    framing_tolerance: float = 0.01
    box_iou: float = 0.7


@dataclasses.dataclass(frozen=True)
class HoldoutSpec:
    """An evaluation set in COCO format: annotation file and image folder (relative to --root)."""

    annotations: str
    images: str | None = None


@dataclasses.dataclass(frozen=True)
class DecontaminateSpec:
    """Eval sets besides the dataset's own val/test splits (which always count)."""

    holdouts: dict[str, HoldoutSpec] = dataclasses.field(
        default_factory=dict, metadata={"spec_map": HoldoutSpec}
    )


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """``mode: hash`` re-splits by a hash of each image's id (the split stage runs before
    dedup, so copies of one photo do not exist yet to be kept together)."""

    mode: str = "source"
    fractions: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"train": 0.9, "val": 0.1}
    )
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class HubSpec:
    enabled: bool = True
    embed_images: bool = True
    shard_images: int = 10000


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    coco: bool = True
    tables: bool = True
    hub: HubSpec = dataclasses.field(default_factory=HubSpec, metadata=_nested(HubSpec))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A parsed, validated recipe (see ``recipes/bigdet.yaml`` for every key)."""

    name: str
    taxonomy: str
    sources: tuple[SourceSpec, ...] = dataclasses.field(metadata={"spec_list": SourceSpec})
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    dedup: DedupSpec = dataclasses.field(default_factory=DedupSpec, metadata=_nested(DedupSpec))
    decontaminate: DecontaminateSpec = dataclasses.field(
        default_factory=DecontaminateSpec, metadata=_nested(DecontaminateSpec)
    )
    split: SplitSpec = dataclasses.field(default_factory=SplitSpec, metadata=_nested(SplitSpec))
    exports: ExportSpec = dataclasses.field(
        default_factory=ExportSpec, metadata=_nested(ExportSpec)
    )
    engine: str = "process"
    workers: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able form (lists for tuples)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """sha256 of the recipe's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def source(self, name: str) -> SourceSpec:
        for spec in self.sources:
            if spec.name == name:
                return spec
        raise RecipeError(f"recipe {self.name}: no source named {name!r}")


def available() -> list[str]:
    """Names of the recipes shipped with detforge."""
    folder = resources.files("detforge.builders") / "recipes"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_recipe(name_or_file: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Load a shipped recipe by name, or a YAML file, then apply ``a.b=value`` overrides."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise RecipeError(f"{path}: recipe file not found")
        where, text = str(path), path.read_text(encoding="utf-8")
    else:
        file = resources.files("detforge.builders") / "recipes" / f"{name_or_file}.yaml"
        if not file.is_file():
            raise RecipeError(
                f"unknown recipe {str(name_or_file)!r} (shipped: {', '.join(available())}; "
                "or pass a YAML file)"
            )
        where, text = f"recipe {name_or_file}", file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RecipeError(f"{where}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe is a YAML mapping")
    for override in overrides:
        _apply_override(data, override, where)
    return _build(Recipe, data, where, "")


def _apply_override(data: dict[str, Any], override: str, where: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {override!r}: expected KEY=VALUE (e.g. dedup.phash_distance=4)")
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):  # a list of named entries (sources): address by name
            matches = [item for item in node if isinstance(item, dict) and item.get("name") == part]
            if not matches:
                names = ", ".join(str(item.get("name")) for item in node if isinstance(item, dict))
                raise RecipeError(
                    f"--set {key}: no entry named {part!r} in {'.'.join(parts[:depth])} "
                    f"(have: {names})"
                )
            node = matches[0]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, dict | list):
            raise RecipeError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a mapping")
    if isinstance(node, list):
        raise RecipeError(f"--set {key}: address an entry of {parts[-2]} by its name")
    node[parts[-1]] = value


def _check_scalar(value: Any, default: Any, key: str, where: str) -> Any:
    """Type-check a scalar against its field's default (None defaults accept anything)."""
    if default is None:
        return value
    expected = type(default)
    ok = (
        isinstance(value, bool)
        if expected is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if expected is float
        else isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    )
    if not ok:
        raise RecipeError(f"{where}: {key} = {value!r}: expected {expected.__name__}")
    return float(value) if expected is float else value


def _build(cls: type, data: Any, where: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: {prefix.rstrip('.') or 'recipe'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(
            f"{where}: unknown key {prefix + unknown[0]!r} (known: {', '.join(sorted(fields))})"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key = prefix + name
        has_default = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        if name not in data:
            if not has_default:
                raise RecipeError(f"{where}: missing key {key!r}")
            continue
        value = data[name]
        if "spec" in field.metadata:
            kwargs[name] = _build(field.metadata["spec"], value or {}, where, key + ".")
        elif "spec_list" in field.metadata:
            if not isinstance(value, list) or not value:
                raise RecipeError(f"{where}: {key} must be a non-empty list")
            kwargs[name] = tuple(
                _build(field.metadata["spec_list"], item, where, f"{key}[{i}].")
                for i, item in enumerate(value)
            )
        elif "spec_map" in field.metadata:
            value = value or {}
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: {key} must be a mapping of name -> settings")
            kwargs[name] = {
                str(k): _build(
                    field.metadata["spec_map"],
                    {"annotations": v} if isinstance(v, str) else v,
                    where,
                    f"{key}.{k}.",
                )
                for k, v in sorted(value.items())
                if v is not None  # `--set decontaminate.holdouts.NAME=null` removes one
            }
        elif name in ("splits", "priority"):
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise RecipeError(f"{where}: {key} must be a list")
            kwargs[name] = tuple(str(v) for v in value)
        elif name == "fractions":
            if not isinstance(value, dict) or not value:
                raise RecipeError(f"{where}: {key} must be a mapping of split -> fraction")
            kwargs[name] = {str(k): float(v) for k, v in value.items()}
        else:
            default = field.default if field.default is not dataclasses.MISSING else None
            kwargs[name] = _check_scalar(value, default, key, where)
    built = cls(**kwargs)
    _validate(built, where)
    return built


def _validate(spec: Any, where: str) -> None:
    if isinstance(spec, Recipe):
        if spec.engine not in ENGINES:
            raise RecipeError(f"{where}: engine {spec.engine!r} not one of {', '.join(ENGINES)}")
        names = [s.name for s in spec.sources]
        if len(set(names)) != len(names):
            raise RecipeError(f"{where}: sources: duplicate source name")
    elif isinstance(spec, SplitSpec):
        if spec.mode not in SPLIT_MODES:
            raise RecipeError(f"{where}: split.mode {spec.mode!r} not one of source, hash")
        total = sum(spec.fractions.values())
        if any(v < 0 for v in spec.fractions.values()) or abs(total - 1.0) > 1e-6:
            raise RecipeError(f"{where}: split.fractions must be >= 0 and sum to 1 (sum {total})")
    elif isinstance(spec, HubSpec) and spec.shard_images < 1:
        raise RecipeError(f"{where}: exports.hub.shard_images must be >= 1")
    elif isinstance(spec, DedupSpec) and not 0 <= spec.phash_distance <= 63:
        raise RecipeError(f"{where}: dedup.phash_distance must be in 0..63 (a 64-bit hash)")
