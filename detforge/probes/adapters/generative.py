"""Generative VLMs (``AutoModelForImageTextToText``, LLaVA-style): caption likelihood, yes/no.

Prompts use the processor's chat template when it has one (the user turn holds the image
and an instruction, the caption is the assistant's answer); otherwise ``<image>\\n`` then
the caption. The caption's tokens are appended to the tokenised prompt, so exactly they are
scored. Scorers: ``mean_loglik`` (the default: mean log-probability per caption token, so
a longer sentence is not penalised for its length), ``sum_loglik`` and ``yesno``
(logit of "yes" − logit of "no" after "Is it true that …?"). Features: the language model's
layers on image + caption, pooled at the caption's last token (``last``) or averaged.
"""

from __future__ import annotations

from detforge.probes.adapters.base import Base, Output, pool, to_numpy
from detforge.probes.captions import question

CAPTION_INSTRUCTION = "Describe the image in one sentence."
ANSWER_INSTRUCTION = "Answer yes or no."


class Generative(Base):
    kind, scorers = "generative", ("mean_loglik", "sum_loglik", "yesno")

    def __init__(self, model, processor, device, n_layers, pooling):
        super().__init__(model, processor, device, n_layers, pooling)
        self.tokenizer.padding_side = "right"
        self.image_token = getattr(processor, "image_token", "<image>")
        self.template = getattr(processor, "chat_template", None)
        self.pad = self.tokenizer.pad_token_id
        if self.pad is None:
            self.pad = self.tokenizer.eos_token_id
        self.yes, self.no = (self._first_tokens(w) for w in ("yes", "no"))

    def _first_tokens(self, word: str) -> list[int]:
        ids = {
            self.tokenizer(form, add_special_tokens=False)["input_ids"][0]
            for form in (word, word.capitalize(), f" {word}")
        }
        return sorted(ids)

    def prompt(self, instruction: str | None) -> str:
        """The text before the answer: the chat template's user turn (image + instruction)
        and generation prompt, or the plain ``<image>\\n`` prefix."""
        if self.template:
            content = [{"type": "image"}]
            if instruction:
                content.append({"type": "text", "text": instruction})
            return self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        return f"{self.image_token}\n" + (instruction or "")

    def _encode(self, images, prompts: list[str], answers: list[str] | None):
        """Tokenised prompts (images expanded by the processor) with each answer's tokens
        appended; returns the model inputs, prompt lengths and answer lengths."""
        import torch

        enc = dict(self.processor(images=images, text=prompts, return_tensors="pt", padding=True))
        ids, mask = enc["input_ids"], enc["attention_mask"].bool()
        rows = [ids[i][mask[i]].tolist() for i in range(ids.shape[0])]
        tails = (
            self.tokenizer(answers, add_special_tokens=False)["input_ids"]
            if answers
            else [[] for _ in rows]
        )
        starts = torch.tensor([len(r) for r in rows])
        lengths = torch.tensor([len(t) for t in tails])
        width = int((starts + lengths).max())
        new_ids = torch.full((len(rows), width), self.pad, dtype=ids.dtype)
        new_mask = torch.zeros((len(rows), width), dtype=enc["attention_mask"].dtype)
        for i, (row, tail) in enumerate(zip(rows, tails, strict=True)):
            new_ids[i, : len(row) + len(tail)] = torch.tensor(row + tail, dtype=ids.dtype)
            new_mask[i, : len(row) + len(tail)] = 1
        for key, value in list(enc.items()):  # per-token extras (token_type_ids, …) padded too
            if (
                key not in ("input_ids", "attention_mask")
                and getattr(value, "shape", None) == ids.shape
            ):
                grown = torch.zeros((len(rows), width), dtype=value.dtype)
                grown[:, : min(width, value.shape[1])] = value[:, :width]
                enc[key] = grown
        enc["input_ids"], enc["attention_mask"] = new_ids, new_mask
        enc = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in enc.items()}
        if "pixel_values" in enc:
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        return enc, starts.to(self.device), lengths.to(self.device)

    def forward(self, keys, images, texts, layers, features):
        import torch

        prompts = [self.prompt(CAPTION_INSTRUCTION if self.template else None)] * len(texts)
        enc, starts, lengths = self._encode(images, prompts, texts)
        out = self.model(**enc, output_hidden_states=features)
        ids = enc["input_ids"]
        logp = torch.log_softmax(out.logits[:, :-1].float(), -1)
        token_logp = logp.gather(-1, ids[:, 1:, None])[..., 0]  # position t predicts t + 1
        predicted = torch.arange(1, ids.shape[1], device=ids.device)[None]
        keep = (predicted >= starts[:, None]) & (predicted < (starts + lengths)[:, None])
        total = (token_logp * keep).sum(1)
        result = Output(
            {
                "mean_loglik": to_numpy(total / lengths.clamp(min=1)),
                "sum_loglik": to_numpy(total),
            },
            {},
        )
        last = (starts + lengths - 1).clamp(min=0)
        for layer in layers if features else ():
            hidden = out.hidden_states[layer].float()
            result.features[layer] = to_numpy(
                pool(hidden, enc["attention_mask"], self.pooling, index=last)
            )
        asks = [self._question(t) for t in texts]
        q_enc, q_starts, _ = self._encode(images, asks, None)
        q_logits = self.model(**q_enc).logits.float()
        at = q_logits[torch.arange(len(texts), device=q_starts.device), q_starts - 1]
        yes = torch.logsumexp(at[:, self.yes], -1)
        no = torch.logsumexp(at[:, self.no], -1)
        result.scores["yesno"] = to_numpy(yes - no)
        return result

    def _question(self, text: str) -> str:
        if self.template:
            return self.prompt(f"{question(text)} {ANSWER_INSTRUCTION}")
        return f"{self.image_token}\nQuestion: {question(text)} Answer:"

    def image_features(self, images):
        import torch

        enc, starts, _ = self._encode(images, [self.prompt(None)] * len(images), None)
        hidden = self.model(**enc, output_hidden_states=True).hidden_states[-1].float()
        return to_numpy(hidden[torch.arange(len(images), device=starts.device), starts - 1])

    def text_features(self, texts):
        import torch

        enc = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        out = self.model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            output_hidden_states=True,
        )
        last = (enc["attention_mask"].sum(1) - 1).clamp(min=0)
        hidden = out.hidden_states[-1].float()
        return to_numpy(hidden[torch.arange(len(texts), device=last.device), last])
