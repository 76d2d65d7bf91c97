"""Several processes (one per host, or several on one machine) sampling one model together.

Chains are independent, so hdsl splits them over processes rather than building one global program:
each process runs ``chains / process_count`` chains on its own devices from its own keys, then the
draws are gathered (``multihost_utils.process_allgather``) so that every process returns the whole
posterior. Every process loads the same data and runs the same script.
"""

from __future__ import annotations

import os

__all__ = ["initialize_distributed", "initialize_distributed_from_env"]

ENV_VARS = ("HDSL_COORDINATOR", "HDSL_NUM_PROCESSES", "HDSL_PROCESS_ID")
"""Set all three (address:port, count, this process's index) and ``import hdsl`` joins the processes:
the way to run ``hdsl fit`` from the command line on several hosts."""


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, **kwargs) -> None:
    """``jax.distributed.initialize`` with CPU collectives (gloo) switched on, which gathering the draws
    needs on CPU hosts (GPU hosts gather over NCCL either way). Call it first, before any JAX work;
    on a managed cluster (SLURM, Cloud TPU) the arguments can be left out."""
    import jax  # here, not at import: `import hdsl` imports this module and no JAX

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def initialize_distributed_from_env() -> bool:
    """Join the processes named by :data:`ENV_VARS` if ``HDSL_COORDINATOR`` is set; True if it did."""
    address = os.environ.get(ENV_VARS[0])
    if not address:
        return False
    from ..errors import HdslError

    values = []
    for name in ENV_VARS[1:]:
        raw = os.environ.get(name)
        try:
            values.append(int(raw))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            got = "it is not set" if raw is None else f"got {raw!r}"
            raise HdslError(f"{ENV_VARS[0]} is set, so {name} must be an integer: {got}",
                            hint=f"set all of {', '.join(ENV_VARS)}, or unset {ENV_VARS[0]}") from None
    count, index = values
    if not 0 <= index < count:
        raise HdslError(f"{ENV_VARS[2]}={index} must be between 0 and {ENV_VARS[1]} - 1 = {count - 1}")
    import jax

    if not jax.distributed.is_initialized():
        initialize_distributed(address, count, index)
    return True
