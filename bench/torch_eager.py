"""PyTorch eager baseline for `npm run bench`: the same architectures, batch, threads and step as the
fused native step (test/parity/reference.py's canonical step), written as a PyTorch script would be.

Reads the presets as JSON on stdin (or --presets FILE); prints one JSON object with ms/step and a
full-epoch time. Under torchrun with --data-parallel (`npm run bench:dist`), each rank trains its shard of
the epoch, and before each optimizer step the gradients are averaged across ranks over c10d's Gloo (one
flat all_reduce per model, pre-divided by the world size, as DDP's bucket); rank 0 prints.
"""
import argparse
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
    load_mnist_images,
    load_mnist_labels,
    make_optimizer,
    normalize,
    with_one_hot,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epoch", action="store_true", help="also time one full shuffled epoch over MNIST's 60k images")
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True), as the fused path trains")
    ap.add_argument("--train-epochs", type=int, default=0, help="instead: train this many shuffled epochs (npm run bench:quality)")
    ap.add_argument("--seed", type=int, default=0, help="with --train-epochs: the init and noise seed")
    ap.add_argument("--presets", help="read the presets' JSON from this file instead of stdin")
    ap.add_argument("--data-parallel", action="store_true", help="one rank of a torchrun launch (Gloo): average gradients each update")
    ap.add_argument("--save-g", help="with --train-epochs: write G's state_dict after each epoch to DIR/epoch-N.safetensors")
    args = ap.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(args.threads)
    preset = json.load(open(args.presets) if args.presets else sys.stdin)[args.preset]
    world, rank = 1, 0
    if args.data_parallel:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        world, rank = dist.get_world_size(), dist.get_rank()

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
    logits = spec["loss"] == "bceWithLogits"
    reuse = spec["gNoise"] == "reuse"
    detach = bool(spec["detachFakeForD"])
    noise = spec["noise"]
    lo, hi = noise.get("low", -1), noise.get("high", 1)

    shape = tuple(noise.get("shape") or [noise["dim"]])
    classes = classes_of(preset)

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
        return F.binary_cross_entropy_with_logits(out, t) if logits else F.binary_cross_entropy(out, t)

    g, d = build_models(preset, args.seed)  # the preset's init scheme too (dcgan/main.py's weights_init)
    g, d = g.to(dev), d.to(dev)
    opt_g, opt_d = make_optimizer(g.parameters(), preset["optimizer"]), make_optimizer(d.parameters(), preset["optimizer"])

    def step(x, y=None):
        n = x.shape[0]
        opt_d.zero_grad(set_to_none=True)
        zd = z(n)
        yd = fake_labels(n)
        if detach and not reuse:
            with torch.no_grad():
                fake = g(cond(zd, yd))
        else:
            fake = g(cond(zd, yd))
        d_real = d(cond(x, y))
        l_real = loss(d_real, spec["realLabel"])
        fake_in = cond(fake.detach() if detach else fake, yd)
        retain = reuse and not detach
        if spec["separateDBackward"]:
            l_real.backward()
            l_fake = loss(d(fake_in), spec["fakeLabel"])
            l_fake.backward(retain_graph=retain)
            d_loss = l_real + l_fake
        else:
            l_fake = loss(d(fake_in), spec["fakeLabel"])
            d_loss = (l_real + l_fake) / 2 if spec["dLossReduction"] == "mean" else l_real + l_fake
            d_loss.backward(retain_graph=retain)
        averaged(opt_d)
        yg = yd if reuse else fake_labels(n)
        fake_g = fake if reuse else g(cond(z(n), yg))
        opt_g.zero_grad(set_to_none=True)
        g_loss = loss(d(cond(fake_g, yg)), 1.0)
        g_loss.backward()
        averaged(opt_g)
        return d_loss.item(), g_loss.item()  # scripts log their losses every step

    images = load_mnist_images(Path(args.mnist), 60000)
    # a convolutional D reads [N, 1, 28, 28], an MLP D [N, 784]
    data = normalize(images, preset["normalize"]).reshape((60000, 1, 28, 28) if d_is_conv(preset) else (60000, 784)).to(dev)
    labels = load_mnist_labels(Path(args.mnist), 60000).to(dev) if classes else None
    if args.train_epochs:
        train_epochs(args, g, step, data, labels, sync)
        return
    x = data[: args.batch].contiguous()
    y = labels[: args.batch].contiguous() if classes else None
    for _ in range(args.warmup):
        step(x, y)
    sync()
    t = time.perf_counter()
    for _ in range(args.steps):
        step(x, y)
    sync()
    ms = (time.perf_counter() - t) / args.steps * 1000
    out = {"device": str(dev), "msPerStep": ms, "imagesPerSec": args.batch * world / ms * 1000, "torch": torch.__version__, "threads": torch.get_num_threads(), "ranks": world}
    if args.epoch:
        gen = torch.Generator().manual_seed(1)
        t = time.perf_counter()
        perm = torch.randperm(60000, generator=gen)[rank::world].to(dev)  # this rank's shard (60000 divides)
        for i in range(0, perm.shape[0], args.batch):
            idx = perm[i : i + args.batch]
            step(data[idx], labels[idx] if classes else None)
        sync()
        out["epochSeconds"] = time.perf_counter() - t
    if rank == 0:
        print(json.dumps(out))


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
        for i in range(0, n, args.batch):
            idx = perm[i : i + args.batch]
            step(data[idx], labels[idx] if labels is not None else None)
        sync()
        seconds = time.perf_counter() - t
        save_file({k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}, f"{args.save_g}/epoch-{epoch}.safetensors")
        print(json.dumps({"epoch": epoch, "seconds": seconds, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
