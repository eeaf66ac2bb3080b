"""Running a submodule the way `nn.Module.__call__` would, with less bookkeeping.

`nn.Module.__call__` goes through two Python frames and a hook check before it reaches `forward`
(about 0.7 µs a call on a CPU). A pipeline of one op made three such calls (the Pipeline, its op
node, the op) where a hand-written module makes one, so on a small batch fif's own dispatch was a
visible part of the time (benchmarks/results.md, `defenses`: bitdepth and probe).

`call(module, *args)` calls `module.forward(*args)` directly exactly when `__call__` would do just
that: no forward or backward hooks on the module nor global ones, no `Module.compile()`, no
`torch.jit` trace in progress; otherwise it calls `module(*args)`, hooks and all. Only the nodes of a
built pipeline call their children this way; what users call is still `pipeline(x)`.
"""

from __future__ import annotations

import torch
from torch.nn.modules import module as _module

_tracing = torch._C._get_tracing_state
# torch registers global hooks into these dicts in place (torch.nn.modules.module.register_module_*)
_GLOBAL_FORWARD = _module._global_forward_hooks
_GLOBAL_FORWARD_PRE = _module._global_forward_pre_hooks
_GLOBAL_BACKWARD = _module._global_backward_hooks
_GLOBAL_BACKWARD_PRE = _module._global_backward_pre_hooks


def call(module, *args, **kwargs):
    """`module(*args, **kwargs)`, skipping `nn.Module.__call__` when it would only call `forward`."""
    if (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks
            or module._compiled_call_impl is not None or _GLOBAL_FORWARD or _GLOBAL_FORWARD_PRE
            or _GLOBAL_BACKWARD or _GLOBAL_BACKWARD_PRE or _tracing()):
        return module(*args, **kwargs)
    return module.forward(*args, **kwargs)
