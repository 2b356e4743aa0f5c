"""Dual encoders (CLIP, SigLIP, …): cosine of the projected embeddings.

Linear-probe features must let a linear probe ask "is this class on this image": a vision
layer beside a text embedding only gives it ``w·image + v·text``, the same image term for
every item of an image. Each layer's feature is therefore the layer's pooled vision state
beside the element-wise product of the projected (normalised) image and text embeddings,
whose sum is the model's own cosine.

Pooling follows the architecture: CLIP-like towers have a CLS token (``cls``); SigLIP has
none and pools with its attention head (``head``: the tower's post-layernorm and
multi-head attention pooling, applied to each layer); ``mean`` averages the tokens.
"""

from __future__ import annotations

from detforge.probes.adapters.base import Base, Output, pool, to_numpy, unique_first

#: model types whose vision tower starts with a CLS token
CLS_TYPES = ("clip", "chinese_clip", "altclip", "metaclip_2")
HEAD_TYPES = ("siglip", "siglip2")
TYPES = CLS_TYPES + HEAD_TYPES


def poolings(config) -> tuple[str, ...]:
    """The poolings this dual encoder supports, its own first."""
    if config.model_type in HEAD_TYPES:
        has_head = getattr(config.vision_config, "vision_use_head", True)
        return ("head", "mean") if has_head is not False else ("mean",)
    return ("cls", "mean")


class DualEncoder(Base):
    kind, scorers = "dual", ("cosine",)

    def _tokens(self, texts: list[str]) -> dict:
        # SigLIP was trained on texts padded to 64 tokens; its embeddings expect that padding
        siglip = self.model.config.model_type in HEAD_TYPES
        padding = {"padding": "max_length", "max_length": 64} if siglip else {"padding": True}
        enc = self.tokenizer(texts, truncation=True, return_tensors="pt", **padding)
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    def _pool_layer(self, hidden):
        if self.pooling == "head":
            vision = self.model.vision_model
            return vision.head(vision.post_layernorm(hidden))
        return pool(hidden, None, self.pooling)

    def _image(self, images, hidden_states: bool):
        import torch

        out = self.model.get_image_features(
            pixel_values=self._pixels(images), output_hidden_states=hidden_states
        )
        return out, torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)

    def forward(self, keys, images, texts, layers, features):
        import torch

        first, index = unique_first(keys)
        out, image = self._image([images[i] for i in first], features)
        image = image[index]
        text = self.text_embeddings(texts)
        product = image * text
        result = Output({"cosine": to_numpy(product.sum(-1))}, {})
        for layer in layers if features else ():
            pooled = self._pool_layer(out.hidden_states[layer]).float()[index]
            result.features[layer] = to_numpy(torch.cat([pooled, product], dim=-1))
        return result

    def text_embeddings(self, texts):
        import torch

        out = self.model.get_text_features(**self._tokens(texts))
        return torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)

    def text_features(self, texts):
        return to_numpy(self.text_embeddings(texts))

    def image_features(self, images):
        return to_numpy(self._image(images, False)[1])
