"""Caption templates as polars expressions (articles, plurals, counts, relations)."""

from __future__ import annotations

import polars as pl


def noun(column: str) -> pl.Expr:
    """A class name as a caption noun: lower case, underscores as spaces."""
    return pl.col(column).str.to_lowercase().str.replace_all("_", " ")


def with_article(name: pl.Expr) -> pl.Expr:
    """``a dog`` / ``an apple``."""
    article = pl.when(name.str.contains(r"^[aeiou]")).then(pl.lit("an ")).otherwise(pl.lit("a "))
    return pl.concat_str(article, name)


def plural(name: pl.Expr) -> pl.Expr:
    """English plural of the last word by the regular rules (dogs, boxes, berries)."""
    return (
        pl.when(name.str.contains(r"(s|x|z|ch|sh)$"))
        .then(pl.concat_str(name, pl.lit("es")))
        .when(name.str.contains(r"[^aeiou]y$"))
        .then(pl.concat_str(name.str.slice(0, name.str.len_chars() - 1), pl.lit("ies")))
        .otherwise(pl.concat_str(name, pl.lit("s")))
    )


def there_is(name: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("There is "), with_article(name), pl.lit("."))


def there_is_no(name: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("There is no "), name, pl.lit("."))


COUNT_WORDS = ("no", "one", "two", "three", "four or more")


def count_caption(count: pl.Expr, name: pl.Expr) -> pl.Expr:
    """``There is no dog.`` / ``There is one dog.`` / ``There are two dogs.`` ..."""
    expr = pl.when(count == 0).then(there_is_no(name))
    expr = expr.when(count == 1).then(pl.concat_str(pl.lit("There is one "), name, pl.lit(".")))
    for n in (2, 3, 4):
        words = f"There are {COUNT_WORDS[n]} "
        expr = expr.when(count == n).then(pl.concat_str(pl.lit(words), plural(name), pl.lit(".")))
    return expr.otherwise(pl.lit(None, pl.String))


RELATIONS = ("to the left of", "to the right of", "above", "below")


def relation_caption(relation: pl.Expr, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``The dog is to the left of the cat.`` for relation index 0..3 (see :data:`RELATIONS`)."""
    phrase = pl.lit(None, pl.String)
    for i in reversed(range(len(RELATIONS))):
        phrase = pl.when(relation == i).then(pl.lit(RELATIONS[i])).otherwise(phrase)
    return pl.concat_str(pl.lit("The "), a, pl.lit(" is "), phrase, pl.lit(" the "), b, pl.lit("."))


def size_caption(larger: pl.Expr, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``The dog is larger than the cat.`` (``larger`` true) or ``... smaller than ...``."""
    word = (
        pl.when(larger)
        .then(pl.lit(" is larger than the "))
        .otherwise(pl.lit(" is smaller than the "))
    )
    return pl.concat_str(pl.lit("The "), a, word, b, pl.lit("."))


def pair_caption(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``There is a dog and a cat.``"""
    return pl.concat_str(
        pl.lit("There is "), with_article(a), pl.lit(" and "), with_article(b), pl.lit(".")
    )
