# PyTorch's own time for one cellpose train_seg step, for `deno task bench train` (a cross-check
# only, run when CELLPOSE_BENCH_PYTHON names a Python with torch): zero_grad, forward in train mode
# (layer drop off), _loss_fn_seg, backward, AdamW (weight decay 0.1) of a cpsam-architecture network
# (SAM's ViT encoder with global attention and decomposed relative positions, the neck, the out
# conv and W2's conv_transpose2d, as cellpose v4's vit_sam.Transformer) on one 3x256x256 tile,
# random weights. Usage: torch_train_step.py DIM DEPTH HEADS NREL STEPS THREADS.
# Prints JSON: wall and process CPU seconds of each step after one warm-up.
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

def get_rel_pos(q_size, k_size, rel_pos):
    m = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != m:
        r = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=m, mode="linear")
        r = r.reshape(-1, m).permute(1, 0)
    else:
        r = rel_pos
    qc = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    kc = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    rc = (qc - kc) + (k_size - 1) * max(q_size / k_size, 1.0)
    return r[rc.long()]

class Attention(nn.Module):
    def __init__(self, dim, heads, grid, nrel):
        super().__init__()
        self.h = heads; self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim); self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.randn(nrel, dim // heads) * 0.02)
        self.rel_pos_w = nn.Parameter(torch.randn(nrel, dim // heads) * 0.02)
    def forward(self, x):
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.h, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, B * self.h, H * W, -1).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        Rh = get_rel_pos(H, H, self.rel_pos_h); Rw = get_rel_pos(W, W, self.rel_pos_w)
        Bh, _, d = q.shape
        r_q = q.reshape(Bh, H, W, d)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
        attn = (attn.view(Bh, H, W, H, W) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(Bh, H * W, H * W)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(B, self.h, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
        return self.proj(x)

class Block(nn.Module):
    def __init__(self, dim, heads, grid, nrel):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6); self.attn = Attention(dim, heads, grid, nrel)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

class LayerNorm2d(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__(); self.weight = nn.Parameter(torch.ones(c)); self.bias = nn.Parameter(torch.zeros(c)); self.eps = eps
    def forward(self, x):
        u = x.mean(1, keepdim=True); s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]

class Net(nn.Module):
    def __init__(self, dim, depth, heads, nrel, ps=8, bsize=256, nout=3, neck=256):
        super().__init__()
        G = bsize // ps; self.ps = ps
        self.patch = nn.Conv2d(3, dim, kernel_size=ps, stride=ps)
        self.pos_embed = nn.Parameter(torch.zeros(1, G, G, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, G, nrel) for _ in range(depth)])
        self.neck = nn.Sequential(nn.Conv2d(dim, neck, 1, bias=False), LayerNorm2d(neck),
                                  nn.Conv2d(neck, neck, 3, padding=1, bias=False), LayerNorm2d(neck))
        self.out = nn.Conv2d(neck, nout * ps ** 2, kernel_size=1)
        self.W2 = nn.Parameter(torch.eye(nout * ps ** 2).reshape(nout * ps ** 2, nout, ps, ps), requires_grad=False)
    def forward(self, x):
        x = self.patch(x).permute(0, 2, 3, 1) + self.pos_embed
        for b in self.blocks: x = b(x)
        x = self.neck(x.permute(0, 3, 1, 2))
        return F.conv_transpose2d(self.out(x), self.W2, stride=self.ps, padding=0)

def main():
    dim, depth, heads, nrel, steps, threads = (int(a) for a in sys.argv[1:7])
    torch.set_num_threads(threads); torch.manual_seed(0)
    net = Net(dim, depth, heads, nrel); net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.1)
    X = torch.rand(1, 3, 256, 256); lbl = torch.rand(1, 3, 256, 256)
    mse, bce = nn.MSELoss(), nn.BCEWithLogitsLoss()
    wall, cpu = [], []
    for s in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        y = net(X)
        loss = mse(y[:, :2], 5.0 * lbl[:, 1:]) / 2.0 + bce(y[:, -1], (lbl[:, 0] > 0.5).float())
        loss.backward(); opt.step()
        if s > 0: wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    print(json.dumps({"times": wall, "cpu": cpu, "torch": torch.__version__, "threads": threads}))

main()
