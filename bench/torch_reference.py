#!/usr/bin/python3
"""torch_reference.py — normbench vs PyTorch on the same model (docs/design.md section 11, issue 7).

For each scheme: `normbench bench --dump-init` writes the initial weights (Hugging Face names at
the HDF5 root), one training batch, normbench's loss and gradients on it, the per-sublayer
SublayerSpec (placement, in_scale s, residual_scale r) and normbench's timed training steps.
This script builds the same LLaMA-style model in PyTorch (RMSNorm or LayerNorm, RoPE in
rotate_half layout, SwiGLU, untied head, optional final norm; PRE y = r*x + F(s*N(x)),
POST y = s*N(r*x + F(x))), loads those weights, checks loss and every gradient agree within
--tol relative error in fp32 (per tensor: max|a-b| / max|ref|), then times full training
steps (forward, backward, AdamW) at the same thread count, runs normbench's timing again
(A/B/A), and prints both tokens/s and the ratio.

Same kernels, same threads (issue 18): before PyTorch (or numpy) loads, the script sets
OPENBLAS_CORETYPE to the OpenBLAS core normbench runs here (`normbench info`; a value the
user set is kept, and normbench inherits it too) and OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to
--threads, then torch.set_num_threads(--threads). It prints which kernels each side used:
normbench's from the dump file, PyTorch's from its build configuration and the BLAS library
actually loaded into this process (the OpenBLAS core when that library is OpenBLAS).

Needs Debian's python3-torch and python3-h5py (/usr/bin/python3).
Usage: bench/torch_reference.py [--bin build/normbench] [--config configs/demo/demo.yaml]
       [--schemes pre_ln,lns] [--threads 2] [--steps 3] [--set key=value]...
"""
import argparse
import ctypes
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def normbench_core(binary):
    """The OpenBLAS core normbench runs on this machine ("SkylakeX"), or None."""
    out = subprocess.run([binary, "info"], capture_output=True, text=True)
    m = re.search(r"^CPU kernels: OpenBLAS (\S+)", out.stdout, re.M)
    return m.group(1) if m else None


def same_kernels_and_threads(argv):
    """Sets the BLAS kernels and thread count for this process before any BLAS loads."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--bin", default="build/normbench")
    pre.add_argument("--threads", type=int, default=int(os.environ.get("NB_THREADS", "2")))
    a, _ = pre.parse_known_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    if "OPENBLAS_CORETYPE" not in os.environ:
        core = normbench_core(a.bin)
        if core:
            os.environ["OPENBLAS_CORETYPE"] = core


same_kernels_and_threads(sys.argv[1:])

import h5py  # noqa: E402  (after the environment above: these load the BLAS)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def torch_kernels():
    """What PyTorch's fp32 matmuls run on: its build's BLAS, the BLAS library loaded into this
    process (with its OpenBLAS core when it is OpenBLAS) and the ATen CPU capability."""
    cfg = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", cfg)
    cap = re.search(r"CPU capability usage: (\w+)", cfg)
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if re.search(r"/lib(open)?blas[^/]*\.so|/libmkl_[^/]*\.so", path):
                paths.add(path)
    loaded = []
    for path in sorted(paths):
        desc = os.path.realpath(path)
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
            fn.restype = ctypes.c_char_p
            desc = "OpenBLAS %s (%s)" % (fn().decode(), desc)
        except (OSError, AttributeError):
            pass
        loaded.append(desc)
    return "BLAS_INFO=%s; loaded: %s; CPU capability %s; oneDNN %s" % (
        blas.group(1) if blas else "?", ", ".join(loaded) or "no BLAS library found",
        cap.group(1) if cap else "?", "yes" if torch.backends.mkldnn.is_available() else "no")


def norm(x, w, b, eps, layernorm):
    if layernorm:
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, HS, theta):
    i = torch.arange(HS // 2, dtype=torch.float64)
    inv = theta ** (-2.0 * i / HS)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1).float()
    sin = torch.cat([ang.sin(), ang.sin()], -1).float()
    return cos[None, :, None, :], sin[None, :, None, :]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Ref:
    """The normbench model as a function of a dict of leaf tensors named as in HF LLaMA."""

    def __init__(self, f):
        a = f.attrs
        self.L = int(a["bench_n_layer"])
        self.C = int(a["bench_d_model"])
        self.NH = int(a["bench_n_head"])
        self.V = int(a["bench_vocab_size"])
        self.T = int(a["bench_seq_len"])
        self.B = int(a["bench_batch"])
        self.eps = float(a["bench_norm_eps"])
        self.theta = float(a["bench_rope_theta"])
        self.ln = bool(int(a["bench_layernorm"]))
        self.final = bool(int(a["bench_final_norm"]))
        self.post = np.array(f["bench_spec_post"]) > 0.5
        self.s = np.array(f["bench_spec_in_scale"], dtype=np.float64)
        self.r = np.array(f["bench_spec_residual_scale"], dtype=np.float64)
        self.HS = self.C // self.NH
        self.cos, self.sin = rope_tables(self.T, self.HS, self.theta)
        mask = torch.ones(self.T, self.T, dtype=torch.bool).tril()
        self.mask = mask[None, None]

    def attn(self, p, l, x):
        B, T, C, NH, HS = x.shape[0], self.T, self.C, self.NH, self.HS
        pre = "model.layers.%d.self_attn." % l
        q = (x @ p[pre + "q_proj.weight"].t()).view(B, T, NH, HS)
        k = (x @ p[pre + "k_proj.weight"].t()).view(B, T, NH, HS)
        v = (x @ p[pre + "v_proj.weight"].t()).view(B, T, NH, HS)
        q = q * self.cos + rotate_half(q) * self.sin
        k = k * self.cos + rotate_half(k) * self.sin
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(HS))
        att = att.masked_fill(~self.mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return y @ p[pre + "o_proj.weight"].t()

    def mlp(self, p, l, x):
        pre = "model.layers.%d.mlp." % l
        g = x @ p[pre + "gate_proj.weight"].t()
        u = x @ p[pre + "up_proj.weight"].t()
        return (F.silu(g) * u) @ p[pre + "down_proj.weight"].t()

    def loss(self, p, tokens, targets):
        x = p["model.embed_tokens.weight"][tokens]
        for i in range(2 * self.L):
            l, sub = divmod(i, 2)
            nn = "model.layers.%d.%s." % (l, "input_layernorm" if sub == 0 else "post_attention_layernorm")
            w, b = p[nn + "weight"], p.get(nn + "bias")
            fn = self.attn if sub == 0 else self.mlp
            s, r = float(self.s[i]), float(self.r[i])
            if not self.post[i]:
                x = r * x + fn(p, l, s * norm(x, w, b, self.eps, self.ln))
            else:
                x = s * norm(r * x + fn(p, l, x), w, b, self.eps, self.ln)
        if self.final:
            x = norm(x, p["model.norm.weight"], p.get("model.norm.bias"), self.eps, self.ln)
        logits = x @ p["lm_head.weight"].t()
        return F.cross_entropy(logits.view(-1, self.V), targets.view(-1))


def rel_err(a, ref):
    scale = max(float(ref.abs().max()), 1e-30)
    return float((a - ref).abs().max()) / scale


def dump(args, scheme, path):
    cmd = [args.bin, "bench", "--dump-init", path, args.config, "--set", "scheme=" + scheme,
           "--set", "seed=1", "--set", "backend.threads=%d" % args.threads, "--steps", str(args.steps)]
    for s in args.set:
        cmd += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("torch_reference: %s failed (%d):\n%s%s" % (" ".join(cmd), out.returncode, out.stdout, out.stderr))
    with h5py.File(path, "r") as f:
        kernels = f.attrs.get("bench_kernels", "unknown")
        if isinstance(kernels, bytes):
            kernels = kernels.decode()
        args.nb_kernels = kernels
        return float(f.attrs["bench_tokens_per_s"])


def run_scheme(args, scheme, tmp):
    path = os.path.join(tmp, "%s.h5" % scheme)
    nb1 = dump(args, scheme, path)
    with h5py.File(path, "r") as f:
        ref = Ref(f)
        names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset) and not k.startswith("bench_")]
        params = {k: torch.tensor(np.array(f[k], dtype=np.float32), requires_grad=True) for k in names}
        grads_nb = {k: torch.tensor(np.array(f["bench_grad"][k], dtype=np.float32)) for k in names}
        loss_nb = float(f.attrs["bench_loss"])
        tokens = torch.tensor(np.array(f["bench_tokens"]), dtype=torch.long).view(ref.B, ref.T)
        targets = torch.tensor(np.array(f["bench_targets"]), dtype=torch.long).view(ref.B, ref.T)
    # correctness, fp32
    loss = ref.loss(params, tokens, targets)
    loss.backward()
    loss_err = abs(float(loss) - loss_nb) / abs(float(loss))
    worst_name, worst = "", 0.0
    for k in names:
        e = rel_err(grads_nb[k], params[k].grad)
        if e > worst:
            worst_name, worst = k, e
    ok = loss_err < args.tol and worst < args.tol
    # timing: full steps, AdamW, same batch, same thread count
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    rates = []
    for s in range(args.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        l = ref.loss(params, tokens, targets)
        l.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if s > 0:
            rates.append(ref.B * ref.T / dt)
    nb2 = dump(args, scheme, path)  # A/B/A: normbench again after torch
    tps_torch = statistics.median(rates)
    tps_nb = statistics.median([nb1, nb2])
    print("%-9s %-8s loss nb %.6f torch %.6f (rel %.1e)  max grad rel err %.1e (%s)  %s" %
          (os.path.basename(args.config), scheme, loss_nb, float(loss), loss_err, worst, worst_name,
           "OK" if ok else "MISMATCH"))
    print("%-9s %-8s tokens/s normbench %.0f (%.0f, %.0f)  torch %.0f [%.0f .. %.0f]  ratio %.2fx  (%d threads, B=%d T=%d C=%d L=%d; normbench kernels %s)" %
          (os.path.basename(args.config), scheme, tps_nb, nb1, nb2, tps_torch, min(rates), max(rates),
           tps_nb / tps_torch, args.threads, ref.B, ref.T, ref.C, ref.L, args.nb_kernels))
    sys.stdout.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/normbench")
    ap.add_argument("--config", default="configs/demo/demo.yaml")
    ap.add_argument("--schemes", default="pre_ln,lns")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("NB_THREADS", "2")))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--set", action="append", default=[], help="config override for normbench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("threads: %d each (torch.get_num_threads() = %d); OPENBLAS_CORETYPE=%s" %
          (args.threads, torch.get_num_threads(), os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    print("kernels: torch: %s" % torch_kernels())
    sys.stdout.flush()
    ok = True
    with tempfile.TemporaryDirectory(prefix="nb-torch-") as tmp:
        for scheme in args.schemes.split(","):
            ok = run_scheme(args, scheme, tmp) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
