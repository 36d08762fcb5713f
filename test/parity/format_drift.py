# PyTorch's own drift on the dcgan step (test/parity/parity.test.ts's conv bounds): the same 5 steps in NCHW and in
# channels-last memory format, same init, data and noise, with single-tensor and fused Adam.
# Run: .venv/bin/python test/parity/format_drift.py
import torch, torch.nn as nn, sys
torch.set_num_threads(2)
def models():
    torch.manual_seed(0)
    G = nn.Sequential(nn.ConvTranspose2d(100, 128, 7, 1, 0, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
                      nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
                      nn.Conv2d(128, 1, 7, 1, 0, bias=False), nn.Flatten())
    for m in list(G) + list(D):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)): nn.init.normal_(m.weight, 0, 0.02)
        if isinstance(m, nn.BatchNorm2d): nn.init.normal_(m.weight, 1, 0.02); nn.init.zeros_(m.bias)
    return G, D
def run(cl, fused):
    G, D = models()
    if cl: G = G.to(memory_format=torch.channels_last); D = D.to(memory_format=torch.channels_last)
    oG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused); oD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused)
    torch.manual_seed(5)
    xs = [torch.rand(128, 1, 28, 28) * 2 - 1 for _ in range(5)]; zs = [torch.randn(128, 100, 1, 1) for _ in range(5)]
    bce = nn.BCEWithLogitsLoss(); out = []
    for x, z in zip(xs, zs):
        if cl: x = x.contiguous(memory_format=torch.channels_last); z = z.contiguous(memory_format=torch.channels_last)
        fake = G(z); oD.zero_grad()
        o = D(x); lr = bce(o, torch.ones_like(o)); lr.backward()
        o = D(fake.detach()); lf = bce(o, torch.zeros_like(o)); lf.backward(); oD.step()
        oG.zero_grad(); o = D(fake); lg = bce(o, torch.ones_like(o)); lg.backward(); oG.step()
        out.append(((lr + lf).item(), lg.item()))
    return out, torch.cat([p.detach().flatten() for p in list(G.parameters()) + list(D.parameters())])
for fused in (False, True):
    a, pa = run(False, fused); b, pb = run(True, fused)
    rel = max(max(abs(x[k] - y[k]) / abs(x[k]) for k in (0, 1)) for x, y in zip(a, b))
    print(f"fused Adam {fused}: losses max relative difference NCHW vs channels-last over 5 steps {rel:.2e}; weights max abs {float((pa - pb).abs().max()):.2e}")
    for i, (x, y) in enumerate(zip(a, b)): print(f"  step {i+1}: D {x[0]:.7f} / {y[0]:.7f}  G {x[1]:.7f} / {y[1]:.7f}")
