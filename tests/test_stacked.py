import io
from dataclasses import replace

import pytest
import torch
from torch.func import stack_module_state

from matvae.files import read_checked
from matvae.model import VAE, ModelConfig
from matvae.stacked import _GivenNoiseVAE, _Loss, stacked_loss, stacked_sweep, train_stacked
from matvae.training import METRICS, TrainConfig, evaluate, train
from matvae.tuning import sweep

SMALL = ModelConfig(hidden_dim=16, latent_dim=3)
FAST = TrainConfig(epochs=3, batch_size=64, device="cpu")
BETAS = (1.0, 0.1, 0.01)


def betas(*values: float) -> list[ModelConfig]:
    return [replace(SMALL, kl_weight=b) for b in values]


def test_results_have_the_shape_and_history_of_train(small_split):
    results = train_stacked(small_split.train, small_split.test, betas(*BETAS), FAST)
    serial = train(small_split.train, small_split.test, SMALL, FAST)
    assert len(results) == len(BETAS)
    for result, beta in zip(results, BETAS):
        assert isinstance(result.model, VAE) and result.model.config.kl_weight == beta
        assert result.history.keys() == serial.history.keys()
        assert all(len(values) == FAST.epochs for values in result.history.values())
        assert result.status == "trained" and result.epochs == FAST.epochs
        assert {k: v.shape for k, v in result.model.state_dict().items()} == {k: v.shape for k, v in serial.model.state_dict().items()}


def test_each_stacked_loss_is_the_models_own_loss():
    torch.manual_seed(0)
    models = [VAE(config, torch.rand(SMALL.n_classes)) for config in betas(*BETAS)]
    x = torch.softmax(torch.randn(32, SMALL.n_elements), dim=-1)
    y = torch.randint(0, SMALL.n_classes, (32,))
    params, buffers = stack_module_state(models)
    template = _Loss(_GivenNoiseVAE(SMALL).to("meta"))
    eps = torch.randn((32, SMALL.latent_dim), generator=torch.Generator().manual_seed(7)).expand(len(models), -1, -1)
    kl_weights = torch.tensor(BETAS)
    prefixed = [{f"model.{k}": v for k, v in d.items()} for d in (params, buffers)]
    loss, summaries = stacked_loss(template, *prefixed, kl_weights, x, y, eps)
    for k, model in enumerate(models):  # the oracle: each model's own loss, drawing the same noise
        own_loss, own = model.loss(x, y, torch.Generator().manual_seed(7))
        assert loss[k].item() == pytest.approx(own_loss.item(), rel=1e-5)
        for name in METRICS:
            assert summaries[name][k].item() == pytest.approx(own[name].item(), rel=1e-5, abs=1e-6), name


def test_stacked_models_equal_serially_trained_ones_to_rounding(small_split):
    configs = betas(1.0, 0.1)
    train_configs = [FAST, replace(FAST, seed=5)]
    for result, config, train_config in zip(train_stacked(small_split.train, small_split.test, configs, train_configs), configs, train_configs):
        serial = train(small_split.train, small_split.test, config, train_config)
        for name, value in serial.model.state_dict().items():
            torch.testing.assert_close(result.model.state_dict()[name], value, rtol=1e-4, atol=1e-6)
        assert result.history["test_nelbo"] == pytest.approx(serial.history["test_nelbo"], rel=1e-5)


def test_training_lowers_every_models_test_nelbo(small_split):
    train_configs = [replace(FAST, epochs=8, seed=s) for s in (0, 1)]
    results = train_stacked(small_split.train, small_split.test, betas(1.0, 0.1), train_configs)
    x = torch.as_tensor(small_split.test.x, dtype=torch.float32)
    y = torch.as_tensor(small_split.test.y)
    for result, config, train_config in zip(results, betas(1.0, 0.1), train_configs):
        torch.manual_seed(train_config.seed)
        untrained = evaluate(VAE(config), x, y, seed=train_config.seed + 2)["nelbo"]
        assert result.history["test_nelbo"][-1] < untrained - 1


@pytest.mark.parametrize(
    ("model_configs", "train_configs", "match"),
    [
        ([SMALL, replace(SMALL, latent_dim=4)], FAST, r"model_configs\[1\]\.latent_dim=4 != model_configs\[0\]\.latent_dim=3"),
        ([SMALL, replace(SMALL, class_weight=2.0)], FAST, r"model_configs\[1\]\.class_weight"),
        ([SMALL, SMALL], [FAST, replace(FAST, batch_size=32)], r"train_configs\[1\]\.batch_size=32"),
        ([SMALL, SMALL], [FAST, replace(FAST, learning_rate_decay=0.9)], r"train_configs\[1\]\.learning_rate_decay=0.9"),
        ([SMALL, SMALL], [FAST], r"len\(train_configs\)=1 != len\(model_configs\)=2"),
        ([], FAST, "model_configs is empty"),
        ([SMALL, "paper"], FAST, r"model_configs\[1\] must be a ModelConfig"),
    ],
)
def test_configs_that_cannot_stack_are_refused(small_split, model_configs, train_configs, match):
    with pytest.raises(ValueError, match=match):
        train_stacked(small_split.train, small_split.test, model_configs, train_configs)


def test_resume_ends_where_an_uninterrupted_run_ends(small_split, tmp_path):
    configs, path = betas(1.0, 0.03), tmp_path / "stack.pt"
    whole = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=4))
    first = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=2), checkpoint_path=path)
    assert [r.status for r in first] == ["trained", "trained"]
    resumed = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=4), checkpoint_path=path)
    assert [r.status for r in resumed] == ["resumed", "resumed"]
    for a, b in zip(whole, resumed):
        for name, value in a.model.state_dict().items():
            assert torch.equal(value, b.model.state_dict()[name]), name
        assert a.history["test_nelbo"] == b.history["test_nelbo"]
    loaded = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=4), checkpoint_path=path)
    assert [r.status for r in loaded] == ["loaded", "loaded"]
    with pytest.raises(ValueError, match="other models, settings or data"):
        train_stacked(small_split.train, small_split.test, betas(1.0, 0.1), replace(FAST, epochs=4), checkpoint_path=path)


def test_stacked_sweep_has_the_columns_of_sweep(small_split, tmp_path):
    kwargs = {"reference_counts": small_split.dataset.counts, "n_samples": 200}
    one_epoch = replace(FAST, epochs=1)
    serial = sweep(small_split.train, small_split.test, "kl_weight", "1,0.1", SMALL, one_epoch, checkpoint_dir=tmp_path / "serial", **kwargs)
    stacked = stacked_sweep(small_split.train, small_split.test, "kl_weight", "1,0.1", SMALL, one_epoch, checkpoint_dir=tmp_path, **kwargs)
    assert stacked.columns.tolist() == serial.columns.tolist()
    assert stacked["kl_weight"].tolist() == [1.0, 0.1]
    assert stacked["test_nelbo"].tolist() == pytest.approx(serial["test_nelbo"].tolist(), rel=1e-5)
    seeds = stacked_sweep(small_split.train, small_split.test, "seed", [0, 3], SMALL, one_epoch, **kwargs)
    assert seeds.columns.tolist()[0] == "seed" and seeds.columns.tolist()[1:] == serial.columns.tolist()[1:]
    assert seeds["test_nelbo"].nunique() == 2
    widths = stacked_sweep(small_split.train, small_split.test, "hidden_dim", "8,16", SMALL, one_epoch, **kwargs)
    serial_widths = sweep(small_split.train, small_split.test, "hidden_dim", "8,16", SMALL, one_epoch,
                          checkpoint_dir=tmp_path / "serial-widths", **kwargs)
    assert widths["hidden_dim"].tolist() == [8, 16]
    assert widths["test_nelbo"].tolist() == pytest.approx(serial_widths["test_nelbo"].tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="setting must be one of"):
        stacked_sweep(small_split.train, small_split.test, "latent_dim", [8], SMALL, one_epoch, **kwargs)
    with pytest.raises(ValueError, match=r"values\[1\] must be >= 1, got 0"):
        stacked_sweep(small_split.train, small_split.test, "hidden_dim", [8, 0], SMALL, one_epoch, **kwargs)


def test_a_stack_takes_the_decaying_step_as_train_does(small_split):
    config = replace(FAST, learning_rate=1e-2, learning_rate_decay=0.5)
    stacked = train_stacked(small_split.train, small_split.test, betas(1.0, 0.1), config)
    for result, model_config in zip(stacked, betas(1.0, 0.1)):
        serial = train(small_split.train, small_split.test, model_config, config)
        assert result.history["test_nelbo"] == pytest.approx(serial.history["test_nelbo"], rel=1e-5)
    constant = train_stacked(small_split.train, small_split.test, betas(1.0, 0.1), replace(config, learning_rate_decay=1.0))
    assert constant[0].history["test_nelbo"] != pytest.approx(stacked[0].history["test_nelbo"], rel=1e-5)


def test_a_stack_written_before_the_step_schedule_existed_still_resumes(small_split, tmp_path):
    from matvae.files import write_checked

    path, configs = tmp_path / "stack.pt", betas(1.0, 0.1)
    train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=2), checkpoint_path=path)
    saved = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)
    for settings in saved["identity"]["training"]:
        del settings["learning_rate_decay"], settings["min_learning_rate"]  # as an older matvae wrote them
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    write_checked(path, buffer.getvalue(), kind="checkpoint")
    resumed = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=3), checkpoint_path=path)
    assert [r.status for r in resumed] == ["resumed", "resumed"]
    with pytest.raises(ValueError, match="other models, settings or data"):  # but not into a decaying run
        train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=4, learning_rate_decay=0.9),
                      checkpoint_path=path)
    saved["identity"]["training"][0]["a_setting_from_the_future"] = 1
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    write_checked(path, buffer.getvalue(), kind="checkpoint")
    with pytest.raises(ValueError, match="other models, settings or data"):
        train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=3), checkpoint_path=path)


def test_a_stack_written_on_cuda_resumes_on_the_cpu(small_split, tmp_path):
    from matvae.files import write_checked

    path = tmp_path / "stack.pt"
    configs = [replace(SMALL, kl_weight=b) for b in BETAS]
    train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=2), checkpoint_path=path)
    saved = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)
    saved["device"], saved["generators"] = "cuda:0", [torch.zeros(16, dtype=torch.uint8)]  # as a CUDA run writes
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    write_checked(path, buffer.getvalue(), kind="checkpoint")
    with pytest.warns(RuntimeWarning, match="written on cuda:0 resumed on cpu"):
        results = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=4), checkpoint_path=path)
    assert [r.status for r in results] == ["resumed"] * 3 and all(r.history["epoch"] == [1, 2, 3, 4] for r in results)


def test_models_of_different_widths_stack_zero_padded_and_train_as_their_own_width(small_split):
    configs = [replace(SMALL, hidden_dim=w, kl_weight=b) for w, b in ((5, 1.0), (16, 0.1), (9, 0.03))]
    train_configs = [FAST, replace(FAST, seed=3), FAST]
    stacked = train_stacked(small_split.train, small_split.test, configs, train_configs)
    for result, config, train_config in zip(stacked, configs, train_configs):
        assert result.model.config == config
        serial = train(small_split.train, small_split.test, config, train_config)  # the oracle: trained alone
        for name, value in serial.model.state_dict().items():
            torch.testing.assert_close(result.model.state_dict()[name], value, rtol=1e-4, atol=1e-6)
        assert result.history["test_nelbo"] == pytest.approx(serial.history["test_nelbo"], rel=1e-5)


def test_the_padding_of_a_narrow_model_stays_exactly_zero(small_split, tmp_path):
    path = tmp_path / "stack.pt"
    configs = [replace(SMALL, hidden_dim=4), replace(SMALL, hidden_dim=12)]
    for kernel in ("fused", "autograd"):
        path.unlink(missing_ok=True)
        train_stacked(small_split.train, small_split.test, configs, replace(FAST, kernel=kernel), checkpoint_path=path)
        saved = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)
        narrow = saved["params"]["encoder.2.weight"][0]  # (12, 12): model 0 owns the leading (4, 4) block
        assert narrow[:4, :4].abs().sum() > 0
        assert torch.count_nonzero(narrow[4:]) == 0 and torch.count_nonzero(narrow[:, 4:]) == 0, kernel
        assert torch.count_nonzero(saved["params"]["decoder.0.bias"][0][4:]) == 0, kernel
        assert torch.count_nonzero(saved["params"]["classifier.4.weight"][0][:, 4:]) == 0, kernel


def test_a_stack_refuses_the_plateau_rule(small_split):
    with pytest.raises(ValueError, match="plateau_window=5"):
        train_stacked(small_split.train, small_split.test, betas(1.0, 0.1), replace(FAST, plateau_window=5))


def test_a_stack_evaluates_in_chunks_as_in_one(small_split, monkeypatch):
    from matvae import fused, stacked

    configs = betas(1.0, 0.01)
    whole = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=2))
    n_test, rows = len(small_split.test), len(small_split.test) // 3
    monkeypatch.setattr(stacked, "evaluation_rows", lambda n_models, hidden_dim, device: rows)
    compiled_lengths = []

    def fake_compile(function, **options):  # records what the compiled loss is given, runs it eagerly
        def run(*args):
            if function is stacked_loss:
                compiled_lengths.append(len(args[4]))
            return function(*args)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(fused, "_compiled", {})
    for compile in (False, True):
        chunked = train_stacked(small_split.train, small_split.test, configs, replace(FAST, epochs=2, compile=compile))
        for a, b in zip(whole, chunked):
            assert b.history["test_nelbo"] == pytest.approx(a.history["test_nelbo"], rel=1e-5)
            assert b.history["test_accuracy"] == pytest.approx(a.history["test_accuracy"], abs=1e-6)
    # three chunks of `rows` and a shorter last one per evaluation; the compiled loss only ever sees one length
    assert n_test % rows and compiled_lengths == [rows] * 3 * 2


def test_evaluation_chunks_hold_about_a_million_activations_on_the_cpu():
    from matvae.stacked import EVAL_ACTIVATIONS, evaluation_rows
    from matvae.training import EVAL_BATCH

    assert evaluation_rows(6, 100) == evaluation_rows(6, 100, torch.device("cpu")) == EVAL_ACTIVATIONS // 600 == 1747
    assert evaluation_rows(1, 100) == 10485
    assert evaluation_rows(64, 500) == 256  # never fewer than 256 materials
    assert evaluation_rows(6, 100, "cuda:0") == evaluation_rows(6, 100, torch.device("meta")) == EVAL_BATCH  # one launch
