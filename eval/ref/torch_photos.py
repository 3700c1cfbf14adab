"""torch_photos.py — PyTorch's speed on the same DnCNN-style network as a daed model file, for
eval/photos (side by side in one run). Debian /usr/bin/python3 with python3-torch.

  /usr/bin/python3 eval/ref/torch_photos.py MODEL.safetensors [--threads 2] [--size 1024]
      [--train-steps 20] [--batch 64] [--patch 40]

Builds the network from the model file's config (encoder + decoder nn.Sequential, residual:
output = input - net(input)), loads its weights, and prints one JSON line:
  infer_s_per_mpx   whole-image forward of a size x size image with the model's channels
                    (best of 3 after a warm-up), seconds per megapixel
  infer_cpu_s_per_mpx  the CPU time (all threads) of that best run, per megapixel
  train_patches_per_s  Adam steps on batch x 1 x patch x patch noisy patches (as train.py)
OMP_WAIT_POLICY=PASSIVE and torch.set_num_threads(threads), as the reference."""
import os, sys, json, time, struct, argparse
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import numpy as np
import torch, torch.nn as nn

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--size", type=int, default=1024); ap.add_argument("--train-steps", type=int, default=20)
ap.add_argument("--batch", type=int, default=64); ap.add_argument("--patch", type=int, default=40)
a = ap.parse_args()
torch.set_num_threads(a.threads)

raw = open(a.model, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
cfg = json.loads(hdr["__metadata__"]["config"])

def seq(layers):
    mods = []
    for l in layers:
        t = l["type"]
        if t == "conv2d":
            mods.append(nn.Conv2d(l["in_channels"], l["out_channels"], l["kernel_size"],
                                  stride=l.get("stride", 1), padding=l.get("padding", 0)))
        elif t == "relu": mods.append(nn.ReLU(inplace=True))
        else: raise SystemExit(f"torch_photos: layer type {t} not handled")
    return nn.Sequential(*mods)

class Net(nn.Module):
    def __init__(self):
        super().__init__(); self.encoder = seq(cfg["encoder"]); self.decoder = seq(cfg["decoder"])
    def forward(self, x):
        y = self.decoder(self.encoder(x))
        return x - y if cfg.get("residual") else y

net = Net()
sd = {}
for k, v in hdr.items():
    if k == "__metadata__": continue
    b, e = v["data_offsets"]
    sd[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"]).copy())
net.load_state_dict(sd); net.eval()
C = cfg["input"][0]

res = {"threads": torch.get_num_threads(), "torch": torch.__version__, "size": a.size}
with torch.no_grad():
    x = torch.rand(1, C, a.size, a.size)
    net(x)
    ts = []
    for _ in range(3):
        t = time.perf_counter(); u = time.process_time(); net(x)
        ts.append((time.perf_counter() - t, time.process_time() - u))
best = min(ts)
res["infer_s_per_mpx"] = best[0] / (a.size * a.size / 1e6)
res["infer_cpu_s_per_mpx"] = best[1] / (a.size * a.size / 1e6)

net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
clean = torch.rand(a.batch, C, a.patch, a.patch)
def step():
    sig = torch.rand(a.batch, 1, 1, 1) * (55.0 / 255.0)
    noisy = torch.clamp(torch.round((clean + sig * torch.randn_like(clean)) * 255.0) / 255.0, 0, 1)
    loss = torch.mean((net(noisy) - clean) ** 2)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(3): step()
t = time.perf_counter()
for _ in range(a.train_steps): step()
res["train_patches_per_s"] = a.train_steps * a.batch / (time.perf_counter() - t)
print(json.dumps(res), flush=True)
