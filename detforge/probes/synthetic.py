"""Small synthetic inputs for smoke tests and benchmarks: a shapes dataset and tiny VLMs.

``shapes_dataset`` draws coloured rectangles (one colour per class) on grey images and
writes a :class:`DetDataset` with two sources: ``shapes`` annotates every class
exhaustively; ``tagged`` has no label space, only a few verified negative and
not-exhaustive image labels. ``tiny_model`` writes a random-init CLIP, SigLIP, BLIP (ITM),
ViLT or LLaVA-style model with a tokenizer and processor built offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from detforge import schema
from detforge.dataset import DetDataset

CLASSES = ("dog", "cat", "wolf", "fox", "car", "bus", "animal", "vehicle")
PARENTS = {0: [6], 1: [6], 2: [6], 3: [6], 4: [7], 5: [7]}
COLOURS = np.array(
    [[220, 30, 30], [30, 200, 30], [30, 30, 220], [230, 200, 20], [200, 30, 200], [20, 200, 200]],
    dtype=np.uint8,
)


def shapes_dataset(
    root: str | Path, *, images: int = 80, size: int = 48, seed: int = 0
) -> DetDataset:
    """Write ``images`` PNGs under ``root`` and return their dataset (not written to disk)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    img_rows, obj_rows, label_rows = [], [], []
    for i in range(images):
        source = "shapes" if i % 4 else "tagged"
        image_id = schema.stable_id(source, str(i))
        pixels = np.full((size, size, 3), 128, dtype=np.uint8)
        classes = rng.choice(6, size=int(rng.integers(2, 4)), replace=False)
        for c in classes:
            for k in range(int(rng.choice([1, 1, 1, 1, 2, 3, 4, 5]))):
                w, h = rng.uniform(0.08, 0.3, size=2)
                x1, y1 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
                box = np.array([x1, y1, x1 + w, y1 + h], dtype=np.float32)
                px = (box * size).round().astype(int)
                pixels[px[1] : px[3], px[0] : px[2]] = COLOURS[c]
                crowd = bool(rng.random() < 0.04)
                obj_rows.append(
                    dict(
                        image_id=image_id,
                        object_id=schema.stable_id(source, f"train/{i}/{c}/{k}"),
                        source=source,
                        source_label=str(c),
                        label=int(c),
                        bbox=box.tolist(),
                        area=float(w * h * size * size),
                        is_crowd=crowd,
                        is_group_of=False,
                    )
                )
        file_name = f"{source}/{i:04d}.png"
        (root / source).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / file_name)
        img_rows.append(
            dict(
                image_id=image_id,
                source=source,
                source_image_id=str(i),
                file_name=file_name,
                width=size,
                height=size,
                split="train",
            )
        )
        if source == "tagged":
            absent = [c for c in range(6) if c not in classes]
            for c in absent[:2]:
                label_rows.append(
                    dict(
                        image_id=image_id,
                        source=source,
                        source_label=str(c),
                        label=c,
                        status="negative",
                    )
                )
            label_rows.append(
                dict(
                    image_id=image_id,
                    source=source,
                    source_label=str(classes[0]),
                    label=int(classes[0]),
                    status="not_exhaustive",
                )
            )
    categories = pl.DataFrame(
        {
            "id": list(range(len(CLASSES))),
            "name": list(CLASSES),
            "parents": [PARENTS.get(i, []) for i in range(len(CLASSES))],
        },
        schema_overrides={"parents": pl.List(pl.Int32)},
    )
    spaces = pl.DataFrame(
        {"source": "shapes", "source_label": [str(c) for c in range(6)], "label": list(range(6))}
    )
    return DetDataset(
        images=pl.DataFrame(img_rows),
        objects=pl.DataFrame(obj_rows, schema_overrides={"bbox": pl.List(pl.Float32)}).with_columns(
            pl.col("bbox").list.to_array(4)
        ),
        image_labels=pl.DataFrame(label_rows) if label_rows else schema.empty("image_labels"),
        label_spaces=spaces,
        categories=categories,
        roots={"shapes": str(root), "tagged": str(root)},
        meta={"taxonomy": "shapes"},
    )


def _byte_vocab(extra: tuple[str, ...]) -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = sorted(set(bytes_to_unicode().values()))
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>", *extra]
    return {t: i for i, t in enumerate(tokens)}


def _char_tokenizer():
    """A character-level fast tokenizer (lower-cased, ``</s>`` appended, ``<pad>`` = 0).

    SigLIP's own tokenizer needs a trained SentencePiece model file; the processor takes any
    fast tokenizer, saved as ``tokenizer.json`` and loaded back by ``AutoProcessor``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = " abcdefghijklmnopqrstuvwxyz0123456789.,'+-"
    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>", *chars])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )


#: a minimal chat template in the LLaVA-1.5 style (user turn with the image, then ASSISTANT:)
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() + ': ' }}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<image>' + '\\n' }}{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _bert_vocab() -> list[str]:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [*words, *letters, ".", ",", "+", "-", "'", *("##" + c for c in letters)]


#: the kinds :func:`tiny_model` writes
TINY_KINDS = ("clip", "siglip", "blip", "vilt", "llava")


def tiny_model(kind: str, path: str | Path, *, seed: int = 0, chat_template: bool = False) -> Path:
    """Write a random-init tiny ``clip``, ``siglip``, ``blip``, ``vilt`` or ``llava`` model +
    processor to ``path`` (``chat_template``: give the LLaVA processor one).

    Its config says its weights are random (:data:`~detforge.probes.adapters.RANDOM_WEIGHTS`),
    so ``detforge probe run`` says so beside its numbers.
    """
    import torch
    import transformers as tf

    from detforge.probes.adapters import RANDOM_WEIGHTS

    torch.manual_seed(seed)
    path = Path(path)
    layers = dict(hidden_size=16, intermediate_size=32, num_attention_heads=2)
    vision = dict(**layers, num_hidden_layers=3, image_size=32, patch_size=8)
    image_processor = dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    if kind == "clip":
        vocab = _byte_vocab(())
        ids = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"])
        text = dict(
            **layers,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=64,
            pad_token_id=ids["eos_token_id"],
            **ids,
        )
        model = tf.CLIPModel(
            tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)
        )
        processor = tf.CLIPProcessor(
            image_processor=tf.CLIPImageProcessor(**image_processor),
            tokenizer=tf.CLIPTokenizer(vocab=vocab, merges=[]),
        )
    elif kind == "siglip":
        tokenizer = _char_tokenizer()
        text = dict(
            **layers,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=64,  # the adapter pads SigLIP texts to 64 tokens
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        processor = tf.SiglipProcessor(
            image_processor=tf.SiglipImageProcessor(size={"height": 32, "width": 32}),
            tokenizer=tokenizer,
        )
    elif kind == "blip":
        vocab = {w: i for i, w in enumerate(_bert_vocab())}
        text = dict(
            **layers,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            sep_token_id=3,
            encoder_hidden_size=16,
        )
        config = tf.BlipConfig(
            text_config=text, vision_config=vision, projection_dim=8, image_text_hidden_size=8
        )
        model = tf.BlipForImageTextRetrieval(config)
        processor = tf.BlipProcessor(
            image_processor=tf.BlipImageProcessor(size={"height": 32, "width": 32}),
            tokenizer=tf.BertTokenizer(vocab=vocab),
        )
    elif kind == "vilt":
        path.mkdir(parents=True, exist_ok=True)
        (path / "vocab.txt").write_text("\n".join(_bert_vocab()) + "\n")
        tokenizer = tf.BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
        config = tf.ViltConfig(
            **layers,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            image_size=32,
            patch_size=8,
            max_position_embeddings=64,
            pad_token_id=0,
        )
        config.architectures = ["ViltForImageAndTextRetrieval"]
        model = tf.ViltForImageAndTextRetrieval(config)
        processor = tf.ViltProcessor(
            image_processor=tf.ViltImageProcessor(size={"shortest_edge": 32}, size_divisor=8),
            tokenizer=tokenizer,
        )
    elif kind == "llava":
        vocab = _byte_vocab(("<image>", "<pad>"))
        tokenizer = tf.CLIPTokenizer(vocab=vocab, merges=[], pad_token="<pad>")
        tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
        text = dict(
            **layers,
            model_type="llama",
            num_hidden_layers=2,
            num_key_value_heads=2,
            vocab_size=len(vocab),
            max_position_embeddings=256,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<pad>"],
        )
        config = tf.LlavaConfig(
            vision_config=dict(**vision, model_type="clip_vision_model"),
            text_config=text,
            image_token_index=vocab["<image>"],
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
        model = tf.LlavaForConditionalGeneration(config)
        processor = tf.LlavaProcessor(
            image_processor=tf.CLIPImageProcessor(**image_processor),
            tokenizer=tokenizer,
            patch_size=8,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=CHAT_TEMPLATE if chat_template else None,
        )
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}: {', '.join(TINY_KINDS)}")
    setattr(model.config, RANDOM_WEIGHTS, True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
