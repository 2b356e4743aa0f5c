"""BLIP image-text matching: the ITM head's match logit; features = the fused text stack."""

from __future__ import annotations

from detforge.probes.adapters.base import Base, Output, pool, to_numpy, unique_first


class ImageTextMatching(Base):
    """``BlipForImageTextRetrieval``: the text stack cross-attends to the image; ``cls`` pools
    its first ([ENC]) token, the one the ITM head reads."""

    kind, scorers = "itm", ("itm",)

    def _tokens(self, texts: list[str]) -> dict:
        enc = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    def forward(self, keys, images, texts, layers, features):
        import torch

        first, index = unique_first(keys)
        vision = self.model.vision_model(pixel_values=self._pixels([images[i] for i in first]))
        image = vision.last_hidden_state[index]
        tokens = self._tokens(texts)
        fused = self.model.text_encoder(
            **tokens,
            encoder_hidden_states=image,
            encoder_attention_mask=torch.ones(
                image.shape[:-1], dtype=torch.long, device=image.device
            ),
            output_hidden_states=features,
        )
        logits = self.model.itm_head(fused.last_hidden_state[:, 0]).float()
        result = Output({"itm": to_numpy(logits[:, 1] - logits[:, 0])}, {})
        for layer in layers if features else ():
            hidden = fused.hidden_states[layer].float()
            result.features[layer] = to_numpy(pool(hidden, tokens["attention_mask"], self.pooling))
        return result

    def text_features(self, texts):
        import torch

        out = self.model.text_encoder(**self._tokens(texts))
        proj = self.model.text_proj(out.last_hidden_state[:, 0])
        return to_numpy(torch.nn.functional.normalize(proj.float(), dim=-1))

    def image_features(self, images):
        import torch

        vision = self.model.vision_model(pixel_values=self._pixels(images))
        proj = self.model.vision_proj(vision.last_hidden_state[:, 0])
        return to_numpy(torch.nn.functional.normalize(proj.float(), dim=-1))
