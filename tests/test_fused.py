"""The hand-written training step (matvae.fused) against autograd on the model's own loss."""

from dataclasses import replace

import pytest
import torch

from matvae import fused
from matvae.model import VAE, ModelConfig
from matvae.training import METRICS, TrainConfig, load_checkpoint, train, uses_fused_kernel

SMALL = ModelConfig(hidden_dim=16, latent_dim=3)
FAST = TrainConfig(epochs=3, batch_size=64, device="cpu")


def autograd_reference(model: VAE, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
    """The oracle: model.loss with the noise eps, differentiated by autograd. -> (summaries (6,), {name: grad})."""
    model.zero_grad()
    model.reparameterize = lambda mean, variance, generator=None: mean + variance.sqrt() * eps
    loss, summaries = model.loss(x, y)
    loss.backward()
    return torch.stack([summaries[k].detach() for k in METRICS]), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("variance", ["softplus", "exp"])
@pytest.mark.parametrize("shared", [True, False], ids=["one batch for all", "a batch per model"])
def test_loss_and_gradients_are_autograds_for_every_stacked_model(variance, shared):
    torch.manual_seed(0)
    kl_weights = (1.0, 0.03, 0.3)
    configs = [replace(SMALL, variance=variance, class_weight=0.7, kl_weight=b) for b in kl_weights]
    models = [VAE(c, torch.rand(SMALL.n_classes)) for c in configs]
    n_models, batch = len(models), 48
    x = torch.softmax(3 * torch.randn(n_models, batch, SMALL.n_elements), dim=-1)
    y = torch.randint(0, SMALL.n_classes, (n_models, batch))
    eps = torch.randn(n_models, batch, SMALL.latent_dim)
    x_in, y_in = (x[0], y[0]) if shared else (x, y)
    summaries, grads = fused.loss_and_gradients(fused.stacked_parameters(models), configs[0], torch.tensor(kl_weights),
                                                x_in, y_in, eps)
    assert summaries.shape == (n_models, len(METRICS)) and set(grads) == set(fused.PARAMETER_NAMES)
    for k, model in enumerate(models):
        own, own_grads = autograd_reference(model, x[0] if shared else x[k], y[0] if shared else y[k], eps[k])
        torch.testing.assert_close(summaries[k], own, rtol=1e-5, atol=1e-6)
        for name, grad in own_grads.items():
            torch.testing.assert_close(grads[name][k], grad, rtol=1e-4, atol=1e-6 * grad.abs().max().item())


def test_extreme_logits_give_a_finite_loss_equal_to_torchs_binary_cross_entropy():
    torch.manual_seed(1)
    model = VAE(SMALL)
    with torch.no_grad():
        model.decoder[4].bias.copy_(torch.linspace(-200, 200, SMALL.n_elements))  # sigmoid saturates at both ends
    x = torch.softmax(torch.randn(16, SMALL.n_elements), dim=-1)
    y = torch.randint(0, SMALL.n_classes, (16,))
    eps = torch.randn(16, SMALL.latent_dim)
    summaries, _ = fused.loss_and_gradients(fused.stacked_parameters([model]), SMALL, torch.tensor([1.0]), x, y, eps[None])
    own, _ = autograd_reference(model, x, y, eps)
    assert torch.isfinite(summaries).all()
    torch.testing.assert_close(summaries[0], own, rtol=1e-5, atol=1e-4)


def test_training_with_either_kernel_gives_the_same_model_to_rounding(small_split):
    runs = {kernel: train(small_split.train, small_split.test, SMALL, replace(FAST, kernel=kernel)) for kernel in ("fused", "autograd")}
    for name, value in runs["autograd"].model.state_dict().items():
        torch.testing.assert_close(runs["fused"].model.state_dict()[name], value, rtol=1e-3, atol=1e-5)
    for key in ("train_nelbo", "test_nelbo", "test_accuracy"):
        assert runs["fused"].history[key] == pytest.approx(runs["autograd"].history[key], rel=1e-4), key


def test_the_compiled_fused_step_trains_the_same_model_to_rounding(small_split, monkeypatch):
    """torch.compile of the fused step and of Adam's update (TrainConfig.compile): the same arithmetic, fused loops;
    each epoch's evaluation runs the compiled model.loss."""
    real_compile, graded = torch.compile, []

    def counting_compile(fn, *args, **kwargs):
        compiled = real_compile(fn, *args, **kwargs)
        if getattr(fn, "__name__", "") != "loss":  # the fused kernel's step, compiled by matvae.fused
            return compiled

        def counted(*a, **k):
            graded.append(torch.is_grad_enabled())
            return compiled(*a, **k)
        return counted

    eager = train(small_split.train, small_split.test, SMALL, FAST)
    monkeypatch.setattr(torch, "compile", counting_compile)
    compiled = train(small_split.train, small_split.test, SMALL, replace(FAST, compile=True))
    assert graded == [False] * FAST.epochs  # the compiled model.loss: each epoch's evaluation, without autograd
    for name, value in eager.model.state_dict().items():
        torch.testing.assert_close(compiled.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    assert compiled.history["test_nelbo"] == pytest.approx(eager.history["test_nelbo"], rel=1e-5)


def test_a_decaying_step_neither_recompiles_the_compiled_update_nor_changes_its_arithmetic(small_split):
    from torch._dynamo.utils import counters

    config = replace(FAST, compile=True, epochs=4, learning_rate=1e-2, learning_rate_decay=0.5)
    train(small_split.train, small_split.test, SMALL, replace(config, learning_rate_decay=1.0))  # compiles for these shapes
    graphs = counters["stats"]["unique_graphs"]
    compiled = train(small_split.train, small_split.test, SMALL, config)
    assert counters["stats"]["unique_graphs"] == graphs  # a float step would compile the update again for every epoch's
    eager = train(small_split.train, small_split.test, SMALL, replace(config, compile=False))
    for name, value in eager.model.state_dict().items():
        torch.testing.assert_close(compiled.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)


def test_the_kernel_is_chosen_by_family_and_may_change_on_resume(small_split, tmp_path):
    assert uses_fused_kernel(SMALL, TrainConfig()) and not uses_fused_kernel(SMALL, TrainConfig(kernel="autograd"))
    assert uses_fused_kernel(SMALL, TrainConfig(compile=True))  # compile compiles the fused step
    assert not uses_fused_kernel(SMALL, TrainConfig(kernel="autograd", compile=True))  # ... or the model's loss
    from matvae.models.sequence import SequenceConfig

    assert not uses_fused_kernel(SequenceConfig(), TrainConfig())
    with pytest.raises(ValueError, match="SequenceConfig"):
        uses_fused_kernel(SequenceConfig(), TrainConfig(kernel="fused"))
    path = tmp_path / "vae.pt"
    train(small_split.train, small_split.test, SMALL, replace(FAST, epochs=2, kernel="autograd"), checkpoint_path=path)
    resumed = train(small_split.train, small_split.test, SMALL, replace(FAST, kernel="fused"), checkpoint_path=path)
    assert resumed.status == "resumed" and load_checkpoint(path).epoch == FAST.epochs


@pytest.mark.parametrize("kernel", ["Fused", "", 1, None])
def test_an_unknown_kernel_is_named(kernel):
    with pytest.raises(ValueError, match="kernel"):
        TrainConfig(kernel=kernel)


def test_a_stack_trains_to_the_same_models_with_either_kernel(small_split):
    from matvae.stacked import train_stacked

    configs = [replace(SMALL, kl_weight=b) for b in (1.0, 0.1)]
    runs = {kernel: train_stacked(small_split.train, small_split.test, configs, replace(FAST, kernel=kernel))
            for kernel in ("fused", "autograd")}
    for ours, theirs in zip(runs["fused"], runs["autograd"]):
        for name, value in theirs.model.state_dict().items():
            torch.testing.assert_close(ours.model.state_dict()[name], value, rtol=1e-3, atol=1e-5)
        assert ours.history["test_nelbo"] == pytest.approx(theirs.history["test_nelbo"], rel=1e-4)


def test_the_kernel_runs_on_the_meta_device_so_it_needs_no_cpu_only_operation():
    """A stand-in for a GPU: every operation must exist off the CPU and none may read a value back to the host."""
    models = [VAE(SMALL), VAE(SMALL)]
    params = {k: v.to("meta") for k, v in fused.stacked_parameters(models).items()}
    x, eps = torch.empty(2, 32, SMALL.n_elements, device="meta"), torch.empty(2, 32, SMALL.latent_dim, device="meta")
    y = torch.empty(2, 32, dtype=torch.long, device="meta")
    summaries, grads = fused.loss_and_gradients(params, SMALL, torch.tensor([1.0, 0.1], device="meta"), x, y, eps)
    assert summaries.shape == (2, len(METRICS)) and summaries.device.type == "meta"
    assert {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in params.items()}


def test_the_written_out_adam_update_is_torchs_adam_to_rounding():
    from matvae.fused import _adam_update

    torch.manual_seed(0)
    ours = torch.nn.Linear(5, 4)
    theirs = torch.nn.Linear(5, 4)
    theirs.load_state_dict(ours.state_dict())
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.01, fused=True) for m in (ours, theirs)]
    for step in range(30):
        grads = [torch.randn_like(p) for p in ours.parameters()]
        for model, optimizer in zip((ours, theirs), optimizers):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
        if step == 0:
            optimizers[0].step()  # creates Adam's state, as the compiled path's first (eager) step does
        else:
            params = list(ours.parameters())
            state = [optimizers[0].state[p] for p in params]
            _adam_update(params, [p.grad for p in params], [s["exp_avg"] for s in state], [s["exp_avg_sq"] for s in state],
                         [s["step"] for s in state], 0.01, 0.9, 0.999, 1e-8)
        optimizers[1].step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(s["step"].item() == 30 for s in optimizers[0].state.values())


def test_compiling_raises_dynamos_recompile_limit_to_a_sweeps_shapes():
    import torch._dynamo

    from matvae.fused import RECOMPILE_LIMIT, compiled

    compiled("loss")  # builds the wrapper only; nothing compiles until it is called
    assert torch._dynamo.config.recompile_limit >= RECOMPILE_LIMIT >= 10  # the width sweep's ten model shapes


@pytest.mark.parametrize("n_models", [1, 3], ids=["one model's views", "a stack"])
@pytest.mark.parametrize("amsgrad", [False, True], ids=["one compiled step", "amsgrad: the optimiser's own step"])
def test_the_compiled_stepper_steps_as_the_eager_one(n_models, amsgrad):
    """Stepper(compile=True): one compiled graph for the loss and Adam's update where it covers the optimiser, the
    compiled loss and optimizer.step() where not (amsgrad); the same weights and moments as the eager Stepper."""
    torch.manual_seed(0)
    kl_weights = torch.tensor([1.0, 0.1, 0.03][:n_models])
    models = [VAE(replace(SMALL, kl_weight=float(b)), torch.rand(SMALL.n_classes)) for b in kl_weights]
    x = torch.softmax(3 * torch.randn(5, 32, SMALL.n_elements), dim=-1)
    y = torch.randint(0, SMALL.n_classes, (5, 32))
    eps = torch.randn(5, n_models, 32, SMALL.latent_dim)
    runs = {}
    for compile_ in (False, True):
        if n_models == 1:
            model = VAE(SMALL, torch.rand(SMALL.n_classes))
            model.load_state_dict(models[0].state_dict())
            trained = dict(model.named_parameters())
            stacked = {n: p.detach().unsqueeze(0) for n, p in trained.items()}
        else:
            stacked = {n: p.requires_grad_() for n, p in fused.stacked_parameters(models).items()}
            trained = stacked
        optimizer = torch.optim.Adam(list(trained.values()), lr=0.01, amsgrad=amsgrad)
        stepper = fused.Stepper(optimizer, compile=compile_)
        summaries = [stepper(stacked, trained, SMALL, kl_weights, x[i], y[i], eps[i]) for i in range(5)]
        runs[compile_] = (summaries, {n: t.detach().clone() for n, t in trained.items()},
                          [optimizer.state[t]["exp_avg_sq"].clone() for t in trained.values()],
                          [t.grad is None for t in trained.values()])
    for ours, theirs in zip(runs[True][0], runs[False][0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    for name, value in runs[False][1].items():  # Adam's first steps move a weight by ~lr whatever the gradient's size,
        # so float32 rounding of a near-zero gradient moves a rare element by up to a few % of lr = 1e-2 (the compiled
        # loss alone did the same); a mismatched parameter, moment or step would move most of them by ~lr
        torch.testing.assert_close(runs[True][1][name], value, rtol=1e-4, atol=5e-4)
        assert (runs[True][1][name] - value).abs().mean() < 1e-6, name
    for ours, theirs in zip(runs[True][2], runs[False][2]):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-9)
    assert all(runs[True][3]) != amsgrad  # the one compiled step leaves no gradient behind; optimizer.step() needs one
    assert not any(runs[False][3])
