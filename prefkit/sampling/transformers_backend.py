"""Sampling with Hugging Face `generate`: batched, left-padded, seeded per batch, raw log-probs per token.

The fallback when vLLM is not installed, and the reference the vLLM backend is checked against.
Prompts are rendered with `prefkit.chat.encode_prompt`, as in every other stage. Each batch is seeded
from (params.seed, batch index), so the same prompts with the same seed give the same completions.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from prefkit.conversation import Prompt
from prefkit.models import default_device, load_causal_lm, load_tokenizer
from prefkit.sampling.base import Completion, SamplingParams
from prefkit.sampling.options import SamplerOptions
from prefkit.sampling.prompt_tokens import derive_seed, encode_prompts

SHOWN_NOTICES: set[str] = set()


def vllm_notice(device: str, *, vllm_installed: bool) -> str | None:
    """The one line the transformers backend prints when it samples on a GPU that vLLM would use faster."""
    if vllm_installed or not device.startswith("cuda"):
        return None
    return (
        "prefkit: sampling with transformers on a GPU; vLLM is many times faster there "
        "(pip install vllm, then --backend auto or vllm)"
    )


class TransformersSampler:
    """k completions per prompt with `model.generate` (any device torch supports)."""

    name = "transformers"

    def __init__(self, model: str, options: SamplerOptions | None = None) -> None:
        self.options = options or SamplerOptions()
        self.device = self.options.device or default_device()
        notice = vllm_notice(self.device, vllm_installed=importlib.util.find_spec("vllm") is not None)
        if notice and notice not in SHOWN_NOTICES:
            SHOWN_NOTICES.add(notice)  # once per process, not once per round or evaluation
            print(notice, file=sys.stderr, flush=True)
        dtype = "float32" if self.options.dtype == "auto" and self.device == "cpu" else self.options.dtype
        self.tokenizer = load_tokenizer(model, trust_remote_code=self.options.trust_remote_code)
        self.model = load_causal_lm(
            model, dtype=dtype, device=self.device, trust_remote_code=self.options.trust_remote_code
        )
        self.model.eval()
        self.max_model_len = self._context_length()
        self.eos_ids = self._eos_ids()

    def _context_length(self) -> int:
        limit = getattr(self.model.config, "max_position_embeddings", None) or 2048
        return min(limit, self.options.max_model_len) if self.options.max_model_len else limit

    def _eos_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(
            configured if isinstance(configured, list) else [configured] if configured is not None else []
        )
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Return `params.n` completions for each prompt, in order."""
        encoded = encode_prompts(self.tokenizer, prompts, self.options.use_chat_template, self.max_model_len)
        results: list[list[Completion]] = []
        batch_size = max(1, self.options.batch_size)
        for batch_index, start in enumerate(range(0, len(encoded), batch_size)):
            batch = encoded[start : start + batch_size]
            results.extend(
                self._generate_batch(batch, params, derive_seed(params.seed, "batch", batch_index))
            )
        return results

    def _generate_batch(
        self, batch: list[list[int]], params: SamplingParams, seed: int
    ) -> list[list[Completion]]:
        import torch

        input_ids, attention_mask = self._left_pad(batch)
        greedy = params.temperature == 0
        copies = 1 if greedy else params.n  # greedy search cannot return several sequences; repeat it
        max_new_tokens = min(params.max_new_tokens, self.max_model_len - input_ids.shape[1])
        torch.manual_seed(seed)
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                do_sample=not greedy,
                temperature=params.temperature if not greedy else None,
                top_p=params.top_p if not greedy else None,
                top_k=0 if not greedy else None,  # vLLM's default: no top-k cut
                max_new_tokens=max_new_tokens,
                num_return_sequences=copies,
                eos_token_id=sorted(self.eos_ids),
                pad_token_id=self.tokenizer.pad_token_id,
                stop_strings=list(params.stop) or None,
                tokenizer=self.tokenizer if params.stop else None,
                return_dict_in_generate=True,
                output_logits=params.logprobs,
            )
        generated = output.sequences[:, input_ids.shape[1] :].cpu()
        token_logprobs = self._token_logprobs(output.logits, generated) if params.logprobs else None
        completions: list[list[Completion]] = []
        for prompt_index in range(len(batch)):
            row_completions = []
            for copy in range(params.n):
                row = prompt_index * copies + (0 if greedy else copy)
                row_completions.append(self._completion(generated[row], token_logprobs, row, params.stop))
            completions.append(row_completions)
        return completions

    def _left_pad(self, batch: list[list[int]]):
        import torch

        width = max(len(ids) for ids in batch)
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        return input_ids.to(self.model.device), attention_mask.to(self.model.device)

    @staticmethod
    def _token_logprobs(step_logits: Sequence, generated):
        """(rows, steps) log-probs of each generated token under the raw logits (float32, per step)."""
        import torch

        columns = []
        for step, logits in enumerate(step_logits):
            chosen = generated[:, step].to(logits.device).unsqueeze(-1)
            columns.append(torch.gather(logits.float().log_softmax(-1), 1, chosen).squeeze(-1).cpu())
        return torch.stack(columns, dim=1).double()

    def _completion(self, tokens, token_logprobs, row: int, stop: Sequence[str]) -> Completion:
        ids = tokens.tolist()
        length = next((i + 1 for i, token in enumerate(ids) if token in self.eos_ids), len(ids))
        finish_reason = "stop" if length <= len(ids) and ids[length - 1] in self.eos_ids else "length"
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        if stop and any(s in text for s in stop):
            length = self._tokens_through_stop(ids[:length], stop)
            text = truncate_at_stop(self.tokenizer.decode(ids[:length], skip_special_tokens=True), stop)
            finish_reason = "stop"
        logprob = float(token_logprobs[row, :length].sum()) if token_logprobs is not None else None
        return Completion(
            text=text,
            num_tokens=length,
            logprob=logprob,
            finish_reason=finish_reason,
            token_ids=tuple(ids[:length]),
        )

    def _tokens_through_stop(self, ids: list[int], stop: Sequence[str]) -> int:
        """The fewest leading tokens whose text contains a stop string (as vLLM counts them)."""
        for length in range(1, len(ids) + 1):
            text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
            if any(s in text for s in stop):
                return length
        return len(ids)

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut `text` at the earliest occurrence of any stop string (the stop string itself removed)."""
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return text if cut < 0 else text[:cut]
