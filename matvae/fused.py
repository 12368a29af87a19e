"""The paper VAE's training step written out by hand: forward and backward of K same-shape models at once.

:meth:`matvae.model.VAE.loss` under autograd spends most of a CPU step outside its matrix multiplies (autograd
bookkeeping, an element-wise kernel per node, ``expm1`` inside ELU and again for its derivative, one Adam
update per parameter tensor). Here the step is the same mathematics with the derivatives written out:

- every layer is one (batched) matrix multiply with its bias (``baddbmm``), its weight gradient one ``bmm``;
- ELU's derivative comes from its output (``1`` where ``h > 0``, else ``h + 1``), no second exponential;
- the reconstruction term reuses the sigmoid its derivative needs;
- the reconstruction term's derivative is ``sigmoid(logits) - x``, the classifier's ``softmax - onehot(y)``;
- the K models of a sweep (the beta sweep, seeds) share each call: weights are ``(K, out, in)``.

The loss and its terms are those of :meth:`VAE.loss` (``rec + beta * kl + class_weight * ce``, batch means, one
sample of z with the noise ``eps`` given), and so are the gradients, up to float32 rounding (tested against
autograd). :func:`loss_and_gradients` is pure: weights in, summaries and gradients out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from matvae.model import VAE, ModelConfig

# The Linear layers of one network, in order: (weight name, bias name).
LAYERS: dict[str, tuple[tuple[str, str], ...]] = {
    net: tuple((f"{net}.{i}.weight", f"{net}.{i}.bias") for i in (0, 2, 4)) for net in ("encoder", "decoder", "classifier")
}
PARAMETER_NAMES: tuple[str, ...] = tuple(name for layers in LAYERS.values() for pair in layers for name in pair)
SUMMARY_NAMES: tuple[str, ...] = ("loss", "nelbo", "kl", "rec", "ce", "accuracy")  # matvae.training.METRICS


def supports(config) -> bool:
    """True for a config this kernel trains: the paper family (:class:`matvae.model.ModelConfig`)."""
    return type(config) is ModelConfig


def _linear(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """a: (K, B, in), weight: (K, out, in), bias: (K, out) -> a @ weight^T + bias, (K, B, out)."""
    return torch.baddbmm(bias.unsqueeze(1), a, weight.transpose(1, 2))


def _through_elu(d: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """d loss / da from d loss / dh and the output h = elu(a): d where h > 0, else d * (h + 1) (= d * exp(a)).
    One ATen kernel (ELU's own backward, fed the result instead of the input)."""
    return torch.ops.aten.elu_backward(d, 1.0, 1.0, 1.0, True, h)


def _network_forward(params: dict, net: str, a: torch.Tensor) -> list[torch.Tensor]:
    """Linear -> ELU -> Linear -> ELU -> Linear: [input, h1, h2, output], each (K, B, .)."""
    (w0, b0), (w1, b1), (w2, b2) = LAYERS[net]
    h1 = F.elu(_linear(a, params[w0], params[b0]))
    h2 = F.elu(_linear(h1, params[w1], params[b1]))
    return [a, h1, h2, _linear(h2, params[w2], params[b2])]


def _network_backward(params: dict, net: str, acts: list[torch.Tensor], d_out: torch.Tensor, grads: dict,
                      *, need_input: bool) -> torch.Tensor | None:
    """Write the weight and bias gradients of ``net`` into ``grads`` given d loss / d output; return d input."""
    (w0, b0), (w1, b1), (w2, b2) = LAYERS[net]
    a, h1, h2, _ = acts
    grads[w2], grads[b2] = torch.bmm(d_out.transpose(1, 2), h2), d_out.sum(1)
    d = _through_elu(torch.bmm(d_out, params[w2]), h2)
    grads[w1], grads[b1] = torch.bmm(d.transpose(1, 2), h1), d.sum(1)
    d = _through_elu(torch.bmm(d, params[w1]), h1)
    grads[w0], grads[b0] = torch.bmm(d.transpose(1, 2), a), d.sum(1)
    return torch.bmm(d, params[w0]) if need_input else None


def loss_and_gradients(params: dict[str, torch.Tensor], config: ModelConfig, kl_weights: torch.Tensor,
                       x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of :meth:`VAE.loss` and its gradient for K stacked models on one batch each.

    params: {name: (K, ...)} (the names of ``VAE.named_parameters()``); kl_weights: (K,) beta per model;
    x: (K, B, n_elements) or (B, n_elements) shared by all models; y: (K, B) or (B,) int classes;
    eps: (K, B, latent_dim) the reparameterisation noise. -> summaries (K, 6) in the order of
    :data:`SUMMARY_NAMES`, and {name: gradient of model k's loss, (K, ...)}.
    """
    n_models, latent = kl_weights.shape[0], config.latent_dim
    if x.dim() == 2:
        x, y = x.expand(n_models, *x.shape), y.expand(n_models, *y.shape)
    batch = x.shape[1]
    beta = kl_weights.to(x.dtype).view(n_models, 1, 1)

    # q(z|x) and z = mean + sqrt(v) * eps
    enc = _network_forward(params, "encoder", x)
    mean, raw = enc[-1].split(latent, dim=-1)
    raw = raw.contiguous()  # element-wise kernels on a strided half run ~4x slower on the CPU; same values
    if config.variance == "softplus":
        variance, d_variance_d_raw = F.softplus(raw) + 1e-8, torch.sigmoid(raw)
    else:
        variance = torch.exp(raw)
        d_variance_d_raw = variance
    std = variance.sqrt()
    z = torch.addcmul(mean, std, eps)
    y_onehot = F.one_hot(y, config.n_classes).to(x.dtype)  # (K, B, n_classes)
    dec = _network_forward(params, "decoder", torch.cat([z, y_onehot], dim=-1))
    logits = dec[-1]
    cls = _network_forward(params, "classifier", x)
    class_logits = cls[-1]

    # the terms, as batch means per model
    p = torch.sigmoid(logits)  # also the derivative's
    # -log Bernoulli(x | logits) = softplus(l) - x l, with softplus(l) = max(l, 0) - log(max(p, 1 - p)) (no overflow)
    softplus = logits.clamp_min(0.0).sub_(torch.maximum(p, 1.0 - p).log_())
    rec = (softplus.sub_(x * logits)).sum(-1).mean(-1)  # (K,)
    kl = 0.5 * (mean.square() + variance - variance.log() - 1.0).sum(-1).mean(-1)  # KL(q || N(0, I)), (K,)
    log_q_y = torch.log_softmax(class_logits, dim=-1)
    ce = -log_q_y.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(-1)
    accuracy = (class_logits.argmax(-1) == y).to(x.dtype).mean(-1)
    nelbo = rec + kl
    loss = rec + kl_weights.to(x.dtype) * kl + config.class_weight * ce
    summaries = torch.stack([loss, nelbo, kl, rec, ce, accuracy], dim=1)

    # backward: d loss / d output of each network, then through the networks
    grads: dict[str, torch.Tensor] = {}
    scale = 1.0 / batch
    d_logits = p.sub_(x).mul_(scale)
    d_input = _network_backward(params, "decoder", dec, d_logits, grads, need_input=True)
    d_z = d_input[..., :latent]
    d_mean = torch.addcmul(d_z, mean, beta, value=scale)  # + beta * mean / B
    kl_d_variance = (1.0 - variance.reciprocal()).mul_(beta * (0.5 * scale))  # beta * 0.5 (1 - 1/v) / B
    d_variance = torch.addcmul(kl_d_variance, d_z, eps / (2.0 * std))
    d_encoder_out = torch.cat([d_mean, d_variance.mul_(d_variance_d_raw)], dim=-1)
    _network_backward(params, "encoder", enc, d_encoder_out, grads, need_input=False)
    d_class = log_q_y.exp_().sub_(F.one_hot(y, config.n_classes).to(x.dtype)).mul_(config.class_weight * scale)
    _network_backward(params, "classifier", cls, d_class, grads, need_input=False)
    return summaries, grads


_compiled: dict[str, object] = {}
RECOMPILE_LIMIT = 64  # model shapes :func:`compiled` specialises to in one process before dynamo runs them eagerly


def _adam_update(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                 exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], lr: float | torch.Tensor, beta1: float, beta2: float,
                 eps: float) -> None:
    """Adam's update (``torch.optim.Adam`` without amsgrad or weight decay) on the optimiser's own state tensors:
    the same moments, step counts and formula, to float32 rounding; written out so that ``torch.compile`` can fuse
    it into a few loops (torch's functional ``adam`` does not compile on the CPU with step counts kept there)."""
    with torch.no_grad():
        for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            step += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = exp_avg_sq.sqrt() / (1 - beta2**step).sqrt() + eps
            param.sub_(exp_avg / denom * (lr / (1 - beta1**step)))


def _loss_and_update(params: dict[str, torch.Tensor], config: ModelConfig, kl_weights: torch.Tensor, x: torch.Tensor,
                     y: torch.Tensor, eps: torch.Tensor, exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
                     steps: list[torch.Tensor], lr: torch.Tensor, beta1: float, beta2: float, adam_eps: float) -> torch.Tensor:
    """One whole step: :func:`loss_and_gradients`, then :func:`_adam_update` of ``params`` in place with Adam's state
    lists in :data:`PARAMETER_NAMES` order (each shaped as the optimiser's parameter: ``(K, ...)`` for a stack, without
    the K for one model's ``(1, ...)`` views). -> summaries (K, 6). Compiled as one graph (:func:`compiled`
    ``"step"``), it saves a second compiled call, its guards and the gradients' round trip through Python per step."""
    summaries, grads = loss_and_gradients(params, config, kl_weights, x, y, eps)
    shapes = [exp_avg.shape for exp_avg in exp_avgs]
    _adam_update([params[n].view(shape) for n, shape in zip(PARAMETER_NAMES, shapes)],
                 [grads[n].view(shape) for n, shape in zip(PARAMETER_NAMES, shapes)],
                 exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, adam_eps)
    return summaries


def compiled(name: str):
    """``torch.compile`` of :func:`loss_and_gradients` (``"loss"``) or of one whole step, the loss and Adam's update
    (``"step"``, :func:`_loss_and_update`), one per process, specialised to shapes
    (``dynamic=False``): their element-wise chains become a few fused loops, the matrix products stay library calls,
    the arithmetic is the same to float32 rounding."""
    if name not in _compiled:
        # one specialisation per model shape: the width sweep alone has 10, past dynamo's default of 8 per function,
        # after which it would run every further shape eagerly (with a warning)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        functions = {"loss": loss_and_gradients, "step": _loss_and_update}
        _compiled[name] = torch.compile(functions[name], dynamic=False)
    return _compiled[name]


class Stepper:
    """``stepper(stacked, trained, config, kl_weights, x, y, eps) -> summaries (K, 6)``: one step of ``optimizer``
    with the gradients of :func:`loss_and_gradients` on ``stacked`` (K, ...) weights, set on the tensors the optimiser
    updates: ``trained`` ({name: the stacked tensor itself, or for one model its parameter, of which ``stacked`` holds
    a (1, ...) view}).

    ``compile=True``: the loss, its gradients and Adam's update run as one ``torch.compile``-d step (:func:`compiled`
    ``"step"``) for the batch shape of the first call, the others (an epoch's shorter last batch) eagerly, so each
    model shape compiles once. Adam's update is compiled as a function of the optimiser's state tensors rather than
    as ``optimizer.step``, which would compile again for every optimiser object; it leaves no ``.grad`` behind. The
    first step is eager (it creates Adam's state), and an optimiser with settings the compiled update does not cover
    (several parameter groups, amsgrad, weight decay, maximize, capturable, other tensors than ``trained``) takes
    the compiled loss and its own ``step()``."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, compile: bool = False) -> None:
        self.optimizer, self.compile = optimizer, compile
        self._shape: tuple | None = None
        self._lr: torch.Tensor | None = None  # the step size as a tensor: a decaying step does not recompile the update

    def _adam_state(self, trained: dict[str, torch.Tensor]) -> tuple[list, list, list] | None:
        """Adam's (exp_avgs, exp_avg_sqs, steps) in :data:`PARAMETER_NAMES` order, or None where the compiled update
        does not cover the optimiser (its settings, other tensors than ``trained``, or no state yet)."""
        optimizer = self.optimizer
        groups = optimizer.param_groups
        group = groups[0]
        covered = (isinstance(optimizer, torch.optim.Adam) and len(groups) == 1 and not group["amsgrad"]
                   and not group["weight_decay"] and not group["maximize"] and not group["capturable"]
                   and len(trained) == len(PARAMETER_NAMES) and len(group["params"]) == len(trained)
                   and {id(p) for p in group["params"]} == {id(t) for t in trained.values()}
                   and all("step" in optimizer.state.get(t, {}) for t in trained.values()))
        if not covered:
            return None
        state = [optimizer.state[trained[name]] for name in PARAMETER_NAMES]
        return [s["exp_avg"] for s in state], [s["exp_avg_sq"] for s in state], [s["step"] for s in state]

    @torch.no_grad()
    def __call__(self, stacked: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], config: ModelConfig,
                 kl_weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if self.compile and self._shape is None:
            self._shape = (x.shape, eps.shape)
        fast = self.compile and self._shape == (x.shape, eps.shape)
        state = self._adam_state(trained) if fast else None
        if state is not None:
            group = self.optimizer.param_groups[0]
            if self._lr is None or self._lr.device != x.device:
                self._lr = torch.empty((), device=x.device)
            self._lr.fill_(float(group["lr"]))
            for tensor in trained.values():
                tensor.grad = None  # the eager first step's, stale from here on
            beta1, beta2 = group["betas"]
            return compiled("step")(stacked, config, kl_weights, x, y, eps, *state, self._lr, beta1, beta2, group["eps"])
        summaries, grads = (compiled("loss") if fast else loss_and_gradients)(stacked, config, kl_weights, x, y, eps)
        for name, tensor in trained.items():
            tensor.grad = grads[name].view_as(tensor)
        self.optimizer.step()
        return summaries


def stacked_parameters(models: list[VAE]) -> dict[str, torch.Tensor]:
    """{name: (K, ...)} copies of the K models' weights, in :data:`PARAMETER_NAMES` order."""
    return {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]) for name in PARAMETER_NAMES}
