"""Replay a training step from a CUDA graph: one launch for the hundred-odd small kernels of a fused step.

On a GPU the paper's model is too small to keep the device busy: a step of :class:`matvae.fused.Stepper` is
about 120 kernels of a few microseconds each, and launching them one by one from Python costs more than running
them (measured on an H200: 2.3 ms per step, 0.24 s per epoch, slower per FLOP than this project's 2-core CPU). A
CUDA graph records the step's kernels once and replays them with one launch. The arithmetic is the same kernels on
the same inputs, so a graphed run equals an eager one on the same device (the optimiser must be ``capturable``:
Adam then keeps its step count on the device, which rounds its bias correction the same way).

:class:`StepGraph` wraps a step function ``fn(*tensors) -> tensor``: the first ``warmup`` calls run eagerly (on a
side stream, as CUDA graphs need: libraries allocate their workspaces there, and Adam creates its state), the next
call of the same shapes is captured and replayed, and so is every later call of those shapes (their inputs copied
into the graph's static inputs); a call of other shapes (an epoch's shorter last batch) runs eagerly. Random
numbers are drawn by the caller, outside the graph, from the run's own generator, so the random stream is the
eager run's. A capture that fails warns once and leaves the step eager.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch


def available(device: torch.device) -> bool:
    """Whether steps on ``device`` can be replayed from CUDA graphs (a CUDA device)."""
    return device.type == "cuda"


def _capture(fn: Callable[..., torch.Tensor], static_inputs: list[torch.Tensor], like: torch.Tensor):
    """Record ``fn(*static_inputs)`` into a CUDA graph without running it. -> (graph, static output)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static_inputs)
    return graph, out


class StepGraph:
    """``step(*tensors) -> tensor``: ``fn`` run eagerly for the first ``warmup`` calls, then replayed from a CUDA
    graph for every call whose input shapes match the captured call's (see the module's documentation).

    The returned tensor of a replayed call is the graph's static output: read it before the next call."""

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, *, warmup: int = 3) -> None:
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 1:
            raise ValueError(f"warmup must be an integer >= 1, got {warmup!r}")
        self.fn, self.device, self.warmup = fn, device, warmup
        self.calls = 0  # eager calls so far
        self.replays = 0
        self.graph = None
        self.disabled = False
        self._shapes: tuple | None = None
        self._static_inputs: list[torch.Tensor] = []
        self._static_output: torch.Tensor | None = None
        self._side = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        shapes = tuple((t.shape, t.dtype) for t in inputs)
        if self.graph is not None:
            if shapes == self._shapes:
                return self._replay(inputs)
            return self.fn(*inputs)
        if self.disabled:
            return self.fn(*inputs)
        if self.calls >= self.warmup:
            captured = self._try_capture(inputs, shapes)
            if captured:
                return self._replay(inputs)
            return self.fn(*inputs)
        self.calls += 1
        return self._eager_on_side_stream(inputs)

    def _replay(self, inputs) -> torch.Tensor:
        for static, value in zip(self._static_inputs, inputs):
            static.copy_(value)
        self.graph.replay()
        self.replays += 1
        return self._static_output

    def _eager_on_side_stream(self, inputs) -> torch.Tensor:
        if self._side is None:
            out = self.fn(*inputs)
        else:
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                out = self.fn(*inputs)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
        self._like = out  # the output's shape and dtype, for a capture that must allocate it (a test's stand-in graph)
        return out

    def _try_capture(self, inputs, shapes) -> bool:
        static = [t.clone() for t in inputs]
        try:
            graph, output = _capture(self.fn, static, self._like)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the step eager, which is always correct
            self.disabled = True
            warnings.warn(f"CUDA graph capture of the training step failed ({type(exc).__name__}: {exc}); "
                          "training goes on without graphs (same results, slower)", RuntimeWarning, stacklevel=3)
            return False
        self.graph, self._static_output, self._static_inputs, self._shapes = graph, output, static, shapes
        return True
