"""matvae.graphs: the CUDA-graph replay of the training step. Without a GPU here, the graph is replaced by a
recording stand-in that replays the step on the CPU, so the plumbing (warm-up, static inputs, shape changes,
fallback, capturable optimiser state) is checked against eager training bit for bit."""

import io
from dataclasses import replace

import pytest
import torch

from matvae import graphs, training
from matvae.files import read_checked, write_checked
from matvae.model import ModelConfig
from matvae.stacked import train_stacked
from matvae.training import TrainConfig, train

SMALL = ModelConfig(hidden_dim=16, latent_dim=3, kl_weight=0.1)
FAST = TrainConfig(epochs=3, batch_size=32, device="cpu")


class _StandIn:
    """A graph that replays ``fn`` on the static inputs into the static output, counting replays."""

    replays = 0

    def __init__(self, fn, static_inputs, out):
        self.fn, self.static_inputs, self.out = fn, static_inputs, out

    def replay(self):
        _StandIn.replays += 1
        self.out.copy_(self.fn(*self.static_inputs))


def _stand_in_capture(fn, static_inputs, like):
    out = torch.empty_like(like)
    return _StandIn(fn, static_inputs, out), out


@pytest.fixture
def cpu_graphs(monkeypatch):
    monkeypatch.setattr(graphs, "available", lambda device: True)
    monkeypatch.setattr(graphs, "_capture", _stand_in_capture)
    _StandIn.replays = 0


def _same(a, b):
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name
    assert a.history["test_nelbo"] == b.history["test_nelbo"] and a.history["train_loss"] == b.history["train_loss"]


def test_a_graphed_run_equals_an_eager_one(small_split, cpu_graphs):
    n_rows = len(training.training_rows(small_split.train, FAST))
    assert n_rows // FAST.batch_size >= 5 and n_rows % FAST.batch_size  # warm-up 3, capture, replays, a shorter last batch
    graphed = train(small_split.train, small_split.test, SMALL, FAST)
    assert _StandIn.replays > 0
    eager = train(small_split.train, small_split.test, SMALL, replace(FAST, cuda_graph=False))
    _same(graphed, eager)


def test_a_graphed_stack_equals_an_eager_one(small_split, cpu_graphs):
    configs = [replace(SMALL, hidden_dim=w) for w in (8, 16)]
    graphed = train_stacked(small_split.train, small_split.test, configs, FAST)
    assert _StandIn.replays > 0
    for a, b in zip(graphed, train_stacked(small_split.train, small_split.test, configs, replace(FAST, cuda_graph=False))):
        _same(a, b)


def test_a_failed_capture_warns_and_trains_eagerly(small_split, monkeypatch):
    def broken(fn, static_inputs, like):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "available", lambda device: True)
    monkeypatch.setattr(graphs, "_capture", broken)
    with pytest.warns(RuntimeWarning, match="capture of the training step failed"):
        graphed = train(small_split.train, small_split.test, SMALL, FAST)
    _same(graphed, train(small_split.train, small_split.test, SMALL, replace(FAST, cuda_graph=False)))


def test_step_graph_replays_only_calls_of_the_captured_shapes(cpu_graphs):
    calls = []

    def fn(a, b):
        calls.append(a.shape)
        return (a * 2 + b).sum(0)

    step = graphs.StepGraph(fn, torch.device("cpu"), warmup=2)
    a, b = torch.ones(4, 3), torch.zeros(4, 3)
    outputs = [step(a * i, b).clone() for i in range(1, 6)]  # 2 eager, then captured (not run) and replayed
    assert step.replays == 3 and [o.tolist() for o in outputs] == [[8.0 * i] * 3 for i in range(1, 6)]
    assert step(torch.ones(2, 3), torch.ones(2, 3)).tolist() == [6.0] * 3 and step.replays == 3  # other shape: eager
    assert step(torch.ones(4, 3, dtype=torch.float64), b.double()).dtype == torch.float64 and step.replays == 3


@pytest.mark.parametrize("warmup", [0, 1.5, True])
def test_step_graph_refuses_a_bad_warmup(warmup):
    with pytest.raises(ValueError, match=f"warmup must be an integer >= 1, got {warmup!r}"):
        graphs.StepGraph(lambda: None, torch.device("cpu"), warmup=warmup)


def test_graphs_only_on_cuda_with_the_fused_kernel():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert training.uses_cuda_graph(SMALL, FAST, cuda) and not training.uses_cuda_graph(SMALL, FAST, cpu)
    assert not training.uses_cuda_graph(SMALL, replace(FAST, cuda_graph=False), cuda)
    assert not training.uses_cuda_graph(SMALL, replace(FAST, kernel="autograd"), cuda)
    with pytest.raises(ValueError, match="cuda_graph must be True or False, got 1"):
        TrainConfig(cuda_graph=1)


def test_a_checkpoint_of_a_graphed_cuda_run_resumes_on_the_cpu(small_split, tmp_path):
    """A CUDA run with graphs saves Adam capturable (its step counts as tensors on the GPU); the CPU run resumes it."""
    path = tmp_path / "run.pt"
    whole = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=4))
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=2), checkpoint_path=path)
    payload = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)
    payload["optimizer"]["param_groups"][0]["capturable"] = True  # as written by a graphed run on cuda
    for state in payload["optimizer"]["state"].values():
        state["step"] = state["step"].reshape(())
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_checked(path, buffer.getvalue(), kind="checkpoint")
    resumed = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=4), checkpoint_path=path)
    assert resumed.status == "resumed"
    _same(whole, resumed)


@pytest.mark.parametrize(("device", "graphed", "flags"), [("cpu", False, (False, True, False)), ("cpu", True, (False, True, False)),
                                                       ("meta", False, (False, False, True))])
def test_configure_adam_picks_the_implementation_and_moves_the_step_counts(device, graphed, flags):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), capturable=False, foreach=True)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    training.configure_adam(optimizer, torch.device(device), graphed=graphed)
    group = optimizer.param_groups[0]
    assert (group["capturable"], group["fused"], group["foreach"]) == flags
    assert all(s["step"].device.type == "cpu" and s["step"].dtype == torch.float32 for s in optimizer.state.values())
    if device == "cpu":
        optimizer.step()  # the fused kernel takes the moved state
        assert all(s["step"].item() == 2 for s in optimizer.state.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: the graph bakes a float step into its kernels")
def test_a_graphed_cuda_run_takes_a_decaying_step(small_split):
    """The step replayed from a real CUDA graph reads the step size from a device tensor (training.configure_adam),
    so a decaying step trains as the eager step does; a float would stay at the first epoch's value."""
    config = replace(FAST, device="cuda", epochs=3, learning_rate=1e-2, learning_rate_decay=0.5)
    graphed = train(small_split.train, small_split.test, SMALL, config)
    eager = train(small_split.train, small_split.test, SMALL, replace(config, cuda_graph=False))
    for name, value in eager.model.state_dict().items():
        torch.testing.assert_close(graphed.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
