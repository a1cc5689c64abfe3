"""SyncDiffusion as a view_hook: no-op at weight 0, a descent step on LPIPS to the anchor, thresholds, determinism."""
import pytest
import torch

import gvcf
from gvcf.engine.generate import DEFAULT_GUIDANCE, StepContext
from gvcf.engine.models import Model
from gvcf.engine.samplers import make_sampler
from gvcf.engine.sync import DEFAULT_WEIGHT, SyncConfig, decode_x0, generate_sync, make_sync_hook
from gvcf.engine.views import ViewLayout

PROMPT = "a beach with palm trees"
KW = dict(height=16, width=48, stride=8, steps=4, progress=False, output_type="latent")
STEPS = 4


@pytest.fixture(scope="module")
def ctx(tiny_pipe):
    model = Model.from_pipeline(tiny_pipe)
    layout = ViewLayout.create(8, 24, 8, 4)   # latent canvas 8 x 24, 5 views of 8 x 8
    return StepContext(model, model.encode_prompt(PROMPT), make_sampler("ddim", model.scheduler_config, STEPS),
                       DEFAULT_GUIDANCE, layout, None)


def view_distances(views, i, ctx, net, anchor):
    with torch.no_grad():
        images = [decode_x0(views[j:j + 1], i, ctx.sampler.timesteps[i], ctx) for j in range(views.shape[0])]
        return torch.stack([net(im * 2 - 1, images[anchor] * 2 - 1).sum() for im in images])   # lpips' own forward


def test_weight_zero_is_plain_multidiffusion(tiny_pipe, lpips_net):
    md = gvcf.generate(tiny_pipe, PROMPT, fusion="md", sampler="ddim", seed=3, **KW)
    sync = generate_sync(tiny_pipe, PROMPT, SyncConfig(weight=0.0), lpips=lpips_net, seed=3, **KW)
    assert torch.equal(sync.latents, md.latents)
    assert sync.config["sync"]["weight"] == 0.0 and sync.config["fusion"] == "md" and sync.config["sampler"] == "ddim"


def test_sync_changes_the_result_and_is_deterministic(tiny_pipe, lpips_net):
    md = gvcf.generate(tiny_pipe, PROMPT, fusion="md", sampler="ddim", seed=3, **KW)
    a = generate_sync(tiny_pipe, PROMPT, SyncConfig(weight=10.0, threshold=2), lpips=lpips_net, seed=3, **KW)
    b = generate_sync(tiny_pipe, PROMPT, SyncConfig(weight=10.0, threshold=2), lpips=lpips_net, seed=3, **KW)
    assert torch.equal(a.latents, b.latents)
    assert (a.latents - md.latents).abs().max() > 1e-4


def test_hook_step_lowers_lpips_to_the_anchor(ctx, lpips_net):
    views = ctx.layout.gather(torch.randn(1, 4, 8, 24, generator=torch.Generator().manual_seed(0)))
    config = SyncConfig(weight=1.0)   # small enough for a descent step on these random networks
    anchor = config.anchor_index(views.shape[0])
    assert anchor == 2   # SyncDiffusion's anchor: the middle view
    before = view_distances(views, 0, ctx, lpips_net, anchor)
    out = make_sync_hook(config, lpips_net)(views, 0, ctx.sampler.timesteps[0], ctx)
    after = view_distances(out, 0, ctx, lpips_net, anchor)
    others = [j for j in range(views.shape[0]) if j != anchor]
    assert torch.equal(out[anchor], views[anchor])
    assert (after[others] < before[others]).all(), (before, after)
    assert not out.requires_grad


def test_no_update_outside_sync_steps(ctx, lpips_net):
    views = ctx.layout.gather(torch.randn(1, 4, 8, 24, generator=torch.Generator().manual_seed(1)))
    hook = make_sync_hook(SyncConfig(weight=5.0, threshold=2, every=1), lpips_net)
    for i in (2, 3):   # i >= threshold
        assert torch.equal(hook(views, i, ctx.sampler.timesteps[i], ctx), views)
    every = make_sync_hook(SyncConfig(weight=5.0, threshold=4, every=2), lpips_net)
    assert torch.equal(every(views, 0, ctx.sampler.timesteps[0], ctx), views)       # (0 + 1) % 2 != 0
    assert not torch.equal(every(views, 1, ctx.sampler.timesteps[1], ctx), views)


def test_weight_decays_per_step():
    c = SyncConfig(weight=DEFAULT_WEIGHT, decay=0.5, threshold=3, every=1)
    assert [c.step_weight(i) for i in range(3)] == [DEFAULT_WEIGHT, DEFAULT_WEIGHT / 2, DEFAULT_WEIGHT / 4]
    assert [c.is_sync_step(i) for i in range(4)] == [True, True, True, False]


@pytest.mark.parametrize("kw,name", [
    (dict(weight=-1.0), "weight"), (dict(weight=float("nan")), "weight"), (dict(decay=0.0), "decay"),
    (dict(decay=1.5), "decay"), (dict(threshold=-1), "threshold"), (dict(threshold=2.5), "threshold"),
    (dict(every=0), "every"), (dict(anchor=-1), "anchor"), (dict(lpips_net="squeeze"), "lpips_net"),
    (dict(grad_batch=0), "grad_batch"), (dict(grad_batch=2.5), "grad_batch"), (dict(grad_batch=True), "grad_batch"),
])
def test_bad_config_raises_value_error_naming_the_field(kw, name):
    with pytest.raises(ValueError, match=name):
        SyncConfig(**kw)


def test_bad_input_is_caught_before_any_model_work():
    with pytest.raises(ValueError, match="sync"):
        generate_sync(object(), PROMPT, sync=dict(weight=1.0))
    with pytest.raises(ValueError, match="view_hook"):
        generate_sync(object(), PROMPT, view_hook=lambda *a: a[0])


def test_anchor_out_of_range(ctx, lpips_net):
    views = ctx.layout.gather(torch.zeros(1, 4, 8, 24))
    with pytest.raises(ValueError, match="anchor"):
        make_sync_hook(SyncConfig(anchor=5), lpips_net)(views, 0, ctx.sampler.timesteps[0], ctx)


def test_views_differentiated_together_give_each_view_its_own_gradient(tiny_pipe, lpips_net):
    """The hook with every grad_batch equals the one-view-at-a-time hook: in float64 to 1e-12 (each view's loss is
    its own, so batching changes only the order of float operations), in float32 to 1e-2 of the update's scale
    (measured 4e-3 on the bundled model: the gradient through LPIPS' normalisation amplifies float32 rounding)."""
    import copy

    pipe = copy.deepcopy(tiny_pipe)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.double()
    net = copy.deepcopy(lpips_net).double()
    model = Model.from_pipeline(pipe)
    layout = ViewLayout.create(8, 24, 8, 4)
    ctx = StepContext(model, model.encode_prompt(PROMPT), make_sampler("ddim", model.scheduler_config, STEPS),
                      DEFAULT_GUIDANCE, layout, None)
    views = layout.gather(torch.randn(1, 4, 8, 24, generator=torch.Generator().manual_seed(4), dtype=torch.float64))
    t = ctx.sampler.timesteps[0]
    one = make_sync_hook(SyncConfig(weight=1.0, grad_batch=1), net)(views, 0, t, ctx)
    moved = (one - views).abs().max()
    assert moved > 0
    for size in (2, 3, None):   # None: the default, every view of this small canvas at once
        out = make_sync_hook(SyncConfig(weight=1.0, grad_batch=size), net)(views, 0, t, ctx)
        assert (out - one).abs().max() <= 1e-12 * moved, size
    assert SyncConfig().views_per_gradient((8, 8)) == 64 and SyncConfig().views_per_gradient((64, 64)) == 1
    assert SyncConfig(grad_batch=3).views_per_gradient((64, 64)) == 3


def test_hook_is_a_descent_step_on_lpips_forward(tiny_pipe, lpips_net):
    """The hook (the anchor's features computed once) equals the step written with lpips.LPIPS's own forward,
    x_j - w * grad_j LPIPS(D(x0-hat_j), D(x0-hat_anchor)) one view at a time, in float64 to 1e-12 of the update."""
    import copy

    pipe = copy.deepcopy(tiny_pipe)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.double()
    net = copy.deepcopy(lpips_net).double()
    model = Model.from_pipeline(pipe)
    layout = ViewLayout.create(8, 24, 8, 4)
    ctx = StepContext(model, model.encode_prompt(PROMPT), make_sampler("ddim", model.scheduler_config, STEPS),
                      DEFAULT_GUIDANCE, layout, None)
    views = layout.gather(torch.randn(1, 4, 8, 24, generator=torch.Generator().manual_seed(6), dtype=torch.float64))
    t, w = ctx.sampler.timesteps[1], 2.0
    config = SyncConfig(weight=w, decay=1.0)
    anchor = config.anchor_index(views.shape[0])
    with torch.no_grad():
        target = decode_x0(views[anchor:anchor + 1], 1, t, ctx, anchor)
    expected = views.clone()
    for j in range(views.shape[0]):
        if j != anchor:
            x = views[j:j + 1].clone().requires_grad_(True)
            loss = net(decode_x0(x, 1, t, ctx, j) * 2 - 1, target * 2 - 1).sum()
            expected[j] = views[j] - w * torch.autograd.grad(loss, x)[0][0]
    out = make_sync_hook(config, net)(views, 1, t, ctx)
    moved = (expected - views).abs().max()
    assert moved > 0
    assert (out - expected).abs().max() <= 1e-12 * moved


def test_runs_cover_every_view_but_the_anchor_once():
    from gvcf.engine.sync import _runs

    for n in range(1, 9):
        for anchor in range(n):
            for size in (1, 2, 3, 64):
                runs = list(_runs(n, anchor, size))
                covered = [first + k for first, count in runs for k in range(count)]
                assert covered == [j for j in range(n) if j != anchor] and all(c <= size for _, c in runs)
