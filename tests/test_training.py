import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from matvae.files import read_checked
from matvae.model import ModelConfig
from matvae.training import (
    CheckpointBusyError,
    TrainConfig,
    exclusive_checkpoint,
    class_frequencies,
    evaluate,
    load_checkpoint,
    load_model,
    resolve_device,
    restore_generator,
    save_checkpoint,
    train,
    training_rows,
)

SMALL = ModelConfig(hidden_dim=16, latent_dim=4)
FAST = TrainConfig(epochs=3, batch_size=64, device="cpu", checkpoint_every=1)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_history_and_model(small_split):
    result = train(small_split.train, small_split.test, SMALL, FAST)
    assert result.status == "trained" and result.epochs == 3
    for key in ("train_nelbo", "test_nelbo", "train_kl", "test_rec", "train_ce", "test_accuracy", "epoch", "seconds"):
        assert len(result.history[key]) == 3, key
    assert result.history["train_nelbo"][-1] < result.history["train_nelbo"][0]
    assert np.allclose(
        np.array(result.history["test_nelbo"]), np.array(result.history["test_kl"]) + np.array(result.history["test_rec"])
    )
    assert not result.model.training
    prior = class_frequencies(small_split.train.y, 10)
    assert torch.allclose(result.model.class_prior.double(), torch.as_tensor(prior), atol=1e-6)


def test_evaluate_builds_no_autograd_graph_and_keeps_its_numbers(small_split):
    model = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=1)).model
    x, y = torch.as_tensor(small_split.test.x), torch.as_tensor(small_split.test.y)
    seen = []
    loss = model.loss

    def watched(*args, **kwargs):
        out = loss(*args, **kwargs)
        seen.append((torch.is_grad_enabled(), out[0].requires_grad))
        return out

    model.loss = watched
    metrics = evaluate(model, x, y, seed=3)
    assert seen and all(state == (False, False) for state in seen)
    assert torch.is_grad_enabled()  # the caller's mode is left as it was
    del model.loss
    with torch.enable_grad():  # the numbers of the same pass under autograd
        generator = torch.Generator().manual_seed(3)
        _, summaries = model.loss(x, y, generator)
    assert metrics["nelbo"] == pytest.approx(summaries["nelbo"].item(), rel=1e-6)


def test_evaluate_runs_the_loss_it_is_given(small_split):
    model = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=1)).model
    x, y = torch.as_tensor(small_split.test.x), torch.as_tensor(small_split.test.y)
    calls = []

    def stand_in(*args):
        calls.append(len(args[0]))
        return model.loss(*args)

    assert evaluate(model, x, y, seed=3, loss=stand_in) == evaluate(model, x, y, seed=3)
    assert calls == [len(x)]


def test_same_seed_same_numbers_other_seed_other_numbers(small_split):
    a = train(small_split.train, small_split.test, SMALL, FAST)
    b = train(small_split.train, small_split.test, SMALL, FAST)
    c = train(small_split.train, small_split.test, SMALL, replace(FAST, seed=1))
    assert a.history["test_nelbo"] == b.history["test_nelbo"]
    assert same_weights(weights(a.model), weights(b.model))
    assert a.history["test_nelbo"] != c.history["test_nelbo"]


def test_checkpoint_round_trip_carries_config_and_history(small_split, tmp_path):
    path = tmp_path / "model.pt"
    result = train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.model_config == SMALL and checkpoint.train_config == FAST
    assert checkpoint.epoch == 3 and checkpoint.history == result.history
    model = load_model(path)
    assert same_weights(weights(model), weights(result.model))
    x = torch.as_tensor(small_split.test.x[:5])
    assert torch.equal(model.encode(x)[0], result.model.encode(x)[0])
    payload = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), weights_only=True)  # plain tensors only
    assert payload["model_config"]["hidden_dim"] == 16 and payload["version"] == 2


def test_finished_checkpoint_is_loaded_not_retrained(small_split, tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    first = train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    monkeypatch.setattr("matvae.training.evaluate", lambda *a, **k: pytest.fail("trained again"))
    again = train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    assert again.status == "loaded" and again.history == first.history
    assert same_weights(weights(again.model), weights(first.model))


def test_resume_equals_an_uninterrupted_run(small_split, tmp_path):
    whole = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=4))
    path = tmp_path / "model.pt"
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=2), checkpoint_path=path)
    resumed = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=4), checkpoint_path=path)
    assert resumed.status == "resumed"
    assert resumed.history["test_nelbo"] == whole.history["test_nelbo"]
    assert same_weights(weights(resumed.model), weights(whole.model))


def test_the_step_decays_per_epoch_to_its_floor():
    config = TrainConfig(learning_rate=1e-2, learning_rate_decay=0.5, min_learning_rate=2e-3)
    assert [config.learning_rate_at(e) for e in range(5)] == [1e-2, 5e-3, 2.5e-3, 2e-3, 2e-3]
    assert [TrainConfig(learning_rate=3e-3).learning_rate_at(e) for e in (0, 1, 1000)] == [3e-3] * 3  # the default: constant


def test_training_takes_the_decaying_step_of_each_epoch_and_resumes_on_it(small_split, tmp_path, monkeypatch):
    import matvae.training as training

    config = replace(FAST, epochs=4, learning_rate=1e-2, learning_rate_decay=0.5, min_learning_rate=1.5e-3)
    taken, set_learning_rate = [], training.set_learning_rate

    def spy(optimizer, value):
        set_learning_rate(optimizer, value)
        taken.append(optimizer.param_groups[0]["lr"])

    monkeypatch.setattr(training, "set_learning_rate", spy)
    whole = train(small_split.train, small_split.test, SMALL, config)
    assert taken == [1e-2, 5e-3, 2.5e-3, 1.5e-3]
    constant = train(small_split.train, small_split.test, SMALL, replace(config, learning_rate_decay=1.0, min_learning_rate=0.0))
    assert whole.history["test_loss"] != constant.history["test_loss"]  # the schedule reaches the optimiser
    path = tmp_path / "model.pt"
    train(small_split.train, small_split.test, SMALL, replace(config, epochs=2), checkpoint_path=path)
    resumed = train(small_split.train, small_split.test, SMALL, config, checkpoint_path=path)
    assert resumed.status == "resumed" and taken[-2:] == [2.5e-3, 1.5e-3]  # epochs 3 and 4 take their own steps
    assert resumed.history["test_loss"] == whole.history["test_loss"]
    assert same_weights(weights(resumed.model), weights(whole.model))
    with pytest.raises(ValueError, match="other settings .*learning_rate_decay"):
        train(small_split.train, small_split.test, SMALL, replace(config, epochs=5, learning_rate_decay=0.9), checkpoint_path=path)


def test_a_tensor_step_is_set_in_place():
    import matvae.training as training

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=torch.tensor(1e-2), fused=True)
    step = optimizer.param_groups[0]["lr"]
    training.set_learning_rate(optimizer, 2.5e-3)
    assert optimizer.param_groups[0]["lr"] is step and step.item() == pytest.approx(2.5e-3)
    training.configure_adam(optimizer, torch.device("cpu"), graphed=False)  # off a graph the step is a float
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-3) and isinstance(optimizer.param_groups[0]["lr"], float)


KILLED_RUN = textwrap.dedent(
    """
    import sys
    import torch
    torch.set_num_threads(int(sys.argv[3]))  # the parent's thread count: the same reductions, the same weights
    from matvae.data import SplitData
    from matvae.model import ModelConfig
    from matvae.training import TrainConfig, train
    split = SplitData.load(sys.argv[1])
    train(split.train, split.test, ModelConfig(hidden_dim=16, latent_dim=4),
          TrainConfig(epochs=400, batch_size=64, device="cpu", checkpoint_every=1), checkpoint_path=sys.argv[2])
    """
)


def test_sigkill_mid_run_then_resume_reaches_the_uninterrupted_result(small_split, tmp_path):
    data_path, checkpoint = tmp_path / "data.npz", tmp_path / "killed.pt"
    small_split.save(data_path)
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data_path), str(checkpoint), str(torch.get_num_threads())], env=os.environ.copy())
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if checkpoint.exists() and load_checkpoint(checkpoint).epoch >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the training subprocess wrote no checkpoint")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    stopped_at = load_checkpoint(checkpoint).epoch  # a readable checkpoint survived the kill
    assert 3 <= stopped_at < 400
    target = TrainConfig(epochs=stopped_at + 2, batch_size=64, device="cpu", checkpoint_every=1)
    resumed = train(small_split.train, small_split.test, SMALL, target, checkpoint_path=checkpoint)
    whole = train(small_split.train, small_split.test, SMALL, target)
    assert resumed.status == "resumed"
    assert resumed.history["test_nelbo"] == whole.history["test_nelbo"]
    assert same_weights(weights(resumed.model), weights(whole.model))
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name], "temporary files left by the kill"


def test_checkpoint_of_another_config_is_an_error_and_left_alone(small_split, tmp_path):
    path = tmp_path / "model.pt"
    train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="holds a model with"):
        train(small_split.train, small_split.test, replace(SMALL, hidden_dim=32), FAST, checkpoint_path=path)
    with pytest.raises(ValueError, match="other settings"):
        train(small_split.train, small_split.test, SMALL, replace(FAST, learning_rate=0.01), checkpoint_path=path)
    with pytest.raises(ValueError, match="other data"):
        train(small_split.test, small_split.train, SMALL, FAST, checkpoint_path=path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_checkpoints_are_named(small_split, tmp_path, content):
    path = tmp_path / "model.pt"
    if content is None:  # a real checkpoint cut short
        train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
        content = path.read_bytes()[:500]
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.pt (is not a readable matvae checkpoint|is damaged)"):
        load_model(path)
    with pytest.raises(ValueError, match="model.pt (is not a readable matvae checkpoint|is damaged)"):
        train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    with pytest.raises(ValueError, match="not found"):
        load_model(tmp_path / "absent.pt")


def test_a_foreign_torch_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a matvae checkpoint"):
        load_model(path)


def test_oversampling_repeats_rare_materials(small_split):
    data = small_split.train
    rows = training_rows(data, TrainConfig(oversample_factor=5, oversample_min_elements=3))
    rare = np.flatnonzero(data.n_elements >= 3)
    assert len(rows) == len(data) + 4 * len(rare)
    assert np.bincount(rows, minlength=len(data))[rare].tolist() == [5] * len(rare)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"epochs": -5}, "epochs must be >= 1, got -5"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"oversample_factor": 0}, "oversample_factor"),
        ({"device": ""}, "device must not be empty"),
        ({"device": "tpu"}, "device must be"),
        ({"device": "cuda:x"}, "device must be"),
        ({"compile": "yes"}, "compile must be True or False"),
        ({"learning_rate_decay": 0.0}, r"learning_rate_decay must lie in \(0.0, 1.0\], got 0.0"),
        ({"learning_rate_decay": 1.5}, r"learning_rate_decay must lie in \(0.0, 1.0\], got 1.5"),
        ({"learning_rate_decay": "0.9"}, "learning_rate_decay must be a number, got str"),
        ({"min_learning_rate": -1e-3}, "min_learning_rate must lie in"),
        ({"learning_rate": 1e-3, "min_learning_rate": 2e-3}, r"min_learning_rate \(0.002\) must not exceed learning_rate \(0.001\)"),
    ],
)
def test_bad_train_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            resolve_device("cuda")


def test_data_of_another_vocabulary_or_classes(small_split):
    with pytest.raises(ValueError, match="n_classes"):
        train(small_split.train, small_split.test, replace(SMALL, n_classes=2), FAST)


def test_every_damaged_byte_of_a_checkpoint_is_refused_by_name(small_split, tmp_path):
    """Single-bit flips at 400 random positions spread over every region of the file (header, zip headers,
    tensor data, central directory): each is refused, none loads with other weights."""
    path = tmp_path / "model.pt"
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=1), checkpoint_path=path)
    whole = path.read_bytes()
    rng = np.random.default_rng(0)
    positions = np.unique(np.concatenate([np.arange(120), rng.integers(0, len(whole), 280), np.arange(len(whole) - 60, len(whole))]))
    damaged_path = tmp_path / "damaged.pt"
    for position in positions:
        damaged = bytearray(whole)
        damaged[position] ^= 1 << int(rng.integers(8))
        damaged_path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="damaged.pt"):
            load_checkpoint(damaged_path)
    assert len(positions) >= 400


def test_a_version_1_checkpoint_is_still_read(small_split, tmp_path):
    path = tmp_path / "model.pt"
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=1), checkpoint_path=path)
    payload = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), weights_only=True)
    payload["version"] = 1
    legacy = tmp_path / "legacy.pt"
    torch.save(payload, legacy)  # a bare torch.save file, as matvae 0.1 wrote them
    assert same_weights(load_checkpoint(legacy).model_state, load_checkpoint(path).model_state)


def test_text_files_folders_and_wrong_types_are_refused_as_checkpoints(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="notes.pt"):
        load_checkpoint(text)
    with pytest.raises(ValueError, match="folder"):
        load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    for bad in (None, 3, 2.5, ["a.pt"]):
        with pytest.raises(ValueError, match="checkpoint path"):
            load_checkpoint(bad)


def test_two_runs_into_one_checkpoint_do_not_interleave(small_split, tmp_path):
    path = tmp_path / "model.pt"
    with exclusive_checkpoint(path):  # as another process training into the same file holds it
        with pytest.raises(CheckpointBusyError, match="model.pt.*another run"):
            train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    assert not path.exists()
    assert train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path).status == "trained"


def test_a_second_process_training_into_the_same_checkpoint_is_refused(small_split, tmp_path):
    path = tmp_path / "model.pt"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from matvae.training import exclusive_checkpoint
            with exclusive_checkpoint(Path({str(path)!r})):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointBusyError):
            train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path)
    finally:
        holder.kill()
        holder.wait()
    assert train(small_split.train, small_split.test, SMALL, FAST, checkpoint_path=path).status == "trained"


def _as_if_written_on_cuda(path):
    """Rewrite a CPU checkpoint as a CUDA run would have written it: device "cuda:0" and a CUDA generator state
    (a seed and an offset: 16 bytes), which a CPU generator cannot take."""
    checkpoint = load_checkpoint(path)
    checkpoint.device = "cuda:0"
    checkpoint.generator_state = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    save_checkpoint(checkpoint, path)


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(small_split, tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=2), checkpoint_path=first)
    _as_if_written_on_cuda(first)
    second.write_bytes(first.read_bytes())
    with pytest.raises(RuntimeError):  # what a plain set_state would do with it
        torch.Generator().set_state(load_checkpoint(first).generator_state)
    resumed = {}
    for path in (first, second):
        with pytest.warns(RuntimeWarning, match=r"written on cuda:0 resumed on cpu: the random stream cannot move"):
            resumed[path] = train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=4), checkpoint_path=path)
    assert resumed[first].status == "resumed" and resumed[first].history["epoch"] == [1, 2, 3, 4]
    assert load_checkpoint(first).device == "cpu" and load_checkpoint(first).epoch == 4  # now a CPU checkpoint
    assert same_weights(weights(resumed[first].model), weights(resumed[second].model))  # deterministic
    assert all(np.isfinite(resumed[first].history["test_nelbo"]))


class _RecordingGenerator:
    """Stands in for a CUDA generator where no GPU is: records what it is asked."""

    def __init__(self):
        self.calls = []

    def set_state(self, state):
        self.calls.append(("set_state", state))

    def manual_seed(self, seed):
        self.calls.append(("manual_seed", seed))


def test_a_cpu_checkpoint_resumed_on_cuda_reseeds_and_a_same_device_one_restores():
    cpu_state = torch.Generator().manual_seed(3).get_state()
    to_cuda = _RecordingGenerator()
    with pytest.warns(RuntimeWarning, match="written on cpu resumed on cuda"):
        exact = restore_generator(to_cuda, cpu_state, saved_device="cpu", device=torch.device("cuda"), seed=0, epoch=5)
    assert not exact and to_cuda.calls == [("manual_seed", 1_000_003 + 5)]
    same = _RecordingGenerator()
    assert restore_generator(same, cpu_state, saved_device="cuda:1", device=torch.device("cuda:0"), seed=0, epoch=5)
    assert same.calls == [("set_state", cpu_state)]  # another GPU of the same kind: the state moves as it is


def test_the_plateau_rule_stops_training_and_a_stopped_run_is_read_back_as_finished(small_split, tmp_path):
    from matvae.training import plateaued

    flat = {"test_loss": [5.0, 4.0, 3.0, 3.0, 2.99, 3.0]}
    assert plateaued(flat, TrainConfig(plateau_window=2, plateau_tolerance=0.01))  # 2.99 vs 3.0: under 1 %
    assert not plateaued(flat, TrainConfig(plateau_window=2, plateau_tolerance=0.001))
    assert not plateaued(flat, TrainConfig(plateau_window=4))  # needs 2 windows of history
    assert not plateaued(flat, TrainConfig())  # off by default
    config = replace(FAST, epochs=200, plateau_window=3, plateau_tolerance=0.5)  # a loose rule: stops early
    path = tmp_path / "model.pt"
    result = train(small_split.train, small_split.test, SMALL, config, checkpoint_path=path)
    assert 6 <= result.epochs < 200 and len(result.history["epoch"]) == result.epochs
    assert plateaued(result.history, config) and not plateaued({"test_loss": result.history["test_loss"][:-1]}, config)
    assert load_checkpoint(path).epoch == result.epochs  # the stopping epoch was checkpointed
    again = train(small_split.train, small_split.test, SMALL, config, checkpoint_path=path)
    assert again.status == "loaded" and again.epochs == result.epochs
    longer = train(small_split.train, small_split.test, SMALL, replace(config, plateau_window=0, epochs=result.epochs + 2),
                   checkpoint_path=path)  # the rule switched off: the run continues from where it stopped
    assert longer.status == "resumed" and longer.epochs == result.epochs + 2
    with pytest.raises(ValueError, match="plateau_window"):
        TrainConfig(plateau_window=-1)
    with pytest.raises(ValueError, match="plateau_tolerance"):
        TrainConfig(plateau_tolerance=2.0)


def test_a_finished_checkpoint_without_a_history_is_loaded_with_its_epochs(small_split, tmp_path):
    from matvae.model import VAE
    from matvae.training import Checkpoint, data_fingerprint

    config = replace(FAST, epochs=4)
    path = tmp_path / "bare.pt"
    save_checkpoint(Checkpoint(SMALL, config, VAE(SMALL).state_dict(), 4,
                               data_fingerprint=data_fingerprint(small_split.train, small_split.test)), path)
    result = train(small_split.train, small_split.test, SMALL, config, checkpoint_path=path)
    assert result.status == "loaded" and result.epochs == 4


def test_plateau_epochs_lists_where_the_rule_would_have_stopped_a_run():
    from matvae.training import plateau_epochs, plateaued

    losses = [10.0, 8.0, 7.0, 6.9, 6.95, 6.9, 6.5, 6.49, 6.6, 6.6]
    history = {"test_loss": losses}
    expected = [e for e in range(1, 11) if plateaued({"test_loss": losses[:e]}, TrainConfig(epochs=1, plateau_window=2))]
    assert plateau_epochs(history, 2) == expected == [6, 9, 10]  # 6.9 is no gain on 6.9; 6.49 on 6.5 is under 0.5 %
    assert plateau_epochs(history, 2, tolerance=0.0) == [6, 10]  # without a tolerance 6.49 < 6.5 is a gain
    assert plateau_epochs(history, 5) == []  # needs 10 epochs and a gain of less than 0.5 % over the last 5
    assert plateau_epochs({"test_loss": []}, 3) == []
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        plateau_epochs(history, 0)
    with pytest.raises(ValueError, match="plateau_tolerance must lie in"):
        plateau_epochs(history, 2, tolerance=1.5)
