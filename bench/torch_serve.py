"""The PyTorch baseline of `npm run bench:serve`: the same generator served as a PyTorch user writes it,
a small FastAPI app under uvicorn (one worker) answering GET /sample.png?count=&label=&seed=&nrow= with a
PNG grid (Pillow), G in eval mode under torch.inference_mode(), one request per forward pass (no
batching across requests). Endpoints are plain `def`s, so FastAPI runs them on its thread pool, as the
FastAPI docs advise for blocking work. G is the preset's (test/parity/reference.py's build_models) with
the run's weights (the same generator.safetensors `libtorch-gan serve` loads).

  python bench/torch_serve.py --presets FILE --preset NAME --weights G.safetensors --port N
"""

import argparse
import io
import json
import math
import sys
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Response
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "parity"))
from reference import build_models, classes_of, with_one_hot  # noqa: E402


def grid_png(x: torch.Tensor, nrow: int, low: float, high: float) -> bytes:
    """torchvision.utils.make_grid's layout (2 px padding, nrow images per row) as a PNG."""
    x = ((x - low) / (high - low)).clamp(0, 1)
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    canvas = torch.zeros(c, rows * (h + 2) + 2, cols * (w + 2) + 2)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + k * (w + 2) : 2 + k * (w + 2) + w] = x[i]
    pixels = canvas.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    img = Image.fromarray(pixels[0].numpy()) if c == 1 else Image.fromarray(pixels.permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", required=True, help="the presets' JSON (as bench/serve.mjs writes it)")
    ap.add_argument("--preset", required=True)
    ap.add_argument("--weights", required=True, help="G's safetensors")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()

    preset = json.load(open(args.presets))[args.preset]
    g, _ = build_models(preset)
    g.load_state_dict(load_file(args.weights))
    g.eval()
    noise = preset["step"]["noise"]
    shape = tuple(noise.get("shape") or [noise["dim"]])
    classes = classes_of(preset)
    low, high = (-1.0, 1.0) if preset["normalize"] == "[-1,1]" else (0.0, 1.0)
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/sample.png")
    def sample_png(count: int = 64, label: int | None = None, seed: int | None = None, nrow: int = 8):
        if not 1 <= count <= 256:
            raise HTTPException(400, "count: expected an integer in [1, 256]")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.inference_mode():
            if noise["dist"] == "normal":
                z = torch.randn(count, *shape, generator=gen)
            else:
                z = torch.rand(count, *shape, generator=gen) * (noise.get("high", 1) - noise.get("low", -1)) + noise.get("low", -1)
            if classes:
                y = torch.full((count,), label) if label is not None else torch.randint(0, classes, (count,), generator=gen)
                z = with_one_hot(z, y, classes)
            x = g(z)
            if x.dim() == 2:  # an MLP's flat rows: square one-channel images
                x = x.reshape(count, 1, math.isqrt(x.shape[1]), math.isqrt(x.shape[1]))
        return Response(grid_png(x, nrow, low, high), media_type="image/png")

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
