"""ViLT: a single-stream transformer over text tokens and image patches together.

Zero-shot score: the image-text retrieval head (``ViltForImageAndTextRetrieval``'s rank
logit) where the checkpoint has it; other ViLT checkpoints (e.g. the masked-LM pre-training
one) get linear probes only. Features per layer: the fused sequence pooled at its first
token (the text [CLS] the pooler reads) or averaged (``mean``). The text-only control runs
the text beside a uniform grey image; the image-only control runs the image with an empty
text.
"""

from __future__ import annotations

from detforge.probes.adapters.base import Base, Output, pool, to_numpy

GREY = (128, 128, 128)


class Vilt(Base):
    kind = "vilt"

    def __init__(self, model, processor, device, n_layers, pooling):
        super().__init__(model, processor, device, n_layers, pooling)
        self.vilt = getattr(model, "vilt", model)
        self.scorers = ("itm",) if hasattr(model, "rank_output") else ()

    def _inputs(self, images, texts):
        inputs = self.processor(
            images=images,
            text=texts,
            padding=True,
            truncation=True,
            max_length=self.vilt.config.max_position_embeddings,
            return_tensors="pt",
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def forward(self, keys, images, texts, layers, features):
        import torch

        inputs = self._inputs(images, texts)
        out = self.vilt(**inputs, output_hidden_states=features)
        scores = {}
        if self.scorers:
            scores["itm"] = to_numpy(self.model.rank_output(out.pooler_output)[:, 0])
        result = Output(scores, {})
        if features:
            text_mask = inputs["attention_mask"]
            for layer in layers:
                hidden = out.hidden_states[layer].float()
                image_mask = torch.ones(
                    hidden.shape[0], hidden.shape[1] - text_mask.shape[1], device=hidden.device
                )
                mask = torch.cat([text_mask.to(image_mask.dtype), image_mask], dim=1)
                result.features[layer] = to_numpy(pool(hidden, mask, self.pooling))
        return result

    def text_features(self, texts):
        from PIL import Image

        grey = Image.new("RGB", (64, 64), GREY)
        out = self.vilt(**self._inputs([grey] * len(texts), texts))
        return to_numpy(out.pooler_output.float())

    def image_features(self, images):
        out = self.vilt(**self._inputs(images, [""] * len(images)))
        return to_numpy(out.pooler_output.float())
