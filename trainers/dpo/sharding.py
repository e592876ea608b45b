"""Fully sharded data parallel (FSDP2) for the DPO loop: read the request, shard the model, gather it back.

`accelerate launch` with an FSDP config tells every process what it wants through FSDP_* environment
variables (ACCELERATE_USE_FSDP=true, FSDP_VERSION=2, ...); `torchrun` with the same variables does too.
accelerate itself only shards on GPUs (its FSDP switch skips MULTI_CPU), so prefkit applies torch's own
`fully_shard` on whichever device the process group runs (gloo on CPU, NCCL on GPU) and uses accelerate
for the rest (process group, device, reductions, autocast). One code path: what CI runs on CPU is what a
GPU run executes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from prefkit.errors import ConfigError

TRUE = ("true", "1", "yes")


@dataclass(frozen=True)
class ShardingOptions:
    """The FSDP settings prefkit honours (everything else in the FSDP config is refused or has no effect)."""

    reshard_after_forward: bool = True  # free gathered layer weights after forward (FULL_SHARD)
    offload_params: bool = False  # keep shards and optimizer state in CPU memory (GPU runs only)
    activation_checkpointing: bool = False  # same as --gradient-checkpointing


def _flag(environ: Mapping[str, str], name: str, default: str = "false") -> bool:
    return environ.get(name, default).strip().lower() in TRUE


def requested_sharding(environ: Mapping[str, str] = os.environ) -> ShardingOptions | None:
    """The FSDP options set by `accelerate launch` (or by hand), None when FSDP was not asked for.

    Raises ConfigError (one line, naming the FSDP config key) for settings prefkit cannot honour.
    """
    if _flag(environ, "ACCELERATE_USE_DEEPSPEED"):
        raise ConfigError(
            "the dpo trainer does not run under DeepSpeed; it shards with FSDP2",
            field="distributed_type",
            hint="use examples/accelerate/fsdp_gpu.yaml, or --trainer trl with the DeepSpeed config",
        )
    if not _flag(environ, "ACCELERATE_USE_FSDP"):
        return None
    if "LOCAL_RANK" not in environ:
        raise ConfigError(
            "FSDP was asked for (ACCELERATE_USE_FSDP) but this is not a distributed launch",
            field="fsdp",
            hint="start it with `accelerate launch --config_file ...` or `torchrun --nproc_per_node N`",
        )
    version = environ.get("FSDP_VERSION", "1").strip()
    if version != "2":
        raise ConfigError(
            f"FSDP version {version} is not supported; prefkit shards with FSDP2 (torch fully_shard)",
            field="fsdp_version",
            hint="set `fsdp_version: 2` in the accelerate config (or FSDP_VERSION=2)",
        )
    wrap = environ.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP").strip().upper()
    if wrap not in ("TRANSFORMER_BASED_WRAP", ""):
        raise ConfigError(
            f"FSDP auto-wrap policy {wrap} is not supported; prefkit shards one unit per decoder layer",
            field="fsdp_auto_wrap_policy",
            hint="set `fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP`",
        )
    if _flag(environ, "FSDP_CPU_RAM_EFFICIENT_LOADING"):
        raise ConfigError(
            "fsdp_cpu_ram_efficient_loading is not supported: every process loads the full model, "
            "then keeps only its shard",
            field="fsdp_cpu_ram_efficient_loading",
            hint="set `fsdp_cpu_ram_efficient_loading: false`",
        )
    reshard = environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().upper()
    options = ShardingOptions(
        reshard_after_forward=reshard not in ("FALSE", "0", "SHARD_GRAD_OP", "NO_SHARD"),
        offload_params=_flag(environ, "FSDP_OFFLOAD_PARAMS"),
        activation_checkpointing=_flag(environ, "FSDP_ACTIVATION_CHECKPOINTING"),
    )
    if options.offload_params and not torch.cuda.is_available():
        raise ConfigError(
            "fsdp_offload_params moves shards from GPU to CPU memory, but this machine has no GPU",
            field="fsdp_offload_params",
            hint="set `fsdp_offload_params: false` for CPU runs",
        )
    return options


@contextlib.contextmanager
def accelerate_without_fsdp() -> Iterator[None]:
    """Hide ACCELERATE_USE_FSDP while the Accelerator is built: prefkit shards the model itself, and an
    accelerate FSDP state would expect to shard it in `prepare` (and skip models it did not prepare)."""
    saved = os.environ.pop("ACCELERATE_USE_FSDP", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["ACCELERATE_USE_FSDP"] = saved


def decoder_layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """The transformer block classes to shard one by one (transformers lists them in _no_split_modules)."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    classes = {type(module) for module in model.modules() if type(module).__name__ in names}
    if not classes:
        raise ConfigError(
            f"cannot shard {type(model).__name__}: it names no decoder layer class (_no_split_modules)",
            field="fsdp",
        )
    return classes


def shard_model(model: nn.Module, options: ShardingOptions, device: torch.device) -> nn.Module:
    """Shard each decoder layer, then the rest (embeddings, final norm, LM head) as the root unit, across
    all processes. Parameters become DTensors; build the optimizer afterwards."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    if not torch.distributed.is_initialized():
        raise ConfigError(
            "FSDP needs several processes: launch with `accelerate launch` or `torchrun`",
            field="fsdp",
        )
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    offload = CPUOffloadPolicy() if options.offload_params else OffloadPolicy()
    layer_classes = tuple(decoder_layer_classes(model))
    for module in list(model.modules()):
        if isinstance(module, layer_classes):
            fully_shard(
                module, mesh=mesh, reshard_after_forward=options.reshard_after_forward, offload_policy=offload
            )
    # the root keeps its gathered weights until backward: the LM head runs again in backward (chunks
    # recomputed), so resharding it after forward would only gather it twice
    fully_shard(model, mesh=mesh, reshard_after_forward=False, offload_policy=offload)
    return model


def is_sharded(model: nn.Module) -> bool:
    """True when `shard_model` was applied to `model`."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def gathered_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU in the main process, {} elsewhere (a collective: call on all)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def unsharded_copy(build: Callable[[], nn.Module], state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh unsharded model from `build()` holding `state_dict` (the main process saves this one)."""
    model = build()
    model.load_state_dict(state_dict, strict=True)
    return model
