"""Caption English: class display names, articles, plurals, count phrases and questions.

Captions name a class by its display name: the taxonomy's curated ``display_name`` where
the categories carry one, else the class name without LVIS disambiguators or underscores
(``car_(automobile)`` → ``car``). Articles and plurals come from ``inflect``; nouns that
exist only in the plural (scissors, trousers) are counted in pairs.
"""

from __future__ import annotations

import functools
import re

import polars as pl

#: pluralia tantum: "a pair of scissors", "two pairs of scissors"
PAIR_NOUNS = frozenset(
    {
        "binoculars",
        "glasses",
        "goggles",
        "jeans",
        "pants",
        "pliers",
        "scissors",
        "short pants",
        "shorts",
        "spectacles",
        "sunglasses",
        "tights",
        "tongs",
        "trousers",
        "tweezers",
    }
)
#: word endings of singular nouns that a naive singulariser would cut (asparagus, rhinoceros)
_SINGULAR_S = ("ss", "us", "is", "os")
COUNT_WORDS = ("no", "one", "two", "three", "four or more")


@functools.lru_cache(maxsize=1)
def _engine():
    import inflect

    return inflect.engine()


def display_name(name: str) -> str:
    """A class name as a caption noun: no ``(disambiguator)``, no underscores, ``/`` as "or",
    capitalised words lower-cased (acronyms and camel case such as ``iPod`` kept)."""
    text = re.sub(r"\s*\([^)]*\)", "", name).replace("_", " ")
    text = re.sub(r"\s*/\s*", " or ", text)
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    return " ".join(w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words)


def _singular(phrase: str) -> str:
    """A plural class name made singular (``sneakers`` → ``sneaker``), others unchanged."""
    engine = _engine()
    head, _, last = phrase.rpartition(" ")
    if not last.endswith("s") or last.endswith(_SINGULAR_S):
        return phrase
    single = engine.singular_noun(last)
    if not single or engine.plural_noun(single) != last:
        return phrase
    return f"{head} {single}".strip()


def noun_forms(name: str) -> dict[str, str]:
    """``{"noun": "dog", "a": "a dog", "plural": "dogs"}`` of a display name.

    A group name (``rays and skates``) becomes an alternative in the singular
    (``ray or skate``); a plural-only noun is counted in pairs.
    """
    engine = _engine()
    parts = [p for p in re.split(r" (?:and|or) ", name) if p]
    if len(parts) > 1:
        singles = [_singular(p) for p in parts]
        noun = " or ".join(singles)
        return {
            "noun": noun,
            "a": engine.a(noun),
            "plural": " or ".join(engine.plural_noun(s) for s in singles),
        }
    if name.lower() in PAIR_NOUNS:
        return {"noun": f"pair of {name}", "a": f"a pair of {name}", "plural": f"pairs of {name}"}
    noun = _singular(name)
    return {"noun": noun, "a": engine.a(noun), "plural": engine.plural_noun(noun)}


def class_names(categories: pl.DataFrame) -> pl.DataFrame:
    """``id, noun, a, plural`` of every class (see :func:`noun_forms`)."""
    curated = pl.col("display_name") if "display_name" in categories.columns else pl.lit(None)
    rows = []
    for class_id, name in categories.select("id", pl.coalesce(curated, "name")).iter_rows():
        rows.append({"id": class_id, **noun_forms(display_name(name))})
    schema = {"id": pl.Int32, "noun": pl.String, "a": pl.String, "plural": pl.String}
    return pl.DataFrame(rows, schema=schema)


def with_names(frame: pl.DataFrame, names: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Join the noun forms of each class-id column ``c`` as ``c_noun``, ``c_a``, ``c_plural``."""
    for column in columns:
        renamed = names.rename(
            {"id": column, **{k: f"{column}_{k}" for k in ("noun", "a", "plural")}}
        )
        frame = frame.join(renamed, on=column, how="left")
    return frame


def sentence(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literal strings and expressions into one sentence expression."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


def count_caption(count: pl.Expr, column: str) -> pl.Expr:
    """``There is no dog.`` / ``There is one dog.`` / ``There are two dogs.`` … ``four or more``
    for ``count`` 0..4 and the class-id column ``column`` (joined with :func:`with_names`)."""
    noun, plural = pl.col(f"{column}_noun"), pl.col(f"{column}_plural")
    expr = pl.when(count == 0).then(sentence("There is no ", noun, "."))
    expr = expr.when(count == 1).then(sentence("There is one ", noun, "."))
    for n in (2, 3, 4):
        expr = expr.when(count == n).then(sentence(f"There are {COUNT_WORDS[n]} ", plural, "."))
    return expr.otherwise(pl.lit(None, pl.String))


def question(statement: str) -> str:
    """A yes/no question of a caption: ``There is a dog.`` → ``Is it true that there is a dog?``"""
    text = statement.strip().rstrip(".")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[:1].lower() + text[1:]
    return f"Is it true that {text}?"
